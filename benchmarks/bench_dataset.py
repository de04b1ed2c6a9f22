"""Dataset assembly: build time and peak memory for 2 and 8 years of gridded fragments.

    python benchmarks/bench_dataset.py [--years 2 8] [--threads 2] [--workdir DIR]

Random monthly fragments of the default concat grid (24 x 48 cells, 56 channels, 2 frames
a day) are written once, then ``python -m pipeline.dataset --grid concat`` runs in a fresh
process per period; its peak resident memory (process tree, sampled every 20 ms) and wall
time are reported. Flat peak memory across periods shows the build streams the data.
Writes benchmarks/results/dataset.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.common.config import load_config, month_frame_times  # noqa: E402
from pipeline.gridding.cli import write_fragment  # noqa: E402
from pipeline.gridding.geometry import channel_names, make_grid  # noqa: E402


def bench_config(folder: Path, years: int) -> Path:
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    end = pd.Period("2020-01", "M") + 12 * years - 1
    n_days = (end.end_time.normalize() - pd.Timestamp("2020-01-01")).days + 1
    t_end = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(n_days * 0.7))
    v_end = t_end + pd.Timedelta(days=int(n_days * 0.15))
    d = lambda t: t.strftime("%Y-%m-%d")  # noqa: E731
    base["period"] = {"start": "2020-01", "end": str(end)}
    base["splits"] = {"train": {"start": "2020-01-01", "end": d(t_end)},
                      "val": {"start": d(t_end + pd.Timedelta(days=5)), "end": d(v_end)},
                      "test": {"start": d(v_end + pd.Timedelta(days=5)), "end": d(end.end_time)}}
    path = folder / f"config_{years}y.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def make_fragments(config: dict, months: list[str], folder: Path) -> list[str]:
    grid = make_grid(config, "concat")
    channels = channel_names(config)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in months:
        p = folder / f"{m}.nc"
        if not p.exists():
            rng = np.random.default_rng(int(m.replace("-", "")))
            t = month_frame_times(m)
            x = rng.normal(10.0, 5.0, (t.size, len(channels), *grid.shape)).astype(np.float32)
            x[:, -1] = rng.gamma(0.4, 5.0, (t.size, *grid.shape))
            x[rng.random(x.shape) < 0.05] = np.nan
            write_fragment(xr.Dataset({"x": (("time", "channel", "lat", "lon"), x)},
                                      coords={"time": t.values, "channel": np.asarray(channels, object),
                                              "lat": grid.lat, "lon": grid.lon}), p)
        paths.append(str(p))
    return paths


def run_measured(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    err = proc.stderr.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return time.perf_counter() - t0, peak / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="where fragments and stores go (default: a temp dir, removed)")
    args = ap.parse_args(argv)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_dataset_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for years in args.years:
            cfg_path = bench_config(work, years)
            config = load_config(cfg_path)
            months = [str(m) for m in pd.period_range(config["period"]["start"], config["period"]["end"], freq="M")]
            t0 = time.perf_counter()
            paths = make_fragments(config, months, work / "gridded")
            t_frag = time.perf_counter() - t0
            out = work / f"concat_{years}y.zarr"
            shutil.rmtree(out, ignore_errors=True)
            wall, peak = run_measured([sys.executable, "-m", "pipeline.dataset", "--config", str(cfg_path),
                                       "--grid", "concat", "--out", str(out), "--stats-out",
                                       str(work / f"stats_{years}y.json"), "--threads", str(args.threads), *paths])
            frames = sum(len(month_frame_times(m)) for m in months)
            in_mb = frames * 56 * 24 * 48 * 4 / 2**20
            out_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
            rows.append({"years": years, "months": len(months), "frames": frames, "input_uncompressed_mb": in_mb,
                         "build_s": wall, "peak_rss_mb": peak, "zarr_mb": out_mb, "fragment_write_s": t_frag})
            shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'years':>5s}{'frames':>8s}{'data MB':>10s}{'build s':>9s}{'peak RSS MB':>13s}{'zarr MB':>9s}")
    for r in rows:
        print(f"{r['years']:5d}{r['frames']:8d}{r['input_uncompressed_mb']:10.0f}{r['build_s']:9.1f}"
              f"{r['peak_rss_mb']:13.0f}{r['zarr_mb']:9.0f}")
    if len(rows) > 1:
        print(f"peak memory ratio {rows[-1]['years']}y / {rows[0]['years']}y = "
              f"{rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f} for "
              f"{rows[-1]['frames'] / rows[0]['frames']:.1f}x the data")
    res = {"rows": rows, "threads": args.threads, "grid": "concat 24x48, 56 channels",
           "machine": platform.platform(), "cpus": psutil.cpu_count()}
    out = ROOT / "benchmarks" / "results" / "dataset.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
