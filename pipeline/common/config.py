"""Load and validate the workflow configuration; shared helpers for months and frames.

The schema (``schemas/config.schema.yaml``) is the single source of truth for keys,
types and defaults. Snakemake validates with it at parse time; every command-line
entry point validates with :func:`load_config`, so a step run by hand sees the same
defaults as one run by the workflow.
"""
from __future__ import annotations

import copy
import datetime
import difflib
import functools
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

if TYPE_CHECKING:  # pandas and jsonschema load on first use: the short workflow jobs skip their start-up
    import jsonschema
    import pandas as pd

from pipeline.common.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
# libyaml's parser where PyYAML was built with it (the same safe loader, about 7x faster:
# every workflow job parses the schema and the config once).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _validator_with_defaults(cls):
    """A jsonschema validator class that fills in each property's ``default``."""
    import jsonschema

    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = json.loads(json.dumps(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


@functools.lru_cache(maxsize=1)
def _parsed_schema() -> dict:
    """The schema, parsed once per process (never modified: callers get copies)."""
    with open(SCHEMA_PATH) as f:
        return yaml.load(f, Loader=_YAML_LOADER)


@functools.lru_cache(maxsize=1)
def _validator():
    """The schema's validator (filling defaults), built once per process."""
    import jsonschema

    return _validator_with_defaults(jsonschema.Draft202012Validator)(_parsed_schema())


def load_schema() -> dict:
    return copy.deepcopy(_parsed_schema())


def validate_config(config: dict) -> dict:
    """Validate ``config`` in place (defaults filled in) and check cross-key rules.

    Raises :class:`ConfigError` naming the key path and the offending value.
    """
    errors = sorted(_validator().iter_errors(config), key=lambda e: _path_order(e.path))
    if errors:
        raise ConfigError(schema_error_message(errors[0]))
    check_consistency(config)
    return config


def key_path(path) -> str:
    """Dotted key of a path of keys and list indices: ``model.hidden[1]``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _path_order(path) -> list:
    """Sort key of an error path (list indices before keys, so mixed paths compare)."""
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path]


_PATTERN_NAMES = {r"^\d{4}-\d{2}-\d{2}$": "a date YYYY-MM-DD", r"^\d{4}-\d{2}$": "a month YYYY-MM"}


def schema_error_message(e: "jsonschema.ValidationError") -> str:
    """``config key 'a.b': <what>``, naming the key and showing the offending value.

    An unknown key is named itself (``model.foo``), a missing required key too
    (``splits.val``); ``oneOf`` lists why each alternative failed.
    """
    path = list(e.absolute_path)
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        allowed = list(e.schema.get("properties", {}))
        name = next(k for k in e.instance if k not in allowed)
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (f"config key '{key_path(path + [str(name)])}': unknown key (value {e.instance[name]!r}); "
                f"{hint}the keys of {key_path(path) if path else 'the top level'} are {allowed}")
    if e.validator == "required" and isinstance(e.instance, dict):
        name = next(k for k in e.validator_value if k not in e.instance)
        return f"config key '{key_path(path + [name])}': required key is missing"
    if e.validator in ("oneOf", "anyOf") and e.context:
        reasons = "; ".join(c.message for c in sorted(e.context, key=lambda c: c.relative_schema_path[0]))
        return f"config key '{key_path(path)}': {e.instance!r} matches none of the allowed forms ({reasons})"
    message = e.message
    if e.validator == "pattern" and e.validator_value in _PATTERN_NAMES:
        message = f"{e.instance!r} is not {_PATTERN_NAMES[e.validator_value]}"
    if e.validator == "type" and isinstance(e.instance, datetime.date):
        message += " (quote it: YAML reads an unquoted YYYY-MM-DD as a date)"
    if repr(e.instance) not in message:
        message += f" (got {e.instance!r})"
    return f"config key '{key_path(path)}': {message}"


def schema_defaults() -> dict:
    """The schema's default of every key that has one (a command run without ``--config``).

    Keys without a default (``regions``, ``splits``) are absent, so only commands that
    do not read them (the ingest of a user's file) can run on these defaults.
    """
    return copy.deepcopy(_schema_defaults())


@functools.lru_cache(maxsize=1)
def _schema_defaults() -> dict:
    """:func:`schema_defaults`, computed once per process (never modified: callers get copies)."""
    import jsonschema

    schema = dict(load_schema())
    schema.pop("required", None)
    config: dict = {}
    for _ in _validator_with_defaults(jsonschema.Draft202012Validator)(schema).iter_errors(config):
        pass  # the iteration fills the defaults in
    return config


def qc_settings(qc: dict | None = None) -> dict:
    """The ``qc`` section: the schema's defaults updated with ``qc`` (for callers that hold a
    partial section, or none; a loaded config already has every key)."""
    if qc and all(k in qc for k in _parsed_schema()["properties"]["qc"]["properties"]):
        return dict(qc)  # a loaded config's section is complete: no defaults to compute
    return {**schema_defaults().get("qc", {}), **(qc or {})}


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, apply nested ``overrides``, validate, fill defaults.

    A file that cannot be read, is not YAML or is not a mapping is a :class:`ConfigError` too.
    Several steps of one process (python -m pipeline.steps) load the same file: a file
    loaded before with the same bytes and the same overrides gives a copy of the validated
    result instead of a second validation.
    """
    try:
        key = (str(Path(path).resolve()), Path(path).read_bytes(), json.dumps(overrides, sort_keys=True, default=str))
    except (OSError, TypeError, ValueError):
        key = None
    if key is not None and key in _LOADED:
        return copy.deepcopy(_LOADED[key])
    config = _sealed_config(key[1]) if key is not None and not overrides else None
    if config is None:
        config = _load_config(path, overrides)
    if key is not None:
        _LOADED.clear()  # one file at a time: the steps of a job share one config
        _LOADED[key] = copy.deepcopy(config)
    return config


_LOADED: dict = {}

#: First line of a config file written by the workflow after validating it (:func:`sealed_config_text`).
SEAL_PREFIX = "# validated config, seal "


@functools.lru_cache(maxsize=1)
def _validation_fingerprint() -> bytes:
    """The schema and this module's source: what decides whether a config is valid."""
    return hashlib.sha256(Path(SCHEMA_PATH).read_bytes() + Path(__file__).read_bytes()).digest()


def _seal(body: bytes) -> str:
    return hashlib.sha256(_validation_fingerprint() + body).hexdigest()


def sealed_config_text(config: dict) -> str:
    """``config`` validated (defaults filled) as YAML, under a first line that seals it.

    The seal is a SHA-256 of the YAML text together with the schema and the validation code.
    :func:`load_config` reads a file whose seal matches without validating it again, so the
    workflow's many short jobs, which all read the config the workflow validated, skip
    jsonschema's start-up and the validation (benchmarks/bench_data_stages.py). Any edit
    of the file, the schema or the validation code breaks the seal, and the file is then
    validated as any other.
    """
    body = yaml.safe_dump(validate_config(json.loads(json.dumps(config))), sort_keys=False)
    return f"{SEAL_PREFIX}{_seal(body.encode())}\n{body}"


def _sealed_config(data: bytes) -> dict | None:
    """The config of a sealed file (:func:`sealed_config_text`) whose seal holds, else None."""
    first, sep, body = data.partition(b"\n")
    if not sep or not first.startswith(SEAL_PREFIX.encode()):
        return None
    if first[len(SEAL_PREFIX):].decode("ascii", "replace") != _seal(body):
        return None
    config = yaml.load(body, Loader=_YAML_LOADER)
    return config if isinstance(config, dict) else None


def _load_config(path: str | Path, overrides: dict | None = None) -> dict:
    try:
        with open(path) as f:
            config = yaml.load(f, Loader=_YAML_LOADER)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config key '<top level>': {config!r} is not a mapping of keys to values")
    if overrides:
        config = deep_update(config, overrides)
    try:
        return validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def deep_update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


#: Dates (splits) and months (period) must lie in this range, inclusive: the nanosecond
#: timestamps of pandas and numpy (datetime64[ns]) that every step uses hold 1677-09-21 .. 2262-04-11.
DATE_RANGE = ("1678-01-01", "2261-12-31")


def check_consistency(config: dict) -> None:
    """Rules a JSON schema cannot express. Each error names the keys and values involved.

    Numbers are finite; levels strictly decreasing; region boxes non-empty, on the grid, and
    joined on exactly one side (:func:`_check_regions`); the period and the splits real
    dates in order, each split long enough for one sample and consecutive splits separated
    by an input window (:func:`_check_period_and_splits`); model settings the network
    accepts; evaluation settings the forecasts and baselines can meet
    (:func:`_check_evaluation`).
    """
    _check_finite(config)
    levels = config["levels_hpa"]
    if any(b >= a for a, b in zip(levels, levels[1:])):
        raise ConfigError(f"config key 'levels_hpa': must be strictly decreasing, got {levels}")
    _check_regions(config)
    _check_period_and_splits(config)
    m = config["model"]
    check_model_settings(m["hidden"], m["kernel_size"], m["norm"], m["groups"], m["bin_edges_mm"])
    check_head_and_loss(m["head"], config["train"]["loss"])
    _check_evaluation(config)


def _check_finite(node, path: tuple = ()) -> None:
    """No NaN or infinity anywhere (the schema's bounds do not catch NaN)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"config key '{key_path(path)}': {node!r} is not a finite number")
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, path + (i,))


#: Most grid cells along one axis of a region box (a guard against a resolution so fine
#: that the grid could not be held in memory; the default grids have 24).
MAX_CELLS_PER_AXIS = 100_000


def _check_regions(config: dict) -> None:
    """Region boxes: non-empty, their extents multiples of the grid spacing, and region 2
    adjoining region 1 on exactly one side with the other axis shared exactly, as
    :func:`pipeline.gridding.geometry.make_grid` joins them (the side is decided by
    :func:`~pipeline.gridding.geometry.region2_side`, which also names a contradicting
    ``regions.region2_side``).
    """
    from pipeline.common.errors import GridError
    from pipeline.gridding.geometry import region2_side, region_axes  # deferred: a stage module

    regions, res = config["regions"], config["grid"]["resolution_deg"]
    for name in ("region1", "region2"):
        box = regions[name]
        if box["lat_min"] >= box["lat_max"] or box["lon_min"] >= box["lon_max"]:
            raise ConfigError(f"config key 'regions.{name}': empty box {box} "
                              "(need lat_min < lat_max and lon_min < lon_max)")
    axes = {}
    for name in ("region1", "region2"):
        box = regions[name]
        cells = max(box["lat_max"] - box["lat_min"], box["lon_max"] - box["lon_min"]) / res
        if cells > MAX_CELLS_PER_AXIS:
            raise ConfigError(f"config key 'grid.resolution_deg': {res} gives {cells:.3g} cells along an axis of "
                              f"config key 'regions.{name}' {box} (at most {MAX_CELLS_PER_AXIS})")
        try:
            axes[name] = region_axes(box, float(res), name)
        except GridError as err:
            raise ConfigError(f"config key 'grid.resolution_deg': {res} does not divide config key "
                              f"'regions.{name}' {box} ({err})") from None
        if min(a.size for a in axes[name]) < 1:
            raise ConfigError(f"config key 'grid.resolution_deg': {res} is larger than config key "
                              f"'regions.{name}' {box} (no grid cell)")
    r1, r2 = regions["region1"], regions["region2"]
    try:
        side = region2_side(config)
    except ConfigError as err:  # regions.region2_side contradicts the boxes
        raise ConfigError(f"{err}: regions.region1 {r1}, regions.region2 {r2}") from None
    except GridError as err:
        raise ConfigError(f"config keys 'regions.region1' and 'regions.region2': {err}") from None
    shared, axis = ("latitudes", 0) if side in ("west", "east") else ("longitudes", 1)
    if not np.array_equal(axes["region1"][axis], axes["region2"][axis]):  # as make_grid requires
        raise ConfigError(f"config keys 'regions.region1' {r1} and 'regions.region2' {r2}: joined on the "
                          f"{side} side, the boxes must share {shared} exactly")


def _date(key: str, value: str) -> np.datetime64:
    """A YYYY-MM-DD (or YYYY-MM: its first day) config value as a datetime64[D]; a
    ConfigError when it is not a calendar date or lies outside :data:`DATE_RANGE`."""
    try:
        t = np.datetime64(str(value).strip(), "D")
    except ValueError as err:
        raise ConfigError(f"config key '{key}': {value!r} is not a calendar date ({err})") from None
    if not np.datetime64(DATE_RANGE[0], "D") <= t <= np.datetime64(DATE_RANGE[1], "D"):
        raise ConfigError(f"config key '{key}': {value!r} lies outside the supported dates "
                          f"{DATE_RANGE[0]} .. {DATE_RANGE[1]}")
    return t


def _check_period_and_splits(config: dict) -> None:
    """Real dates; the period in order; each split in order and holding at least one sample
    (``frames.input_steps + frames.lead_steps`` frames); consecutive splits separated by a
    gap of at least one input window (``frames.input_steps * frames.step_hours``)."""
    p = config["period"]
    if _date("period.start", p["start"]) > _date("period.end", p["end"]):
        raise ConfigError(f"config keys 'period.start' {p['start']} and 'period.end' {p['end']}: start after end")
    fr, s = config["frames"], config["splits"]
    step, n_in, n_lead = fr["step_hours"], fr["input_steps"], fr["lead_steps"]
    order = ["train", "val", "test"]
    days = {}
    for name in order:
        first, last = _date(f"splits.{name}.start", s[name]["start"]), _date(f"splits.{name}.end", s[name]["end"])
        if first > last:
            raise ConfigError(f"config keys 'splits.{name}.start' {s[name]['start']} and 'splits.{name}.end' "
                              f"{s[name]['end']}: start after end")
        n_frames = (int((last - first) // np.timedelta64(1, "D")) + 1) * 24 // step  # end date is inclusive
        if n_frames < n_in + n_lead:
            raise ConfigError(
                f"config key 'splits.{name}': {s[name]['start']} .. {s[name]['end']} holds {n_frames} frames, "
                f"fewer than one sample needs (frames.input_steps {n_in} + frames.lead_steps {n_lead}, "
                f"frames.step_hours {step} h apart)"
            )
        days[name] = (first, last)
    window_h = n_in * step
    for a, b in zip(order, order[1:]):
        gap_h = int((days[b][0] - days[a][1]) // np.timedelta64(1, "D")) * 24 - 24  # end date is inclusive
        if gap_h < window_h:
            raise ConfigError(
                f"config key 'splits.{b}.start': {s[b]['start']} leaves a gap of {gap_h} h after "
                f"splits.{a}.end {s[a]['end']}; at least one input window is required (frames.input_steps "
                f"{n_in} x frames.step_hours {step} h = {window_h} h)"
            )


def check_model_settings(hidden, kernel_size, norm, groups, bin_edges_mm) -> None:
    """Model settings the network accepts (also checked by ``training.config.ModelConfig``)."""
    if kernel_size % 2 != 1:
        raise ConfigError(f"config key 'model.kernel_size': must be odd, got {kernel_size}")
    e = [float(v) for v in bin_edges_mm]
    if len(e) < 1 or e[0] <= 0 or any(b <= a for a, b in zip(e, e[1:])):
        raise ConfigError(f"config key 'model.bin_edges_mm': need increasing positive edges, got {list(bin_edges_mm)}")
    if norm == "group":
        bad = [h for h in hidden if (4 * h) % groups]
        if bad:
            raise ConfigError(f"config key 'model.groups': {groups} does not divide 4 * hidden for hidden {bad} "
                              f"(config key 'model.hidden' {list(hidden)}, model.norm 'group')")


def check_head_and_loss(head: str, loss: str) -> None:
    """The bins head is trained with cross-entropy only, the regression head with a pointwise loss."""
    if (head == "bins") != (loss == "cross_entropy"):
        raise ConfigError(f"config key 'train.loss': {loss!r} does not fit model.head {head!r} "
                          "(the bins head needs cross_entropy; cross_entropy needs the bins head)")


def _check_evaluation(config: dict) -> None:
    """Thresholds among the bin edges (bins head); the advection baseline's level gridded
    and its wind variables present; FSS windows that fit the region-1 grid."""
    from pipeline.gridding.geometry import region_axes  # deferred: a stage module

    ev, model = config["evaluation"], config["model"]
    if model["head"] == "bins":
        edges = [float(e) for e in model["bin_edges_mm"]]
        off = [t for t in ev["thresholds_mm"] if not np.isclose(edges, float(t)).any()]
        if off:
            raise ConfigError(
                f"config key 'evaluation.thresholds_mm': {off} of {ev['thresholds_mm']} not among config key "
                f"'model.bin_edges_mm' {model['bin_edges_mm']} (the bins head gives exceedance probabilities "
                "at bin edges only)"
            )
    if "advection" in ev["extra_baselines"]:
        level, levels = ev["advection_level_hpa"], config["levels_hpa"]
        if float(level) not in [float(v) for v in levels]:
            raise ConfigError(f"config key 'evaluation.advection_level_hpa': {level} is not among config key "
                              f"'levels_hpa' {levels} (the advection baseline of evaluation.extra_baselines "
                              "steers with the wind at this level)")
        missing = [v for v in ("u", "v") if v not in config["variables"]]
        if missing:
            raise ConfigError(f"config key 'variables': {config['variables']} lacks {missing} (the advection "
                              "baseline of evaluation.extra_baselines steers with the analysed wind)")
    box, res = config["regions"]["region1"], config["grid"]["resolution_deg"]
    lat, lon = region_axes(box, float(res), "region1")
    big = [w for w in ev["fss_windows"] if w > min(lat.size, lon.size)]
    if big:
        raise ConfigError(f"config key 'evaluation.fss_windows': {big} of {ev['fss_windows']} larger than the "
                          f"region-1 grid of {lat.size} x {lon.size} cells (regions.region1 {box} at "
                          f"grid.resolution_deg {res})")


def config_hash(config: dict, keys: tuple[str, ...] | None = None) -> str:
    """Stable short hash of the config (or of a subset of its top-level keys)."""
    sub = config if keys is None else {k: config.get(k) for k in keys}
    blob = json.dumps(sub, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def period_months(config: dict) -> list[str]:
    """Months of the study period as 'YYYY-MM' strings."""
    import pandas as pd
    p = config["period"]
    return [str(m) for m in pd.period_range(p["start"], p["end"], freq="M")]


def month_frame_times(month: str, step_hours: int = 12) -> pd.DatetimeIndex:
    """Frame times (UTC, tz-naive) inside a month: 00 and 12 UTC of every day."""
    import pandas as pd

    from pipeline.common import times
    return pd.DatetimeIndex(times.month_frame_times(str(month), step_hours))


def in_month(times, month) -> np.ndarray:
    """Which ``times`` fall in ``month`` (a ``YYYY-MM`` string or a monthly Period):
    ``[month start, next month start)``, as a bool array."""
    from pipeline.common.times import month_start

    t = np.asarray(times, dtype="datetime64[ns]")
    return (t >= month_start(str(month))) & (t < month_start(str(month), 1))


def time_periods(times, step_hours: int = 12, limit: int = 10) -> list[str]:
    """Frame ``times`` as runs of consecutive frames (``step_hours`` apart), for messages and
    attributes: ``['2020-03-01T00 .. 2020-03-07T12 (14 frames)', '2020-04-02T12 (1 frame)']``;
    beyond ``limit`` runs one last entry says how many more there are."""
    import pandas as pd
    t = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).sort_values()
    if not len(t):
        return []
    breaks = np.flatnonzero(np.diff(t.values) != np.timedelta64(int(step_hours), "h")) + 1
    starts, ends = np.concatenate(([0], breaks)), np.concatenate((breaks, [len(t)])) - 1
    out = []
    for a, b in zip(starts[:limit], ends[:limit]):
        n = b - a + 1
        first = t[a].strftime("%Y-%m-%dT%H")
        out.append(f"{first} (1 frame)" if n == 1 else f"{first} .. {t[b].strftime('%Y-%m-%dT%H')} ({n} frames)")
    if len(starts) > limit:
        out.append(f"... and {len(starts) - limit} more periods")
    return out


def describe_times(times, step_hours: int = 12) -> str:
    """:func:`time_periods` as one line."""
    return "; ".join(time_periods(times, step_hours)) or "none"


def previous_month(month: str) -> str:
    from pipeline.common.times import parse_month

    return str(np.datetime64(parse_month(month), "M") - 1)


def split_of_times(times, config: dict) -> np.ndarray:
    """Name of the split ('train'|'val'|'test'|'') of each frame time (by date range)."""
    import pandas as pd
    times = pd.DatetimeIndex(times)
    out = np.full(len(times), "", dtype=object)
    for name, rng in config["splits"].items():
        lo = pd.Timestamp(rng["start"])
        hi = pd.Timestamp(rng["end"]) + pd.Timedelta(days=1)
        out[(times >= lo) & (times < hi)] = name
    return out
