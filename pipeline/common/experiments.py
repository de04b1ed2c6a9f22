"""Experiments: named input sets of the config's ``experiments`` section, and the input groups
they (and the attribution) are made of.

An experiment is trained on one processed grid (``region1``, or ``concat``: region 2 joined
upstream of region 1) and sees a subset of that store's input channels and frames:

- ``variables``: variable groups (:data:`VARIABLE_GROUPS`; null = every channel);
- ``levels``: level bands of the upper-air channels (:data:`LEVEL_BANDS`; null = every level;
  rain has no level and is kept whenever its group is);
- ``region2_variables`` / ``region2_levels`` (joined grid only): which of the experiment's
  channels region 2 contributes (null = all of them); the others are held at the training
  mean (0 after normalisation) on region 2's cells, so region 1 keeps every channel;
- ``lags_hours``: the input frames used, in hours before the target (null = all);
- ``reference``: the experiment it is compared with (null: none).

:func:`experiments_config` is the typed view: the schema's default entries (exp1, exp2)
updated by the config's, every field's default read from the schema, and the cross-entry
rules the schema cannot express (known groups and bands, known reference, no reference cycle,
lags within the input window) checked with a one-line :class:`ConfigError` naming the key.
The store-dependent part (which tensor channels and frames) is
:func:`training.data.input_selection`.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from pipeline.common.config import load_schema
from pipeline.common.errors import ConfigError

#: Variable groups: name -> the ``variable`` coordinate values of its channels.
VARIABLE_GROUPS = {"rain": ("rain",), "temperature": ("temperature",), "dewpoint": ("dewpoint",),
                   "wind": ("u", "v"), "geopotential_height": ("geopotential_height",)}
#: Level bands (hPa, inclusive): name -> (lowest pressure, highest pressure).
LEVEL_BANDS = {"lower": (700.0, 1000.0), "middle": (300.0, 500.0), "upper": (100.0, 250.0)}
#: Names under results/ that are not experiments.
RESERVED = ("runs", "baselines", "tune", "attribution")
GRIDS = ("region1", "concat")


def band_label(name: str) -> str:
    """``lower (1000-700 hPa)``: a level band with its pressures, as reports print it."""
    lo, hi = LEVEL_BANDS[name]
    return f"{name} ({hi:g}-{lo:g} hPa)"


def group_mask(variables: np.ndarray, groups) -> np.ndarray:
    """(C,) bool: channels whose variable belongs to one of the variable ``groups``."""
    return np.isin(variables, [v for g in groups for v in VARIABLE_GROUPS[g]])


def band_mask(pressure: np.ndarray, bands) -> np.ndarray:
    """(C,) bool: upper-air channels at a level in one of the level ``bands`` (rain, whose
    pressure is NaN, is in none)."""
    out = np.zeros(np.shape(pressure), bool)
    with np.errstate(invalid="ignore"):
        for b in bands:
            lo, hi = LEVEL_BANDS[b]
            out |= (pressure >= lo) & (pressure <= hi)
    return out


@dataclass(frozen=True)
class Experiment:
    name: str
    grid: str  # region1 | concat
    variables: tuple[str, ...] | None  # variable groups; None = every channel
    levels: tuple[str, ...] | None  # level bands; None = every level
    region2_variables: tuple[str, ...] | None  # groups region 2 contributes; None = all of the above
    region2_levels: tuple[str, ...] | None
    lags_hours: tuple[int, ...] | None  # input frames used, hours before the target; None = all
    reference: str | None  # experiment compared with

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def _schema() -> dict:
    return load_schema()["properties"]["experiments"]


def _entry(name: str, raw: dict, fields: dict) -> Experiment:
    key = f"experiments.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"config key '{key}': need a mapping of settings, got {raw!r}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"config key '{key}.{unknown[0]}': unknown key (known: {sorted(fields)})")
    values = {f: copy.deepcopy(raw.get(f, spec.get("default"))) for f, spec in fields.items()}
    if values["grid"] not in GRIDS:
        raise ConfigError(f"config key '{key}.grid': {values['grid']!r} is not one of {list(GRIDS)}")
    for f, known in (("variables", VARIABLE_GROUPS), ("levels", LEVEL_BANDS),
                     ("region2_variables", VARIABLE_GROUPS), ("region2_levels", LEVEL_BANDS)):
        for g in values[f] or ():
            if g not in known:
                raise ConfigError(f"config key '{key}.{f}': unknown group {g!r} (known: {list(known)})")
        if values[f] is not None and values["grid"] != "concat" and f.startswith("region2"):
            raise ConfigError(f"config key '{key}.{f}': only a concat (joined) grid has region 2, "
                              f"grid is {values['grid']!r}")
    return Experiment(name=name, **{f: tuple(v) if isinstance(v, list) else v for f, v in values.items()})


def _check_references(exps: dict[str, Experiment]) -> None:
    for name, e in exps.items():
        if e.reference is not None and e.reference not in exps:
            raise ConfigError(f"config key 'experiments.{name}.reference': {e.reference!r} is not a declared "
                              f"experiment (declared: {sorted(exps)})")
        chain, cur = [name], e.reference
        while cur is not None:
            if cur in chain:
                raise ConfigError(f"config key 'experiments.{name}.reference': reference cycle "
                                  f"{' -> '.join(chain + [cur])}")
            chain.append(cur)
            cur = exps[cur].reference


def experiments_config(config: dict) -> dict[str, Experiment]:
    """The declared experiments by name (schema defaults updated by ``config['experiments']``)."""
    schema = _schema()
    declared = {**copy.deepcopy(schema["default"]), **(config.get("experiments") or {})}
    fields = schema["additionalProperties"]["properties"]
    exps = {}
    for name, raw in declared.items():
        if not re.fullmatch(schema["propertyNames"]["pattern"], str(name)) or name in RESERVED:
            raise ConfigError(f"config key 'experiments.{name}': not a usable experiment name (letters, digits, "
                              f"_ or -, starting with a letter; not one of {list(RESERVED)})")
        exps[name] = _entry(name, raw, fields)
    exps.update(relearn_experiments(config, exps))
    _check_references(exps)
    return exps


#: Name prefix of the experiments that the relearned attribution declares.
RELEARN_PREFIX = "exp2_without_"


def relearn_experiments(config: dict, exps: dict[str, Experiment]) -> dict[str, Experiment]:
    """The experiments of ``attribution.relearn``: for each listed variable group g,
    ``exp2_without_g`` is exp2 retrained with region 2 contributing every group of exp2's
    but g (g held at the training mean on region-2 cells), compared with exp2.

    Retraining without a group measures the information the group adds beyond the other
    inputs; permuting it in a trained model measures how much that model relies on it,
    which is also positive for inputs that merely repeat information found elsewhere
    (README "Attribution")."""
    groups = list((config.get("attribution") or {}).get("relearn") or [])
    if not groups:
        return {}
    key = "attribution.relearn"
    base = exps["exp2"]
    if base.grid != "concat":
        raise ConfigError(f"config key '{key}': exp2 must be on the joined grid (concat) to drop region-2 inputs, "
                          f"its grid is {base.grid!r}")
    available = base.region2_variables or base.variables or tuple(VARIABLE_GROUPS)
    out = {}
    for g in groups:
        if groups.count(g) > 1:
            raise ConfigError(f"config key '{key}': {g!r} is listed {groups.count(g)} times")
        if g not in VARIABLE_GROUPS:
            raise ConfigError(f"config key '{key}': unknown group {g!r} (known: {list(VARIABLE_GROUPS)})")
        if g not in available:
            raise ConfigError(f"config key '{key}': exp2's region 2 has no {g!r} inputs (it contributes "
                              f"{list(available)})")
        name = RELEARN_PREFIX + g
        if name in exps:
            raise ConfigError(f"config key 'experiments.{name}': the name is taken by attribution.relearn; "
                              f"rename the experiment")
        rest = tuple(v for v in available if v != g)
        if not rest:
            raise ConfigError(f"config key '{key}': without {g!r} region 2 contributes nothing: that is exp1")
        out[name] = dataclasses.replace(base, name=name, region2_variables=rest, reference="exp2")
    return out


def experiment(config: dict, name: str) -> Experiment:
    """The declared experiment ``name``, or a :class:`ConfigError` naming the declared ones."""
    exps = experiments_config(config)
    if name not in exps:
        raise ConfigError(f"config key 'experiments.{name}': no such experiment (declared: {sorted(exps)})")
    return exps[name]


def frame_lags(input_steps: int, step_hours: int, lead_steps: int) -> list[int]:
    """Hours before the target of each input frame, oldest first."""
    return [(input_steps - 1 - j + lead_steps) * step_hours for j in range(input_steps)]


def frame_indices(exp: Experiment, input_steps: int, step_hours: int, lead_steps: int) -> list[int]:
    """Indices (oldest first) of the input frames ``exp`` uses."""
    lags = frame_lags(input_steps, step_hours, lead_steps)
    if exp.lags_hours is None:
        return list(range(input_steps))
    for h in exp.lags_hours:
        if h not in lags:
            raise ConfigError(f"config key 'experiments.{exp.name}.lags_hours': {h} h is not an input frame "
                              f"(the input frames are {sorted(lags)} h before the target)")
    return [j for j, h in enumerate(lags) if h in exp.lags_hours]


def describe(exp: Experiment) -> str:
    """One line naming the experiment's inputs and reference (report categories and captions)."""
    parts = ["region 1 only" if exp.grid == "region1" else "region 2 + region 1"]
    for label, groups in (("variables", exp.variables), ("levels", exp.levels),
                          ("region 2 gives", exp.region2_variables), ("region-2 levels", exp.region2_levels)):
        if groups is not None:
            parts.append(f"{label} {', '.join(groups)}")
    if exp.lags_hours is not None:
        parts.append(f"lags {', '.join(str(h) for h in exp.lags_hours)} h")
    text = f"{exp.name}: {'; '.join(parts)}"
    return text if exp.reference is None else f"{text}, compared with {exp.reference}"
