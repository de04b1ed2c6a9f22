"""Skill by flow regime: exp b against the reference exp a in strata of the analysed
steering wind (``metrics.json``'s ``flow_regimes`` block, docs/metrics.md).

Every scored test target frame ``t`` is classified by the steering wind of its forecast's
analysis time, the last input frame ``t - lead_steps * step_hours`` (never the target
frame): the wind at ``evaluation.advection_level_hpa`` averaged over the whole joined grid
(:mod:`evaluation.upstream`).

- Direction sectors N, E, S, W (where the wind blows from, 90 degrees each); the sector of
  flow from region 2 towards region 1 follows from the side of region 1 where region 2 lies
  (region 2 west of region 1: westerly flow, sector W).
- Speed terciles ``low``, ``mid``, ``high``, split at the terciles of the classified test
  frames' speeds (``low``: speed <= first tercile; ``high``: above the second).

In each stratum the primary score (``evaluation.primary_score``) of both experiments is
recomputed from the per-time rows of the stratum's frames (for a probabilistic experiment
the CRPS of its seed-averaged distribution, exactly as in the overall comparison), and
the relative difference ``100 (b - a) / a`` gets a paired block-bootstrap interval that
resamples the stratum's own frames (blocks of ``block_frames`` consecutive frames of the
stratum, in time order; the config's samples, scheme and seed). A stratum with fewer
frames than one block has scores but no interval, and is not ranked in the verdict.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.bootstrap import block_bootstrap_weights, paired_difference
from evaluation.compare import Scored, bootstrap_groups, seed_key
from evaluation.inputs import Group
from evaluation.upstream import SECTOR_FROM_SIDE, SECTORS, Upstream, along_axis, sector_of
from evaluation.verdicts import LABELS

TERCILES = ("low", "mid", "high")


def _num(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else x


def analysis_wind(up: Upstream, times: pd.DatetimeIndex, lead_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """The steering wind ``(u, v)`` at the analysis time ``t - lead_hours`` of each target
    time; NaN where that frame is not in the store or has no upper-air analysis."""
    pos = up.times.get_indexer(pd.DatetimeIndex(times) - pd.Timedelta(hours=lead_hours))
    ok = pos >= 0
    ok[ok] = up.analysed[pos[ok]]
    u = np.where(ok, up.u[np.maximum(pos, 0)], np.nan)
    v = np.where(ok, up.v[np.maximum(pos, 0)], np.nan)
    return u, v


def speed_terciles(u, v) -> tuple[np.ndarray, list[float | None]]:
    """Tercile label of each wind's speed (``""`` where not finite) and the two edges (m/s)."""
    speed = np.hypot(u, v)
    ok = np.isfinite(speed)
    out = np.full(speed.shape, "", dtype=object)
    if not ok.any():
        return out, [None, None]
    e1, e2 = np.quantile(speed[ok], [1.0 / 3.0, 2.0 / 3.0])
    out[ok & (speed <= e1)] = "low"
    out[ok & (speed > e1) & (speed <= e2)] = "mid"
    out[ok & (speed > e2)] = "high"
    return out, [float(e1), float(e2)]


def _wind_summary(u, v, side) -> dict:
    if len(u) == 0:
        return {"mean_u_ms": None, "mean_v_ms": None, "mean_speed_ms": None, "mean_along_axis_ms": None}
    return {"mean_u_ms": _num(np.mean(u)), "mean_v_ms": _num(np.mean(v)), "mean_speed_ms": _num(np.mean(np.hypot(u, v))),
            "mean_along_axis_ms": _num(np.mean(along_axis(u, v, side)))}


def stratum_scores(scored: Scored, ga: Group, gb: Group, frames: np.ndarray, primary: str, boot: dict) -> dict:
    """Primary score of a (reference) and b on ``frames`` (indices into ``scored.times``) and
    the paired block-bootstrap interval of their difference, resampling these frames."""
    n = len(frames)
    out = {"n_frames": n, "n_cell_times": int(scored.n_cells[frames].sum()) if n else 0,
           "a": None, "b": None, "difference": None, "ci_low": None, "ci_high": None, "relative_pct": None,
           "relative_ci_low": None, "relative_ci_high": None, "p_value": None, "interval": n >= boot["block_frames"]}
    if n == 0:
        return out
    rng = np.random.default_rng(boot["seed"])
    weights = block_bootstrap_weights(n, boot["block_frames"], boot["samples"], rng, boot["scheme"])
    res = bootstrap_groups(scored, [ga, gb], weights, frames, resample_seeds=seed_key(boot))
    ra, rb = res[ga.name], res[gb.name]
    d = paired_difference(ra.boot[primary], rb.boot[primary], ra.point[primary], rb.point[primary],
                          boot["confidence"], relative=True)
    out.update(a=_num(ra.point[primary]), b=_num(rb.point[primary]), difference=_num(d["difference"]),
               relative_pct=_num(d["relative_pct"]))
    if out["interval"]:
        out.update(ci_low=_num(d["ci_low"]), ci_high=_num(d["ci_high"]), p_value=_num(d["p_value"]),
                   relative_ci_low=_num(d["relative_ci_low"]), relative_ci_high=_num(d["relative_ci_high"]))
    return out


def _strata(labels, names, scored, ga, gb, primary, boot, u, v, side) -> dict:
    out = {}
    for name in names:
        frames = np.flatnonzero(labels == name)
        out[name] = {**stratum_scores(scored, ga, gb, frames, primary, boot),
                     **_wind_summary(u[frames], v[frames], side)}
    return out


def regime_block(scored: Scored, ga: Group, gb: Group, u: np.ndarray, v: np.ndarray, side: str, boot: dict,
                 primary: str, level_hpa: int, lead_hours: float) -> dict:
    """``flow_regimes``: ``u``, ``v`` (m/s) is the analysed steering wind of each scored time
    (NaN: unclassified); ``side`` the side of region 1 where region 2 lies; ``boot`` the
    bootstrap settings (``metrics.json``'s ``bootstrap`` block)."""
    sectors = sector_of(u, v)
    terciles, edges = speed_terciles(u, v)
    home = SECTOR_FROM_SIDE[side]
    block = {
        "score": primary, "a": ga.name, "b": gb.name, "difference": "b - a; relative_pct = 100 (b - a) / a",
        "level_hpa": int(level_hpa),
        "steering": f"u, v at {level_hpa} hPa (m/s), mean over every cell of the joined grid (both regions), "
                    f"at the analysis time: target time - {lead_hours:g} h",
        "region2_side": side, "sector_from_region2": home,
        "sector_definition": "direction the wind blows from: N [315, 45), E [45, 135), S [135, 225), W [225, 315) deg",
        "tercile_definition": "low: speed <= first tercile edge; mid: <= second; high: above (terciles of the "
                              "classified test frames' speeds)",
        "bootstrap": {k: boot[k] for k in ("samples", "block_frames", "scheme", "confidence", "seed")}
        | {"resample_seeds": seed_key(boot) is not None}
        | {"resampling": "within each stratum: blocks of block_frames consecutive frames of the stratum "
                         "(time order); no interval for a stratum shorter than one block"},
        "n_frames": int(len(u)), "n_unclassified": int((sectors == "").sum()),
        "speed_tercile_edges_ms": edges,
        "sectors": _strata(sectors, SECTORS, scored, ga, gb, primary, boot, u, v, side),
        "speed_terciles": _strata(terciles, TERCILES, scored, ga, gb, primary, boot, u, v, side),
    }
    block.update(regime_verdict(block))
    return block


def flow_regimes(config: dict, up: Upstream, scored: Scored, ga: Group, gb: Group, boot: dict) -> dict:
    """:func:`regime_block` with the winds of ``up`` at each scored time's analysis time."""
    fr = config["frames"]
    lead_hours = float(fr["lead_steps"] * fr["step_hours"])
    u, v = analysis_wind(up, scored.times, lead_hours)
    return regime_block(scored, ga, gb, u, v, up.side, boot, config["evaluation"]["primary_score"],
                        up.level_hpa, lead_hours)


def regime_verdict(block: dict) -> dict:
    """``verdict`` (one line), ``largest_gain_from_region2`` and ``interval_excludes_zero``:
    is the relative difference b - a most negative, among the sectors with an interval, for
    flow from region 2 towards region 1, and does that stratum's interval exclude 0?"""
    a, b, name, home = block["a"], block["b"], LABELS[block["score"]], block["sector_from_region2"]
    sectors = block["sectors"]
    ranked = {k: s["relative_pct"] for k, s in sectors.items() if s["interval"] and s["relative_pct"] is not None}
    r = sectors[home]
    if home not in ranked:
        why = (f"fewer than one bootstrap block ({block['bootstrap']['block_frames']})" if not r["interval"]
               else f"{name} undefined there")
        return {"verdict": f"No verdict on flow from region 2 towards region 1 ({home}): {r['n_frames']} scored "
                           f"frames, {why}.",
                "largest_gain_from_region2": None, "interval_excludes_zero": None}
    best = min(ranked, key=ranked.get)
    largest = ranked[home] <= ranked[best]
    lo, hi = r["relative_ci_low"], r["relative_ci_high"]
    excludes = lo is not None and hi is not None and (lo > 0 or hi < 0)
    others = ", ".join(f"{k} {v:+.1f}% ({sectors[k]['n_frames']} frames)" for k, v in ranked.items() if k != home)
    answer = "yes" if largest else f"no (largest in {best}: {ranked[best]:+.1f}%)"
    if len(ranked) == 1:
        answer = "yes, trivially: the only sector with at least one bootstrap block of frames"
    ci = f"[{lo:+.1f}, {hi:+.1f}]" if lo is not None and hi is not None else "[n/a]"
    line = (f"Gain largest for flow from region 2 towards region 1 ({home}): {answer}. {b} - {a} {name} there "
            f"{r['relative_pct']:+.1f}% {ci} over {r['n_frames']} frames; interval "
            f"{'excludes' if excludes else 'includes'} 0. Other sectors: {others or 'none with an interval'}.")
    return {"verdict": line, "largest_gain_from_region2": bool(largest), "interval_excludes_zero": bool(excludes)}
