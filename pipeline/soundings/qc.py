"""Derived variables (MetPy) and quality control of sounding level records.

Works on the tidy tables of :class:`pipeline.readers.igra2.RawSoundings` (one row per level,
``profile`` numbering the soundings), vectorised across all soundings with grouped
array operations. Every check counts what it removes; the counts end up as ``qc_*``
integer attributes of the interim dataset and in the run's ``.qc.json``.

Positions (:func:`coordinate_range`, applied by the ingest before the station list fills
gaps): a latitude outside [-90, 90] or a longitude outside [-180, 360) becomes missing
and is counted (``qc_position_out_of_range``); the readers turn their formats' own
missing-position values into NaN (``qc_position_sentinel``); a sounding left without a
position is dropped and counted (``qc_no_coordinates``), never placed.

Checks and their action (``policy='drop_value'``; with ``'drop_sounding'`` a sounding
with any failed value is dropped whole and counted):

- pressure missing: the level is unusable (counted, not a failure: nothing to place).
- levels below the surface level (higher pressure than the LVLTYP2 = 1 record; e.g.
  Wyoming's extrapolated 1000 hPa height): removed and counted, not a failure.
- pressure outside (0, 1100] hPa, or not strictly decreasing upward: the level.
- temperature outside [-100, 60] degC, dewpoint outside [-120, 40] degC, geopotential
  height outside [-500, 60000] m, wind direction outside [0, 360] deg, wind speed
  negative or above ``qc.max_wind_speed_ms``: that value (u and v together).
- dewpoint above temperature (by more than 0.05 degC rounding): the dewpoint.
- heights not increasing upward: the height.
- hypsometric consistency: between consecutive levels with reported height and
  temperature, the reported thickness must match the hypsometric thickness integrated
  over the temperature (virtual temperature where dewpoint exists) within
  ``qc.hypsometric_tolerance_m``; a height is removed when both layers touching it
  disagree (or its only layer, at the ends of the profile).
- super-adiabatic layers: potential temperature falling upward by more than
  ``qc.superadiabatic_tolerance_k`` in a layer whose bottom is above the surface layer
  (the lowest ``qc.surface_layer_hpa`` hPa of the temperature profile): the temperature
  (and dewpoint) at both ends of the layer, since either may be the bad one.
- a dropped temperature also drops the dewpoint derived from it.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from metpy.calc import (dewpoint_from_relative_humidity, potential_temperature, virtual_temperature_from_dewpoint,
                        wind_components)
from metpy.constants import Rd, g
from metpy.units import units

log = logging.getLogger(__name__)

LATITUDE_RANGE = (-90.0, 90.0)  # inclusive
LONGITUDE_RANGE = (-180.0, 360.0)  # inclusive lower, exclusive upper
PRESSURE_RANGE_HPA = (0.0, 1100.0)  # exclusive lower, inclusive upper
TEMPERATURE_RANGE_C = (-100.0, 60.0)
DEWPOINT_RANGE_C = (-120.0, 40.0)
HEIGHT_RANGE_M = (-500.0, 60000.0)
DEWPOINT_ROUNDING_C = 0.05
RD_OVER_G = float((Rd / g).to("m/K").magnitude)  # hypsometric factor, m K-1

DEFAULT_QC = {"policy": "drop_value", "on_malformed": "error", "max_wind_speed_ms": 120.0,
              "superadiabatic_tolerance_k": 2.0, "surface_layer_hpa": 50.0, "hypsometric_tolerance_m": 50.0}

VARIABLES = ["temperature", "dewpoint", "u", "v", "geopotential_height"]


# --------------------------------------------------------------------------- derive

def derive_variables(levels: pd.DataFrame) -> pd.DataFrame:
    """Add dewpoint (degC), u and v (m/s) with MetPy.

    Dewpoint: the reported dewpoint if any, else temperature minus dewpoint depression,
    else :func:`metpy.calc.dewpoint_from_relative_humidity`. Wind components:
    :func:`metpy.calc.wind_components` from speed and the direction the wind blows from.
    """
    lv = levels.copy()
    t = lv["temperature"].to_numpy(float)
    td = lv["dewpoint"].to_numpy(float).copy()
    dpd = lv["dewpoint_depression"].to_numpy(float)
    rh = lv["relative_humidity"].to_numpy(float)
    from_dpd = np.isnan(td) & np.isfinite(dpd)
    td[from_dpd] = t[from_dpd] - dpd[from_dpd]
    from_rh = np.isnan(td) & np.isfinite(t) & np.isfinite(rh) & (rh > 0) & (rh <= 110)
    if from_rh.any():
        td[from_rh] = dewpoint_from_relative_humidity(
            units.Quantity(t[from_rh], "degC"), units.Quantity(rh[from_rh], "percent")).to("degC").magnitude
    lv["dewpoint"] = td
    speed = lv["wind_speed"].to_numpy(float)
    direction = lv["wind_direction"].to_numpy(float)
    u, v = wind_components(units.Quantity(speed, "m/s"), units.Quantity(direction, "degree"))
    lv["u"] = np.asarray(u.to("m/s").magnitude, dtype=float)
    lv["v"] = np.asarray(v.to("m/s").magnitude, dtype=float)
    return lv


# --------------------------------------------------------------------------- helpers

def _group_start(profile: np.ndarray) -> np.ndarray:
    """True where a new profile starts (rows must be grouped by profile)."""
    start = np.ones(profile.size, bool)
    start[1:] = profile[1:] != profile[:-1]
    return start


def _previous_valid(profile: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the previous row of the same profile with a finite value (-1 if none)."""
    idx = np.where(np.isfinite(values), np.arange(values.size), -1)
    # forward fill the last valid index, shifted by one row, reset at profile starts
    prev = np.empty_like(idx)
    if idx.size == 0:
        return prev
    prev[0] = -1
    prev[1:] = np.maximum.accumulate(idx)[:-1]
    starts = np.flatnonzero(_group_start(profile))
    group_first = np.repeat(starts, np.diff(np.append(starts, idx.size)))
    prev[prev < group_first] = -1
    return prev


def hypsometric_heights(profile: np.ndarray, pressure: np.ndarray, temperature: np.ndarray,
                        dewpoint: np.ndarray | None = None) -> np.ndarray:
    """Height of every temperature level above the lowest one of its profile (m).

    Trapezoidal integration of (virtual) temperature over ln p between consecutive levels
    with valid temperature, as :func:`metpy.calc.thickness_hydrostatic` does. Rows must
    be grouped by profile and ordered by decreasing pressure; NaN where no temperature.
    """
    t_k = temperature + 273.15
    if dewpoint is not None:
        ok = np.isfinite(dewpoint) & np.isfinite(temperature)
        if ok.any():
            tv = virtual_temperature_from_dewpoint(units.Quantity(pressure[ok], "hPa"),
                                                   units.Quantity(temperature[ok], "degC"),
                                                   units.Quantity(dewpoint[ok], "degC"))
            t_k = t_k.copy()
            t_k[ok] = tv.to("K").magnitude
    valid = np.isfinite(t_k) & np.isfinite(pressure) & (pressure > 0)
    prev = _previous_valid(profile, np.where(valid, t_k, np.nan))
    dz = np.zeros(profile.size)
    has = valid & (prev >= 0)
    pv = prev[has]
    with np.errstate(divide="ignore", invalid="ignore"):
        dz[has] = RD_OVER_G * 0.5 * (t_k[has] + t_k[pv]) * np.log(pressure[pv] / pressure[has])
    # cumulative sum within each profile
    csum = np.cumsum(dz)
    starts = np.flatnonzero(_group_start(profile))
    base = np.repeat(np.concatenate(([0.0], csum[starts[1:] - 1])) if starts.size else np.zeros(0),
                     np.diff(np.append(starts, profile.size)))
    z = csum - base
    z[~valid] = np.nan
    return z


# --------------------------------------------------------------------------- positions

def coordinate_range(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, int]:
    """Soundings whose reported position is impossible: (mask, count).

    A position fails when its latitude lies outside [-90, 90] or its longitude outside
    [-180, 360); missing (NaN) coordinates are not failures here (nothing was reported).
    """
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    with np.errstate(invalid="ignore"):
        bad = ((np.isfinite(lat) & ((lat < LATITUDE_RANGE[0]) | (lat > LATITUDE_RANGE[1])))
               | (np.isfinite(lon) & ((lon < LONGITUDE_RANGE[0]) | (lon >= LONGITUDE_RANGE[1])))
               | np.isinf(lat) | np.isinf(lon))
    return bad, int(bad.sum())


# --------------------------------------------------------------------------- soundings

def drop_duplicate_soundings(soundings: pd.DataFrame, levels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Keep one sounding per (station, time): the one with most level records (first on ties)."""
    n_levels = np.bincount(levels["profile"].to_numpy(), minlength=len(soundings))
    order = pd.DataFrame({"station": soundings["station"].to_numpy(), "time": soundings["time"].to_numpy(),
                          "n": -n_levels, "i": np.arange(len(soundings))}).sort_values(["station", "time", "n", "i"])
    dup = order.duplicated(["station", "time"], keep="first")
    drop = np.zeros(len(soundings), bool)
    drop[order["i"].to_numpy()[dup.to_numpy()]] = True
    s, lv = select_soundings(soundings, levels, ~drop)
    return s, lv, int(drop.sum())


def select_soundings(soundings: pd.DataFrame, levels: pd.DataFrame, keep: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the soundings where ``keep`` is True, renumbering the level records' profiles."""
    keep = np.asarray(keep, bool)
    new_id = np.cumsum(keep) - 1
    prof = levels["profile"].to_numpy()
    lkeep = keep[prof] if prof.size else np.zeros(0, bool)
    lv = levels[lkeep].copy()
    lv["profile"] = new_id[prof[lkeep]]
    return soundings[keep].reset_index(drop=True), lv.reset_index(drop=True)


# --------------------------------------------------------------------------- QC

def quality_control(soundings: pd.DataFrame, levels: pd.DataFrame, qc: dict | None = None,
                    surface_elevation: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Apply the checks in the module docstring; returns (soundings, levels, counts).

    ``levels`` must hold derived variables (:func:`derive_variables`), grouped by
    profile in file order (surface first). ``surface_elevation`` (m, per sounding, NaN
    unknown) supplies the height of a surface level (LVLTYP2 = 1) that reports none.
    After QC, missing heights of temperature levels are computed hypsometrically from
    the nearest level with a reported height (below, else above).
    """
    cfg = {**DEFAULT_QC, **(qc or {})}
    counts: dict[str, int] = {}
    lv = levels.sort_values(["profile"], kind="stable").reset_index(drop=True)
    failed = np.zeros(len(lv), bool)  # any value of this level failed a check

    def count(name: str, mask: np.ndarray) -> None:
        counts[name] = counts.get(name, 0) + int(np.count_nonzero(mask))

    # ---- pressure
    p = lv["pressure"].to_numpy(float)
    no_p = ~np.isfinite(p)
    count("qc_levels_without_pressure", no_p)
    bad_p = np.isfinite(p) & ((p <= PRESSURE_RANGE_HPA[0]) | (p > PRESSURE_RANGE_HPA[1]))
    count("qc_pressure_range", bad_p)
    failed |= bad_p
    lv = lv[~no_p].reset_index(drop=True)
    failed = failed[~no_p]
    # below ground: levels at higher pressure than the sounding's surface level (LVLTYP2 = 1)
    # are extrapolations by the data provider, not observations
    p_all = lv["pressure"].to_numpy(float)
    is_sfc = (lv["lvltyp2"].to_numpy() == 1) & ~failed
    p_sfc = pd.Series(np.where(is_sfc, p_all, -np.inf)).groupby(lv["profile"].to_numpy()).transform("max").to_numpy()
    below = p_all > p_sfc + 1e-9
    below &= np.isfinite(p_sfc)
    count("qc_below_ground_levels", below)
    lv = lv[~below].reset_index(drop=True)
    failed = failed[~below]
    prof = lv["profile"].to_numpy()
    p = np.where(failed, np.nan, lv["pressure"].to_numpy(float))
    # strictly decreasing: a level whose pressure is not below every earlier valid pressure
    running_min = pd.Series(np.where(np.isfinite(p), p, np.inf)).groupby(prof).cummin().to_numpy()
    prev_min = np.full(p.size, np.inf)
    if p.size:
        prev_min[1:] = running_min[:-1]
        prev_min[_group_start(prof)] = np.inf
    not_decreasing = np.isfinite(p) & (p >= prev_min)
    count("qc_pressure_not_decreasing", not_decreasing)
    failed |= not_decreasing
    level_bad = failed.copy()  # whole-level failures

    t = lv["temperature"].to_numpy(float).copy()
    td = lv["dewpoint"].to_numpy(float).copy()
    z = lv["geopotential_height"].to_numpy(float).copy()
    u = lv["u"].to_numpy(float).copy()
    v = lv["v"].to_numpy(float).copy()
    speed = lv["wind_speed"].to_numpy(float)
    direction = lv["wind_direction"].to_numpy(float)
    for arr in (t, td, z, u, v):
        arr[level_bad] = np.nan

    def drop(name: str, mask: np.ndarray, *arrays: np.ndarray) -> None:
        nonlocal failed
        count(name, mask)
        failed |= mask
        for arr in arrays:
            arr[mask] = np.nan

    # ---- physical ranges
    drop("qc_temperature_range", np.isfinite(t) & ((t < TEMPERATURE_RANGE_C[0]) | (t > TEMPERATURE_RANGE_C[1])), t)
    td[~np.isfinite(t) & np.isfinite(td) & np.isfinite(lv["dewpoint_depression"].to_numpy(float))] = np.nan
    drop("qc_dewpoint_range", np.isfinite(td) & ((td < DEWPOINT_RANGE_C[0]) | (td > DEWPOINT_RANGE_C[1])), td)
    drop("qc_height_range", np.isfinite(z) & ((z < HEIGHT_RANGE_M[0]) | (z > HEIGHT_RANGE_M[1])), z)
    wind_bad = ~level_bad & np.isfinite(u) & (
        (direction < 0) | (direction > 360) | (speed < 0) | (speed > cfg["max_wind_speed_ms"]))
    drop("qc_wind_range", wind_bad, u, v)
    drop("qc_dewpoint_above_temperature", np.isfinite(td) & np.isfinite(t) & (td > t + DEWPOINT_ROUNDING_C), td)

    # ---- surface height from the station elevation
    if surface_elevation is not None:
        elev = np.asarray(surface_elevation, float)[prof] if prof.size else np.zeros(0)
        fill = (lv["lvltyp2"].to_numpy() == 1) & ~np.isfinite(z) & np.isfinite(elev) & ~level_bad
        z[fill] = elev[fill]
        count("qc_surface_height_from_station", fill)

    # ---- heights increasing
    zz = np.where(np.isfinite(z), z, -np.inf)
    running_max = pd.Series(zz).groupby(prof).cummax().to_numpy()
    prev_max = np.full(z.size, -np.inf)
    if z.size:
        prev_max[1:] = running_max[:-1]
        prev_max[_group_start(prof)] = -np.inf
    drop("qc_height_not_increasing", np.isfinite(z) & (z <= prev_max), z)

    # ---- super-adiabatic layers above the surface layer
    p_ok = np.where(level_bad, np.nan, lv["pressure"].to_numpy(float))
    t_ok = np.isfinite(t) & np.isfinite(p_ok)
    theta = np.full(t.size, np.nan)
    if t_ok.any():
        theta[t_ok] = potential_temperature(units.Quantity(p_ok[t_ok], "hPa"),
                                            units.Quantity(t[t_ok], "degC")).to("K").magnitude
    prev = _previous_valid(prof, theta)
    p_surface = pd.Series(np.where(t_ok, p_ok, -np.inf)).groupby(prof).transform("max").to_numpy()
    has = prev >= 0
    pv = np.where(has, prev, 0)
    above_surface = has & (p_ok[pv] <= p_surface - cfg["surface_layer_hpa"])
    sa = above_surface & (theta < theta[pv] - cfg["superadiabatic_tolerance_k"])
    sa_levels = sa.copy()
    sa_levels[pv[sa]] = True
    drop("qc_superadiabatic", sa_levels, t, td)

    # ---- hypsometric consistency of reported heights
    zrel = hypsometric_heights(prof, p_ok, t, td)
    anchor_z = np.where(np.isfinite(zrel), z, np.nan)
    anchors = np.isfinite(anchor_z)
    prev_a = _previous_valid(prof, anchor_z)
    layer = anchors & (prev_a >= 0)  # the layer from the previous anchor up to this one
    pa = np.where(layer, prev_a, 0)
    mismatch = layer & (np.abs((z - z[pa]) - (zrel - zrel[pa])) > cfg["hypsometric_tolerance_m"])
    below_bad = mismatch.copy()
    above_bad = np.zeros(z.size, bool)
    above_bad[pa[mismatch]] = True
    has_above = np.zeros(z.size, bool)
    has_above[pa[layer]] = True
    bad_z = anchors & ((below_bad & above_bad) | (below_bad & ~has_above) | (above_bad & ~layer))
    drop("qc_height_hypsometric", bad_z, z)

    # ---- policy
    if cfg["policy"] == "drop_sounding":
        bad_prof = np.zeros(len(soundings), bool)
        bad_prof[np.unique(prof[failed])] = True
        counts["qc_soundings_dropped_by_policy"] = int(bad_prof.sum())
    else:
        bad_prof = np.zeros(len(soundings), bool)
        counts["qc_soundings_dropped_by_policy"] = 0
        keep_levels = ~level_bad
        lv, t, td, z, u, v, prof = (lv[keep_levels].reset_index(drop=True), t[keep_levels], td[keep_levels],
                                     z[keep_levels], u[keep_levels], v[keep_levels], prof[keep_levels])
    lv = lv.assign(temperature=t, dewpoint=td, geopotential_height=z, u=u, v=v)
    if cfg["policy"] == "drop_sounding":
        soundings, lv = select_soundings(soundings, lv, ~bad_prof)
        prof = lv["profile"].to_numpy()

    # ---- fill missing heights hypsometrically from the nearest reported height
    p_f = lv["pressure"].to_numpy(float)
    t_f = lv["temperature"].to_numpy(float)
    z_f = lv["geopotential_height"].to_numpy(float).copy()
    zrel = hypsometric_heights(prof, p_f, t_f, lv["dewpoint"].to_numpy(float))
    offset = pd.Series(np.where(np.isfinite(zrel) & np.isfinite(z_f), z_f - zrel, np.nan))
    offset = offset.groupby(prof).ffill().groupby(prof).bfill().to_numpy() if len(offset) else offset.to_numpy()
    fill = ~np.isfinite(z_f) & np.isfinite(zrel) & np.isfinite(offset)
    z_f[fill] = zrel[fill] + offset[fill]
    count("qc_heights_computed", fill)
    lv["geopotential_height"] = z_f
    return soundings, lv, counts
