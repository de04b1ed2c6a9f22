"""The observing network map: sounding stations and rain gauges on the grid, with the
coverage masks of the processed store.

``python -m evaluation.network --config C --soundings interim/soundings/*.nc
--gauges interim/gauges/*.nc --data processed/concat.zarr --out results/network/observing_network.png``

- stations: every sounding station and gauge of the monthly interim files (contracts,
  section 2), with the number of QC'd profiles (soundings) and of valid 12 h totals
  (gauges) over all the months given;
- coverage: per grid cell, the fraction of frames at which the gridded rain exists
  (``valid`` of the store), with the loss mask (region-1 cells scored) outlined;
- the configured region boxes outlined; latitude/longitude in degrees at the aspect
  1 / cos(mean latitude) (no coastlines: nothing is downloaded).

Writes the PNG atomically and, beside it, ``observing_network.csv`` (one row per station:
kind, station, lat, lon, count).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from evaluation.inputs import EvaluationError, open_store
from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.config import load_config

log = logging.getLogger("evaluation")


def _open(path, kind: str) -> xr.Dataset:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such {kind} file")
    try:
        return xr.open_dataset(path)
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise EvaluationError(f"{path}: cannot open the {kind} file: {err}") from err


def sounding_stations(paths) -> pd.DataFrame:
    """Sounding stations of interim sounding files (dims ``profile``; coords station, lat,
    lon): one row per station with its mean position and number of profiles."""
    rows = []
    for path in paths:
        with _open(path, "interim sounding") as ds:
            for key in ("station", "lat", "lon"):
                if key not in ds.coords and key not in ds:
                    raise EvaluationError(f"{path}: variable '{key}' missing (an interim sounding file has "
                                          "station, lat, lon per profile)")
            rows.append(pd.DataFrame({"station": ds["station"].values.astype(str), "lat": ds["lat"].values,
                                      "lon": ds["lon"].values, "count": 1}))
    if not rows:
        return pd.DataFrame(columns=["station", "lat", "lon", "count"])
    df = pd.concat(rows, ignore_index=True)
    return df.groupby("station", sort=True).agg(lat=("lat", "mean"), lon=("lon", "mean"),
                                                count=("count", "sum")).reset_index()


def gauge_stations(paths) -> pd.DataFrame:
    """Gauges of interim gauge files (dims time, station; ``rain_mm``): one row per gauge
    with its position and number of valid 12 h totals."""
    frames = []
    for path in paths:
        with _open(path, "interim gauge") as ds:
            if "rain_mm" not in ds or "station" not in ds.dims:
                raise EvaluationError(f"{path}: variable 'rain_mm' on dim 'station' missing (an interim gauge "
                                      "file has rain_mm (time, station))")
            rain = ds["rain_mm"].transpose("time", "station").values
            frames.append(pd.DataFrame({"station": ds["station"].values.astype(str), "lat": ds["lat"].values,
                                        "lon": ds["lon"].values, "count": np.isfinite(rain).sum(axis=0)}))
    if not frames:
        return pd.DataFrame(columns=["station", "lat", "lon", "count"])
    df = pd.concat(frames, ignore_index=True)
    return df.groupby("station", sort=True).agg(lat=("lat", "first"), lon=("lon", "first"),
                                                count=("count", "sum")).reset_index()


def coverage(ds: xr.Dataset, path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lat, lon, fraction of frames with gridded rain per cell, loss mask) of a processed store."""
    for var in ("valid", "loss_mask"):
        if var not in ds:
            raise EvaluationError(f"{path}: variable '{var}' missing (have {sorted(ds.data_vars)})")
    frac = ds["valid"].astype(np.float32).mean("time").values if ds.sizes.get("time", 0) else \
        np.zeros(ds["loss_mask"].shape, np.float32)
    return ds["lat"].values, ds["lon"].values, frac, ds["loss_mask"].values.astype(bool)


def boxes(config: dict) -> list:
    return [(name, [float(config["regions"][name][k]) for k in ("lat_min", "lat_max", "lon_min", "lon_max")])
            for name in ("region1", "region2") if isinstance(config.get("regions", {}).get(name), dict)]


def network_map(config: dict, soundings, gauges, data, out) -> dict:
    """Draw the network map into ``out`` (PNG) and its station table beside it; returns counts."""
    from evaluation import figures

    snd, gau = sounding_stations(soundings), gauge_stations(gauges)
    ds = open_store(data, f"{data} (data store)")
    lat, lon, frac, mask = coverage(ds, data)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat([snd.assign(kind="sounding"), gau.assign(kind="gauge")], ignore_index=True)
    with atomic_path(out.with_suffix(".csv")) as tmp:
        table[["kind", "station", "lat", "lon", "count"]].to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(out) as tmp:
        figures.plot_network(tmp, lat, lon, frac, mask, snd, gau, boxes(config), months=len(list(gauges)))
    counts = {"sounding_stations": len(snd), "gauges": len(gau), "scored_cells": int(mask.sum())}
    log.info("network map: %d sounding stations, %d gauges, %d scored cells -> %s", counts["sounding_stations"],
             counts["gauges"], counts["scored_cells"], out)
    return counts


def _main(args) -> int:
    config = load_config(args.config)
    network_map(config, args.soundings, args.gauges, args.data, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("python -m evaluation.network", __doc__)
    cli.add_config(ap, required=False)
    ap.add_argument("--soundings", nargs="*", default=[], help="interim sounding files (interim/soundings/MONTH.nc)")
    ap.add_argument("--gauges", nargs="*", default=[], help="interim gauge files (interim/gauges/MONTH.nc)")
    ap.add_argument("--data", required=True, help="processed store whose coverage is drawn (processed/concat.zarr)")
    ap.add_argument("--out", required=True, help="output PNG (the station table is written beside it as .csv)")
    return cli.run(ap, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
