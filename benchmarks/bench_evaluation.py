"""Benchmark: block bootstrap by re-weighting per-time sufficient statistics versus
recomputing every score from the resampled fields, on the same inputs in the same run.

    python benchmarks/bench_evaluation.py

Prints a table and writes benchmarks/results/evaluation.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from evaluation.bootstrap import block_bootstrap_weights
from evaluation.scores import Verifier, scores_from_stats

THRESHOLDS = [0.1, 5.0, 15.0, 30.0]
WINDOWS = [1, 3, 5, 9]


def main():
    rng = np.random.default_rng(0)
    shape = (232, 24, 24)  # one test period of 12-hourly frames on the 0.25 deg region-1 grid
    obs = np.maximum(0, rng.gamma(0.5, 8.0, shape) - 1).astype(np.float32)
    fcst = np.maximum(0, obs + rng.normal(0, 3, shape)).astype(np.float32)
    mask = np.ones(shape, bool)

    t0 = time.perf_counter()
    v = Verifier(THRESHOLDS, WINDOWS, shape[1:]).accumulate(fcst, obs, mask)
    t_score = time.perf_counter() - t0

    n_fast, n_slow = 1000, 20
    w = block_bootstrap_weights(shape[0], 10, n_fast, np.random.default_rng(1))
    t0 = time.perf_counter()
    fast = scores_from_stats(v.stats(), w)
    t_fast = (time.perf_counter() - t0) / n_fast

    t0 = time.perf_counter()
    slow_rmse = []
    for b in range(n_slow):
        idx = np.repeat(np.arange(shape[0]), w[b].astype(int))
        s = scores_from_stats(Verifier(THRESHOLDS, WINDOWS, shape[1:]).accumulate(fcst[idx], obs[idx], mask[idx]).stats())
        slow_rmse.append(s["rmse"])
    t_slow = (time.perf_counter() - t0) / n_slow
    np.testing.assert_allclose(np.array(slow_rmse), fast["rmse"][:n_slow], rtol=1e-9)

    res = {
        "frames": shape[0], "grid": list(shape[1:]), "thresholds": len(THRESHOLDS), "windows": len(WINDOWS),
        "scoring_seconds_per_frame": t_score / shape[0],
        "bootstrap_seconds_per_resample_reweighted": t_fast,
        "bootstrap_seconds_per_resample_recomputed": t_slow,
        "speedup": t_slow / t_fast,
    }
    print(f"{'step':48s} {'seconds':>12s}")
    print(f"{'score one frame (all scores)':48s} {res['scoring_seconds_per_frame']:12.6f}")
    print(f"{'one resample, re-weighted per-time statistics':48s} {t_fast:12.6f}")
    print(f"{'one resample, recomputed from fields':48s} {t_slow:12.6f}")
    print(f"{'speed-up (same inputs, same run)':48s} {res['speedup']:12.1f}x")
    out = Path(__file__).resolve().parent / "results" / "evaluation.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
