"""Objective analysis of station observations onto the region grids (Barnes or Cressman).

The schemes are MetPy's (``metpy.interpolate.inverse_distance_to_points``), vectorised:
for one frame, every field that has the same set of reporting stations shares one weight
matrix ``W (cells, stations)``, so all 55 sounding fields of a frame are one or a few
matrix products ``W @ values`` instead of 55 KD-tree walks. Stations missing a value for
a field simply do not contribute to that field (they are not in its station set).

Semantics, identical to MetPy's for each field (tested against it):

- distances are Euclidean in a local azimuthal-equidistant projection (metres) centred on
  the grid (:func:`project`), the coordinates MetPy is handed in the tests;
- a cell uses the stations within ``search_radius``; fewer than ``min_neighbors`` -> NaN;
- Barnes weights ``exp(-d^2 / (kappa * gamma))`` with ``kappa = kappa_star * (2 s / pi)^2``
  and ``s`` the mean nearest-neighbour spacing of that field's reporting stations
  (``metpy.interpolate.tools.calc_kappa``, with MetPy's ``average_spacing`` of the stations). Like MetPy this is one
  pass whose Gaussian width is the second-pass width ``kappa * gamma``;
- Cressman weights ``(R^2 - d^2) / (R^2 + d^2)``.

On top of MetPy, a coverage mask: a cell with no reporting station within
``coverage_radius`` is NaN for that field. The one deliberate difference: a field with a
single reporting station has no spacing, so MetPy returns NaN for Barnes; here (only
reachable with ``min_neighbors = 1``) the cell takes that station's value.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Proj

from pipeline.common import cf
from pipeline.common.config import config_hash, month_frame_times
from pipeline.common.errors import GridError
from pipeline.gridding.geometry import (Grid, channel_coordinates, channel_names, coverage_variables, frames_without,
                                       make_grid, region_masks)

log = logging.getLogger("pipeline.gridding")



@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of one objective analysis (distances in metres)."""

    method: str  # 'barnes' | 'cressman'
    search_radius_m: float  # stations farther than this do not contribute
    min_neighbors: int  # fewer stations within the search radius -> NaN
    coverage_radius_m: float  # no station within this -> NaN (coverage mask)
    kappa_star: float  # Barnes: non-dimensional response (config gridding.kappa_star)
    gamma: float  # Barnes: width factor of the (second) pass (config gridding.gamma)

    def __post_init__(self):
        if self.method not in ("barnes", "cressman"):
            raise GridError(f"gridding.method: unknown analysis {self.method!r}; expected barnes or cressman")


def params_from_config(config: dict, field: str = "soundings") -> AnalysisParams:
    """Analysis parameters of the sounding fields (``field='soundings'``) or of gauge rain."""
    g = config["gridding"]
    if field == "soundings":
        radius, cover, nmin = g["search_radius_km"], g["coverage_radius_km"], g["min_neighbors"]
    elif field == "rain":
        radius, cover, nmin = g["rain_search_radius_km"], g["rain_coverage_radius_km"], g["rain_min_neighbors"]
    else:
        raise ValueError(f"field must be 'soundings' or 'rain', got {field!r}")
    return AnalysisParams(
        method=g["method"],
        search_radius_m=float(radius) * 1000.0,
        min_neighbors=int(nmin),
        coverage_radius_m=float(cover) * 1000.0,
        kappa_star=float(g["kappa_star"]),
        gamma=float(g["gamma"]),
    )


def projection_for(grid: Grid) -> Proj:
    """Azimuthal-equidistant projection (WGS84, metres) centred on the grid."""
    lat0 = 0.5 * (float(grid.lat[0]) + float(grid.lat[-1]))
    lon0 = 0.5 * (float(grid.lon[0]) + float(grid.lon[-1]))
    return Proj(proj="aeqd", lat_0=lat0, lon_0=lon0, ellps="WGS84", units="m")


def project(proj: Proj, lat, lon) -> np.ndarray:
    """(N, 2) projected x, y in metres of points given in degrees."""
    x, y = proj(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.column_stack([np.ravel(x), np.ravel(y)])


def grid_points(grid: Grid, proj: Proj) -> np.ndarray:
    """(lat * lon, 2) projected cell centres, row-major (lat, lon)."""
    lon2d, lat2d = np.meshgrid(grid.lon, grid.lat)
    return project(proj, lat2d.ravel(), lon2d.ravel())


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, as ``metpy.interpolate.geometry.dist_2``."""
    dx = b[None, :, 0] - a[:, None, 0]
    dy = b[None, :, 1] - a[:, None, 1]
    return dx * dx + dy * dy


def calc_kappa(spacing: float, kappa_star: float) -> float:
    """Barnes kappa (m^2) from the station spacing (``metpy.interpolate.tools.calc_kappa``)."""
    return kappa_star * (2.0 * spacing / np.pi) ** 2


def analyse(station_xy: np.ndarray, values: np.ndarray, target_xy: np.ndarray, params: AnalysisParams) -> np.ndarray:
    """Objective analysis of many fields observed at the same stations.

    station_xy (S, 2) and target_xy (G, 2) in metres; values (S, F), NaN = not reported.
    Returns (G, F) float64, NaN where a cell has fewer than ``min_neighbors`` reporting
    stations within the search radius or none within the coverage radius.
    """
    station_xy = np.asarray(station_xy, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    n_cells, n_fields = len(target_xy), values.shape[1]
    out = np.full((n_cells, n_fields), np.nan)
    if len(station_xy) == 0 or n_fields == 0:
        return out
    present = np.isfinite(values)  # (S, F)
    d2 = _sq_dist(target_xy, station_xy)  # (G, S)
    in_search = d2 <= params.search_radius_m**2
    in_cover = d2 <= params.coverage_radius_m**2
    station_d2 = _sq_dist(station_xy, station_xy) if params.method == "barnes" else None

    # Fields sharing the same set of reporting stations share one weight matrix (grouped by
    # the bytes of each field's station mask; fields of a group in ascending order).
    groups: dict[bytes, list[int]] = {}
    for f, station_set in enumerate(present.T):
        groups.setdefault(station_set.tobytes(), []).append(f)
    for members in groups.values():
        idx = np.flatnonzero(present[:, members[0]])
        if idx.size == 0:
            continue
        fields = np.asarray(members)
        near = in_search[:, idx]  # (G, n)
        if params.method == "barnes":
            if idx.size == 1:
                weights = near.astype(float)
            else:
                sub = np.sqrt(station_d2[np.ix_(idx, idx)])
                np.fill_diagonal(sub, np.nan)
                kappa = calc_kappa(float(np.nanmin(sub, axis=0).mean()), params.kappa_star)
                weights = np.exp(-d2[:, idx] / (kappa * params.gamma)) * near
        else:
            r2 = params.search_radius_m**2
            weights = np.where(near, (r2 - d2[:, idx]) / (r2 + d2[:, idx]), 0.0)
        total = weights.sum(axis=1)  # (G,)
        with np.errstate(invalid="ignore", divide="ignore"):
            field_values = values[np.ix_(idx, fields)]  # (n, Fk)
            result = (weights @ field_values) / total[:, None]
        ok = (near.sum(axis=1) >= params.min_neighbors) & in_cover[:, idx].any(axis=1)
        result[~ok] = np.nan
        out[:, fields] = result
    return out


# --------------------------------------------------------------------------------------
# One month of interim files -> one gridded fragment


def _check_soundings(ds: xr.Dataset, config: dict, where: str) -> None:
    missing = [v for v in config["variables"] if v not in ds]
    if missing:
        raise GridError(f"{where}: soundings lack variables {missing}")
    for name in ("time", "lat", "lon", "level"):
        if name not in ds.coords and name not in ds:
            raise GridError(f"{where}: soundings lack coordinate {name!r}")
    levels = np.asarray(ds["level"].values, dtype=float)
    want = np.asarray(config["levels_hpa"], dtype=float)
    if levels.shape != want.shape or not np.allclose(levels, want):
        raise GridError(f"{where}: sounding levels {levels.tolist()} hPa differ from config levels_hpa {want.tolist()}")


def _check_gauges(ds: xr.Dataset, where: str) -> None:
    if "rain_mm" not in ds:
        raise GridError(f"{where}: gauges lack variable 'rain_mm'")
    for name in ("time", "lat", "lon"):
        if name not in ds.coords and name not in ds:
            raise GridError(f"{where}: gauges lack coordinate {name!r}")
    bad = np.asarray(ds["rain_mm"].values)
    bad = bad[np.isfinite(bad) & (bad < 0)]
    if bad.size:
        raise GridError(f"{where}: negative rain_mm {bad[:5].tolist()} ({bad.size} values)")


def assign_frames(profile_times, frames: pd.DatetimeIndex, tolerance_hours: float) -> np.ndarray:
    """Index of the nearest frame of each profile, -1 when none lies within the tolerance."""
    t = pd.DatetimeIndex(profile_times).values.astype("datetime64[ns]").astype(np.int64)
    f = frames.values.astype("datetime64[ns]").astype(np.int64)
    if t.size == 0 or f.size == 0:
        return np.full(t.size, -1, dtype=np.int64)
    gap = np.abs(t[:, None] - f[None, :])  # (P, T) ns
    nearest = gap.argmin(axis=1)
    return np.where(gap[np.arange(t.size), nearest] <= tolerance_hours * 3600e9, nearest, -1)


def _frame_profiles(frame_of: np.ndarray, frame: int, stations: np.ndarray, gap_ns: np.ndarray) -> np.ndarray:
    """Profiles of one frame, one per station (the launch closest to the frame time)."""
    idx = np.flatnonzero(frame_of == frame)
    if idx.size == 0:
        return idx
    order = idx[np.lexsort((gap_ns[idx], stations[idx]))]
    _, first = np.unique(stations[order], return_index=True)
    return np.sort(order[first])


def _grid_frames(frame_ids, sounding_xy, sounding_values, frame_of, stations, gap_ns, gauge_xy, gauge_values,
                 target_xy, p_sound, p_rain, n_sounding_channels, gauge_region=None, cell_region=None,
                 sounding_region=None) -> np.ndarray:
    """(len(frame_ids), channels, G) float32 for a block of frames (pure, picklable).

    Rain is analysed region by region: cells of region r (``cell_region == r``) use only
    the gauges inside region r (``gauge_region == r``), so region 1's rain is the same on
    every grid that contains it. Soundings too when ``sounding_region`` is given
    (``gridding.concat_analysis: separate``); with None they are analysed jointly, one
    analysis continuous across the region boundary.
    """
    out = np.full((len(frame_ids), n_sounding_channels + 1, len(target_xy)), np.nan, dtype=np.float32)
    if cell_region is None:
        cell_region = np.ones(len(target_xy), dtype=np.int64)
    if gauge_region is None:
        gauge_region = np.ones(len(gauge_xy), dtype=np.int64)
    regions = [r for r in np.unique(cell_region) if r > 0]
    for j, f in enumerate(frame_ids):
        prof = _frame_profiles(frame_of, f, stations, gap_ns)
        if prof.size and sounding_region is None:
            out[j, :n_sounding_channels] = analyse(sounding_xy[prof], sounding_values[prof], target_xy, p_sound).T
        elif prof.size:
            for r in regions:
                cells, pr = cell_region == r, prof[sounding_region[prof] == r]
                if pr.size:
                    out[j, :n_sounding_channels, cells] = analyse(
                        sounding_xy[pr], sounding_values[pr], target_xy[cells], p_sound)
        if gauge_values is not None:
            for r in regions:
                cells, gauges = cell_region == r, gauge_region == r
                if gauges.any():
                    out[j, n_sounding_channels, cells] = analyse(
                        gauge_xy[gauges], gauge_values[f][gauges], target_xy[cells], p_rain)[:, 0]
    return out


def region_of_points(config: dict, lat, lon, grid_name: str) -> np.ndarray:
    """Region id of each point for a grid: 1 inside region 1, 2 inside region 2 (concat
    grid only), 0 outside the grid's boxes (such stations do not contribute)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    out = np.zeros(lat.shape, dtype=np.int64)
    names = ["region1"] if grid_name == "region1" else ["region1", "region2"]
    for r, name in reversed(list(enumerate(names, start=1))):
        b = config["regions"][name]
        inside = (lat >= b["lat_min"]) & (lat <= b["lat_max"]) & (lon >= b["lon_min"]) & (lon <= b["lon_max"])
        out[inside] = r
    return out


@dataclass
class _Soundings:
    """Profiles ready for the analysis: values ``(P, variable-major channel)``, projected
    positions, frame of each profile (-1: not used) and what was left out."""
    values: np.ndarray
    frame_of: np.ndarray
    gap_ns: np.ndarray
    stations: np.ndarray
    xy: np.ndarray
    region: np.ndarray
    bad_pos: np.ndarray
    outside_grid: np.ndarray
    n_unassigned: int


def _sounding_inputs(soundings: xr.Dataset, config: dict, frames, proj, grid_name: str, n_sc: int,
                     tol: float) -> _Soundings:
    if not soundings.sizes.get("profile", 0):
        none = np.zeros(0, bool)
        return _Soundings(np.zeros((0, n_sc)), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, str),
                          np.zeros((0, 2)), np.zeros(0, np.int64), none, none, 0)
    sv = np.stack([soundings[v].transpose("profile", "level").values.astype(float) for v in config["variables"]],
                  axis=1)
    values = sv.reshape(sv.shape[0], -1)  # (P, var * level), variable-major
    ptimes = pd.DatetimeIndex(soundings["time"].values)
    frame_of = assign_frames(ptimes, frames, tol)
    gap_ns = np.abs(ptimes.values.astype(np.int64) - frames.values.astype(np.int64)[np.maximum(frame_of, 0)])
    stations = np.asarray(soundings["station"].values).astype(str)
    xy = project(proj, soundings["lat"].values, soundings["lon"].values)
    bad_pos = ~np.isfinite(xy).all(axis=1)
    frame_of[bad_pos] = -1
    n_unassigned = int((frame_of < 0).sum())
    region = region_of_points(config, soundings["lat"].values, soundings["lon"].values, grid_name)
    outside_grid = (region == 0) & (frame_of >= 0)
    frame_of[outside_grid] = -1
    return _Soundings(values, frame_of, gap_ns, stations, xy, region, bad_pos, outside_grid, n_unassigned)


@dataclass
class _Gauges:
    """Gauge rain ``(frame, station, 1)`` on the month's frames (NaN where absent),
    projected positions, region of each gauge, and file times outside the month."""
    values: np.ndarray
    xy: np.ndarray
    region: np.ndarray
    times_outside: int


def _gauge_inputs(gauges: xr.Dataset, config: dict, frames, proj, grid_name: str) -> _Gauges:
    rain = gauges["rain_mm"].transpose("time", "station")
    gtimes = pd.DatetimeIndex(rain["time"].values)
    outside = int((~gtimes.isin(frames)).sum())
    rain = rain.sel(time=gtimes.isin(frames)).reindex(time=frames)
    return _Gauges(rain.values.astype(float)[:, :, None], project(proj, gauges["lat"].values, gauges["lon"].values),
                   region_of_points(config, gauges["lat"].values, gauges["lon"].values, grid_name), outside)


def region1_cut(config: dict) -> tuple[slice, slice] | None:
    """Where the region1 grid's analysis lies in the concat grid's, or None.

    Under ``gridding.concat_analysis: separate`` every region-1 cell of the concat grid is
    analysed from region-1 observations alone, at the same projected positions (one
    projection for every grid), so it equals the region1 grid's cell value for value: the
    region1 analysis is then the concat analysis cut out, not computed a second time.
    """
    if config["gridding"]["concat_analysis"] != "separate":
        return None
    concat, region1 = make_grid(config, "concat"), make_grid(config, "region1")
    rows, cols = concat.region1_slices()
    if not (np.array_equal(concat.lat[rows], region1.lat) and np.array_equal(concat.lon[cols], region1.lon)
            and bool(region1.region1_mask.all())):
        return None
    return rows, cols


def grid_month(soundings: xr.Dataset, gauges: xr.Dataset, config: dict, month: str,
               where: tuple[str, str] = ("soundings", "gauges"), frames_per_task: int = 8,
               grid_name: str = "concat", concat_x: np.ndarray | None = None) -> xr.Dataset:
    """Grid one month of interim soundings and gauge totals onto the ``grid_name`` grid.

    Only observations inside the grid's region boxes contribute: the region1 grid sees
    region-1 stations alone (exp1 must not see upstream observations), the concat grid
    region 1 and region 2. Rain is analysed per region (see :func:`_grid_frames`), and so
    are soundings under ``gridding.concat_analysis: separate`` (the default): then the
    region-1 cells of the concat grid equal the region1 grid's, value for value, and exp2
    differs from exp1 only by the region-2 cells.

    Returns the gridded fragment (docs/contracts.md section 3): ``x`` float32
    (time, channel, lat, lon) for every frame of the month, physical units, NaN where a
    cell is not covered or no data exist. Frames are computed as dask tasks on whatever
    scheduler is active (see :mod:`pipeline.common.compute`).

    ``concat_x``: the analysis ``x`` of the same month on the concat grid; for the region1
    grid under :func:`region1_cut` its region-1 cells are used instead of analysing again.
    """
    import dask

    _check_soundings(soundings, config, where[0])
    _check_gauges(gauges, where[1])
    grid = make_grid(config, grid_name)
    proj = make_grid(config, "concat")  # one projection for every grid: identical distances
    proj = projection_for(proj)
    target_xy = grid_points(grid, proj)
    step = int(config["frames"]["step_hours"])
    frames = month_frame_times(month, step)
    channels = channel_names(config)
    n_sc = len(channels) - 1
    tol = float(config["gridding"]["time_tolerance_hours"])

    snd = _sounding_inputs(soundings, config, frames, proj, grid_name, n_sc, tol)
    gau = _gauge_inputs(gauges, config, frames, proj, grid_name)
    cell_region = np.where(grid.region1_mask, 1, 2).ravel()

    p_sound, p_rain = params_from_config(config, "soundings"), params_from_config(config, "rain")
    blocks = [list(range(i, min(i + frames_per_task, len(frames)))) for i in range(0, len(frames), frames_per_task)]
    tasks = [
        dask.delayed(_grid_frames, pure=False)(  # no hashing of the shared arrays per task
            b, snd.xy, snd.values, snd.frame_of, snd.stations, snd.gap_ns, gau.xy, gau.values,
            target_xy, p_sound, p_rain, n_sc, gau.region, cell_region,
            snd.region if config["gridding"]["concat_analysis"] == "separate" else None)
        for b in blocks
    ]
    cut = region1_cut(config) if grid_name == "region1" and concat_x is not None else None
    if cut is not None and concat_x.shape[:2] == (len(frames), len(channels)):
        log.info("grid %s: %d frames, %d profiles, %d gauges, region-1 cells of the concat analysis", month,
                 len(frames), int((snd.frame_of >= 0).sum()), gau.values.shape[1])
        x = np.ascontiguousarray(concat_x[:, :, cut[0], cut[1]])
    else:
        log.info("grid %s: %d frames, %d profiles, %d gauges, %d tasks", month, len(frames),
                 int((snd.frame_of >= 0).sum()), gau.values.shape[1], len(tasks))
        parts = dask.compute(*tasks)
        x = np.concatenate(parts, axis=0).reshape(len(frames), len(channels), *grid.shape)
    ingest_qc = {kind: {k: int(v) for k, v in sorted(d.attrs.items()) if k.startswith("qc_")}
                 for kind, d in (("soundings", soundings), ("gauges", gauges))}
    return _fragment(x, config, month, grid_name, grid, frames, channels, p_sound.method, snd, gau, ingest_qc)


def _fragment(x, config, month, grid_name, grid, frames, channels, method, snd, gau, ingest_qc) -> xr.Dataset:
    """The gridded fragment with its coordinates, coverage, CF attributes and QC counts."""

    ds = xr.Dataset(
        {"x": (("time", "channel", "lat", "lon"), x), **coverage_variables(x, channels, grid)},
        coords={
            "time": ("time", frames.values.astype("datetime64[ns]"), {"standard_name": "time"}),
            "channel": ("channel", np.asarray(channels, dtype=object), {"long_name": "channel name"}),
            **channel_coordinates(config),
            "region": ("region", np.asarray(list(region_masks(grid)), dtype=object),
                       {"long_name": "region of the grid"}),
            "lat": ("lat", grid.lat, cf.LAT_ATTRS),
            "lon": ("lon", grid.lon, cf.LON_ATTRS),
        },
    )
    ds["x"].attrs = {
        "long_name": "objective analysis of soundings and 12 h gauge rain",
        "comment": "physical units per channel in the coordinate 'units'; the rain channel is the sum "
                   "over the 12 h ending at time",
        "missing": "NaN: no reporting station within the coverage radius, or too few within the search radius",
    }
    ds.attrs = cf.with_json_attrs({
        "Conventions": cf.CONVENTIONS,
        "title": f"gridded soundings and gauge rain, {month}",
        "month": month,
        "grid": grid_name,
        "method": method,
        "config_hash": config_hash(config, ("gridding", "grid", "regions", "levels_hpa", "variables", "frames")),
        "profiles_used": int((snd.frame_of >= 0).sum()),
        "profiles_not_on_a_frame": snd.n_unassigned - int(snd.bad_pos.sum()),
        "profiles_without_position": int(snd.bad_pos.sum()),
        "profiles_outside_grid": int(snd.outside_grid.sum()),
        "gauges_outside_grid": int((gau.region == 0).sum()),
        "gauge_times_outside_month": gau.times_outside,
        "frames_without_rain": int(frames_without(ds, "rain_coverage").sum()),
        "frames_without_soundings": int(frames_without(ds, "sounding_coverage").sum()),
    }, {"gridding": dict(config["gridding"]), "ingest_qc": ingest_qc})
    return ds
