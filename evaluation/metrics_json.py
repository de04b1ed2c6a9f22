"""Assembling ``metrics.json``, ``comparison.json`` and the flat ``metrics.csv`` table
(schema in docs/metrics.md, machine-checked by :data:`evaluation.report.METRICS_SCHEMA`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from evaluation.bootstrap import percentile_interval
from evaluation.compare import Bootstrap, GroupResult, Scored, compare, score_items
from evaluation.inputs import Group, Member, times_digest
from evaluation.scores import COUNT_NAMES
from evaluation.verdicts import baseline_verdict, comparison_verdicts, thr_key
from pipeline.common.config import config_hash
from pipeline.common.provenance import package_versions

SCHEMA_VERSION = 1
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
    if group.kind == "experiment":
        block["exp"] = group.name
        block["seeds"] = [m.seed for m in group.members]
        block["spread"] = _spread(res, group, thresholds, windows)
    return block


def model_blocks(groups: list[Group], results: dict[str, GroupResult], thresholds, windows,
                 confidence: float) -> dict:
    """``metrics.json``'s ``models``: every group, each experiment followed by its seeds."""
    models = {}
    for g in groups:
        models[g.name] = model_block(g, results[g.name], thresholds, windows, confidence)
        if g.kind == "experiment":
            for m in g.members:
                models[m.name] = {"kind": "seed", "exp": g.name, "seed": m.seed,
                                  **nest(score_items(results[g.name].members[m.name], thresholds, windows), num)}
    return models


@dataclass
class Assessment:
    """Comparison rows and verdict lines of one evaluation."""
    vs_baselines: dict
    verdicts: list[str]
    comparison_rows: list[dict] | None = None
    comparison_verdicts: list[str] | None = None


def assess(groups: list[Group], results: dict[str, GroupResult], exp: str, ref_exp: str | None,
           thresholds, windows, boot: Bootstrap) -> Assessment:
    """Every experiment against every baseline, and ``exp`` against ``ref_exp``."""
    exps = [g.name for g in groups if g.kind == "experiment"]
    bases = [g.name for g in groups if g.kind == "baseline"]
    vs_baselines, verdicts = {}, []
    for e in exps:
        vs_baselines[e] = {}
        for b in bases:
            rows = compare(results[b], results[e], thresholds, windows, boot.confidence)
            vs_baselines[e][b] = rows
            verdicts.append(baseline_verdict(e, b, rows, thresholds, boot.conf_pct)[0])
    out = Assessment(vs_baselines, verdicts)
    if ref_exp is not None:
        rows = compare(results[ref_exp], results[exp], thresholds, windows, boot.confidence)
        out.comparison_rows = rows
        out.comparison_verdicts = comparison_verdicts(exp, ref_exp, rows, thresholds, windows, boot.conf_pct,
                                                      boot.meta["samples"], boot.meta["block_days"])
        out.verdicts = out.comparison_verdicts + verdicts
    return out


def comparison_json(exp: str, ref_exp: str, times, scored: Scored, boot: Bootstrap, assessment: Assessment) -> dict:
    return {
        "schema_version": SCHEMA_VERSION, "a": ref_exp, "b": exp,
        "difference": "b - a (positive: b higher)",
        "samples": {"n_times": len(times), "times_sha256": times_digest(times),
                    "identical_samples": True, "cell_times_scored": scored.sample["cell_times_scored"]},
        "bootstrap": {**boot.meta, "seed_aggregation": "mean of per-seed scores"},
        "verdict": assessment.comparison_verdicts, "scores": assessment.comparison_rows,
    }


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
        "bootstrap": dict(boot.meta),
        "models": models,
        "vs_baselines": assessment.vs_baselines,
        "verdicts": assessment.verdicts,
        "provenance": provenance,
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

