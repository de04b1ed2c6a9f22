"""Assembling ``metrics.json``, ``comparison.json`` and the flat ``metrics.csv`` table
(schema in docs/metrics.md, machine-checked by :data:`evaluation.report.METRICS_SCHEMA`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from evaluation.bootstrap import percentile_interval
from evaluation.compare import Bootstrap, GroupResult, Scored, apply_holm, compare, score_items
from evaluation.inputs import Group, Member, times_digest
from evaluation.probabilistic import reliability_table
from evaluation.scores import COUNT_NAMES
from evaluation.verdicts import baseline_verdict, comparison_verdicts, thr_key
from pipeline.common import cf
from pipeline.common.config import config_hash, time_periods
from pipeline.common.provenance import package_versions

SCHEMA_VERSION = 2
SEED_AGGREGATION = {
    True: "mean of the per-seed scores (CRPS, Brier score and skill of each seed's own distribution); every "
          "resample also draws each experiment's seeds with replacement (two-stage bootstrap over time blocks and "
          "training seeds); the seed-averaged probabilities are scored as 'ensemble'",
    False: "mean of per-seed scores; CRPS, Brier score and skill of a probabilistic experiment: "
           "scores of the seed-averaged probabilities; seeds fixed in every resample",
}


def seed_aggregation(boot_meta: dict) -> str:
    """How an experiment's seeds enter its scores and intervals (``bootstrap.seed_aggregation``)."""
    return SEED_AGGREGATION[bool(boot_meta.get("resample_seeds", True))]
PROBABILISTIC = {
    "crps": "CRPS of the binned distribution (uniform within a bin, exact integral), mm; "
            "the MAE for a deterministic forecast",
    "brier": "mean over scored cell-times of (p - o)^2, o = 1{truth >= threshold}; "
             "p = prob_exceed, or 1{forecast >= threshold} for a deterministic forecast",
    "bss": "1 - BS / BS_ref, BS_ref of the training-period climatological event frequency per cell and time of day",
    "reliability": "probability bins [k/10, (k+1)/10), the last closed; seed-averaged probabilities",
}
PACKAGES = ("numpy", "pandas", "scipy", "xarray", "dask", "zarr", "scores", "matplotlib", "torch")


def versions() -> dict:
    return package_versions(PACKAGES)


def num(x) -> float | None:
    """A JSON number: ``None`` for NaN and infinities."""
    x = float(x)
    return None if not np.isfinite(x) else x


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


def _stat(fn, v):
    return num(fn(v)) if np.isfinite(v).any() else None


def _spread(res: GroupResult, group: Group, thresholds, windows) -> dict:
    per_seed = [res.members[m.name] for m in group.members]
    spread = []
    for (s, thr, win, _), *vals in zip(score_items(res.point, thresholds, windows),
                                       *(score_items(p, thresholds, windows) for p in per_seed)):
        v = np.array([x[3] for x in vals], dtype=np.float64)
        spread.append((s, thr, win, v))
    return nest(spread, lambda v: {"std": _stat(np.nanstd, v), "min": _stat(np.nanmin, v),
                                   "max": _stat(np.nanmax, v)})


def model_block(group: Group, res: GroupResult, thresholds, windows, confidence: float) -> dict:
    block = {"kind": group.kind, **nest(score_items(res.point, thresholds, windows), num)}
    lo, hi = {}, {}
    for s, thr, win, samples in score_items(res.boot, thresholds, windows):
        if s in COUNT_NAMES:
            continue
        lo[(s, thr, win)], hi[(s, thr, win)] = percentile_interval(samples, confidence)
    block["intervals"] = nest(((s, t, w, (lo[(s, t, w)], hi[(s, t, w)])) for (s, t, w) in lo),
                              lambda v: [num(v[0]), num(v[1])])
    block["forecast_type"] = "probabilistic" if res.probabilistic else "deterministic"
    if res.reliability is not None:
        block["reliability"] = reliability_block(res.reliability, thresholds)
    if group.kind == "experiment":
        block["exp"] = group.name
        block["seeds"] = [m.seed for m in group.members]
        block["seeds_resampled"] = res.seeds_resampled
        block["spread"] = _spread(res, group, thresholds, windows)
        if res.ensemble is not None and len(group.members) > 1:
            # the seed-averaged distribution (one forecast), full sample, no interval
            block["ensemble"] = {k: num(v) if np.ndim(v) == 0 else [num(x) for x in v]
                                 for k, v in res.ensemble.items()}
    return block


def reliability_block(counts: np.ndarray, thresholds) -> dict:
    """``{thr: {bin_lower, bin_upper, forecast_mean, observed_frequency, count}}`` (lists over
    the probability bins; null in empty bins)."""
    out = {}
    for k, thr in enumerate(thresholds):
        table = reliability_table(counts[k])
        out[thr_key(thr)] = {key: [num(v) for v in values] for key, values in table.items()}
        out[thr_key(thr)]["count"] = [int(v) for v in table["count"]]
    return out


def model_blocks(groups: list[Group], results: dict[str, GroupResult], thresholds, windows,
                 confidence: float) -> dict:
    """``metrics.json``'s ``models``: every group, each experiment followed by its seeds."""
    models = {}
    for g in groups:
        models[g.name] = model_block(g, results[g.name], thresholds, windows, confidence)
        if g.kind == "experiment":
            for m in g.members:
                models[m.name] = {"kind": "seed", "exp": g.name, "seed": m.seed,
                                  "forecast_type": "deterministic" if m.probs is None else "probabilistic",
                                  "quantile": m.quantile,
                                  **nest(score_items(results[g.name].members[m.name], thresholds, windows), num)}
    return models


@dataclass
class Assessment:
    """Comparison rows and verdict lines of one evaluation."""
    vs_baselines: dict
    verdicts: list[str]
    primary: str = "rmse"
    comparison_rows: list[dict] | None = None
    comparison_verdicts: list[str] | None = None
    n_tests: int = 0                     # size of the Holm family of secondary comparisons


def assess(groups: list[Group], results: dict[str, GroupResult], exp: str, ref_exp: str | None,
           thresholds, windows, boot: Bootstrap, primary: str = "rmse") -> Assessment:
    """Every experiment against every baseline, and ``exp`` against ``ref_exp`` (the primary
    score decides; the other scores are secondary, Holm-adjusted)."""
    exps = [g.name for g in groups if g.kind == "experiment"]
    bases = [g.name for g in groups if g.kind == "baseline"]
    vs_baselines, verdicts = {}, []
    for e in exps:
        vs_baselines[e] = {}
        for b in bases:
            rows = compare(results[b], results[e], thresholds, windows, boot.confidence)
            vs_baselines[e][b] = rows
            verdicts.append(baseline_verdict(e, b, rows, thresholds, boot.conf_pct, primary)[0])
    out = Assessment(vs_baselines, verdicts, primary)
    if ref_exp is not None:
        rows = compare(results[ref_exp], results[exp], thresholds, windows, boot.confidence)
        alpha = 1.0 - boot.confidence
        out.n_tests = apply_holm(rows, primary, alpha)
        out.comparison_rows = rows
        out.comparison_verdicts = comparison_verdicts(exp, ref_exp, rows, thresholds, windows, boot.conf_pct,
                                                      boot.meta["samples"], boot.meta["block_days"], primary,
                                                      out.n_tests, alpha, seed_stage_text(groups, results, exp, ref_exp))
        out.verdicts = out.comparison_verdicts + verdicts
    return out


def seed_stage_text(groups: list[Group], results: dict[str, GroupResult], exp: str, ref_exp: str) -> str:
    """How the training seeds of ``ref_exp`` and ``exp`` enter the comparison's interval."""
    seeds = {g.name: len(g.members) for g in groups if g.name in (exp, ref_exp)}
    counts = f"{ref_exp} {seeds[ref_exp]}, {exp} {seeds[exp]} seeds"
    if results[exp].seeds_resampled or results[ref_exp].seeds_resampled:
        return f", training seeds resampled: {counts}"
    if seeds[exp] == seeds[ref_exp] == 1:
        return "; one training seed each: the spread between training runs is not in the interval"
    return f"; training seeds fixed: {counts}"


def comparison_json(exp: str, ref_exp: str, times, scored: Scored, boot: Bootstrap, assessment: Assessment,
                    seeds: dict[str, list[int]] | None = None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION, "a": ref_exp, "b": exp,
        "seeds": seeds,  # experiment -> its training seeds (None when not given)
        "difference": "b - a (positive: b higher)",
        "samples": {"n_times": len(times), "times_sha256": times_digest(times),
                    "identical_samples": True, "cell_times_scored": scored.sample["cell_times_scored"]},
        "bootstrap": {**boot.meta, "seed_aggregation": seed_aggregation(boot.meta)},
        "primary_score": assessment.primary,
        "multiplicity": multiplicity(assessment, boot),
        "verdict": assessment.comparison_verdicts, "scores": assessment.comparison_rows,
    }


SHORT_WAVELENGTH_CELLS = 4.0  # "short" scales of the sharpness summary: wavelengths up to 4 cells


def sharpness_block(spectra: dict) -> dict:
    """Mean RAPSD per field (truth, one seed per experiment, persistence) and, for each
    forecast, its power at wavelengths <= 4 cells relative to the truth's (1: as sharp as
    the truth; below 1: smoother)."""
    out = {"method": "mean radially averaged power spectrum (pysteps rapsd) over the scored test times; "
                     "unscored cells 0 in every field", "short_wavelength_cells": SHORT_WAVELENGTH_CELLS,
           "spectra": {}}
    truth_short = None
    if "truth" in spectra:
        freq, power = spectra["truth"]
        truth_short = float(power[(freq > 0) & (1.0 / np.where(freq > 0, freq, 1.0) <= SHORT_WAVELENGTH_CELLS)].sum())
    for name, (freq, power) in spectra.items():
        keep = freq > 0
        wl = 1.0 / freq[keep]
        entry = {"wavelength_cells": [num(v) for v in wl], "power": [num(v) for v in power[keep]]}
        if name != "truth" and truth_short:
            entry["short_scale_power_ratio"] = num(power[keep][wl <= SHORT_WAVELENGTH_CELLS].sum() / truth_short)
        out["spectra"][name] = entry
    return out


def multiplicity(assessment: Assessment, boot: Bootstrap) -> dict:
    return {"method": "Holm", "family": "every secondary comparison of b with a (all scores but the primary)",
            "n_tests": assessment.n_tests, "alpha": 1.0 - boot.confidence,
            "p_value": "two-sided, from the paired bootstrap distribution of the difference: "
                       "min(1, 2 min(#{d <= 0}, #{d >= 0}) / B); 0 means < 1/B"}


def metrics_json(config: dict, exp: str, ref_exp: str | None, times, dropped: dict, scored: Scored,
                 boot: Bootstrap, models: dict, assessment: Assessment, provenance: dict) -> dict:
    ev = config["evaluation"]
    return {
        "schema_version": SCHEMA_VERSION,
        "exp": exp,
        "reference_exp": ref_exp,
        "units": "mm / 12 h",
        "event_definition": "value >= threshold",
        "thresholds_mm": [float(t) for t in ev["thresholds_mm"]],
        "fss_windows": [int(w) for w in ev["fss_windows"]],
        "samples": {
            "n_times": len(times), "time_start": str(times[0]), "time_end": str(times[-1]),
            "times_sha256": times_digest(times), "times_dropped_not_common": dropped,
            **scored.sample,
        },
        "bootstrap": {**boot.meta, "seed_aggregation": seed_aggregation(boot.meta)},
        "primary_score": assessment.primary,
        "multiplicity": None if assessment.comparison_rows is None else multiplicity(assessment, boot),
        "probabilistic": PROBABILISTIC,
        "models": models,
        "vs_baselines": assessment.vs_baselines,
        "verdicts": assessment.verdicts,
        "provenance": provenance,
    }


INGEST_COUNTS = {"gauges": ("qc_stuck_runs", "qc_stuck_hours", "qc_frames_without_gauges"),
                 "soundings": ("qc_identical_soundings",)}  # README, "Bad data that parses"


def data_quality_block(truth, times, groups: list[Group]) -> dict:
    """What the scored frames lacked (README, "Bad data that parses"): target frames without
    any valid rain on the loss-mask cells (not scored), the processed store's frames without
    rain or upper-air analysis, each run's samples with such an input frame, and the ingest
    QC bad-data counts."""
    lm = truth["loss_mask"].values.astype(bool)
    empty = ~(truth["valid"].sel(time=times).values.astype(bool) & lm).any(axis=(1, 2))
    store = cf.json_attribute(truth.attrs, "data_quality", {}) or {}
    qc = store.get("ingest_qc", {})
    return {
        "target_frames_without_rain": int(empty.sum()),
        "target_periods_without_rain": time_periods(times[empty]),
        "store_frames": store.get("frames"),
        "store_regions": store.get("regions", {}),
        "inputs": {m.name: m.input_gaps for g in groups if g.kind == "experiment" for m in g.members},
        "ingest_qc": {kind: {k: qc[kind][k] for k in keys if k in qc.get(kind, {})}
                      for kind, keys in INGEST_COUNTS.items()},
    }


def provenance(config: dict, config_path, data, truth_attrs: dict, members: list[Member], reference) -> dict:
    return {
        "config": config_path, "config_hash": config_hash(config),
        "data": str(data), "data_config_hash": truth_attrs.get("config_hash"),
        "runs": [m.source for m in members], "reference": None if reference is None else str(reference),
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


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


def comparison_table(comparison: dict) -> pd.DataFrame:
    return pd.DataFrame(comparison["scores"]).assign(a_model=comparison["a"], b_model=comparison["b"])

