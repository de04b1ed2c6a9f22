"""Small configs and interim files in the layout of docs/contracts.md section 2."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from pipeline.common.config import load_config, month_frame_times

ROOT_CONFIG = "config.yaml"


def write_config(tmp_path, overrides: dict | None = None, name: str = "config.yaml"):
    """A small valid config: 4x4 degree regions at 0.5 degree, three months."""
    cfg = {
        "period": {"start": "2020-01", "end": "2020-03"},
        "splits": {"train": {"start": "2020-01-01", "end": "2020-01-31"},
                   "val": {"start": "2020-02-05", "end": "2020-02-29"},
                   "test": {"start": "2020-03-05", "end": "2020-03-31"}},
        "regions": {"region1": {"lat_min": 30.0, "lat_max": 34.0, "lon_min": 114.0, "lon_max": 118.0},
                    "region2": {"lat_min": 30.0, "lat_max": 34.0, "lon_min": 110.0, "lon_max": 114.0},
                    "region2_side": "west"},
        "grid": {"resolution_deg": 0.5},
        "evaluation": {"fss_windows": [1, 3, 5]},  # FSS windows must fit the 8 x 8 region-1 grid
    }
    from pipeline.common.config import deep_update

    cfg = deep_update(cfg, overrides or {})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path, load_config(path)


def analytic(lat, lon, k: int):
    """A smooth field, different for each channel index k."""
    return 10.0 + 0.5 * k + 3.0 * np.sin(np.radians(20 * lat + 3 * k)) * np.cos(np.radians(15 * lon - 2 * k))


def make_interim(config: dict, month: str, seed: int = 0, n_stations: int = 30, n_gauges: int = 300,
                 p_missing: float = 0.1, skip_frames=()):
    """(soundings, gauges) datasets of one month in the contract layout."""
    rng = np.random.default_rng(seed)
    r1, r2 = config["regions"]["region1"], config["regions"]["region2"]
    lat_lo, lat_hi = min(r1["lat_min"], r2["lat_min"]) - 1, max(r1["lat_max"], r2["lat_max"]) + 1
    lon_lo, lon_hi = min(r1["lon_min"], r2["lon_min"]) - 1, max(r1["lon_max"], r2["lon_max"]) + 1
    s_lat, s_lon = rng.uniform(lat_lo, lat_hi, n_stations), rng.uniform(lon_lo, lon_hi, n_stations)
    frames = month_frame_times(month)
    levels = np.asarray(config["levels_hpa"], float)
    rows = []
    for i, t in enumerate(frames):
        if i in skip_frames:
            continue
        # launches up to 1 h before the nominal time, as real ones are
        for s in range(n_stations):
            rows.append((t - pd.Timedelta(minutes=int(rng.integers(0, 60))), f"ST{s:03d}", s_lat[s], s_lon[s]))
    n_p = len(rows)
    data = {}
    for vi, var in enumerate(config["variables"]):
        vals = np.empty((n_p, levels.size), np.float32)
        for li in range(levels.size):
            k = vi * levels.size + li
            vals[:, li] = analytic(np.array([r[2] for r in rows]), np.array([r[3] for r in rows]), k)
        vals[rng.random(vals.shape) < p_missing] = np.nan
        data[var] = (("profile", "level"), vals)
    snd = xr.Dataset(data, coords={
        "time": ("profile", np.array([r[0] for r in rows], dtype="datetime64[ns]")),
        "station": ("profile", np.array([r[1] for r in rows], dtype=object)),
        "lat": ("profile", np.array([r[2] for r in rows])),
        "lon": ("profile", np.array([r[3] for r in rows])),
        "level": ("level", levels)}, attrs={"Conventions": "CF-1.8"})
    g_lat, g_lon = rng.uniform(lat_lo, lat_hi, n_gauges), rng.uniform(lon_lo, lon_hi, n_gauges)
    rain = rng.gamma(0.5, 4.0, (frames.size, n_gauges)).astype(np.float32)
    rain[rng.random(rain.shape) < p_missing] = np.nan
    gau = xr.Dataset({"rain_mm": (("time", "station"), rain)}, coords={
        "time": frames.values, "station": np.array([f"G{i:04d}" for i in range(n_gauges)], dtype=object),
        "lat": ("station", g_lat), "lon": ("station", g_lon), "elevation": ("station", np.zeros(n_gauges))})
    return snd, gau

