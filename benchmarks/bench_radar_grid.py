"""Radar ingest + QC + CAPPI gridding throughput on look-alike nature-run volumes.

    python benchmarks/bench_radar_grid.py [--hours 48] [--radars 2] [--workdir DIR]

Writes CfRadial PPI volumes shaped like the default radar nature run's (6-minute steps,
``--radars`` radars inside a 64 x 64 km grid, 3 sweeps of 360 rays x 80 gates of 500 m, DBZH,
ZDR, PHIDP, RHOHV, KDP absent in 30 % of the volumes so the PHIDP->KDP path runs) with
``pyart.testing.make_empty_ppi_radar`` + ``pyart.io.write_cfradial`` (writing is not timed),
then times ``radar.grid.build`` (read, QC, grid, merge) and the store write.
Writes benchmarks/results/radar_grid.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]

ORIGIN = (50.0, 8.0)


def lookalike_volume(path: Path, radar_id: str, lat: float, lon: float, when: str, seed: int,
                     kdp: bool = True, ngates: int = 80, nrays: int = 360, elevations=(0.5, 1.5, 3.0)):
    """One CfRadial PPI volume with a moving rain cell, masked where there is no echo."""
    import pyart

    rng = np.random.default_rng(seed)
    r = pyart.testing.make_empty_ppi_radar(ngates, nrays, len(elevations))
    r.range["data"] = (np.arange(ngates) * 500.0 + 250.0).astype("float32")
    r.fixed_angle["data"] = np.asarray(elevations, "float32")
    r.elevation["data"] = np.repeat(np.asarray(elevations, "float32"), nrays)
    r.azimuth["data"] = np.tile(np.arange(nrays, dtype="float32") * 360.0 / nrays, len(elevations))
    r.latitude["data"] = np.array([lat]); r.longitude["data"] = np.array([lon]); r.altitude["data"] = np.array([200.0])
    r.time["units"] = f"seconds since {when}Z"
    r.metadata["instrument_name"] = radar_id
    rr = r.range["data"][None, :] / 1000.0
    az = np.deg2rad(r.azimuth["data"])[:, None]
    x, y = rr * np.sin(az), rr * np.cos(az)
    cx, cy = rng.uniform(-20, 20, 2)
    dbz = 50.0 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 200.0) + rng.normal(0, 1, x.shape)
    echo = dbz > 5
    zdr = np.clip(0.05 * dbz - 0.5, 0, None) + rng.normal(0, 0.1, x.shape)
    kd = np.clip((dbz - 30) * 0.1, 0, None)
    phidp = np.cumsum(2 * kd * 0.5, axis=1) + 20.0 + rng.normal(0, 1, x.shape)
    rho = 0.98 + rng.normal(0, 0.01, x.shape)

    def fld(name, units, a):
        return {"data": np.ma.masked_array(a.astype("float32"), mask=~echo), "units": units,
                "_FillValue": -9999.0, "long_name": name}

    r.fields = {"DBZH": fld("DBZH", "dBZ", dbz), "ZDR": fld("ZDR", "dB", zdr), "PHIDP": fld("PHIDP", "degrees", phidp),
                "RHOHV": fld("RHOHV", "1", rho)}
    if kdp:
        r.fields["KDP"] = fld("KDP", "deg/km", kd)
    path.parent.mkdir(parents=True, exist_ok=True)
    pyart.io.write_cfradial(str(path), r)


def make_raw(raw: Path, hours: float, radars: int, seed: int = 0) -> int:
    import pandas as pd

    sites = [("RAD1", ORIGIN[0] - 0.1, ORIGIN[1] - 0.15), ("RAD2", ORIGIN[0] + 0.1, ORIGIN[1] + 0.15)][:radars]
    times = pd.date_range("2024-06-01", periods=int(hours * 10), freq="6min")
    n = 0
    for i, t in enumerate(times):
        for j, (rid, lat, lon) in enumerate(sites):
            p = raw / rid / f"{rid}_{t:%Y%m%d_%H%M%S}.nc"
            lookalike_volume(p, rid, lat, lon, t.strftime("%Y-%m-%dT%H:%M:%S"), seed + 1000 * j + i,
                             kdp=(i * 7 + j) % 10 >= 3)
            n += 1
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=48.0)
    ap.add_argument("--radars", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--raw", default=None, help="an existing raw folder (e.g. the radar nature run's) instead of "
                                                "look-alike volumes; gridded with --config's radar.grid")
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    args = ap.parse_args(argv)
    from pipeline.common.config import load_config
    from radar import grid

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_radar_"))
    config = load_config(args.config)
    if args.raw:
        raw = Path(args.raw)
        n = sum(1 for p in raw.rglob("*.nc") if p.parent.name != "gauges")
        source = f"existing raw folder ({raw.name})"
    else:
        raw = work / "raw"
        n = make_raw(raw, args.hours, args.radars) if not raw.is_dir() else sum(1 for _ in raw.rglob("*.nc"))
        config["radar"]["grid"] = {**config["radar"].get("grid", {}), "origin": {"lat": ORIGIN[0], "lon": ORIGIN[1]}}
        source = f"look-alike volumes, {args.radars} radars, {args.hours} h"
    t0, c0 = time.perf_counter(), time.process_time()
    ds = grid.build(config, raw, show_progress=False)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    grid.write(ds, work / "cappi.zarr")
    t_write = time.perf_counter() - t1
    res = {
        "source": source, "volumes": n, "steps": int(ds.sizes["time"]),
        "grid": [int(ds.sizes[d]) for d in ("height", "y", "x")],
        "cpu_s": round(time.process_time() - c0, 2),  # this process's CPU time (the machine is shared)
        "build_s": round(t_build, 2), "write_s": round(t_write, 2), "total_s": round(t_build + t_write, 2),
        "volumes_per_s": round(n / (t_build + t_write), 1),
        "s_per_volume": round((t_build + t_write) / n, 3),
        "load_average_1min": round(__import__("os").getloadavg()[0], 1),
        "coverage_fraction": float(ds.coverage.mean()),
        "qc_removed_gates": json.loads(ds.attrs["qc_removed_gates"]),
        "kdp_derived_volumes": int(ds.attrs["kdp_derived_volumes"]),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "target_s": 60,
    }
    out = ROOT / "benchmarks" / "results" / "radar_grid.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
