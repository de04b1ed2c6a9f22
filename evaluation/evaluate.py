"""Score an experiment's test predictions against the truth, its baselines and (optionally)
a reference experiment; write metrics, predictions, figures and a report.

    python -m evaluation.evaluate --config C --exp exp1 --data processed/region1.zarr \\
        --runs results/runs/exp1/seed0 [...] --out results/exp1
    python -m evaluation.evaluate --config C --exp exp2 --data processed/region1.zarr \\
        --runs results/runs/exp2/seed0 [...] --reference results/exp1 --out results/exp2

Every model (each seed of each experiment and the three baselines) is scored on the same
samples: the target times common to all runs (and to the reference), on region-1 cells
where ``loss_mask`` is 1, the truth is valid, and every baseline has a value.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from evaluation import baselines as bl
from evaluation.bootstrap import (block_bootstrap_weights, block_length_frames, paired_difference,
                                  percentile_interval)
from evaluation.scores import (CATEGORICAL_SCORES, CONTINUOUS_SCORES, COUNT_NAMES, ORIENTATION, Verifier,
                               scores_from_stats)
from pipeline.common.provenance import package_versions
from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash, load_config

log = logging.getLogger("evaluation")

SCHEMA_VERSION = 1
CHUNK_TIMES = 64  # frames per streamed chunk
PACKAGES = ("numpy", "pandas", "scipy", "xarray", "dask", "zarr", "scores", "matplotlib", "torch")


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated together (message names the file and the value)."""


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------

@dataclass
class Member:
    """One set of predictions: an experiment at one seed."""
    exp: str
    seed: int
    source: str                          # where the predictions came from (for messages)
    pred: xr.DataArray                   # (time, lat, lon) mm
    train_log: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return f"{self.exp}/seed{self.seed}"


@dataclass
class Group:
    """A model as reported: an experiment (several seeds) or a baseline (one member)."""
    name: str
    kind: str                            # experiment | baseline
    members: list[Member] = field(default_factory=list)


def _open_zarr(path) -> xr.Dataset:
    """Open a zarr store, consolidated metadata or not, without the fallback warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consolidated metadata.*", category=RuntimeWarning)
        return xr.open_zarr(path)


def open_truth(path: str | Path) -> xr.Dataset:
    try:
        ds = _open_zarr(path)
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise EvaluationError(f"{path}: cannot open the data store: {err}") from err
    for var in ("rain_mm", "valid", "loss_mask"):
        if var not in ds:
            raise EvaluationError(f"{path}: variable '{var}' missing (have {sorted(ds.data_vars)})")
    if ds["rain_mm"].dims != ("time", "lat", "lon"):
        raise EvaluationError(f"{path}: rain_mm dims {ds['rain_mm'].dims}, expected ('time', 'lat', 'lon')")
    return ds


def _check_grid(pred: xr.DataArray, truth: xr.Dataset, source: str) -> xr.DataArray:
    for dim in ("lat", "lon"):
        a, b = pred[dim].values, truth[dim].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            raise EvaluationError(
                f"{source}: {dim} coordinates ({len(a)} values, {a[:1]}..{a[-1:]}) differ from the data "
                f"store's region-1 grid ({len(b)} values, {b[:1]}..{b[-1:]})"
            )
    return pred.assign_coords(lat=truth["lat"].values, lon=truth["lon"].values)


def _read_train_log(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        log.warning("%s: no training log; its loss curve is left out", path)
        return None
    df = pd.read_csv(path)
    missing = {"epoch", "train_loss", "val_loss"} - set(df.columns)
    if missing:
        raise EvaluationError(f"{path}: columns {sorted(missing)} missing (have {list(df.columns)})")
    return df


def open_run(run_dir: str | Path, exp: str, truth: xr.Dataset) -> Member:
    """Open ``RUN/predictions.zarr`` (``rain_mm_pred`` (time, lat, lon) mm) and ``RUN/train_log.csv``."""
    run_dir = Path(run_dir)
    store = run_dir / "predictions.zarr"
    if not store.exists():
        raise EvaluationError(f"{store}: predictions missing (run training.predict first)")
    ds = _open_zarr(store)
    if "rain_mm_pred" not in ds:
        raise EvaluationError(f"{store}: variable 'rain_mm_pred' missing (have {sorted(ds.data_vars)})")
    pred = ds["rain_mm_pred"]
    if pred.dims != ("time", "lat", "lon"):
        raise EvaluationError(f"{store}: rain_mm_pred dims {pred.dims}, expected ('time', 'lat', 'lon')")
    run_exp = ds.attrs.get("exp", exp)
    if run_exp != exp:
        raise EvaluationError(f"{store}: attribute exp={run_exp!r} but --exp {exp!r}")
    seed = ds.attrs.get("seed")
    if seed is None:
        name = run_dir.name
        if not name.startswith("seed") or not name[4:].isdigit():
            raise EvaluationError(f"{store}: no 'seed' attribute and run folder {name!r} is not 'seed<N>'")
        seed = int(name[4:])
    pred = _check_grid(pred, truth, str(store))
    return Member(exp, int(seed), str(store), pred, _read_train_log(run_dir / "train_log.csv"))


def open_reference(ref_dir: str | Path, truth: xr.Dataset) -> tuple[str, list[Member], dict]:
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
    ds = _open_zarr(store)
    members = []
    for seed in ds["seed"].values:
        pred = _check_grid(ds["rain_mm_pred"].sel(seed=seed).drop_vars("seed"), truth, str(store))
        tlog = ref_dir / "train_logs" / f"{exp}_seed{int(seed)}.csv"
        members.append(Member(exp, int(seed), str(store), pred, _read_train_log(tlog)))
    return exp, members, metrics


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


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------

@dataclass
class Scored:
    verifiers: dict[str, Verifier]       # member name -> accumulated scores
    times: pd.DatetimeIndex
    sample: dict                          # counts of scored / excluded cell-times
    truth_mean: np.ndarray                # (T,) mean truth over scored cells (case selection)
    n_cells: np.ndarray                   # (T,) scored cells per time


def score_members(config: dict, truth: xr.Dataset, groups: list[Group], times: pd.DatetimeIndex,
                  clim: xr.DataArray, chunk: int = CHUNK_TIMES) -> Scored:
    """Stream over the common times, accumulating every member's statistics on one mask."""
    ev = config["evaluation"]
    shape = (truth.sizes["lat"], truth.sizes["lon"])
    loss_mask = truth["loss_mask"].values.astype(bool)
    lag = bl.persistence_lag(config)
    verifiers = {m.name: Verifier(ev["thresholds_mm"], ev["fss_windows"], shape)
                 for g in groups for m in g.members}
    sample = {"cells_in_loss_mask": int(loss_mask.sum()), "cell_times_truth_valid": 0,
              "excluded_no_persistence": 0, "excluded_no_climatology": 0, "cell_times_scored": 0}
    truth_sum, n_cells = [], []
    for start in tqdm(range(0, len(times), chunk), desc="scoring", unit="chunk", file=sys.stderr,
                      disable=None):
        tchunk = times[start:start + chunk]
        obs = truth["rain_mm"].sel(time=tchunk).values.astype(np.float32)
        valid = truth["valid"].sel(time=tchunk).values.astype(bool)
        base = {name: bl.baseline_chunk(name, truth["rain_mm"], clim, tchunk, lag) for name in bl.BASELINES}
        ok_truth = loss_mask & valid & np.isfinite(obs)
        no_pers = ok_truth & ~np.isfinite(base["persistence"])
        no_clim = ok_truth & np.isfinite(base["persistence"]) & ~np.isfinite(base["climatology"])
        mask = ok_truth & ~no_pers & ~no_clim
        sample["cell_times_truth_valid"] += int(ok_truth.sum())
        sample["excluded_no_persistence"] += int(no_pers.sum())
        sample["excluded_no_climatology"] += int(no_clim.sum())
        sample["cell_times_scored"] += int(mask.sum())
        truth_sum.append(np.where(mask, obs, 0.0).sum((1, 2)))
        n_cells.append(mask.sum((1, 2)))
        for g in groups:
            for m in g.members:
                if g.kind == "baseline":
                    fcst = base[g.name]
                else:
                    fcst = m.pred.sel(time=tchunk).values.astype(np.float32)
                    bad = mask & ~np.isfinite(fcst)
                    if bad.any():
                        t_bad = tchunk[np.flatnonzero(bad.any((1, 2)))[0]]
                        raise EvaluationError(
                            f"{m.source}: {int(bad.sum())} scored cells have no finite prediction "
                            f"(first at {t_bad})"
                        )
                verifiers[m.name].accumulate(fcst, obs, mask)
    if sample["cell_times_scored"] == 0:
        raise EvaluationError("no cell-time can be scored (loss_mask, valid truth and baselines never overlap)")
    n_cells = np.concatenate(n_cells)
    truth_mean = np.concatenate(truth_sum) / np.maximum(n_cells, 1)
    return Scored(verifiers, times, sample, truth_mean, n_cells)


def score_items(flat: dict, thresholds, windows):
    """Yield ``(score, threshold, window, value)`` for every score of a flat score dict;
    values keep any leading dimensions."""
    for s in CONTINUOUS_SCORES:
        yield s, None, None, flat[s]
    for s in COUNT_NAMES + CATEGORICAL_SCORES:
        for k, thr in enumerate(thresholds):
            yield s, thr, None, flat[s][..., k]
    for k, thr in enumerate(thresholds):
        for j, win in enumerate(windows):
            yield "fss", thr, win, flat["fss"][..., k, j]


def thr_key(thr: float) -> str:
    return f"{float(thr):g}"


def nest(items, fn=float) -> dict:
    """Nested JSON block {continuous: {..}, categorical: {thr: {..}}, fss: {thr: {window: v}}}."""
    out = {"continuous": {}, "categorical": {}, "fss": {}}
    for score, thr, win, val in items:
        v = fn(val)
        if thr is None:
            out["continuous"][score] = v
        elif win is None:
            out["categorical"].setdefault(thr_key(thr), {})[score] = v
        else:
            out["fss"].setdefault(thr_key(thr), {})[str(win)] = v
    return out


def _num(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else x


def group_stats(scored: Scored, group: Group) -> dict[str, np.ndarray]:
    """Per-time rows of every member stacked on a leading seed axis ``(S, T, ...)``."""
    stats = [scored.verifiers[m.name].stats() for m in group.members]
    return {k: np.stack([s[k] for s in stats]) for k in stats[0]}


@dataclass
class GroupResult:
    point: dict                           # seed-mean scores on the full sample
    members: dict                         # member name -> scores on the full sample
    boot: dict                            # seed-mean scores per resample (B, ...)


def bootstrap_groups(scored: Scored, groups: list[Group], weights: np.ndarray) -> dict[str, GroupResult]:
    out = {}
    for g in groups:
        stats = group_stats(scored, g)
        per_seed = scores_from_stats(stats, None, time_axis=1)           # (S, ...)
        boot = scores_from_stats(stats, weights, time_axis=1)            # (B, S, ...)
        with warnings.catch_warnings():  # a score undefined for every seed stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            point = {k: np.nanmean(v, axis=0) for k, v in per_seed.items()}
            boot_mean = {k: np.nanmean(v, axis=1) for k, v in boot.items()}
        members = {m.name: {k: v[i] for k, v in per_seed.items()} for i, m in enumerate(g.members)}
        out[g.name] = GroupResult(point, members, boot_mean)
    return out


def compare(res_a: GroupResult, res_b: GroupResult, thresholds, windows, confidence: float) -> list[dict]:
    """Differences ``b - a`` of every score with paired bootstrap intervals."""
    rows = []
    items_a = list(score_items(res_a.point, thresholds, windows))
    items_b = list(score_items(res_b.point, thresholds, windows))
    boot_a = list(score_items(res_a.boot, thresholds, windows))
    boot_b = list(score_items(res_b.boot, thresholds, windows))
    for (s, thr, win, pa), (_, _, _, pb), (_, _, _, ba), (_, _, _, bb) in zip(items_a, items_b, boot_a, boot_b):
        if s in COUNT_NAMES:
            continue
        d = paired_difference(ba, bb, pa, pb, confidence, relative=s in ("rmse", "mae"))
        lo, hi = float(d["ci_low"]), float(d["ci_high"])
        orient = ORIENTATION[s]
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 <= hi:
            better = "neither"
        elif orient == 0:
            better = "neither"  # bias-type scores: closeness to the ideal, judged in the table
        else:
            b_better = (lo > 0) if orient > 0 else (hi < 0)
            better = "b" if b_better else "a"
        row = {"score": s, "threshold_mm": None if thr is None else float(thr),
               "window": None if win is None else int(win),
               "a": _num(pa), "b": _num(pb), "difference": _num(d["difference"]),
               "ci_low": _num(lo), "ci_high": _num(hi), "better": better}
        if "relative_pct" in d:
            row.update(relative_pct=_num(d["relative_pct"]), relative_ci_low=_num(d["relative_ci_low"]),
                       relative_ci_high=_num(d["relative_ci_high"]))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------

def _f(value, spec: str = ".3f") -> str:
    """Format a score that may be undefined (None/NaN, e.g. CSI with no events) as 'n/a'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return format(value, spec)


def _find(rows, score, thr=None, win=None):
    for r in rows:
        if r["score"] == score and r["threshold_mm"] == (None if thr is None else float(thr)) and r["window"] == win:
            return r
    raise KeyError((score, thr, win))


def baseline_verdict(exp: str, baseline: str, rows: list[dict], thresholds, conf_pct: str) -> tuple[str, bool]:
    """One line: does ``exp`` (b) beat ``baseline`` (a)? Loud when it does not."""
    r = _find(rows, "rmse")
    csi_better = sum(_find(rows, "csi", t)["better"] == "b" for t in thresholds)
    csi_worse = sum(_find(rows, "csi", t)["better"] == "a" for t in thresholds)
    detail = (f"RMSE {_f(r['b'])} vs {_f(r['a'])} mm, difference {_f(r['difference'], '+.3f')} "
              f"[{_f(r['ci_low'], '+.3f')}, {_f(r['ci_high'], '+.3f')}] mm ({conf_pct} paired block bootstrap); "
              f"CSI significantly higher at {csi_better} and lower at {csi_worse} of {len(thresholds)} thresholds")
    beats = r["better"] == "b"
    if beats:
        return f"{exp} beats {baseline}: {detail}.", True
    how = "is significantly worse than" if r["better"] == "a" else "is not significantly better than"
    return f"**WARNING: {exp} does NOT beat {baseline}** ({exp} {how} {baseline} on RMSE): {detail}.", False


def comparison_verdicts(exp_b: str, exp_a: str, rows: list[dict], thresholds, windows, conf_pct: str,
                        n_boot: int, block_days: float) -> list[str]:
    r = _find(rows, "rmse")
    how = f"({conf_pct} paired block bootstrap, {n_boot} resamples, {block_days:g}-day blocks)"
    rel, lo, hi = r["relative_pct"], r["relative_ci_low"], r["relative_ci_high"]
    if rel <= 0:
        line = f"{exp_b} lowers RMSE by {-rel:.1f}% [{-hi:.1f}, {-lo:.1f}] {how}"
    else:
        line = f"{exp_b} raises RMSE by {rel:.1f}% [{lo:.1f}, {hi:.1f}] {how}"
    sig = {"b": "significant", "a": "significant", "neither": "not significant: the interval includes 0"}[r["better"]]
    lines = [f"{line}; {sig}."]
    for t in thresholds:
        c = _find(rows, "csi", t)
        lines.append(f"CSI (>= {thr_key(t)} mm): {exp_b} {_f(c['b'])} vs {exp_a} {_f(c['a'])}, difference "
                     f"{_f(c['difference'], '+.3f')} [{_f(c['ci_low'], '+.3f')}, {_f(c['ci_high'], '+.3f')}]"
                     f"{'' if c['better'] == 'neither' else ' (significant)'}.")
    fss = [_find(rows, "fss", t, w) for t in thresholds for w in windows]
    n_b = sum(f["better"] == "b" for f in fss)
    n_a = sum(f["better"] == "a" for f in fss)
    lines.append(f"FSS: {exp_b} significantly higher for {n_b} and lower for {n_a} of {len(fss)} "
                 "threshold/window pairs.")
    if r["better"] == "b":
        head = f"VERDICT: {exp_b} beats {exp_a} (RMSE significantly lower)."
    elif r["better"] == "a":
        head = f"VERDICT: {exp_b} is worse than {exp_a} (RMSE significantly higher)."
    else:
        head = f"VERDICT: no significant difference between {exp_b} and {exp_a} in RMSE."
    return [head] + lines


# ---------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------

def versions() -> dict:
    return package_versions(PACKAGES)


def model_block(group: Group, res: GroupResult, thresholds, windows, confidence: float) -> dict:
    block = {"kind": group.kind, **nest(score_items(res.point, thresholds, windows), _num)}
    lo, hi = {}, {}
    for s, thr, win, samples in score_items(res.boot, thresholds, windows):
        if s in COUNT_NAMES:
            continue
        lo[(s, thr, win)], hi[(s, thr, win)] = percentile_interval(samples, confidence)
    block["intervals"] = nest(((s, t, w, (lo[(s, t, w)], hi[(s, t, w)])) for (s, t, w) in lo),
                              lambda v: [_num(v[0]), _num(v[1])])
    if group.kind == "experiment":
        block["exp"] = group.name
        block["seeds"] = [m.seed for m in group.members]
        per_seed = [res.members[m.name] for m in group.members]
        spread = []
        for (s, thr, win, _), *vals in zip(score_items(res.point, thresholds, windows),
                                           *(score_items(p, thresholds, windows) for p in per_seed)):
            v = np.array([x[3] for x in vals], dtype=np.float64)
            spread.append((s, thr, win, v))
        block["spread"] = nest(spread, lambda v: {"std": _num(np.nanstd(v)) if np.isfinite(v).any() else None,
                                                  "min": _num(np.nanmin(v)) if np.isfinite(v).any() else None,
                                                  "max": _num(np.nanmax(v)) if np.isfinite(v).any() else None})
    return block


def metrics_rows(metrics: dict) -> list[dict]:
    """Flat table: one row per model, score, threshold and window."""
    rows = []
    for name, block in metrics["models"].items():
        base = {"model": name, "kind": block["kind"], "exp": block.get("exp"), "seed": block.get("seed")}
        iv = block.get("intervals", {})
        for s, v in block["continuous"].items():
            ci = iv.get("continuous", {}).get(s, [None, None])
            rows.append({**base, "score": s, "threshold_mm": None, "window": None, "value": v,
                         "ci_low": ci[0], "ci_high": ci[1]})
        for t, d in block["categorical"].items():
            for s, v in d.items():
                ci = iv.get("categorical", {}).get(t, {}).get(s, [None, None])
                rows.append({**base, "score": s, "threshold_mm": float(t), "window": None, "value": v,
                             "ci_low": ci[0], "ci_high": ci[1]})
        for t, d in block["fss"].items():
            for w, v in d.items():
                ci = iv.get("fss", {}).get(t, {}).get(w, [None, None])
                rows.append({**base, "score": "fss", "threshold_mm": float(t), "window": int(w), "value": v,
                             "ci_low": ci[0], "ci_high": ci[1]})
    return rows


def write_predictions(members: list[Member], path: Path, exp: str) -> None:
    times = pd.DatetimeIndex(members[0].pred["time"].values)
    for m in members[1:]:
        times = times.intersection(pd.DatetimeIndex(m.pred["time"].values))
    times = times.sort_values()
    arr = xr.concat([m.pred.sel(time=times) for m in members], dim=pd.Index([m.seed for m in members], name="seed"))
    ds = xr.Dataset({"rain_mm_pred": arr.astype(np.float32)})
    ds["rain_mm_pred"].attrs = {"units": "mm", "long_name": "predicted rain in the 12 h ending at time"}
    ds.attrs = {"exp": exp, "seeds": [m.seed for m in members], "sources": [m.source for m in members]}
    ds = ds.chunk({"seed": 1, "time": min(CHUNK_TIMES, len(times)), "lat": -1, "lon": -1})
    for v in ds.variables.values():
        v.encoding = {}
    ds.to_zarr(path, mode="w", consolidated=False)


def evaluate(config: dict, exp: str, data: str | Path, runs: list[str | Path], out: str | Path,
             reference: str | Path | None = None, config_path: str | None = None) -> dict:
    """Score, bootstrap, plot and report; write everything into ``out`` atomically.
    Returns the metrics dict (and ``comparison`` inside it when a reference is given)."""
    from evaluation import figures, report  # matplotlib only when writing

    ev = config["evaluation"]
    thresholds, windows = [float(t) for t in ev["thresholds_mm"]], [int(w) for w in ev["fss_windows"]]
    truth = open_truth(data)
    if not runs:
        raise EvaluationError("--runs: at least one run folder is needed")
    members = [open_run(r, exp, truth) for r in runs]
    seeds = [m.seed for m in members]
    if len(set(seeds)) != len(seeds):
        raise EvaluationError(f"--runs: duplicate seeds {seeds} for {exp}")
    groups = [Group(exp, "experiment", members)]
    ref_exp, ref_metrics = None, None
    if reference is not None:
        ref_exp, ref_members, ref_metrics = open_reference(reference, truth)
        if ref_exp == exp:
            raise EvaluationError(f"--reference {reference}: holds {exp} itself")
        groups.insert(0, Group(ref_exp, "experiment", ref_members))
    all_members = [m for g in groups for m in g.members]
    times, dropped = common_times(all_members, truth)
    log.info("%s: scoring %d common target times (%s .. %s)", exp, len(times), times[0], times[-1])
    clim = bl.climatology(truth["rain_mm"], config)
    for name in bl.BASELINES:
        groups.append(Group(name, "baseline", [Member(name, 0, f"baseline {name}", None)]))

    scored = score_members(config, truth, groups, times, clim)
    rng = np.random.default_rng(config["seed"])
    block_len = block_length_frames(times, ev["bootstrap_block_days"])
    scheme = ev.get("bootstrap_scheme", "circular")
    weights = block_bootstrap_weights(len(times), block_len, ev["bootstrap_samples"], rng, scheme)
    results = bootstrap_groups(scored, groups, weights)
    conf_pct = f"{100 * ev['confidence']:g}%"

    models = {}
    for g in groups:
        models[g.name] = model_block(g, results[g.name], thresholds, windows, ev["confidence"])
        if g.kind == "experiment":
            for m in g.members:
                models[m.name] = {"kind": "seed", "exp": g.name, "seed": m.seed,
                                  **nest(score_items(results[g.name].members[m.name], thresholds, windows), _num)}

    exps = [g.name for g in groups if g.kind == "experiment"]
    vs_baselines, verdicts = {}, []
    for e in exps:
        vs_baselines[e] = {}
        for b in bl.BASELINES:
            rows = compare(results[b], results[e], thresholds, windows, ev["confidence"])
            vs_baselines[e][b] = rows
            line, _ = baseline_verdict(e, b, rows, thresholds, conf_pct)
            verdicts.append(line)

    comparison = None
    if ref_exp is not None:
        rows = compare(results[ref_exp], results[exp], thresholds, windows, ev["confidence"])
        cverdicts = comparison_verdicts(exp, ref_exp, rows, thresholds, windows, conf_pct,
                                        ev["bootstrap_samples"], ev["bootstrap_block_days"])
        comparison = {
            "schema_version": SCHEMA_VERSION, "a": ref_exp, "b": exp,
            "difference": "b - a (positive: b higher)",
            "samples": {"n_times": len(times), "times_sha256": times_digest(times),
                        "identical_samples": True, "cell_times_scored": scored.sample["cell_times_scored"]},
            "bootstrap": {"samples": ev["bootstrap_samples"], "block_days": ev["bootstrap_block_days"],
                          "block_frames": block_len, "scheme": scheme, "confidence": ev["confidence"],
                          "seed": config["seed"], "seed_aggregation": "mean of per-seed scores"},
            "verdict": cverdicts, "scores": rows,
        }
        verdicts = cverdicts + verdicts

    metrics = {
        "schema_version": SCHEMA_VERSION,
        "exp": exp,
        "reference_exp": ref_exp,
        "units": "mm / 12 h",
        "event_definition": "value >= threshold",
        "thresholds_mm": thresholds,
        "fss_windows": windows,
        "samples": {
            "n_times": len(times), "time_start": str(times[0]), "time_end": str(times[-1]),
            "times_sha256": times_digest(times), "times_dropped_not_common": dropped,
            **scored.sample,
        },
        "bootstrap": {"samples": ev["bootstrap_samples"], "block_days": ev["bootstrap_block_days"],
                      "block_frames": block_len, "scheme": scheme, "confidence": ev["confidence"],
                      "seed": config["seed"]},
        "models": models,
        "vs_baselines": vs_baselines,
        "verdicts": verdicts,
        "provenance": {
            "config": config_path, "config_hash": config_hash(config),
            "data": str(data), "data_config_hash": truth.attrs.get("config_hash"),
            "runs": [m.source for m in members], "reference": None if reference is None else str(reference),
            "versions": versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
    report.validate_metrics(metrics)

    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_predictions(members, tmp / "predictions.zarr", exp)
        logs_dir = tmp / "train_logs"
        logs_dir.mkdir()
        for g in groups:
            for m in g.members:
                if g.kind == "experiment" and m.train_log is not None:
                    m.train_log.to_csv(logs_dir / f"{m.exp}_seed{m.seed}.csv", index=False)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
        pd.DataFrame(metrics_rows(metrics)).to_csv(tmp / "metrics.csv", index=False)
        if comparison is not None:
            (tmp / "comparison.json").write_text(json.dumps(comparison, indent=1))
            pd.DataFrame(comparison["scores"]).assign(a_model=ref_exp, b_model=exp).to_csv(
                tmp / "comparison.csv", index=False)
        figs = figures.make_all(tmp, config, truth, groups, scored, results, metrics, clim)
        (tmp / "report.md").write_text(report.render(metrics, comparison, figs))
    log.info("%s: wrote %s", exp, out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="config YAML (validated against the schema)")
    p.add_argument("--exp", required=True, help="experiment name of --runs (e.g. exp1)")
    p.add_argument("--data", required=True, help="processed/region1.zarr (truth rain_mm, valid, loss_mask)")
    p.add_argument("--runs", required=True, nargs="+", help="run folders holding predictions.zarr and train_log.csv")
    p.add_argument("--reference", default=None, help="evaluate output folder of the experiment to compare with")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    config = load_config(args.config)
    metrics = evaluate(config, args.exp, args.data, args.runs, args.out, args.reference, args.config)
    for line in metrics["verdicts"]:
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
