"""Comparing forecasts with the truth: streaming scores on one mask, the paired block
bootstrap, differences between models, and the maps the figures draw.

Every model (each seed of each experiment and every baseline) is scored on the same
samples: the common target times, on region-1 cells where ``loss_mask`` is 1, the truth is
valid, and every built-in baseline has a value.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from evaluation import baselines as bl
from evaluation.bootstrap import (block_bootstrap_weights, block_length_frames, paired_difference, seed_draws,
                                  seed_resampled_mean)
from evaluation.inputs import EvaluationError, Group, Member, open_store
from evaluation.multiplicity import holm
from evaluation.probabilistic import PROB_TOL, SUM_TOL, BinnedForecast, ProbabilisticAccumulator, mixture
from evaluation.scores import (CATEGORICAL_SCORES, CONTINUOUS_SCORES, COUNT_NAMES, ORIENTATION,
                               PROBABILISTIC_CATEGORICAL, PROBABILISTIC_CONTINUOUS, Verifier, probabilistic_scores,
                               scores_from_stats)

CHUNK_TIMES = 64  # frames per streamed chunk
RELATIVE_SCORES = ("rmse", "mae", "crps")  # differences also given in % of the reference's score


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
    # experiment name -> accumulator of its seed-averaged probabilities (probabilistic experiments)
    mixtures: dict[str, ProbabilisticAccumulator] = field(default_factory=dict)


def _chunk_mask(truth: xr.Dataset, loss_mask: np.ndarray, tchunk, base: dict, sample: dict):
    """Observed rain and the scored mask of one chunk; updates the sample counts."""
    obs = truth["rain_mm"].sel(time=tchunk).values.astype(np.float32)
    valid = truth["valid"].sel(time=tchunk).values.astype(bool)
    ok_truth = loss_mask & valid & np.isfinite(obs)
    no_pers = ok_truth & ~np.isfinite(base["persistence"])
    no_clim = ok_truth & np.isfinite(base["persistence"]) & ~np.isfinite(base["climatology"])
    mask = ok_truth & ~no_pers & ~no_clim
    sample["cell_times_truth_valid"] += int(ok_truth.sum())
    sample["excluded_no_persistence"] += int(no_pers.sum())
    sample["excluded_no_climatology"] += int(no_clim.sum())
    sample["cell_times_scored"] += int(mask.sum())
    return obs, mask


def _model_chunk(member: Member, tchunk, mask: np.ndarray) -> np.ndarray:
    """A member's forecast of one chunk; a non-finite value on a scored cell is an error."""
    fcst = member.pred.sel(time=tchunk).values.astype(np.float32)
    bad = mask & ~np.isfinite(fcst)
    if bad.any():
        t_bad = tchunk[np.flatnonzero(bad.any((1, 2)))[0]]
        raise EvaluationError(
            f"{member.source}: {int(bad.sum())} scored cells have no finite prediction (first at {t_bad})"
        )
    return fcst


def _prob_chunk(member: Member, tchunk, mask: np.ndarray) -> BinnedForecast:
    """A probabilistic member's ``prob_exceed`` and ``bin_prob`` of one chunk, checked on the
    scored cells: finite, within [0, 1], bin probabilities summing to 1."""
    pe = member.probs["prob_exceed"].sel(time=tchunk).values
    bp = member.probs["bin_prob"].sel(time=tchunk).values
    for var, arr in (("prob_exceed", pe), ("bin_prob", bp)):
        with np.errstate(invalid="ignore"):
            bad = mask[:, None] & ~((arr >= -PROB_TOL) & (arr <= 1 + PROB_TOL))
        if bad.any():
            t_bad = tchunk[np.flatnonzero(bad.any((1, 2, 3)))[0]]
            raise EvaluationError(f"{member.source}: {var} has {int(bad.sum())} values on scored cells that are "
                                  f"not finite probabilities in [0, 1] (first at {t_bad})")
    total = bp.sum(axis=1, dtype=np.float64)
    bad = mask & ~(np.abs(total - 1.0) <= SUM_TOL)
    if bad.any():
        i = np.argwhere(bad)[0]
        raise EvaluationError(f"{member.source}: bin_prob sums to {total[tuple(i)]:.6f}, not 1, over 'bin' at "
                              f"{int(bad.sum())} scored cells (first at {tchunk[i[0]]})")
    lower, upper = member.bins
    return BinnedForecast(pe, bp, lower, upper)


@dataclass
class _Chunk:
    times: pd.DatetimeIndex
    obs: np.ndarray
    mask: np.ndarray
    clim_freq: np.ndarray | None
    base: dict


def _score_group(g: Group, chunk: _Chunk, verifiers: dict, mixtures: dict) -> None:
    """Accumulate every member of ``g`` on one chunk (and the seed mixture of probabilities)."""
    forecasts = []
    for m in g.members:
        if g.kind == "baseline" and g.name in chunk.base:
            fcst, fc = chunk.base[g.name], None
        else:
            fcst = _model_chunk(m, chunk.times, chunk.mask)
            fc = _prob_chunk(m, chunk.times, chunk.mask) if m.probs is not None else None
        verifiers[m.name].accumulate(fcst, chunk.obs, chunk.mask, chunk.clim_freq, fc)
        if fc is not None:
            forecasts.append(fc)
    if forecasts and chunk.clim_freq is not None:
        mixtures[g.name].accumulate(chunk.obs, chunk.mask, chunk.clim_freq, mixture(forecasts))


def score_members(config: dict, truth: xr.Dataset, groups: list[Group], times: pd.DatetimeIndex,
                  clim: xr.DataArray, chunk: int = CHUNK_TIMES, progress: bool = True,
                  clim_freq: xr.DataArray | None = None) -> Scored:
    """Stream over the common times, accumulating every member's statistics on one mask
    (with ``clim_freq`` from :func:`evaluation.baselines.climatological_frequency`, also the
    Brier, CRPS and reliability sums)."""
    ev = config["evaluation"]
    shape = (truth.sizes["lat"], truth.sizes["lon"])
    loss_mask = truth["loss_mask"].values.astype(bool)
    lag = bl.persistence_lag(config)
    verifiers = {m.name: Verifier(ev["thresholds_mm"], ev["fss_windows"], shape)
                 for g in groups for m in g.members}
    mixtures = {g.name: ProbabilisticAccumulator(ev["thresholds_mm"]) for g in groups
                if g.kind == "experiment" and g.members[0].probs is not None}
    sample = {"cells_in_loss_mask": int(loss_mask.sum()), "cell_times_truth_valid": 0,
              "excluded_no_persistence": 0, "excluded_no_climatology": 0, "cell_times_scored": 0}
    truth_sum, n_cells = [], []
    for start in tqdm(range(0, len(times), chunk), desc="scoring", unit="chunk", file=sys.stderr,
                      disable=None if progress else True):
        tchunk = times[start:start + chunk]
        base = {name: bl.baseline_chunk(name, truth["rain_mm"], clim, tchunk, lag) for name in bl.BASELINES}
        obs, mask = _chunk_mask(truth, loss_mask, tchunk, base, sample)
        truth_sum.append(np.where(mask, obs, 0.0).sum((1, 2)))
        n_cells.append(mask.sum((1, 2)))
        cfreq = None if clim_freq is None else bl.climatological_frequency_chunk(clim_freq, tchunk)
        for g in groups:
            _score_group(g, _Chunk(tchunk, obs, mask, cfreq, base), verifiers, mixtures)
    if sample["cell_times_scored"] == 0:
        raise EvaluationError("no cell-time can be scored (loss_mask, valid truth and baselines never overlap)")
    n_cells = np.concatenate(n_cells)
    truth_mean = np.concatenate(truth_sum) / np.maximum(n_cells, 1)
    return Scored(verifiers, times, sample, truth_mean, n_cells, mixtures)


def score_items(flat: dict, thresholds, windows):
    """Yield ``(score, threshold, window, value)`` for every score of a flat score dict;
    values keep any leading dimensions. CRPS follows the continuous scores, Brier score and
    skill the categorical ones, when ``flat`` has them."""
    for s in CONTINUOUS_SCORES + PROBABILISTIC_CONTINUOUS:
        if s in flat:
            yield s, None, None, flat[s]
    for s in COUNT_NAMES + CATEGORICAL_SCORES + PROBABILISTIC_CATEGORICAL:
        if s in flat:
            for k, thr in enumerate(thresholds):
                yield s, thr, None, flat[s][..., k]
    for k, thr in enumerate(thresholds):
        for j, win in enumerate(windows):
            yield "fss", thr, win, flat["fss"][..., k, j]


# ---------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------

@dataclass
class Bootstrap:
    """The resample counts ``weights (B, T)`` and their description (``metrics.json``'s
    ``bootstrap`` block), built once for every model and comparison."""
    weights: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.meta["confidence"]

    @property
    def conf_pct(self) -> str:
        return f"{100 * self.confidence:g}%"


def plan_bootstrap(config: dict, times: pd.DatetimeIndex) -> Bootstrap:
    """Block-bootstrap weights over the common times, seeded with the config's ``seed``."""
    ev = config["evaluation"]
    rng = np.random.default_rng(config["seed"])
    block_len = block_length_frames(times, ev["bootstrap_block_days"])
    scheme = ev.get("bootstrap_scheme", "circular")
    weights = block_bootstrap_weights(len(times), block_len, ev["bootstrap_samples"], rng, scheme)
    meta = {"samples": ev["bootstrap_samples"], "block_days": ev["bootstrap_block_days"],
            "block_frames": block_len, "scheme": scheme, "confidence": ev["confidence"],
            "seed": config["seed"], "resample_seeds": bool(ev.get("resample_seeds", True))}
    return Bootstrap(weights, meta)


def seed_key(boot_meta: dict) -> int | None:
    """The base seed of the seed stage of the bootstrap, or None when seeds are not
    resampled (``evaluation.resample_seeds: false``)."""
    return int(boot_meta["seed"]) if boot_meta.get("resample_seeds", True) else None


def group_stats(scored: Scored, group: Group, frames: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-time rows of every member stacked on a leading seed axis ``(S, T, ...)``; with
    ``frames`` (indices into ``scored.times``) only those times."""
    stats = [scored.verifiers[m.name].stats() for m in group.members]
    out = {k: np.stack([s[k] for s in stats]) for k in stats[0]}
    return out if frames is None else {k: v[:, frames] for k, v in out.items()}


@dataclass
class GroupResult:
    point: dict                           # seed-mean scores on the full sample
    members: dict                         # member name -> scores on the full sample
    boot: dict                            # seed-mean scores per resample (B, ...)
    # the forecasts are probabilistic (CRPS, Brier and BSS of predicted distributions)
    probabilistic: bool = False
    reliability: np.ndarray | None = None  # (n_thr, n_bins, 3) of the seed-averaged probabilities
    # CRPS, Brier and BSS of the seed-averaged probabilities (the seed ensemble), full sample
    ensemble: dict | None = None
    seeds_resampled: bool = False         # the resamples also drew the training seeds


def bootstrap_groups(scored: Scored, groups: list[Group], weights: np.ndarray,
                     frames: np.ndarray | None = None, resample_seeds: int | None = None) -> dict[str, GroupResult]:
    """Point scores and resampled scores of every group. ``frames``: score only these times
    (indices into ``scored.times``, e.g. one flow regime); ``weights`` is then
    ``(B, len(frames))``.

    With ``resample_seeds`` (the base seed of the seed stage, :func:`seed_key`), every
    score is the mean of the seeds' own scores (CRPS, Brier and BSS of each seed's own
    distribution) and each resample also draws the group's seeds with replacement
    (:func:`evaluation.bootstrap.seed_draws`), so intervals hold training-run variability;
    the seed-averaged probabilities are scored on the full sample as ``ensemble``. With
    ``None``, the seeds are fixed: the mean of the per-seed scores, except CRPS, Brier and
    BSS of a probabilistic experiment, which score the seed-averaged probabilities. With one
    seed both give the same numbers."""
    out = {}
    for g in groups:
        stats = group_stats(scored, g, frames)
        per_seed = scores_from_stats(stats, None, time_axis=1)           # (S, ...)
        boot = scores_from_stats(stats, weights, time_axis=1)            # (B, S, ...)
        n_seeds = len(g.members)
        draw = resample_seeds is not None and n_seeds > 1
        with warnings.catch_warnings():  # a score undefined for every seed stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            point = {k: np.nanmean(v, axis=0) for k, v in per_seed.items()}
            if draw:
                draws = seed_draws(weights.shape[0], n_seeds, resample_seeds, g.name)
                boot_mean = {k: seed_resampled_mean(v, draws) for k, v in boot.items()}
            else:
                boot_mean = {k: np.nanmean(v, axis=1) for k, v in boot.items()}
        members = {m.name: {k: v[i] for k, v in per_seed.items()} for i, m in enumerate(g.members)}
        res = GroupResult(point, members, boot_mean, seeds_resampled=draw)
        if g.name in scored.mixtures:
            mix = scored.mixtures[g.name]
            mix_stats = mix.stats() if frames is None else {k: v[frames] for k, v in mix.stats().items()}
            res.ensemble = probabilistic_scores(mix_stats)
            if not draw:
                point.update(res.ensemble)
                boot_mean.update(probabilistic_scores(mix_stats, weights))
            res.probabilistic = True
            res.reliability = mix.reliability() if frames is None else None  # summed over all times
        out[g.name] = res
    return out


def _num(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else x


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
        d = paired_difference(ba, bb, pa, pb, confidence, relative=s in RELATIVE_SCORES)
        lo, hi = float(d["ci_low"]), float(d["ci_high"])
        orient = ORIENTATION[s]
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 <= hi:
            better = "neither"
        elif orient == 0:
            better = "neither"  # bias-type scores: closeness to the ideal, judged in the table
        else:
            better = "b" if (hi < 0) == (orient < 0) else "a"
        row = {"score": s, "threshold_mm": None if thr is None else float(thr), "window": win,
               "a": _num(pa), "b": _num(pb), "difference": _num(d["difference"]),
               "ci_low": _num(lo), "ci_high": _num(hi), "better": better, "p_value": _num(d["p_value"])}
        if "relative_pct" in d:
            row.update(relative_pct=_num(d["relative_pct"]), relative_ci_low=_num(d["relative_ci_low"]),
                       relative_ci_high=_num(d["relative_ci_high"]))
        rows.append(row)
    return rows


def apply_holm(rows: list[dict], primary: str, alpha: float) -> int:
    """Mark the ``primary`` score's row (``role: primary``) and adjust the p-values of all
    other rows (``role: secondary``) with Holm: ``p_holm``, and ``better_holm`` (``better``
    where ``p_holm < alpha``, else ``"neither"``). Returns the family size."""
    secondary = [r for r in rows if not (r["score"] == primary and r["threshold_mm"] is None)]
    adjusted = holm([np.nan if r["p_value"] is None else r["p_value"] for r in secondary])
    for r in rows:
        r["role"] = "primary" if r["score"] == primary and r["threshold_mm"] is None else "secondary"
    for r, p in zip(secondary, adjusted):
        r["p_holm"] = _num(p)
        r["better_holm"] = r["better"] if np.isfinite(p) and p < alpha else "neither"
    return int(np.isfinite(adjusted).sum())


# ---------------------------------------------------------------------------------------
# Maps for the figures
# ---------------------------------------------------------------------------------------

@dataclass
class Maps:
    """Fields the figures draw, computed here so that the figures only plot.

    ``cases``: label -> (n_cases, lat, lon) rain (truth, experiments, persistence), NaN off
    the scored cells; ``differences``: label -> (n_cases + 1, lat, lon) prediction - truth
    per case then the test-period mean; ``mae``: label -> (lat, lon) mean absolute error;
    ``mae_difference``: (label, |err b| - |err a|) with two experiments.
    """
    lat: np.ndarray
    lon: np.ndarray
    case_titles: list[str]
    cases: dict[str, np.ndarray]
    differences: dict[str, np.ndarray]
    mae: dict[str, np.ndarray]
    mae_difference: tuple[str, np.ndarray] | None
    # label -> (wavelength in cells, mean radially averaged power spectrum): sharpness
    spectra: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # target times of the cases (same order as case_titles)
    case_times: list = field(default_factory=list)
    # (name, [lat_min, lat_max, lon_min, lon_max]) of the configured regions, outlined on maps
    boxes: list = field(default_factory=list)
    # the cases on the joined grid (JoinedCases, with --upstream-data) and the observing
    # network map drawn by python -m evaluation.network (PNG path, with --network)
    joined: object = None
    network: str | None = None


@dataclass
class JoinedCases:
    """The cases on the joined grid (region 2 beside region 1): ``columns`` label ->
    ``(n_cases, lat, lon)`` mm / 12 h: the last input frame (gridded rain ending 12 h before
    the target), the truth at the target time, and the experiments' forecasts (region-1
    cells; NaN elsewhere)."""
    lat: np.ndarray
    lon: np.ndarray
    titles: list[str]
    columns: dict[str, np.ndarray]
    boxes: list


def _embed(field_r1: np.ndarray, lat1, lon1, lat, lon) -> np.ndarray:
    """``(n, lat1, lon1)`` region-1 fields placed on the joined grid ``lat`` x ``lon`` (NaN elsewhere)."""
    rows = np.array([int(np.argmin(np.abs(lat - v))) for v in lat1])
    cols = np.array([int(np.argmin(np.abs(lon - v))) for v in lon1])
    if not (np.allclose(lat[rows], lat1, atol=1e-6) and np.allclose(lon[cols], lon1, atol=1e-6)):
        raise EvaluationError("the region-1 grid is not part of the joined grid (--upstream-data)")
    out = np.full((field_r1.shape[0], lat.size, lon.size), np.nan, dtype=np.float32)
    out[:, rows[:, None], cols[None, :]] = field_r1
    return out


def joined_cases(maps: Maps, upstream_data) -> JoinedCases | None:
    """The case maps of ``maps`` on the joined-grid store ``upstream_data``
    (``processed/concat.zarr``): its gridded rain at the last input frame and at the target
    time, beside the experiments' forecasts on region 1. ``None`` without cases."""
    if not maps.case_times:
        return None
    ds = open_store(upstream_data, f"{upstream_data} (--upstream-data)")
    lat, lon = ds["lat"].values, ds["lon"].values
    times = pd.DatetimeIndex(ds["time"].values)
    step = pd.Timedelta(np.diff(times.values).min()) if len(times) > 1 else pd.Timedelta(hours=12)

    def frames(ts):
        out = np.full((len(ts), lat.size, lon.size), np.nan, dtype=np.float32)
        have = [i for i, t in enumerate(ts) if t in times]
        if have:
            sel = pd.DatetimeIndex([ts[i] for i in have])
            rain = ds["rain_mm"].sel(time=sel).values.astype(np.float32)
            if "valid" in ds:
                rain = np.where(ds["valid"].sel(time=sel).values.astype(bool), rain, np.nan)
            out[have] = rain
        return out

    target = pd.DatetimeIndex(maps.case_times)
    hours = step / pd.Timedelta(hours=1)
    columns = {f"last input (t - {hours:g} h)": frames(target - step), "truth (t)": frames(target)}
    for label, f in maps.cases.items():
        if label not in ("truth", "persistence"):
            columns[label] = _embed(f, maps.lat, maps.lon, lat, lon)
    return JoinedCases(lat, lon, list(maps.case_titles), columns, list(maps.boxes))


def select_cases(truth_mean: np.ndarray, n_cells: np.ndarray, n_cases: int, seed: int) -> tuple[list[int], int | None]:
    """Indices of the ``n_cases`` heaviest-rain times (mean truth over scored cells) and of
    one random other time (seeded)."""
    usable = np.flatnonzero(n_cells > 0)
    order = usable[np.argsort(-truth_mean[usable], kind="stable")]
    heavy = [int(i) for i in order[:n_cases]]
    rest = np.setdiff1d(usable, heavy)
    rnd = int(np.random.default_rng(seed).choice(rest)) if len(rest) else None
    return heavy, rnd


def _cell_mean(scored: Scored, group: Group, key: str) -> np.ndarray:
    """Seed-mean of a per-cell map (``bias`` or ``mae``) of the cell accumulators."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean([scored.verifiers[m.name].cells.compute()[key] for m in group.members], axis=0)


def _case_maps(config: dict, truth: xr.Dataset, exps: list[Group], scored: Scored, clim: xr.DataArray):
    heavy, rnd = select_cases(scored.truth_mean, scored.n_cells, config["evaluation"]["n_cases"], config["seed"])
    idx = heavy + ([rnd] if rnd is not None else [])
    if not idx:
        return [], {}, {}
    times = scored.times[idx]
    titles = [f"{t:%Y-%m-%d %H}UTC" + (" (random)" if i == rnd else " (heavy)") for t, i in zip(times, idx)]
    loss_mask = truth["loss_mask"].values.astype(bool)
    obs = truth["rain_mm"].sel(time=times).values.astype(np.float32)
    shown = loss_mask & truth["valid"].sel(time=times).values.astype(bool) & np.isfinite(obs)
    cases = {"truth": np.where(shown, obs, np.nan)}
    preds = {}
    for g in exps:
        m = g.members[0]
        lab = g.name if len(g.members) == 1 else f"{g.name} (seed {m.seed})"
        preds[lab] = m.pred.sel(time=times).values.astype(np.float32)
        cases[lab] = np.where(shown, preds[lab], np.nan)
    pers = bl.baseline_chunk("persistence", truth["rain_mm"], clim, times, bl.persistence_lag(config))
    cases["persistence"] = np.where(shown, pers, np.nan)
    differences = {}
    for g, (lab, p) in zip(exps, preds.items()):
        diff = np.where(shown, p - obs, np.nan)
        differences[f"{lab} - truth"] = np.concatenate([diff, _cell_mean(scored, g, "bias")[None]])
    return titles, cases, differences


def mean_rapsd(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis of pysteps' radially averaged power spectrum of each
    ``(lat, lon)`` field; returns (spatial frequency in cycles per cell, power)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # pysteps announces its config file on import
        from pysteps.utils.spectral import rapsd

    power, freq = None, None
    for f in fields:
        p, freq = rapsd(np.asarray(f, dtype=np.float64), fft_method=np.fft, return_freq=True)
        power = p if power is None else power + p
    return freq, power / len(fields)


def spectra(config: dict, truth: xr.Dataset, exps: list[Group], times: pd.DatetimeIndex,
            clim: xr.DataArray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sharpness: the mean RAPSD over the scored times of the truth, of each experiment's
    first seed (one forecast, not the blurrier seed mean) and of persistence. Cells not
    scored at a time (outside loss_mask, no valid truth) are 0 in every field, so all
    spectra see the same gaps."""
    obs = truth["rain_mm"].sel(time=times).values.astype(np.float64)
    mask = truth["loss_mask"].values.astype(bool) & truth["valid"].sel(time=times).values.astype(bool) & np.isfinite(obs)
    pers = bl.baseline_chunk("persistence", truth["rain_mm"], clim, times, bl.persistence_lag(config))
    mask &= np.isfinite(pers)
    fields = {"truth": obs}
    for g in exps:
        m = g.members[0]
        fields[g.name if len(g.members) == 1 else f"{g.name} (seed {m.seed})"] = m.pred.sel(time=times).values
    fields["persistence"] = pers
    return {lab: mean_rapsd(np.where(mask, f, 0.0)) for lab, f in fields.items()}


def figure_maps(config: dict, truth: xr.Dataset, groups: list[Group], scored: Scored,
                clim: xr.DataArray) -> Maps:
    """Case fields, difference and error maps of the experiments (and persistence)."""
    exps = [g for g in groups if g.kind == "experiment"]
    titles, cases, differences = _case_maps(config, truth, exps, scored, clim)
    mae = {g.name: _cell_mean(scored, g, "mae") for g in exps + [g for g in groups if g.name == "persistence"]}
    mae_difference = None
    if len(exps) >= 2:
        a, b = exps[0].name, exps[-1].name
        mae_difference = (f"|err {b}| - |err {a}|", mae[b] - mae[a])
    case_times = [pd.Timestamp(t) for t in _case_times(config, scored)]
    boxes = [(name, [float(config["regions"][name][k]) for k in ("lat_min", "lat_max", "lon_min", "lon_max")])
             for name in ("region1", "region2") if isinstance(config.get("regions", {}).get(name), dict)]
    return Maps(truth["lat"].values, truth["lon"].values, titles, cases, differences, mae, mae_difference,
                spectra(config, truth, exps, scored.times, clim), case_times, boxes)


def _case_times(config: dict, scored: Scored) -> pd.DatetimeIndex:
    """Target times of the cases drawn by :func:`_case_maps` (same selection, same order)."""
    heavy, rnd = select_cases(scored.truth_mean, scored.n_cells, config["evaluation"]["n_cases"], config["seed"])
    return pd.DatetimeIndex(scored.times[heavy + ([rnd] if rnd is not None else [])])
