"""The joined-grid (concat) processed store as read by the upstream diagnostics of
``python -m evaluation.evaluate --upstream-data processed/concat.zarr`` (skill by flow
regime, :mod:`evaluation.regimes`; lag diagnostics, :mod:`evaluation.lags`).

Read once, as per-frame series over every frame of the store:

- the analysed steering wind ``u``, ``v`` (m/s) at ``evaluation.advection_level_hpa``,
  averaged over every cell of the joined grid (both regions), de-normalised with the
  statistics file exactly as the advection baseline does
  (:func:`evaluation.advection._wind_stats`). Cells without a sounding within the coverage
  radius hold the normalised 0, i.e. the training-period mean wind, as in the baseline;
  a frame at which no region has any upper-air analysis (``sounding_coverage`` 0
  everywhere, when the store records it) has no analysed wind (``analysed`` false);
- the area-mean gridded rain ``rain_mm`` of region 1 and of region 2 (NaN-aware means over
  each region's cells; NaN when a region has no valid cell at that frame).

The side of region 1 where region 2 lies comes from the configured boxes
(:func:`pipeline.gridding.geometry.region2_side`); the store's ``region2_side`` attribute
must agree with it.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from evaluation.advection import AdvectionDataError, _wind_stats
from evaluation.inputs import EvaluationError, open_store
from pipeline.gridding.geometry import region2_side
from pipeline.dataset import layout

log = logging.getLogger("evaluation")

#: Direction sectors, named by where the wind blows FROM, 90 degrees wide and centred on
#: the compass points: N [315, 45), E [45, 135), S [135, 225), W [225, 315).
SECTORS = ("N", "E", "S", "W")
#: The sector of flow from region 2 towards region 1, by the side of region 1 where region 2 lies.
SECTOR_FROM_SIDE = {"north": "N", "east": "E", "south": "S", "west": "W"}
#: Unit vector (eastward, northward) pointing from region 2 towards region 1.
AXIS_FROM_SIDE = {"west": (1.0, 0.0), "east": (-1.0, 0.0), "south": (0.0, 1.0), "north": (0.0, -1.0)}


@dataclass
class Upstream:
    """Per-frame series of the joined-grid store (every frame of the store)."""
    path: str
    stats_path: str
    side: str                            # side of region 1 where region 2 lies
    level_hpa: int
    times: pd.DatetimeIndex
    u: np.ndarray                        # (T,) m/s, mean over the joined grid
    v: np.ndarray
    analysed: np.ndarray                 # (T,) bool: some region has an upper-air analysis
    rain_region1: np.ndarray             # (T,) mm / 12 h, area mean over region-1 cells
    rain_region2: np.ndarray

    @property
    def sector_from_region2(self) -> str:
        return SECTOR_FROM_SIDE[self.side]

    def along_axis(self) -> np.ndarray:
        """Wind component (m/s) along the direction from region 2 towards region 1
        (positive: the flow carries region-2 air towards region 1)."""
        return along_axis(self.u, self.v, self.side)


def along_axis(u, v, side: str) -> np.ndarray:
    ax, ay = AXIS_FROM_SIDE[side]
    return np.asarray(u, np.float64) * ax + np.asarray(v, np.float64) * ay


def wind_direction(u, v) -> np.ndarray:
    """Meteorological direction (degrees, where the wind blows from; 270 = westerly)."""
    with np.errstate(invalid="ignore"):
        return np.degrees(np.arctan2(-np.asarray(u, np.float64), -np.asarray(v, np.float64))) % 360.0


def sector_of(u, v) -> np.ndarray:
    """Sector label (:data:`SECTORS`) of each wind; ``""`` where the wind is not finite."""
    d = wind_direction(u, v)
    out = np.full(d.shape, "", dtype=object)
    ok = np.isfinite(d)
    out[ok] = np.asarray(SECTORS, dtype=object)[(((d[ok] + 45.0) % 360.0) // 90.0).astype(int) % 4]
    return out


def default_stats_path(data) -> Path:
    """``processed/concat.zarr`` -> ``processed/concat_stats.json`` (docs/contracts.md section 4)."""
    data = Path(data)
    return data.with_name(f"{data.name.removesuffix('.zarr')}_stats.json")


def _area_mean_wind(ds: xr.Dataset, wind: dict) -> tuple[np.ndarray, np.ndarray]:
    xm = np.stack([layout.channel(ds, wind[c][0]).mean(("lat", "lon")).values for c in ("u", "v")],
                  axis=1).astype(np.float64)
    # de-normalising is linear, so the mean of the winds is the de-normalised mean
    return xm[:, 0] * wind["u"][2] + wind["u"][1], xm[:, 1] * wind["v"][2] + wind["v"][1]


def _region_means(rain: np.ndarray, mask: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # a frame without any valid cell of the region is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(rain[:, mask], axis=1)


def _check_store(ds: xr.Dataset, path, config: dict, data_attrs: dict | None) -> tuple[str, np.ndarray]:
    for var in (layout.UPPER_AIR, "rain_mm", "region1_mask"):
        if var not in ds:
            raise EvaluationError(f"{path}: variable '{var}' missing (docs/contracts.md section 4)")
    r1 = ds["region1_mask"].values.astype(bool)
    if r1.all() or not r1.any():
        raise EvaluationError(f"{path}: region1_mask has {int(r1.sum())} of {r1.size} cells True: not the joined "
                              f"(concat) grid (attribute grid={ds.attrs.get('grid')!r})")
    side = region2_side(config)
    stored = ds.attrs.get("region2_side")
    if stored is not None and stored != side:
        raise EvaluationError(f"{path}: attribute region2_side={stored!r}, but the config's region boxes put "
                              f"region 2 {side} of region 1")
    h_data, h_up = (data_attrs or {}).get("config_hash"), ds.attrs.get("config_hash")
    if h_data and h_up and h_data != h_up:
        raise EvaluationError(f"{path}: config_hash {h_up} differs from the --data store's {h_data} "
                              "(built with other settings)")
    return side, r1


def open_upstream(config: dict, path, stats_path=None, data_attrs: dict | None = None) -> Upstream:
    """Read the per-frame series of the joined-grid store ``path`` (statistics file
    ``stats_path``, default next to it). ``data_attrs``: the ``--data`` store's attributes,
    whose ``config_hash`` must match."""
    path = Path(path)
    stats_path = Path(stats_path) if stats_path is not None else default_stats_path(path)
    ds = open_store(path, f"--upstream-data {path}")
    side, r1 = _check_store(ds, path, config, data_attrs)
    level = int(config["evaluation"]["advection_level_hpa"])
    try:
        wind = _wind_stats(stats_path, level)
    except AdvectionDataError as err:
        raise EvaluationError(f"{err} (config key evaluation.advection_level_hpa = {level})") from None
    channels = layout.channel_names(ds)
    for name, _, _ in wind.values():
        if name not in channels:
            raise EvaluationError(f"{path}: no channel {name!r} (config key evaluation.advection_level_hpa = {level})")
    u, v = _area_mean_wind(ds, wind)
    rain = ds["rain_mm"].values.astype(np.float64)
    analysed = np.ones(len(u), bool)
    if "sounding_coverage" in ds:
        analysed = (np.nan_to_num(ds["sounding_coverage"].values) > 0).any(axis=-1)
    log.info("%s: steering wind %d hPa over %d frames (%d without upper-air analysis); region 2 %s of region 1",
             path, level, len(u), int((~analysed).sum()), side)
    return Upstream(str(path), str(stats_path), side, level, pd.DatetimeIndex(ds["time"].values), u, v, analysed,
                    _region_means(rain, r1), _region_means(rain, ~r1))
