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
- identical soundings: a run of more than ``qc.max_identical_soundings`` consecutive
  soundings of one station (in time order) whose temperatures agree at every pressure
  level each shares with the one before (at least ``MIN_COMMON_LEVELS`` levels) is a
  stuck sensor or a re-sent sounding: the temperature (and dewpoint) of every sounding of
  the run fails (``qc_identical_soundings`` counts the soundings,
  ``qc_identical_sounding_levels`` the temperatures removed; each station is logged).
- a dropped temperature also drops the dewpoint derived from it.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pipeline.common.config import qc_settings
from pipeline.soundings.thermo import (RD_OVER_G, dewpoint_from_relative_humidity, potential_temperature,
                                       virtual_temperature_from_dewpoint, wind_components)

log = logging.getLogger(__name__)

LATITUDE_RANGE = (-90.0, 90.0)  # inclusive
LONGITUDE_RANGE = (-180.0, 360.0)  # inclusive lower, exclusive upper
PRESSURE_RANGE_HPA = (0.0, 1100.0)  # exclusive lower, inclusive upper
TEMPERATURE_RANGE_C = (-100.0, 60.0)
DEWPOINT_RANGE_C = (-120.0, 40.0)
HEIGHT_RANGE_M = (-500.0, 60000.0)
DEWPOINT_ROUNDING_C = 0.05
MIN_COMMON_LEVELS = 3  # levels two soundings must share for "identical" to mean anything

VARIABLES = ["temperature", "dewpoint", "u", "v", "geopotential_height"]


# --------------------------------------------------------------------------- derive

def derive_variables(levels: pd.DataFrame) -> pd.DataFrame:
    """Add dewpoint (degC), u and v (m/s) with MetPy's formulas (:mod:`.thermo`).

    Dewpoint: the reported dewpoint if any, else temperature minus dewpoint depression,
    else MetPy's ``dewpoint_from_relative_humidity``. Wind components: MetPy's
    ``wind_components`` from speed and the direction the wind blows from.
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
        td[from_rh] = dewpoint_from_relative_humidity(t[from_rh], rh[from_rh])
    lv["dewpoint"] = td
    speed = lv["wind_speed"].to_numpy(float)
    direction = lv["wind_direction"].to_numpy(float)
    lv["u"], lv["v"] = wind_components(speed, direction)
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
            t_k = t_k.copy()
            t_k[ok] = virtual_temperature_from_dewpoint(pressure[ok], temperature[ok], dewpoint[ok])
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

# ------------------------------------------------------------------------- the checks
# Each check returns the mask of what fails it (its count is the mask's sum); the level
# arrays are grouped by ``prof`` (profile number) in file order, surface first.

def check_pressure_range(p: np.ndarray) -> np.ndarray:
    """Levels whose pressure lies outside (0, 1100] hPa."""
    return np.isfinite(p) & ((p <= PRESSURE_RANGE_HPA[0]) | (p > PRESSURE_RANGE_HPA[1]))


def check_below_ground(prof: np.ndarray, p: np.ndarray, is_surface: np.ndarray) -> np.ndarray:
    """Levels at higher pressure than their sounding's surface level (LVLTYP2 = 1):
    extrapolations by the data provider, not observations."""
    p_sfc = pd.Series(np.where(is_surface, p, -np.inf)).groupby(prof).transform("max").to_numpy()
    return (p > p_sfc + 1e-9) & np.isfinite(p_sfc)


def check_pressure_decreasing(prof: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Levels whose pressure is not below every earlier valid pressure of the sounding."""
    running_min = pd.Series(np.where(np.isfinite(p), p, np.inf)).groupby(prof).cummin().to_numpy()
    prev_min = np.full(p.size, np.inf)
    if p.size:
        prev_min[1:] = running_min[:-1]
        prev_min[_group_start(prof)] = np.inf
    return np.isfinite(p) & (p >= prev_min)


def check_range(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Values outside ``[bounds[0], bounds[1]]``."""
    return np.isfinite(x) & ((x < bounds[0]) | (x > bounds[1]))


def check_wind(u, speed, direction, level_bad, max_speed: float) -> np.ndarray:
    """Winds with a direction outside [0, 360] deg or a speed negative or above ``max_speed``."""
    return ~level_bad & np.isfinite(u) & ((direction < 0) | (direction > 360) | (speed < 0) | (speed > max_speed))


def check_heights_increasing(prof: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Heights not above every earlier height of the sounding."""
    zz = np.where(np.isfinite(z), z, -np.inf)
    running_max = pd.Series(zz).groupby(prof).cummax().to_numpy()
    prev_max = np.full(z.size, -np.inf)
    if z.size:
        prev_max[1:] = running_max[:-1]
        prev_max[_group_start(prof)] = -np.inf
    return np.isfinite(z) & (z <= prev_max)


def check_superadiabatic(prof, p_ok, t, surface_layer_hpa: float, tolerance_k: float) -> np.ndarray:
    """Both ends of layers above the surface layer where potential temperature falls upward
    by more than ``tolerance_k``."""
    t_ok = np.isfinite(t) & np.isfinite(p_ok)
    theta = np.full(t.size, np.nan)
    if t_ok.any():
        theta[t_ok] = potential_temperature(p_ok[t_ok], t[t_ok])
    prev = _previous_valid(prof, theta)
    p_surface = pd.Series(np.where(t_ok, p_ok, -np.inf)).groupby(prof).transform("max").to_numpy()
    has = prev >= 0
    pv = np.where(has, prev, 0)
    above_surface = has & (p_ok[pv] <= p_surface - surface_layer_hpa)
    sa = above_surface & (theta < theta[pv] - tolerance_k)
    levels = sa.copy()
    levels[pv[sa]] = True
    return levels


def check_hypsometric(prof, p_ok, t, td, z, tolerance_m: float) -> np.ndarray:
    """Reported heights whose both adjacent layers (or only layer) disagree with the
    hypsometric thickness by more than ``tolerance_m``."""
    zrel = hypsometric_heights(prof, p_ok, t, td)
    anchor_z = np.where(np.isfinite(zrel), z, np.nan)
    anchors = np.isfinite(anchor_z)
    prev_a = _previous_valid(prof, anchor_z)
    layer = anchors & (prev_a >= 0)  # the layer from the previous anchor up to this one
    pa = np.where(layer, prev_a, 0)
    mismatch = layer & (np.abs((z - z[pa]) - (zrel - zrel[pa])) > tolerance_m)
    below_bad = mismatch.copy()
    above_bad = np.zeros(z.size, bool)
    above_bad[pa[mismatch]] = True
    has_above = np.zeros(z.size, bool)
    has_above[pa[layer]] = True
    return anchors & ((below_bad & above_bad) | (below_bad & ~has_above) | (above_bad & ~layer))


def check_identical_soundings(station: np.ndarray, time: np.ndarray, prof: np.ndarray, p: np.ndarray,
                              t: np.ndarray, max_run: int) -> np.ndarray:
    """Soundings (mask over the soundings) in a run of more than ``max_run`` consecutive
    soundings of one station whose temperatures equal, at every pressure level (0.1 hPa)
    with a temperature in both, those of the station's previous sounding (at least
    ``MIN_COMMON_LEVELS`` such levels)."""
    n = len(station)
    order = np.lexsort((np.asarray(time).astype("datetime64[ns]").astype(np.int64), np.asarray(station, str)))
    same_station = np.zeros(n, bool)
    same_station[1:] = np.asarray(station, str)[order][1:] == np.asarray(station, str)[order][:-1]
    prev = np.full(n, -1, np.int64)
    prev[order[same_station]] = order[np.flatnonzero(same_station) - 1]
    ok = np.isfinite(t) & np.isfinite(p)
    cur = pd.DataFrame({"prof": prof[ok], "p": np.round(p[ok] * 10).astype(np.int64), "t": t[ok]})
    before = cur.rename(columns={"prof": "prev", "t": "t_prev"})
    pairs = cur.assign(prev=prev[cur["prof"].to_numpy()]).merge(before, on=["prev", "p"])
    common = np.bincount(pairs["prof"].to_numpy(), minlength=n)
    equal = np.bincount(pairs["prof"].to_numpy(), weights=np.abs(pairs["t"] - pairs["t_prev"]).to_numpy() < 1e-6,
                        minlength=n)
    linked = ((common >= MIN_COMMON_LEVELS) & (equal == common))[order]  # identical to the previous one
    run_id = np.cumsum(~linked) - 1
    flagged = np.zeros(n, bool)
    if n:
        flagged[order] = np.bincount(run_id)[run_id] > max_run
    return flagged


def _log_identical(soundings: pd.DataFrame, flagged: np.ndarray, max_run: int) -> None:
    """One warning per station with identical soundings: how many, and the first time."""
    if not flagged.any():
        return
    bad = soundings.loc[flagged, ["station", "time"]]
    for sid, times in bad.groupby("station")["time"]:
        log.warning("station %s: %d soundings from %s repeat identical temperature profiles (runs longer than "
                    "qc.max_identical_soundings=%d): temperature and dewpoint removed", sid, len(times),
                    pd.Timestamp(times.min()).isoformat(), max_run)


class _Counter(dict):
    def add(self, name: str, mask: np.ndarray) -> np.ndarray:
        self[name] = self.get(name, 0) + int(np.count_nonzero(mask))
        return mask


def _level_checks(lv: pd.DataFrame, counts: _Counter) -> tuple[pd.DataFrame, np.ndarray]:
    """Whole-level checks: missing pressure and levels below ground leave the table; pressure
    out of range or not decreasing fail the level. Returns the levels and the failures."""
    p = lv["pressure"].to_numpy(float)
    no_p = counts.add("qc_levels_without_pressure", ~np.isfinite(p))
    failed = counts.add("qc_pressure_range", check_pressure_range(p))
    lv, failed = lv[~no_p].reset_index(drop=True), failed[~no_p]
    is_sfc = (lv["lvltyp2"].to_numpy() == 1) & ~failed
    below = counts.add("qc_below_ground_levels", check_below_ground(lv["profile"].to_numpy(),
                                                                    lv["pressure"].to_numpy(float), is_sfc))
    lv, failed = lv[~below].reset_index(drop=True), failed[~below]
    p = np.where(failed, np.nan, lv["pressure"].to_numpy(float))
    failed |= counts.add("qc_pressure_not_decreasing", check_pressure_decreasing(lv["profile"].to_numpy(), p))
    return lv, failed


def _value_checks(lv: pd.DataFrame, level_bad: np.ndarray, cfg: dict, surface_elevation,
                  counts: _Counter, soundings: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Checks of single values (ranges, identical soundings, dewpoint above temperature,
    heights increasing, super-adiabatic layers, hypsometric heights): failed values become
    NaN. Returns the value arrays and which levels had a failed value."""
    prof = lv["profile"].to_numpy()
    val = {k: lv[c].to_numpy(float).copy() for k, c in
           (("t", "temperature"), ("td", "dewpoint"), ("z", "geopotential_height"), ("u", "u"), ("v", "v"))}
    for arr in val.values():
        arr[level_bad] = np.nan
    t, td, z, u, v = val["t"], val["td"], val["z"], val["u"], val["v"]
    failed = level_bad.copy()

    def drop(name: str, mask: np.ndarray, *arrays: np.ndarray) -> None:
        nonlocal failed
        failed |= counts.add(name, mask)
        for arr in arrays:
            arr[mask] = np.nan

    drop("qc_temperature_range", check_range(t, TEMPERATURE_RANGE_C), t)
    td[~np.isfinite(t) & np.isfinite(td) & np.isfinite(lv["dewpoint_depression"].to_numpy(float))] = np.nan
    drop("qc_dewpoint_range", check_range(td, DEWPOINT_RANGE_C), td)
    p_ok = np.where(level_bad, np.nan, lv["pressure"].to_numpy(float))
    ident = check_identical_soundings(soundings["station"].to_numpy(), soundings["time"].to_numpy(), prof, p_ok, t,
                                      int(cfg["max_identical_soundings"]))
    counts["qc_identical_soundings"] = int(ident.sum())
    _log_identical(soundings, ident, int(cfg["max_identical_soundings"]))
    drop("qc_identical_sounding_levels", ident[prof] & np.isfinite(t), t, td)
    drop("qc_height_range", check_range(z, HEIGHT_RANGE_M), z)
    drop("qc_wind_range", check_wind(u, lv["wind_speed"].to_numpy(float), lv["wind_direction"].to_numpy(float),
                                     level_bad, cfg["max_wind_speed_ms"]), u, v)
    drop("qc_dewpoint_above_temperature", np.isfinite(td) & np.isfinite(t) & (td > t + DEWPOINT_ROUNDING_C), td)
    if surface_elevation is not None:  # surface height from the station elevation
        elev = np.asarray(surface_elevation, float)[prof] if prof.size else np.zeros(0)
        fill = (lv["lvltyp2"].to_numpy() == 1) & ~np.isfinite(z) & np.isfinite(elev) & ~level_bad
        z[fill] = elev[fill]
        counts.add("qc_surface_height_from_station", fill)
    drop("qc_height_not_increasing", check_heights_increasing(prof, z), z)
    drop("qc_superadiabatic", check_superadiabatic(prof, p_ok, t, cfg["surface_layer_hpa"],
                                                   cfg["superadiabatic_tolerance_k"]), t, td)
    drop("qc_height_hypsometric", check_hypsometric(prof, p_ok, t, td, z, cfg["hypsometric_tolerance_m"]), z)
    return val, failed


def _fill_heights(lv: pd.DataFrame, counts: _Counter) -> pd.DataFrame:
    """Missing heights computed hypsometrically from the nearest reported height."""
    prof = lv["profile"].to_numpy()
    z_f = lv["geopotential_height"].to_numpy(float).copy()
    zrel = hypsometric_heights(prof, lv["pressure"].to_numpy(float), lv["temperature"].to_numpy(float),
                               lv["dewpoint"].to_numpy(float))
    offset = pd.Series(np.where(np.isfinite(zrel) & np.isfinite(z_f), z_f - zrel, np.nan))
    offset = offset.groupby(prof).ffill().groupby(prof).bfill().to_numpy() if len(offset) else offset.to_numpy()
    fill = counts.add("qc_heights_computed", ~np.isfinite(z_f) & np.isfinite(zrel) & np.isfinite(offset))
    z_f[fill] = zrel[fill] + offset[fill]
    lv["geopotential_height"] = z_f
    return lv


def quality_control(soundings: pd.DataFrame, levels: pd.DataFrame, qc: dict | None = None,
                    surface_elevation: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Apply the checks in the module docstring; returns (soundings, levels, counts).

    ``levels`` must hold derived variables (:func:`derive_variables`), grouped by
    profile in file order (surface first). ``surface_elevation`` (m, per sounding, NaN
    unknown) supplies the height of a surface level (LVLTYP2 = 1) that reports none.
    After QC, missing heights of temperature levels are computed hypsometrically from
    the nearest level with a reported height (below, else above).
    """
    cfg = qc_settings(qc)
    counts = _Counter()
    lv = levels.sort_values(["profile"], kind="stable").reset_index(drop=True)
    lv, level_bad = _level_checks(lv, counts)
    val, failed = _value_checks(lv, level_bad, cfg, surface_elevation, counts, soundings)
    prof = lv["profile"].to_numpy()
    bad_prof = np.zeros(len(soundings), bool)
    if cfg["policy"] == "drop_sounding":
        bad_prof[np.unique(prof[failed])] = True
        counts["qc_soundings_dropped_by_policy"] = int(bad_prof.sum())
        lv = lv.assign(temperature=val["t"], dewpoint=val["td"], geopotential_height=val["z"], u=val["u"], v=val["v"])
        soundings, lv = select_soundings(soundings, lv, ~bad_prof)
    else:
        counts["qc_soundings_dropped_by_policy"] = 0
        keep = ~level_bad
        lv = lv[keep].reset_index(drop=True).assign(temperature=val["t"][keep], dewpoint=val["td"][keep],
                                                    geopotential_height=val["z"][keep], u=val["u"][keep],
                                                    v=val["v"][keep])
    return soundings, _fill_heights(lv, counts), dict(counts)
