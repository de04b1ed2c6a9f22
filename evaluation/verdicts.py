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


LABELS = {"rmse": "RMSE", "mae": "MAE", "crps": "CRPS", "bias": "bias", "correlation": "correlation",
          "csi": "CSI", "pod": "POD", "far": "FAR", "success_ratio": "success ratio",
          "frequency_bias": "frequency bias", "ets": "ETS", "hk": "HK", "fss": "FSS", "brier": "Brier score",
          "bss": "Brier skill score"}


def label(row: dict) -> str:
    """``CSI >= 5 mm``, ``FSS >= 5 mm, 3 cells``, ``RMSE``."""
    out = LABELS.get(row["score"], row["score"])
    if row["threshold_mm"] is not None:
        out += f" >= {thr_key(row['threshold_mm'])} mm"
    if row.get("window") is not None:
        out += f", {row['window']} cells"
    return out


def p_text(value, n_boot: int | None = None, name: str = "p") -> str:
    """``p = 0.012``, or ``p < 0.001`` (with 1000 resamples) when no resample reached 0."""
    if value is None:
        return f"{name} n/a"
    if value == 0:
        return f"{name} < {1 / n_boot:.2g}" if n_boot else f"{name} = 0"
    return f"{name} = {value:.3f}" if value >= 0.001 else f"{name} = {value:.1e}"


def baseline_verdict(exp: str, baseline: str, rows: list[dict], thresholds, conf_pct: str,
                     primary: str = "rmse") -> tuple[str, bool]:
    """One line: does ``exp`` (b) beat ``baseline`` (a) on the primary score? Loud when it does not."""
    r = find_row(rows, primary)
    name = LABELS[primary]
    csi_better = sum(find_row(rows, "csi", t)["better"] == "b" for t in thresholds)
    csi_worse = sum(find_row(rows, "csi", t)["better"] == "a" for t in thresholds)
    detail = (f"{name} {_f(r['b'])} vs {_f(r['a'])} mm, difference {_f(r['difference'], '+.3f')} "
              f"[{_f(r['ci_low'], '+.3f')}, {_f(r['ci_high'], '+.3f')}] mm ({conf_pct} paired block bootstrap); "
              f"CSI significantly higher at {csi_better} and lower at {csi_worse} of {len(thresholds)} thresholds")
    beats = r["better"] == "b"
    if beats:
        return f"{exp} beats {baseline}: {detail}.", True
    how = "is significantly worse than" if r["better"] == "a" else "is not significantly better than"
    return f"**WARNING: {exp} does NOT beat {baseline}** ({exp} {how} {baseline} on {name}): {detail}.", False


def _primary_lines(exp_b: str, exp_a: str, r: dict, primary: str, how: str, n_boot: int) -> list[str]:
    name = LABELS[primary]
    rel, lo, hi = r["relative_pct"], r["relative_ci_low"], r["relative_ci_high"]
    if rel is None or lo is None or hi is None:
        line = (f"{exp_b} minus {exp_a} in {name}: {_f(r['difference'], '+.3f')} "
                f"[{_f(r['ci_low'], '+.3f')}, {_f(r['ci_high'], '+.3f')}] mm {how}")
    elif rel <= 0:
        line = f"{exp_b} lowers {name} by {-rel:.1f}% [{-hi:.1f}, {-lo:.1f}] {how}"
    else:
        line = f"{exp_b} raises {name} by {rel:.1f}% [{lo:.1f}, {hi:.1f}] {how}"
    sig = {"b": "significant", "a": "significant", "neither": "not significant: the interval includes 0"}[r["better"]]
    if r["better"] == "b":
        head = f"VERDICT: {exp_b} beats {exp_a} ({name} significantly lower; primary score)."
    elif r["better"] == "a":
        head = f"VERDICT: {exp_b} is worse than {exp_a} ({name} significantly higher; primary score)."
    else:
        head = f"VERDICT: no significant difference between {exp_b} and {exp_a} in {name} (primary score)."
    return [head, f"{line}; {sig} ({p_text(r.get('p_value'), n_boot)})."]


def _secondary_line(exp_b: str, exp_a: str, c: dict, n_boot: int) -> str:
    holm = c.get("p_holm")
    sig = "" if holm is None else f"; {p_text(holm, n_boot, 'Holm-adjusted p')}" + (
        " (significant)" if c.get("better_holm", "neither") != "neither" else "")
    return (f"{label(c)}: {exp_b} {_f(c['b'])} vs {exp_a} {_f(c['a'])}, difference "
            f"{_f(c['difference'], '+.3f')} [{_f(c['ci_low'], '+.3f')}, {_f(c['ci_high'], '+.3f')}]{sig}.")


def comparison_verdicts(exp_b: str, exp_a: str, rows: list[dict], thresholds, windows, conf_pct: str,
                        n_boot: int, block_days: float, primary: str = "rmse", n_tests: int | None = None,
                        alpha: float = 0.05, seed_stage: str = "") -> list[str]:
    """The verdict on the primary score, then the secondary scores with Holm-adjusted p-values.
    ``seed_stage``: how training seeds enter the interval (e.g. ", seeds resampled: 3 and 3")."""
    how = f"({conf_pct} paired block bootstrap, {n_boot} resamples, {block_days:g}-day blocks{seed_stage})"
    lines = _primary_lines(exp_b, exp_a, find_row(rows, primary), primary, how, n_boot)
    for score in ("crps", "rmse", "mae"):
        if score != primary and any(r["score"] == score for r in rows):
            lines.append(_secondary_line(exp_b, exp_a, find_row(rows, score), n_boot))
    for t in thresholds:
        lines.append(_secondary_line(exp_b, exp_a, find_row(rows, "csi", t), n_boot))
    fss = [find_row(rows, "fss", t, w) for t in thresholds for w in windows]
    key = "better_holm" if all("better_holm" in f for f in fss) else "better"
    n_b = sum(f[key] == "b" for f in fss)
    n_a = sum(f[key] == "a" for f in fss)
    holm_txt = " (Holm-adjusted)" if key == "better_holm" else ""
    lines.append(f"FSS: {exp_b} significantly higher for {n_b} and lower for {n_a} of {len(fss)} "
                 f"threshold/window pairs{holm_txt}.")
    secondary = [r for r in rows if r.get("role") == "secondary"]
    if secondary:
        better = [label(r) for r in secondary if r["better_holm"] == "b" and r["score"] != "fss"]
        worse = [label(r) for r in secondary if r["better_holm"] == "a" and r["score"] != "fss"]
        lines.append(f"Secondary scores (Holm-adjusted over {n_tests if n_tests is not None else len(secondary)} "
                     f"comparisons, family-wise level {alpha:g}): {exp_b} significantly better in "
                     f"{', '.join(better) or 'none'}; worse in {', '.join(worse) or 'none'} (FSS counted above).")
    return lines
