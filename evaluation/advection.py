"""Advection baseline: the latest rain analysis extrapolated along the analysed steering wind.

    python -m evaluation.advection --config C --data processed/concat.zarr \\
        --stats processed/concat_stats.json --out results/baselines/advection/predictions.zarr \\
        [--level-hpa 700] [--split test]

For each target frame ``t`` of the split (every split time whose input frame
``t - lead_steps * step_hours`` is in the store), the 12 h rain analysis ``rain_mm`` at
that input time, on the whole joined grid (region 2 upstream included), is moved for
``lead_steps * step_hours`` hours along the wind ``(u, v)`` at ``--level-hpa`` analysed at
the same input time (un-normalised to m/s with the statistics file; cells without a
sounding within the coverage radius carry the normalised 0 = the training-period mean wind).
The wind is held fixed in time and converted to grid cells per hour with the grid spacing
in km at each latitude (``R_EARTH_KM * dlat``, ``R_EARTH_KM * cos(lat) * dlon``).

Scheme (:func:`semilagrangian`): backward semi-Lagrangian, as in pysteps'
``extrapolation.semilagrangian.extrapolate`` (one midpoint iteration per sub-step, velocity
interpolated bilinearly with edge clamping), with as many sub-steps as needed to keep
every sub-step displacement at most one cell; the field is sampled bilinearly at the
departure point. A departure point outside the grid gives NaN: nothing is known about
rain that enters from outside the domain. About a fifth of the analysed rain cells are
missing (no gauge within the coverage radius), so the baseline samples with the missing
corners of the bilinear stencil left out (weights renormalised); a departure point with no
finite corner is NaN too. In the written baseline NaN cells fall back to persistence (the
input-frame rain at the same cell, itself NaN where missing); their numbers are stored in
attrs ``n_outside`` (departure outside the grid) and ``n_fallback`` (all NaN cells).

Writes ``rain_mm_pred`` float32 (time, lat, lon) in mm on the region-1 cells only, as
``training.predict`` does, with attrs method, level_hpa, steering source, config_hash of
the data, package versions.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.config import load_config, split_of_times
from pipeline.common.errors import ConfigError
from pipeline.common.integrity import verify_store
from pipeline.common.provenance import package_versions
from pipeline.dataset import layout

log = logging.getLogger("evaluation.advection")

#: Mean Earth radius (km); one degree of latitude is ``pi / 180 * R_EARTH_KM`` km.
R_EARTH_KM = 6371.0
KM_PER_DEG = np.pi / 180.0 * R_EARTH_KM


class AdvectionDataError(ValueError):
    """The processed store or statistics file lacks what the advection baseline needs."""


cli.register_error(AdvectionDataError)


# --------------------------------------------------------------------------- the scheme
#: Departure points closer than this (in cells) to the grid's edge count as on it (round-off
#: of float32 winds must not turn an exact one-cell shift into inflow from outside).
EDGE_TOL = 1e-5


def _outside(rows, cols, h: int, w: int) -> np.ndarray:
    return (rows < -EDGE_TOL) | (rows > h - 1 + EDGE_TOL) | (cols < -EDGE_TOL) | (cols > w - 1 + EDGE_TOL)


def _bilinear(field: np.ndarray, rows: np.ndarray, cols: np.ndarray, clamp: bool,
              skipna: bool = False) -> np.ndarray:
    """Bilinear sample of ``field`` (..., H, W) at fractional (rows, cols) of shape (H, W).

    ``clamp``: coordinates are clamped to the grid (edge values continue outward); otherwise
    points outside ``[0, H-1] x [0, W-1]`` give NaN. ``skipna``: a missing corner is left
    out and the other weights renormalised (NaN only when all weighted corners are missing).
    """
    h, w = field.shape[-2:]
    if clamp:
        rows = np.clip(rows, 0, h - 1)
        cols = np.clip(cols, 0, w - 1)
    outside = _outside(rows, cols, h, w)
    r = np.clip(rows, 0, h - 1)
    c = np.clip(cols, 0, w - 1)
    r0 = np.minimum(np.floor(r).astype(np.intp), max(h - 2, 0))
    c0 = np.minimum(np.floor(c).astype(np.intp), max(w - 2, 0))
    r1 = np.minimum(r0 + 1, h - 1)
    c1 = np.minimum(c0 + 1, w - 1)
    fr = r - r0
    fc = c - c0
    corners = (((1 - fr) * (1 - fc), field[..., r0, c0]), ((1 - fr) * fc, field[..., r0, c1]),
               (fr * (1 - fc), field[..., r1, c0]), (fr * fc, field[..., r1, c1]))
    if skipna:  # weights renormalised over the finite corners; NaN only if none has weight
        num = sum(wgt * np.where(np.isfinite(val), val, 0.0) for wgt, val in corners)
        den = sum(wgt * np.isfinite(val) for wgt, val in corners)
        out = np.where(den > 1e-9, num / np.where(den > 1e-9, den, 1.0), np.nan)
    else:
        out = sum(wgt * val for wgt, val in corners)
    if not clamp:
        out = np.where(outside, np.nan, out)
    return out


def departure_points(u_cells: np.ndarray, v_cells: np.ndarray, duration: float,
                     max_step_cells: float = 1.0) -> tuple[np.ndarray, np.ndarray, int]:
    """Backward trajectories over ``duration`` (in the wind's time unit) from every cell.

    ``u_cells`` / ``v_cells`` (H, W): velocity in columns / rows per time unit. Returns the
    departure (rows, cols) and the number of sub-steps (each moves at most
    ``max_step_cells`` cells). Each sub-step is one midpoint iteration, as pysteps does.
    """
    h, w = u_cells.shape
    speed = float(np.nanmax(np.hypot(u_cells, v_cells))) if u_cells.size else 0.0
    n_sub = max(1, int(np.ceil(speed * duration / max_step_cells - 1e-9)))
    dt = duration / n_sub
    rows0, cols0 = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    vel = np.stack([v_cells, u_cells]).astype(float)  # (2, H, W): rows, cols
    disp = np.zeros((2, h, w))
    for _ in range(n_sub):
        inc = _bilinear(vel, rows0 + disp[0], cols0 + disp[1], clamp=True) * dt
        inc = _bilinear(vel, rows0 + disp[0] - inc[0] / 2, cols0 + disp[1] - inc[1] / 2, clamp=True) * dt
        disp -= inc
    return rows0 + disp[0], cols0 + disp[1], n_sub


def semilagrangian(field: np.ndarray, u_cells: np.ndarray, v_cells: np.ndarray, duration: float,
                   max_step_cells: float = 1.0) -> np.ndarray:
    """``field`` (H, W) advected for ``duration`` by the stationary wind (cells per time
    unit; u along columns, v along rows). NaN where the departure point lies outside the
    grid or next to a missing value."""
    rows, cols, _ = departure_points(u_cells, v_cells, duration, max_step_cells)
    return _bilinear(np.asarray(field, float), rows, cols, clamp=False)


def cells_per_hour(u_ms: np.ndarray, v_ms: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wind in m/s (H, W) on a regular lat/lon grid -> (columns, rows) per hour.

    Row index follows ``lat`` and column index ``lon``, in either order (signed spacing).
    """
    dlat = float(np.diff(lat).mean())
    dlon = float(np.diff(lon).mean())
    dy_km = KM_PER_DEG * dlat
    dx_km = KM_PER_DEG * np.cos(np.deg2rad(lat))[:, None] * dlon
    km_per_hour = 3.6
    return u_ms * km_per_hour / dx_km, v_ms * km_per_hour / dy_km


# --------------------------------------------------------------------------- data
def _region1_window(mask: np.ndarray, path) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise AdvectionDataError(f"{path}: region1_mask has no True cell")
    rs, cs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    if not mask[rs, cs].all() or mask.sum() != mask[rs, cs].size:
        raise AdvectionDataError(f"{path}: region1_mask is not a rectangle ({int(mask.sum())} cells)")
    return rs, cs


def _wind_stats(stats_path, level_hpa: int) -> dict:
    """Mean and std (m/s) of ``u_<L>hPa`` and ``v_<L>hPa`` from the statistics JSON."""
    try:
        stats = json.loads(Path(stats_path).read_text())
        channels = list(stats["channels"])
        out = {}
        for comp in ("u", "v"):
            name = f"{comp}_{level_hpa}hPa"
            if name not in channels:
                raise AdvectionDataError(f"{stats_path}: no channel {name!r} (level {level_hpa} hPa not gridded)")
            i = channels.index(name)
            if stats.get("transform", ["zscore"] * len(channels))[i] != "zscore":
                raise AdvectionDataError(f"{stats_path}: channel {name!r} is not z-scored")
            out[comp] = (name, float(stats["mean"][i]), float(stats["std"][i]))
    except (OSError, json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
        raise AdvectionDataError(f"{stats_path}: cannot read normalisation statistics ({err})") from None
    return out


def sample_times(times: pd.DatetimeIndex, config: dict, split: str) -> pd.DatetimeIndex:
    """Split times ``t`` whose input frame ``t - lead`` is in the store."""
    lag = pd.Timedelta(hours=config["frames"]["lead_steps"] * config["frames"]["step_hours"])
    in_split = split_of_times(times, config) == split
    has_input = (times - lag).isin(times)
    return times[in_split & has_input]


def advection_forecast(config: dict, data_path, stats_path, level_hpa: int = 700, split: str = "test",
                       max_step_cells: float = 1.0, domain: str = "concat") -> xr.Dataset:
    """The advection baseline for every sample of ``split`` (see the module docstring).

    ``domain``: ``concat`` advects on the whole joined grid (rain can arrive from region 2);
    ``region1`` crops rain and wind to the region-1 cells first (the same scheme without
    upstream information: departure points in region 2 count as outside).
    """
    verify_store(data_path, required=False)
    try:
        ds = xr.open_zarr(data_path, consolidated=False)
    except (OSError, ValueError, KeyError) as err:
        raise AdvectionDataError(f"{data_path}: cannot open the processed store ({err})") from None
    for var in (layout.UPPER_AIR, "rain_mm", "region1_mask"):
        if var not in ds:
            raise AdvectionDataError(f"{data_path}: variable {var!r} missing (docs/contracts.md section 4)")
    wind = _wind_stats(stats_path, level_hpa)
    channels = layout.channel_names(ds)
    for comp, (name, _, _) in wind.items():
        if name not in channels:
            raise AdvectionDataError(f"{data_path}: no channel {name!r}")
    times = pd.DatetimeIndex(ds["time"].values)
    targets = sample_times(times, config, split)
    if len(targets) == 0:
        raise AdvectionDataError(f"{data_path}: split '{split}' has no frame with its input frame in the store")
    hours = float(config["frames"]["lead_steps"] * config["frames"]["step_hours"])
    lag = pd.Timedelta(hours=hours)
    inputs = targets - lag
    lat, lon = ds["lat"].values.astype(float), ds["lon"].values.astype(float)
    rs, cs = _region1_window(ds["region1_mask"].values.astype(bool), data_path)
    if domain not in ("concat", "region1"):
        raise ConfigError(f"--domain {domain!r}: expected concat or region1")
    sub = ds.sel(time=inputs)
    if domain == "region1":
        sub = sub.isel(lat=rs, lon=cs)
        lat, lon = lat[rs], lon[cs]
        rs, cs = slice(0, lat.size), slice(0, lon.size)
    rain = sub["rain_mm"].values.astype(float)
    xu = layout.channel(sub, wind["u"][0]).values.astype(float)
    xv = layout.channel(sub, wind["v"][0]).values.astype(float)
    u_ms = xu * wind["u"][2] + wind["u"][1]
    v_ms = xv * wind["v"][2] + wind["v"][1]
    pred = np.empty((len(targets), rs.stop - rs.start, cs.stop - cs.start), np.float32)
    n_outside = n_fallback = 0
    n_sub_max = 0
    for i in range(len(targets)):
        uc, vc = cells_per_hour(u_ms[i], v_ms[i], lat, lon)
        rows, cols, n_sub = departure_points(uc, vc, hours, max_step_cells)
        n_sub_max = max(n_sub_max, n_sub)
        moved = _bilinear(rain[i], rows, cols, clamp=False, skipna=True)[rs, cs]
        h, w = rain.shape[1:]
        outside = _outside(rows, cols, h, w)[rs, cs]
        persist = rain[i][rs, cs]
        fill = ~np.isfinite(moved)
        n_outside += int(outside.sum())
        n_fallback += int(fill.sum())
        pred[i] = np.where(fill, persist, np.maximum(moved, 0.0))
    n_cells = pred.size
    log.info(f"{len(targets)} {split} samples; wind {level_hpa} hPa; up to {n_sub_max} sub-steps; "
             f"{n_outside} of {n_cells} region-1 departure points outside the grid, "
             f"{n_fallback} fell back to persistence (domain {domain})")
    result = xr.Dataset(
        {"rain_mm_pred": (("time", "lat", "lon"), pred,
                          {"units": "mm", "long_name": "predicted rain in the 12 h ending at time"})},
        coords={"time": targets.values, "lat": lat[rs], "lon": lon[cs]},
    )
    result.attrs.update({
        "exp": "advection", "method": "semi-Lagrangian backward advection of the latest rain analysis "
                                      "(bilinear, midpoint, sub-steps <= 1 cell); persistence where unknown",
        "level_hpa": int(level_hpa),
        "steering": f"analysed u_{level_hpa}hPa, v_{level_hpa}hPa at the input time, held fixed for {hours:g} h",
        "lead_hours": hours, "split": split, "max_step_cells": float(max_step_cells),
        "domain": domain, "n_outside": n_outside, "n_fallback": n_fallback, "n_cells": n_cells,
        "config_hash": str(ds.attrs.get("config_hash", "")),
        "versions": json.dumps(package_versions(["numpy", "xarray", "zarr", "pandas"])),
    })
    return result


def write(result: xr.Dataset, out) -> None:
    with atomic_path(out) as tmp:
        result.to_zarr(tmp, mode="w", consolidated=False)


def main(argv=None) -> int:
    ap = cli.parser("python -m evaluation.advection", __doc__)
    cli.add_config(ap)
    ap.add_argument("--data", required=True, help="processed zarr of the joined grid (processed/concat.zarr)")
    ap.add_argument("--stats", required=True, help="its normalisation statistics (processed/concat_stats.json)")
    ap.add_argument("--out", required=True, help="output zarr (predictions.zarr)")
    ap.add_argument("--level-hpa", type=int, default=None,
                    help="steering level in hPa (default: config key evaluation.advection_level_hpa)")
    ap.add_argument("--domain", default="concat", choices=["concat", "region1"],
                    help="advect on the joined grid (default) or on region 1 alone (no upstream rain)")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"], help="split (default test)")

    def body(args) -> int:
        config = load_config(args.config)
        level = args.level_hpa if args.level_hpa is not None else int(config["evaluation"]["advection_level_hpa"])
        if level not in [int(v) for v in config.get("levels_hpa", [level])]:
            raise ConfigError(f"--level-hpa {level}: not among config key 'levels_hpa' {config['levels_hpa']}")
        result = advection_forecast(config, args.data, args.stats, level, args.split, domain=args.domain)
        write(result, args.out)
        log.info(f"-> {args.out}")
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
