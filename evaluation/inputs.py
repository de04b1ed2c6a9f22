"""Opening what is evaluated: the truth store, the runs' prediction stores, a reference
experiment's evaluate output, and the common test times.

Every check names the file and the offending value (:class:`EvaluationError`, printed as one
line ``error: ...`` by the command line).
"""
from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.common import cli
from pipeline.common.integrity import CorruptDataError, verify_store

log = logging.getLogger("evaluation")


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated together (message names the file and the value)."""


cli.register_error(EvaluationError)


@dataclass
class Member:
    """One set of predictions: an experiment at one seed."""
    exp: str
    seed: int
    source: str                          # where the predictions came from (for messages)
    pred: xr.DataArray                   # (time, lat, lon) mm
    train_log: pd.DataFrame | None = None
    probs: xr.Dataset | None = None      # prob_exceed, bin_prob (probabilistic stores only)
    quantile: float | None = None        # the quantile that is rain_mm_pred (bins-head models)
    # samples whose inputs include a frame without rain / upper-air analysis in a region
    # ({"without_rain": n, "without_soundings": n}); None when the store does not say
    input_gaps: dict | None = None

    @property
    def name(self) -> str:
        return f"{self.exp}/seed{self.seed}"

    @property
    def bins(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin bounds (lower, upper) in mm of a probabilistic member."""
        return self.probs["bin_lower"].values.astype(np.float64), self.probs["bin_upper"].values.astype(np.float64)


@dataclass
class Group:
    """A model as reported: an experiment (several seeds) or a baseline (one member)."""
    name: str
    kind: str                            # experiment | baseline
    members: list[Member] = field(default_factory=list)


def open_zarr(path) -> xr.Dataset:
    """Open a zarr store, consolidated metadata or not, without the fallback warning, after
    checking its files against its checksums (a store sealed by this project)."""
    verify_store(path, required=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consolidated metadata.*", category=RuntimeWarning)
        return xr.open_zarr(path, chunks=None)  # NumPy-backed, lazily loaded: small reads need no dask graph


def open_store(path, label: str) -> xr.Dataset:
    """:func:`open_zarr` with errors that name the store as the user gave it (``label``); a
    damaged store keeps its own error (:class:`CorruptDataError`, which says how to rebuild)."""
    if not Path(path).exists():
        raise EvaluationError(f"{label}: no such store")
    try:
        return open_zarr(path)
    except CorruptDataError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise EvaluationError(f"{label}: cannot open the store: {err}") from err


def open_truth(path: str | Path) -> xr.Dataset:
    """The processed region-1 store: ``rain_mm`` (time, lat, lon) mm, ``valid``, ``loss_mask``."""
    ds = open_store(path, f"{path} (data store)")
    for var in ("rain_mm", "valid", "loss_mask"):
        if var not in ds:
            raise EvaluationError(f"{path}: variable '{var}' missing (have {sorted(ds.data_vars)})")
    if ds["rain_mm"].dims != ("time", "lat", "lon"):
        raise EvaluationError(f"{path}: rain_mm dims {ds['rain_mm'].dims}, expected ('time', 'lat', 'lon')")
    return ds


def check_grid(pred: xr.DataArray, truth: xr.Dataset, source: str) -> xr.DataArray:
    """``pred`` on the truth's lat/lon (within 1e-6 degrees), with the truth's coordinates."""
    for dim in ("lat", "lon"):
        a, b = pred[dim].values, truth[dim].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            raise EvaluationError(
                f"{source}: {dim} coordinates ({len(a)} values, {a[:1]}..{a[-1:]}) differ from the data "
                f"store's region-1 grid ({len(b)} values, {b[:1]}..{b[-1:]})"
            )
    return pred.assign_coords(lat=truth["lat"].values, lon=truth["lon"].values)


def read_train_log(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        log.warning("%s: no training log; its loss curve is left out", path)
        return None
    df = pd.read_csv(path)
    missing = {"epoch", "train_loss", "val_loss"} - set(df.columns)
    if missing:
        raise EvaluationError(f"{path}: columns {sorted(missing)} missing (have {list(df.columns)})")
    return df


def _prediction_var(ds: xr.Dataset, store) -> xr.DataArray:
    if "rain_mm_pred" not in ds:
        raise EvaluationError(f"{store}: variable 'rain_mm_pred' missing (have {sorted(ds.data_vars)})")
    pred = ds["rain_mm_pred"]
    if pred.dims != ("time", "lat", "lon"):
        raise EvaluationError(f"{store}: rain_mm_pred dims {pred.dims}, expected ('time', 'lat', 'lon')")
    return pred


PROB_VARS = {"prob_exceed": "threshold", "bin_prob": "bin"}


def _check_bins(ds: xr.Dataset, store) -> None:
    for c in ("bin_lower", "bin_upper"):
        if c not in ds.variables or ds[c].dims != ("bin",):
            raise EvaluationError(f"{store}: coordinate '{c}' along 'bin' missing (the bins' bounds in mm)")
    lo, hi = ds["bin_lower"].values.astype(np.float64), ds["bin_upper"].values.astype(np.float64)
    if not np.all(np.isfinite(hi)) or abs(lo[0]) > 1e-6 or np.any(hi <= lo) or not np.allclose(hi[:-1], lo[1:]):
        raise EvaluationError(f"{store}: bins must be contiguous from 0 mm with finite upper bounds; "
                              f"bin_lower {lo.tolist()}, bin_upper {hi.tolist()}")


def probabilities(ds: xr.Dataset, store, thresholds, lead: tuple[str, ...] = ()) -> xr.Dataset | None:
    """``prob_exceed`` and ``bin_prob`` of a probabilistic store, checked against the contract
    (None for a deterministic store). ``lead``: leading dimensions (``("seed",)``)."""
    present = [v for v in PROB_VARS if v in ds]
    if not present:
        return None
    if len(present) == 1:
        missing = next(v for v in PROB_VARS if v not in ds)
        raise EvaluationError(f"{store}: has '{present[0]}' but not '{missing}' (a probabilistic store has both)")
    for var, dim in PROB_VARS.items():
        want = lead + ("time", dim, "lat", "lon")
        if ds[var].dims != want:
            raise EvaluationError(f"{store}: {var} dims {ds[var].dims}, expected {want}")
    thr = ds["threshold"].values.astype(np.float64) if "threshold" in ds.variables else np.array([])
    if thr.shape != (len(thresholds),) or not np.allclose(thr, thresholds):
        raise EvaluationError(f"{store}: threshold coordinate {thr.tolist()} mm differs from config key "
                              f"'evaluation.thresholds_mm' {list(thresholds)}")
    _check_bins(ds, store)
    return ds[list(PROB_VARS)]


def open_run(run_dir: str | Path, exp: str, truth: xr.Dataset, thresholds=()) -> Member:
    """Open ``RUN/predictions.zarr`` (``rain_mm_pred`` (time, lat, lon) mm, and for a
    probabilistic model ``prob_exceed`` and ``bin_prob``) and ``RUN/train_log.csv``."""
    run_dir = Path(run_dir)
    store = run_dir / "predictions.zarr"
    if not store.exists():
        raise EvaluationError(f"{store}: predictions missing (run training.predict first)")
    ds = open_zarr(store)
    pred = _prediction_var(ds, store)
    run_exp = ds.attrs.get("exp", exp)
    if run_exp != exp:
        raise EvaluationError(f"{store}: attribute exp={run_exp!r} but --exp {exp!r}")
    seed = ds.attrs.get("seed")
    if seed is None:
        name = run_dir.name
        if not name.startswith("seed") or not name[4:].isdigit():
            raise EvaluationError(f"{store}: no 'seed' attribute and run folder {name!r} is not 'seed<N>'")
        seed = int(name[4:])
    pred = check_grid(pred, truth, str(store))
    probs = probabilities(ds, store, thresholds)
    if probs is not None:
        probs = probs.assign_coords(lat=pred["lat"].values, lon=pred["lon"].values)
    q = ds.attrs.get("quantile")
    quantile = float(q) if isinstance(q, (int, float)) and not isinstance(q, bool) else None
    gaps = None
    if "samples_inputs_without_rain" in ds.attrs:
        gaps = {k: int(ds.attrs[f"samples_inputs_{k}"]) for k in ("without_rain", "without_soundings")}
    return Member(exp, int(seed), str(store), pred, read_train_log(run_dir / "train_log.csv"), probs, quantile,
                  gaps)


def open_reference(ref_dir: str | Path, truth: xr.Dataset, thresholds=()) -> tuple[str, list[Member], dict]:
    """Members of a previously evaluated experiment (its ``predictions.zarr`` and ``metrics.json``)."""
    ref_dir = Path(ref_dir)
    mpath, store = ref_dir / "metrics.json", ref_dir / "predictions.zarr"
    for p in (mpath, store):
        if not p.exists():
            raise EvaluationError(f"{p}: missing; --reference must be an evaluate output folder")
    metrics = json.loads(mpath.read_text())
    exp = metrics["exp"]
    data_hash = truth.attrs.get("config_hash")
    ref_hash = metrics.get("provenance", {}).get("data_config_hash")
    if data_hash and ref_hash and data_hash != ref_hash:
        raise EvaluationError(
            f"{mpath}: reference was scored on data with config_hash {ref_hash}, but --data has {data_hash}"
        )
    ds = open_zarr(store)
    probs = probabilities(ds, store, thresholds, lead=("seed",))
    members = []
    for seed in ds["seed"].values:
        pred = check_grid(ds["rain_mm_pred"].sel(seed=seed).drop_vars("seed"), truth, str(store))
        tlog = ref_dir / "train_logs" / f"{exp}_seed{int(seed)}.csv"
        p = None
        if probs is not None:
            p = probs.sel(seed=seed).drop_vars("seed").assign_coords(lat=pred["lat"].values, lon=pred["lon"].values)
        q = metrics.get("models", {}).get(f"{exp}/seed{int(seed)}", {}).get("quantile")
        gaps = metrics.get("data_quality", {}).get("inputs", {}).get(f"{exp}/seed{int(seed)}")
        members.append(Member(exp, int(seed), str(store), pred, read_train_log(tlog), p, q, gaps))
    return exp, members, metrics


def open_baseline(name: str, path: str | Path, truth: xr.Dataset, times: pd.DatetimeIndex) -> Member:
    """A precomputed baseline (e.g. ``results/baselines/advection/predictions.zarr``):
    ``rain_mm_pred`` (time, lat, lon) mm on the truth's grid, covering every scored time."""
    store = Path(path)
    if store.is_dir() and not (store / "zarr.json").exists() and (store / "predictions.zarr").exists():
        store = store / "predictions.zarr"
    ds = open_store(store, f"--baselines {name}={path}")
    pred = check_grid(_prediction_var(ds, store), truth, str(store))
    missing = times.difference(pd.DatetimeIndex(pred["time"].values))
    if len(missing):
        raise EvaluationError(f"{store}: baseline {name!r} lacks {len(missing)} of the {len(times)} scored target "
                              f"times (first {missing[0]}); build it for the same split")
    return Member(name, 0, str(store), pred)


def parse_baselines(items: list[str] | None, reserved) -> dict[str, str]:
    """``["advection=PATH", ...]`` as ``{name: path}``; names must be new and unique."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise EvaluationError(f"--baselines: {item!r} is not NAME=PATH")
        if name in out or name in reserved:
            raise EvaluationError(f"--baselines: name {name!r} is already used (taken: {sorted(set(reserved) | set(out))})")
        out[name] = path
    return out


def check_experiment(members: list[Member]) -> None:
    """The seeds of an experiment are all probabilistic on the same bins, or all deterministic."""
    kinds = {m.name: m.probs is not None for m in members}
    if len(set(kinds.values())) > 1:
        prob = [k for k, v in kinds.items() if v]
        det = [k for k, v in kinds.items() if not v]
        raise EvaluationError(f"{members[0].exp}: runs {prob} carry probabilities but {det} do not "
                              f"({', '.join(m.source for m in members)})")
    if kinds and all(kinds.values()):
        lo0, hi0 = members[0].bins
        for m in members[1:]:
            lo, hi = m.bins
            if lo.shape != lo0.shape or not (np.allclose(lo, lo0) and np.allclose(hi, hi0)):
                raise EvaluationError(f"{m.source}: bins {lo.tolist()}..{hi[-1]:g} differ from those of "
                                      f"{members[0].source} ({lo0.tolist()}..{hi0[-1]:g})")


def common_times(members: list[Member], truth: xr.Dataset) -> tuple[pd.DatetimeIndex, dict]:
    """Target times present in every member and in the truth store, with what was dropped."""
    sets = {m.name: pd.DatetimeIndex(m.pred["time"].values) for m in members}
    common = pd.DatetimeIndex(truth["time"].values)
    for idx in sets.values():
        common = common.intersection(idx)
    common = common.sort_values()
    dropped = {name: int(len(idx.difference(common))) for name, idx in sets.items()}
    if len(common) == 0:
        raise EvaluationError(f"no target time is common to all predictions and the data store: {list(sets)}")
    return common, dropped


def times_digest(times: pd.DatetimeIndex) -> str:
    return hashlib.sha256(np.asarray(times, dtype="datetime64[ns]").astype(np.int64).tobytes()).hexdigest()[:16]
