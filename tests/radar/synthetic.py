"""A small CAPPI store with exactly the layout of contract 3 (docs/contracts.md, "Radar
track"): Gaussian echoes moving east at one cell per 6-minute frame, so the next hour is
predictable from the last; ZDR and KDP grow with DBZH; a corner outside coverage is NaN."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def make_cappi(n_times: int = 80, ny: int = 16, nx: int = 16, heights=(1000.0, 2000.0), seed: int = 0,
               gap_after: int | None = None) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-06-01T00:00", periods=n_times, freq="6min")
    if gap_after is not None:  # one missing hour in the time axis
        times = times[:gap_after].append(times[gap_after:] + pd.Timedelta("1h"))
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    dbz = np.zeros((n_times, len(heights), ny, nx), np.float32)
    blobs = [(rng.uniform(0, ny), rng.uniform(0, nx), rng.uniform(35, 55)) for _ in range(6)]
    for t in range(n_times):
        f = np.zeros((ny, nx))
        for cy, cx, amp in blobs:
            px = (cx + t) % nx
            d2 = (yy - cy) ** 2 + np.minimum(abs(xx - px), nx - abs(xx - px)) ** 2
            f = np.maximum(f, amp * np.exp(-d2 / 8.0))
        for k in range(len(heights)):
            dbz[t, k] = np.where(f > 5, f * (1 - 0.1 * k), 0.0)
    zdr = np.where(dbz > 0, 0.05 * dbz, 0.0).astype(np.float32)
    kdp = np.where(dbz > 30, 0.1 * (dbz - 30), 0.0).astype(np.float32)
    cov = np.ones((ny, nx), bool)
    cov[:3, :3] = False
    for a in (dbz, zdr, kdp):
        a[:, :, ~cov] = np.nan
    x = np.arange(nx) * 1000.0 - nx * 500.0
    y = np.arange(ny) * 1000.0 - ny * 500.0
    dims = ("time", "height", "y", "x")
    ds = xr.Dataset(
        {"DBZH": (dims, dbz, {"units": "dBZ", "standard_name": "equivalent_reflectivity_factor"}),
         "ZDR": (dims, zdr, {"units": "dB"}), "KDP": (dims, kdp, {"units": "deg km-1"}),
         "coverage": (("y", "x"), cov)},
        coords={"time": times.values, "height": np.asarray(heights), "y": y, "x": x,
                "lat": (("y", "x"), 50.0 + yy / 111.0), "lon": (("y", "x"), 8.0 + xx / 71.0)})
    return ds
