"""Load and validate the workflow configuration; shared helpers for months and frames.

The schema (``schemas/config.schema.yaml``) is the single source of truth for keys,
types and defaults. Snakemake validates with it at parse time; every command-line
entry point validates with :func:`load_config`, so a step run by hand sees the same
defaults as one run by the workflow.
"""
from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import yaml

from pipeline.common.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def _validator_with_defaults(cls):
    """A jsonschema validator class that fills in each property's ``default``."""
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
        return yaml.safe_load(f)


@functools.lru_cache(maxsize=1)
def _validator():
    """The schema's validator (filling defaults), built once per process."""
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


def schema_error_message(e: jsonschema.ValidationError) -> str:
    """``config key 'a.b': <what>``, naming the key and showing the offending value.

    An unknown key is named itself (``model.foo``), a missing required key too
    (``splits.val``); ``oneOf`` lists why each alternative failed.
    """
    path = list(e.absolute_path)
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        allowed = list(e.schema.get("properties", {}))
        name = next(k for k in e.instance if k not in allowed)
        return (f"config key '{key_path(path + [str(name)])}': unknown key (value {e.instance[name]!r}); "
                f"the keys of {key_path(path) if path else 'the top level'} are {allowed}")
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
    schema = dict(load_schema())
    schema.pop("required", None)
    config: dict = {}
    for _ in _validator_with_defaults(jsonschema.Draft202012Validator)(schema).iter_errors(config):
        pass  # the iteration fills the defaults in
    return config


def qc_settings(qc: dict | None = None) -> dict:
    """The ``qc`` section: the schema's defaults updated with ``qc`` (for callers that hold a
    partial section, or none; a loaded config already has every key)."""
    return {**schema_defaults().get("qc", {}), **(qc or {})}


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, apply nested ``overrides``, validate, fill defaults.

    A file that cannot be read, is not YAML or is not a mapping is a :class:`ConfigError` too.
    """
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
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


def check_consistency(config: dict) -> None:
    """Rules a JSON schema cannot express: ordering of levels, periods and split gaps."""
    levels = config["levels_hpa"]
    if any(b >= a for a, b in zip(levels, levels[1:])):
        raise ConfigError(f"config key 'levels_hpa': must be strictly decreasing, got {levels}")
    for name in ("region1", "region2"):
        box = config["regions"][name]
        if box["lat_min"] >= box["lat_max"] or box["lon_min"] >= box["lon_max"]:
            raise ConfigError(f"config key 'regions.{name}': empty box {box}")
    _check_region2_side(config)
    p = config["period"]
    if pd.Period(p["start"], "M") > pd.Period(p["end"], "M"):
        raise ConfigError(f"config key 'period': start {p['start']} after end {p['end']}")
    window = pd.Timedelta(hours=config["frames"]["input_steps"] * config["frames"]["step_hours"])
    s = config["splits"]
    order = ["train", "val", "test"]
    for name in order:
        if pd.Timestamp(s[name]["start"]) > pd.Timestamp(s[name]["end"]):
            raise ConfigError(f"config key 'splits.{name}': start {s[name]['start']} after end {s[name]['end']}")
    for a, b in zip(order, order[1:]):
        end_a = pd.Timestamp(s[a]["end"]) + pd.Timedelta(days=1)  # end date is inclusive
        gap = pd.Timestamp(s[b]["start"]) - end_a
        if gap < window:
            raise ConfigError(
                f"config key 'splits.{b}.start': {s[b]['start']} leaves a gap of {gap} after "
                f"splits.{a}.end {s[a]['end']}; at least one input window ({window}) is required"
            )


def _check_region2_side(config: dict) -> None:
    """The optional key ``regions.region2_side`` must agree with the side the boxes share
    (:func:`pipeline.gridding.geometry.region2_side`, the one place the side is decided).

    Boxes that share no edge, or more than one, are reported where the joined grid is
    made (a GridError), as before.
    """
    from pipeline.common.errors import GridError
    from pipeline.gridding.geometry import region2_side  # deferred: a stage module

    try:
        region2_side(config)
    except GridError:
        pass


def config_hash(config: dict, keys: tuple[str, ...] | None = None) -> str:
    """Stable short hash of the config (or of a subset of its top-level keys)."""
    sub = config if keys is None else {k: config.get(k) for k in keys}
    blob = json.dumps(sub, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def period_months(config: dict) -> list[str]:
    """Months of the study period as 'YYYY-MM' strings."""
    p = config["period"]
    return [str(m) for m in pd.period_range(p["start"], p["end"], freq="M")]


def month_frame_times(month: str, step_hours: int = 12) -> pd.DatetimeIndex:
    """Frame times (UTC, tz-naive) inside a month: 00 and 12 UTC of every day."""
    per = pd.Period(month, "M")
    start = per.start_time
    end = (per + 1).start_time - pd.Timedelta(hours=step_hours)
    return pd.date_range(start, end, freq=f"{step_hours}h")


def in_month(times, month) -> np.ndarray:
    """Which ``times`` fall in ``month`` (a ``YYYY-MM`` string or a monthly Period):
    ``[month start, next month start)``, as a bool array."""
    per = pd.Period(month, "M")
    t = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    return np.asarray((t >= per.start_time) & (t < (per + 1).start_time))


def previous_month(month: str) -> str:
    return str(pd.Period(month, "M") - 1)


def split_of_times(times, config: dict) -> np.ndarray:
    """Name of the split ('train'|'val'|'test'|'') of each frame time (by date range)."""
    times = pd.DatetimeIndex(times)
    out = np.full(len(times), "", dtype=object)
    for name, rng in config["splits"].items():
        lo = pd.Timestamp(rng["start"])
        hi = pd.Timestamp(rng["end"]) + pd.Timedelta(days=1)
        out[(times >= lo) & (times < hi)] = name
    return out
