"""Verdict lines: does an experiment beat a baseline, and does exp b beat exp a."""
from __future__ import annotations

import numpy as np


def thr_key(thr: float) -> str:
    return f"{float(thr):g}"


def _f(value, spec: str = ".3f") -> str:
    """Format a score that may be undefined (None/NaN, e.g. CSI with no events) as 'n/a'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return format(value, spec)


def find_row(rows, score, thr=None, win=None):
    for r in rows:
        if r["score"] == score and r["threshold_mm"] == (None if thr is None else float(thr)) and r["window"] == win:
            return r
    raise KeyError((score, thr, win))


def baseline_verdict(exp: str, baseline: str, rows: list[dict], thresholds, conf_pct: str) -> tuple[str, bool]:
    """One line: does ``exp`` (b) beat ``baseline`` (a)? Loud when it does not."""
    r = find_row(rows, "rmse")
    csi_better = sum(find_row(rows, "csi", t)["better"] == "b" for t in thresholds)
    csi_worse = sum(find_row(rows, "csi", t)["better"] == "a" for t in thresholds)
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
    r = find_row(rows, "rmse")
    how = f"({conf_pct} paired block bootstrap, {n_boot} resamples, {block_days:g}-day blocks)"
    rel, lo, hi = r["relative_pct"], r["relative_ci_low"], r["relative_ci_high"]
    if rel <= 0:
        line = f"{exp_b} lowers RMSE by {-rel:.1f}% [{-hi:.1f}, {-lo:.1f}] {how}"
    else:
        line = f"{exp_b} raises RMSE by {rel:.1f}% [{lo:.1f}, {hi:.1f}] {how}"
    sig = {"b": "significant", "a": "significant", "neither": "not significant: the interval includes 0"}[r["better"]]
    lines = [f"{line}; {sig}."]
    for t in thresholds:
        c = find_row(rows, "csi", t)
        lines.append(f"CSI (>= {thr_key(t)} mm): {exp_b} {_f(c['b'])} vs {exp_a} {_f(c['a'])}, difference "
                     f"{_f(c['difference'], '+.3f')} [{_f(c['ci_low'], '+.3f')}, {_f(c['ci_high'], '+.3f')}]"
                     f"{'' if c['better'] == 'neither' else ' (significant)'}.")
    fss = [find_row(rows, "fss", t, w) for t in thresholds for w in windows]
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
