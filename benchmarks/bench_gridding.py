"""Gridding throughput: vectorised analysis vs per-field MetPy on the same inputs.

    python benchmarks/bench_gridding.py [--frames 20] [--metpy-frames 2]

Default grid (concat, 24 x 48 cells at 0.25 deg), the synthetic network size (48 sounding
stations, 400 gauges), 10 % of sounding values missing at random. Each frame is 55
sounding fields + 1 rain field. MetPy: ``metpy.interpolate.interpolate_to_points`` once per
field (stations with a value only), with the same projected coordinates and parameters.
Writes benchmarks/results/gridding.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from metpy.interpolate import interpolate_to_points

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.common.config import load_config  # noqa: E402
from pipeline.gridding.analysis import analyse, grid_points, params_from_config, project, projection_for  # noqa: E402
from pipeline.gridding.geometry import make_grid  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def network(config, n_frames, n_stations=48, n_gauges=400, seed=0):
    rng = np.random.default_rng(seed)
    r1, r2 = config["regions"]["region1"], config["regions"]["region2"]
    lat = (min(r1["lat_min"], r2["lat_min"]) - 2, max(r1["lat_max"], r2["lat_max"]) + 2)
    lon = (min(r1["lon_min"], r2["lon_min"]) - 2, max(r1["lon_max"], r2["lon_max"]) + 2)
    s = (rng.uniform(*lat, n_stations), rng.uniform(*lon, n_stations))
    g = (rng.uniform(*lat, n_gauges), rng.uniform(*lon, n_gauges))
    sv = rng.normal(0, 5, (n_frames, n_stations, 55)) + np.linspace(-50, 16000, 55)
    sv[rng.random(sv.shape) < 0.1] = np.nan
    gv = rng.gamma(0.5, 4.0, (n_frames, n_gauges, 1))
    return s, g, sv, gv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--metpy-frames", type=int, default=2)
    args = ap.parse_args(argv)
    config = load_config(ROOT / "config.yaml")
    grid = make_grid(config, "concat")
    proj = projection_for(grid)
    txy = grid_points(grid, proj)
    (slat, slon), (glat, glon), sv, gv = network(config, args.frames)
    sxy, gxy = project(proj, slat, slon), project(proj, glat, glon)
    ps, pr = params_from_config(config, "soundings"), params_from_config(config, "rain")

    t0 = time.perf_counter()
    ours = [(analyse(sxy, sv[f], txy, ps), analyse(gxy, gv[f], txy, pr)) for f in range(args.frames)]
    t_ours = time.perf_counter() - t0
    fields_ours = args.frames * 56

    t0 = time.perf_counter()
    max_rel = 0.0
    for f in range(args.metpy_frames):
        for xy, vals, p, mine in ((sxy, sv[f], ps, ours[f][0]), (gxy, gv[f], pr, ours[f][1])):
            for k in range(vals.shape[1]):
                ok = np.isfinite(vals[:, k])
                ref = interpolate_to_points(xy[ok], vals[ok, k], txy, interp_type=p.method,
                                            minimum_neighbors=p.min_neighbors, gamma=p.gamma,
                                            kappa_star=p.kappa_star, search_radius=p.search_radius_m)
                both = np.isfinite(ref) & np.isfinite(mine[:, k])
                if both.any():
                    max_rel = max(max_rel, float(np.max(np.abs(mine[both, k] - ref[both]) / np.maximum(np.abs(ref[both]), 1e-6))))
    t_metpy = time.perf_counter() - t0
    fields_metpy = args.metpy_frames * 56

    res = {
        "grid_cells": int(txy.shape[0]), "sounding_stations": int(sxy.shape[0]), "gauges": int(gxy.shape[0]),
        "method": ps.method, "vectorised_fields": fields_ours, "vectorised_s": t_ours,
        "vectorised_fields_per_s": fields_ours / t_ours, "metpy_fields": fields_metpy, "metpy_s": t_metpy,
        "metpy_fields_per_s": fields_metpy / t_metpy,
        "speedup": (fields_ours / t_ours) / (fields_metpy / t_metpy),
        "max_relative_difference_where_both_defined": max_rel,
        "note": "coverage mask applied on top in ours; compared only where both are defined",
        "machine": platform.platform(), "threads": 1,
    }
    print(f"{'':28s}{'fields':>8s}{'seconds':>10s}{'fields/s':>12s}")
    print(f"{'vectorised (pipeline)':28s}{fields_ours:8d}{t_ours:10.2f}{res['vectorised_fields_per_s']:12.1f}")
    print(f"{'MetPy per field':28s}{fields_metpy:8d}{t_metpy:10.2f}{res['metpy_fields_per_s']:12.1f}")
    print(f"speed-up {res['speedup']:.1f}x (target >= 10x); max relative difference {max_rel:.2e}")
    out = ROOT / "benchmarks" / "results" / "gridding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
