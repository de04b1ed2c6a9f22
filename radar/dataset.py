"""Sequences of radar CAPPIs for the nowcast model (contract 3 in, tensors out).

A sample is ``input_steps`` consecutive frames (default 10 = 1 h) of the experiment's
channels (variable x height) and the next ``output_steps`` frames (default 10) of DBZH at
``radar.frames.target_height_m`` (default: the lowest CAPPI). Frames must be consecutive
6-minute steps (a gap in the store's time axis breaks a window).

Chronological splits (``radar.splits``): fractions of the period, train first, then
validation, then test, with a gap of ``input_steps + output_steps`` frames between them; a
sample belongs to a split only when all its frames do, so no frame is shared between
splits and the nearest windows of two splits are a whole window apart.

Normalisation (:func:`fit_normalisation`): per variable, mean and standard deviation of
the finite values of the training period only. Inputs are ``(v - mean) / std``; a NaN
(outside coverage or removed by QC) becomes the normalised floor value (``dbz_floor`` for
DBZH, 0 for ZDR and KDP). The target is ``(DBZH - dbz_floor) / target_scale_dbz`` clipped
at 0 (non-negative: the regression head's softplus), NaN targets and cells outside
``coverage`` are 0 in the loss mask.

Experiments (``radar.experiments``): named input sets ``{variables: [...], heights_m:
[...] | null (all), reference: NAME | null}``; the defaults are ``reflectivity`` (DBZH at
every height) and ``dualpol`` (DBZH, ZDR, KDP at every height, reference reflectivity).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.common.errors import ConfigError, NonFiniteDataError

VARIABLES = ("DBZH", "ZDR", "KDP")
STEP = np.timedelta64(6, "m")

FRAMES_DEFAULTS = {"input_steps": 10, "output_steps": 10, "target_height_m": None, "stride": 1,
                   "dbz_floor": 0.0, "target_scale_dbz": 10.0}
SPLITS_DEFAULTS = {"train_fraction": 0.6, "validation_fraction": 0.2}
EXPERIMENTS_DEFAULTS = {
    "reflectivity": {"variables": ["DBZH"], "heights_m": None, "reference": None},
    "dualpol": {"variables": ["DBZH", "ZDR", "KDP"], "heights_m": None, "reference": "reflectivity"},
}


def frames_settings(config: dict) -> dict:
    out = dict(FRAMES_DEFAULTS)
    out.update(((config.get("radar") or {}).get("frames")) or {})
    for key in ("input_steps", "output_steps", "stride"):
        if int(out[key]) < 1:
            raise ConfigError(f"config key 'radar.frames.{key}': need an integer >= 1, got {out[key]!r}")
    if float(out["target_scale_dbz"]) <= 0:
        raise ConfigError(f"config key 'radar.frames.target_scale_dbz': need > 0, got {out['target_scale_dbz']!r}")
    return out


def splits_settings(config: dict) -> dict:
    out = dict(SPLITS_DEFAULTS)
    out.update(((config.get("radar") or {}).get("splits")) or {})
    tr, va = float(out["train_fraction"]), float(out["validation_fraction"])
    if not (0 < tr < 1 and 0 < va < 1 and tr + va < 1):
        raise ConfigError("config key 'radar.splits': need train_fraction, validation_fraction in (0, 1) with "
                          f"sum < 1 (the rest is test), got {tr!r}, {va!r}")
    return out


def experiments(config: dict) -> dict:
    """The named input sets: the defaults, overridden or extended by ``radar.experiments``."""
    exps = {k: dict(v) for k, v in EXPERIMENTS_DEFAULTS.items()}
    for name, spec in (((config.get("radar") or {}).get("experiments")) or {}).items():
        e = dict(exps.get(name, {"variables": ["DBZH"], "heights_m": None, "reference": None}))
        e.update(spec or {})
        exps[name] = e
    for name, e in exps.items():
        bad = [v for v in e["variables"] if v not in VARIABLES]
        if not e["variables"] or bad:
            raise ConfigError(f"config key 'radar.experiments.{name}.variables': need a non-empty subset of "
                              f"{list(VARIABLES)}, got {e['variables']!r}")
        if e.get("reference") is not None and e["reference"] not in exps:
            raise ConfigError(f"config key 'radar.experiments.{name}.reference': unknown experiment "
                              f"{e['reference']!r}; known: {sorted(exps)}")
    return exps


def split_ranges(n_times: int, window: int, splits: dict) -> dict:
    """Index ranges ``[start, stop)`` of the frames of each split, ``window`` frames apart."""
    a = int(round(float(splits["train_fraction"]) * n_times))
    b = int(round((float(splits["train_fraction"]) + float(splits["validation_fraction"])) * n_times))
    return {"train": (0, a), "validation": (a + window, b), "test": (b + window, n_times)}


def sample_starts(times: np.ndarray, window: int, rng: tuple[int, int], stride: int = 1) -> np.ndarray:
    """First frame index of every window of ``window`` consecutive 6-min frames inside ``rng``."""
    t = np.asarray(times).astype("datetime64[s]")
    lo, hi = rng
    starts = []
    for i in range(lo, hi - window + 1, stride):
        if t[i + window - 1] - t[i] == (window - 1) * STEP.astype("timedelta64[s]"):
            starts.append(i)
    return np.asarray(starts, dtype=np.int64)


@dataclass
class Arrays:
    """One experiment's frames in memory: inputs normalised, target on the target scale."""
    x: np.ndarray  # (time, channel, y, x) float32, normalised, no NaN
    y: np.ndarray  # (time, y, x) float32, target scale, NaN kept
    valid: np.ndarray  # (time, y, x) bool: coverage & finite target
    times: np.ndarray
    channels: list  # "VAR@HEIGHT"
    norm: dict  # {var: {"mean", "std", "floor"}}
    frames: dict
    coverage: np.ndarray  # (y, x) bool
    target_height_m: float = 0.0  # height of the target CAPPI


def _channels(ds, exp: dict) -> list[tuple[str, float]]:
    heights = [float(h) for h in ds["height"].values]
    want = heights if exp.get("heights_m") in (None, []) else [float(h) for h in exp["heights_m"]]
    missing = [h for h in want if h not in heights]
    if missing:
        raise ConfigError(f"config key 'radar.experiments...heights_m': heights {missing} not in the store "
                          f"(has {heights})")
    return [(v, h) for v in exp["variables"] for h in want]


def fit_normalisation(ds, variables, train_range: tuple[int, int], dbz_floor: float) -> dict:
    """Mean/std per variable over the finite values of the training frames only."""
    out = {}
    for v in variables:
        vals = np.asarray(ds[v].isel(time=slice(*train_range)).values, dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            raise NonFiniteDataError(f"variable {v}: no finite value in the training period")
        std = float(vals.std())
        out[v] = {"mean": float(vals.mean()), "std": std if std > 0 else 1.0,
                  "floor": float(dbz_floor) if v == "DBZH" else 0.0}
    return out


def load(ds, config: dict, experiment: str, norm: dict | None = None) -> Arrays:
    """Read one experiment's channels and the target from an opened CAPPI store."""
    fr = frames_settings(config)
    exps = experiments(config)
    if experiment not in exps:
        raise ConfigError(f"unknown radar experiment {experiment!r}; known: {sorted(exps)}")
    exp = exps[experiment]
    missing = [v for v in ("DBZH", *exp["variables"]) if v not in ds]
    if missing:
        raise ConfigError(f"CAPPI store: variables {missing} missing (has {sorted(ds.data_vars)})")
    window = int(fr["input_steps"]) + int(fr["output_steps"])
    ranges = split_ranges(ds.sizes["time"], window, splits_settings(config))
    if norm is None:
        norm = fit_normalisation(ds, sorted(set(exp["variables"])), ranges["train"], fr["dbz_floor"])
    chans = _channels(ds, exp)
    x = np.empty((ds.sizes["time"], len(chans), ds.sizes["y"], ds.sizes["x"]), dtype=np.float32)
    for k, (v, h) in enumerate(chans):
        a = np.asarray(ds[v].sel(height=h).values, dtype=np.float32)
        n = norm[v]
        a = np.where(np.isfinite(a), a, n["floor"])
        x[:, k] = (a - n["mean"]) / n["std"]
    th = fr["target_height_m"]
    th = float(ds["height"].values.min()) if th is None else float(th)
    if th not in [float(h) for h in ds["height"].values]:
        raise ConfigError(f"config key 'radar.frames.target_height_m': {th} not a CAPPI height of the store")
    dbz = np.asarray(ds["DBZH"].sel(height=th).values, dtype=np.float32)
    cov = np.asarray(ds["coverage"].values, dtype=bool) if "coverage" in ds else np.ones(dbz.shape[1:], bool)
    valid = np.isfinite(dbz) & cov[None]
    y = np.maximum((dbz - float(fr["dbz_floor"])) / float(fr["target_scale_dbz"]), 0.0).astype(np.float32)
    return Arrays(x=x, y=y, valid=valid, times=np.asarray(ds["time"].values), norm=norm,
                  channels=[f"{v}@{h:g}" for v, h in chans], frames=fr, coverage=cov, target_height_m=th)


def persistence_base(arrays: Arrays) -> tuple[int, tuple[float, float]]:
    """The input channel holding the target (DBZH at the target height) and the affine map
    ``(a, b)`` that takes its normalised values to the target scale (``a * x + b``): the
    persistence base of ``radar.model.base: persistence``."""
    name = f"DBZH@{arrays.target_height_m:g}"
    if name not in arrays.channels:
        raise ConfigError(f"radar.model.base: persistence needs {name} among the experiment's inputs; "
                          f"they are {arrays.channels}")
    n, fr = arrays.norm["DBZH"], arrays.frames
    scale = float(fr["target_scale_dbz"])
    return arrays.channels.index(name), (float(n["std"]) / scale, (float(n["mean"]) - float(fr["dbz_floor"])) / scale)


def to_dbz(target, frames: dict):
    """Target scale back to dBZ."""
    return target * float(frames["target_scale_dbz"]) + float(frames["dbz_floor"])


class SequenceDataset:
    """``(x (T_in, C, H, W), y (T_out, H, W), mask (T_out, H, W))`` float32 tensors."""

    def __init__(self, arrays: Arrays, split: str, config: dict):
        import torch  # noqa: F401  (the training side only)

        fr = arrays.frames
        self.a = arrays
        self.t_in, self.t_out = int(fr["input_steps"]), int(fr["output_steps"])
        window = self.t_in + self.t_out
        rng = split_ranges(len(arrays.times), window, splits_settings(config))[split]
        self.starts = sample_starts(arrays.times, window, rng, int(fr["stride"]))

    def __len__(self) -> int:
        return len(self.starts)

    def target_times(self, i: int) -> np.ndarray:
        s = self.starts[i] + self.t_in
        return self.a.times[s : s + self.t_out]

    def __getitem__(self, i: int):
        import torch

        s = int(self.starts[i])
        e = s + self.t_in
        x = torch.from_numpy(self.a.x[s:e])
        yv = self.a.y[e : e + self.t_out]
        m = self.a.valid[e : e + self.t_out]
        y = torch.from_numpy(np.where(m, yv, 0.0).astype(np.float32))
        return x, y, torch.from_numpy(m.astype(np.float32))
