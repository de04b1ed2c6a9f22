"""Benchmark of the nature run: generation time and rain statistics.

Measures, on the default config (2 years, 48 sounding stations, 400 gauges):
- wall time of one full run (all months + truth.zarr, 2 worker processes);
- wall time of the same months as 24 separate ``--month`` jobs (one process each, in turn);
- rain statistics of the gauge files: fraction of dry 12 h windows (< 0.1 mm), 95th and
  99th percentiles of wet 12 h totals, annual totals;
- lagged correlation (truth) of region-2 rain at t with region-1 rain in the next 12 h,
  deseasonalised, in both worlds.

Run: ``python benchmarks/bench_synthetic.py [--out-dir DIR] [--skip-months]``.
Prints a table and writes benchmarks/results/synthetic.json.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


CPU_S: dict[str, float] = {}  # CPU seconds (user + system) of the child processes, per label


def timed(cmd: list[str], label: str | None = None) -> float:
    """Wall seconds of a command; its CPU seconds are added to CPU_S[label] (the machine is
    shared, so CPU time is the steadier figure)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label:
        CPU_S[label] = CPU_S.get(label, 0.0) + (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dt


def rain_stats(raw: Path) -> dict:
    totals = []
    annual = []
    for csv in sorted((raw / "gauges").glob("????-??.csv")):
        df = pd.read_csv(csv)
        df = df[(df.rain_mm >= 0) & (df.rain_mm <= 150)]  # drop the planted bad values
        df["time"] = pd.to_datetime(df.time)
        # 12 h windows ending at 00/12 UTC: hours ending in (t - 12 h, t]
        df["window"] = df.time.dt.ceil("12h")
        g = df.groupby(["station", "window"]).rain_mm.agg(["sum", "count"])
        totals.append(g[g["count"] == 12]["sum"].to_numpy())
        annual.append(df.rain_mm.sum() / df.station.nunique())
    r = np.concatenate(totals)
    wet = r[r >= 0.1]
    return {"windows": int(r.size), "dry_fraction": float((r < 0.1).mean()),
            "wet_p50_mm": float(np.percentile(wet, 50)), "wet_p95_mm": float(np.percentile(wet, 95)),
            "wet_p99_mm": float(np.percentile(wet, 99)), "frac_windows_over_30mm": float((r > 30).mean()),
            "mean_annual_mm": float(sum(annual) / (len(annual) / 12))}


def lag_corr(truth: Path) -> float:
    ds = xr.open_zarr(truth)
    m1 = ds.region1_mask.values.astype(bool)
    rain = ds.rain_mm.values
    r1, r2 = rain[:, m1].mean(1), rain[:, ~m1].mean(1)

    def anom(x):
        return x - pd.Series(x).rolling(61, center=True, min_periods=1).mean().to_numpy()

    return float(np.corrcoef(anom(r2)[:-1], anom(r1)[1:])[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--skip-months", action="store_true", help="skip the 24 --month jobs")
    args = ap.parse_args()
    base = Path(args.out_dir or tempfile.mkdtemp(prefix="bench_synthetic_"))
    res: dict = {}
    full = base / "advective"
    res["full_run_s"] = timed([PY, "-m", "pipeline.nature_run", "--out", str(full), "--threads", "2"], "full_run")
    res["full_run_rerun_s"] = timed([PY, "-m", "pipeline.nature_run", "--out", str(full), "--threads", "2"])
    if not args.skip_months:
        months = [str(m) for m in pd.period_range("2020-01", "2021-12", freq="M")]
        t = 0.0
        for m in months:
            t += timed([PY, "-m", "pipeline.nature_run", "--out", str(base / "months"), "--month", m],
                       "month_jobs_24")
        res["month_jobs_24_s"] = t
        res["month_jobs_over_full"] = t / res["full_run_s"]
        same = all((base / "months" / "gauges" / f"{m}.csv").read_bytes()
                   == (full / "gauges" / f"{m}.csv").read_bytes() for m in months)
        res["month_jobs_identical_to_full"] = bool(same)
    ctrl = base / "control"
    res["full_run_control_s"] = timed([PY, "-m", "pipeline.nature_run", "--out", str(ctrl), "--world", "control",
                                       "--threads", "2"])
    res["cpu_s"] = dict(CPU_S)
    if "month_jobs_24" in CPU_S:
        res["cpu_month_jobs_over_full"] = CPU_S["month_jobs_24"] / CPU_S["full_run"]
    res["rain_gauges_advective"] = rain_stats(full)
    res["lag_corr_advective"] = lag_corr(full / "truth.zarr")
    res["lag_corr_control"] = lag_corr(ctrl / "truth.zarr")
    res["sizes_mb"] = {d: sum(p.stat().st_size for p in (full / d).rglob("*") if p.is_file()) / 1e6
                       for d in ("soundings", "gauges", "truth", "truth.zarr")}
    out = REPO / "benchmarks" / "results" / "synthetic.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"{'quantity':45s} value")
    for k, v in res.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                print(f"{k + '.' + kk:45s} {vv:.4g}" if isinstance(vv, float) else f"{k + '.' + kk:45s} {vv}")
        else:
            print(f"{k:45s} {v:.4g}" if isinstance(v, float) else f"{k:45s} {v}")
    print(f"written {out}")


if __name__ == "__main__":
    main()
