"""Embedded default data: a synthetic nature run (OSSE) written in the real raw formats.

The atmosphere is built in :mod:`pipeline.nature_run.physics` (moving weather systems in
a day-to-day varying steering flow, hypsometric heights, rain where moist lifted air
passes); this module observes it with a synthetic network and writes, per month::

    OUT/soundings/igra2-station-list.txt     IGRA2 station list (network file)
    OUT/soundings/YYYY-MM/<ID>-data.txt      IGRA v2 data format, that month's soundings
    OUT/gauges/stations.csv                  id,lat,lon,elevation_m (network file)
    OUT/gauges/YYYY-MM.csv                   station,time,rain_mm hourly (time = end of hour)
    OUT/truth/YYYY-MM.nc                     truth on the concat grid at 00/12 UTC
    OUT/truth.zarr                           the whole period's truth (full runs only)

A month's bytes depend only on the seed, the world, the network settings and the region
boxes: every random draw is keyed by absolute day or month numbers, so extending the
period leaves earlier months byte-identical and ``--month`` jobs equal a full run.

Command line::

    python -m pipeline.nature_run [--config config.yaml] --out data/raw \
        [--month YYYY-MM | --start YYYY-MM --end YYYY-MM] [--world advective|control] \
        [--seed N] [--threads N] [--no-progress]

``--config`` defaults to the repository's config.yaml; ``--threads`` is the number of
processes of a full run (``--workers`` is its deprecated alias).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.nature_run import formats as fmt
from pipeline.nature_run import physics as phys
from pipeline.common import cli
from pipeline.common.atomic import atomic_path, write_bytes_if_changed
from pipeline.common.config import load_config, period_months
from pipeline.common.errors import ConfigError
from pipeline.common.times import HOUR, calendar_fields, month_frame_times, month_index, month_start, parse_month, time_range
from pipeline.gridding.geometry import make_grid

log = logging.getLogger("pipeline.nature_run.generator")
progress_log = logging.getLogger("pipeline.nature_run.generator" + cli.PROGRESS_SUFFIX)  # off with --no-progress

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
MANDATORY_HPA = np.array([1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100, 70, 50, 30, 20, 10], float)
N_THERMO_SIG, N_WIND_SIG, N_HEIGHT_WIND = 10, 8, 2
MARGIN_DEG = 2.0  # network margin around the union of the region boxes
KIND_NETWORK_SONDE, KIND_NETWORK_GAUGE, KIND_MONTH_OBS = 21, 22, 31

# Observation flaws (fractions). Documented here so QC counts can be checked against them.
P_MISSING_SOUNDING = 0.02  # a sounding not made
P_STATION_OUTAGE = 0.05  # a station-month with a 2-6 day outage
P_EARLY_END = 0.06  # profile ends (balloon burst) between 500 and 150 hPa
P_MISSING_LEVEL = 0.02  # a mandatory level absent
P_RH_ONLY = 0.08  # humidity reported as RH only (DPDP missing)
P_HEIGHT_WIND = 0.10  # soundings with wind levels by height only (PRESS missing, type 3)
P_REMOVED = 0.003  # temperature / height value removed by NCEI QC (-8888)
P_GROSS_T, P_GROSS_Z, P_GROSS_WIND = 0.001, 0.001, 0.0005  # gross errors left in
P_GAUGE_ROW_ABSENT, P_GAUGE_EMPTY = 0.005, 0.003  # missing hours
P_GAUGE_OUTAGE = 0.03  # a gauge-month with a 1-10 day outage (rows absent)
P_GAUGE_NEGATIVE, P_GAUGE_ABSURD = 2e-5, 2e-5  # bad values (negative; 999.9 mm)


@dataclass(frozen=True)
class Network:
    """Fixed station positions (degrees, metres)."""

    sonde_id: np.ndarray
    sonde_lat: np.ndarray
    sonde_lon: np.ndarray
    sonde_elev: np.ndarray
    sonde_has_etime: np.ndarray  # bool: station reports elapsed time
    sonde_has_reltime: np.ndarray  # bool: station reports release time
    sonde_sfc_gph: np.ndarray  # bool: station reports its surface height
    gauge_id: np.ndarray
    gauge_lat: np.ndarray
    gauge_lon: np.ndarray
    gauge_elev: np.ndarray


def network_box(regions: dict) -> tuple[float, float, float, float]:
    r1, r2 = regions["region1"], regions["region2"]
    return (min(r1["lat_min"], r2["lat_min"]) - MARGIN_DEG, max(r1["lat_max"], r2["lat_max"]) + MARGIN_DEG,
            min(r1["lon_min"], r2["lon_min"]) - MARGIN_DEG, max(r1["lon_max"], r2["lon_max"]) + MARGIN_DEG)


def _jittered(rng: np.random.Generator, n: int, box) -> tuple[np.ndarray, np.ndarray]:
    """n positions on a jittered regular layout over the box (an evenly spread network)."""
    lat0, lat1, lon0, lon1 = box
    nx = max(1, int(round(np.sqrt(n * (lon1 - lon0) / (lat1 - lat0)))))
    ny = int(np.ceil(n / nx))
    cells = rng.permutation(nx * ny)[:n]
    cy, cx = np.divmod(np.sort(cells), nx)
    jit = rng.uniform(0.1, 0.9, (n, 2))
    lat = lat0 + (cy + jit[:, 0]) * (lat1 - lat0) / ny
    lon = lon0 + (cx + jit[:, 1]) * (lon1 - lon0) / nx
    return np.round(lat, 4), np.round(lon, 4)


def make_network(config: dict, seed: int) -> Network:
    syn = config["synthetic"]
    geo = phys.make_geometry(config["regions"])
    box = network_box(config["regions"])
    ns, ng = int(syn["n_sounding_stations"]), int(syn["n_gauges"])
    rng = phys.rng_for(seed, KIND_NETWORK_SONDE, ns)
    slat, slon = _jittered(rng, ns, box)
    selev = np.round(np.maximum(phys.terrain(slon, slat, geo) + rng.normal(0, 60, ns), 3.0), 0)
    flags = rng.random((ns, 3))
    rng = phys.rng_for(seed, KIND_NETWORK_GAUGE, ng)
    glat, glon = _jittered(rng, ng, box)
    gelev = np.round(np.maximum(phys.terrain(glon, glat, geo) + rng.normal(0, 40, ng), 2.0), 1)
    return Network(
        sonde_id=np.array([f"SYN000{57001 + i:05d}" for i in range(ns)]),
        sonde_lat=slat, sonde_lon=slon, sonde_elev=selev,
        sonde_has_etime=flags[:, 0] < 0.5, sonde_has_reltime=flags[:, 1] < 0.85,
        sonde_sfc_gph=flags[:, 2] < 0.7,
        gauge_id=np.array([f"G{i:04d}" for i in range(ng)]),
        gauge_lat=glat, gauge_lon=glon, gauge_elev=gelev,
    )


def network_files(net: Network) -> dict[str, bytes]:
    """Station list and gauge stations file. FSTYEAR/LSTYEAR/NOBS are fixed values that do not
    depend on the period, so extending the period leaves these files unchanged."""
    n = net.sonde_id.size
    names = [f"SYNTHETIC SONDE {i + 1:03d}" for i in range(n)]
    station_list = fmt.station_list_bytes(net.sonde_id, net.sonde_lat, net.sonde_lon, net.sonde_elev,
                                          names, 2000, 2030, np.full(n, 22000))
    return {"soundings/igra2-station-list.txt": station_list,
            "gauges/stations.csv": _stations_csv(net).encode("ascii")}


def _stations_csv(net: Network) -> str:
    lines = ["id,lat,lon,elevation_m"] + [
        f"{i},{la:.4f},{lo:.4f},{el:.1f}" for i, la, lo, el in
        zip(net.gauge_id, net.gauge_lat, net.gauge_lon, net.gauge_elev)]
    return "\n".join(lines) + "\n"


def month_number(month: str) -> int:
    return month_index(month)


# ----------------------------------------------------------------------------- the atmosphere at points

def columns_at(config: dict, seed: int, world: str, times: np.ndarray, lon: np.ndarray,
               lat: np.ndarray) -> phys.Columns:
    """Column scalars (T, P) of the world at frame times and points."""
    geo = phys.make_geometry(config["regions"])
    hours = phys.hours_since_day0(times)
    cols = phys.world_columns(seed, world, hours, lon, lat, geo,
                              keys=("p_drop", "t_anom", "moist", "u_anom", "v_anom"))
    along, across = phys.steering(seed, hours)
    ones = np.ones((hours.size, lon.size))
    return phys.make_columns(hours[:, None] * ones, lat[None, :] * ones, cols,
                             along[:, None] * ones, across[:, None] * ones, geo)


def hourly_rain(config: dict, seed: int, world: str, hour_ends: np.ndarray, lon, lat) -> np.ndarray:
    """Truth rain (mm) of each hour ending at ``hour_ends`` at points: (T, P)."""
    geo = phys.make_geometry(config["regions"])
    mid = phys.hours_since_day0(hour_ends) - 0.5
    cols = phys.world_columns(seed, world, mid, lon, lat, geo, keys=("rain",))
    return cols["rain"] * phys.rain_seasonal_factor(mid)[:, None]


# ----------------------------------------------------------------------------- truth

def truth_month(config: dict, seed: int, world: str, month: str, rain_hourly: np.ndarray,
                hour_ends: np.ndarray) -> "Truth":
    grid = make_grid(config, "concat")
    frames = month_frames(month)
    glat, glon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    lon, lat = glon.ravel(), glat.ravel()
    c = columns_at(config, seed, world, frames, lon, lat)
    levels = np.asarray(config["levels_hpa"], float)
    fine = phys.fine_levels(levels)
    z, prof_fine = phys.heights(c, fine, with_profile=True, winds=False)  # (T, P, L)
    pick = np.searchsorted(-fine, -levels)
    prof = {k: v[..., pick] for k, v in prof_fine.items()}
    prof.update(phys.wind_profile(c, fine[pick]))  # pointwise in p: the same values as at the fine levels
    shape = (frames.size, grid.lat.size, grid.lon.size)
    geo = phys.make_geometry(config["regions"])
    elev = phys.terrain(glon, glat, geo)
    p_sfc = phys.pressure_at_height(fine, z, np.broadcast_to(elev.ravel(), z.shape[:-1]))
    # 12 h rain ending at each frame: hours ending in (t - 12 h, t]
    pos = np.searchsorted(hour_ends, frames)
    assert (hour_ends[pos] == frames).all(), "every frame is an hour end"
    csum = np.concatenate([np.zeros((1, rain_hourly.shape[1])), np.cumsum(rain_hourly, axis=0)])
    rain12 = csum[pos + 1] - csum[pos + 1 - 12]

    def lv(a):  # (T, P, K) -> (T, K, lat, lon)
        return np.moveaxis(a.reshape(shape + (a.shape[-1],)), -1, 1).astype(np.float32)

    return Truth(
        time=frames, level=levels, lat=grid.lat, lon=grid.lon, world=world, seed=int(seed),
        fields={
            "temperature": lv(prof["temperature"]), "dewpoint": lv(prof["dewpoint"]),
            "u": lv(prof["u"]), "v": lv(prof["v"]), "geopotential_height": lv(z[..., pick]),
            "rain_mm": rain12.reshape(shape).astype(np.float32),
            "mslp": c.p_msl.reshape(shape).astype(np.float32),
            "surface_pressure": p_sfc.reshape(shape).astype(np.float32),
            "elevation": elev.astype(np.float32),
            "region1_mask": grid.region1_mask.astype(np.int8),
        },
    )


# name: (dims, units, long name, least significant decimal digit kept in the file)
TRUTH_VARIABLES = {
    "temperature": (("time", "level", "lat", "lon"), "degC", "air temperature", 2),
    "dewpoint": (("time", "level", "lat", "lon"), "degC", "dewpoint temperature", 2),
    "u": (("time", "level", "lat", "lon"), "m s-1", "eastward wind", 2),
    "v": (("time", "level", "lat", "lon"), "m s-1", "northward wind", 2),
    "geopotential_height": (("time", "level", "lat", "lon"), "m", "geopotential height", 1),
    "rain_mm": (("time", "lat", "lon"), "mm", "rain in the 12 h ending at time", 3),
    "mslp": (("time", "lat", "lon"), "hPa", "sea-level pressure", 2),
    "surface_pressure": (("time", "lat", "lon"), "hPa",
                         "surface pressure (fields at levels below it are extrapolated)", 2),
    "elevation": (("lat", "lon"), "m", "terrain height", 1),
    "region1_mask": (("lat", "lon"), "1", "1 on region-1 cells", None),
}


@dataclass
class Truth:
    """Truth fields of one month on the concat grid (numpy arrays, see TRUTH_VARIABLES)."""

    time: np.ndarray
    level: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    world: str
    seed: int
    fields: dict

    def attrs(self) -> dict:
        return {"title": "synthetic nature run truth (never read by the pipeline)",
                "world": self.world, "seed": self.seed, "Conventions": "CF-1.8"}

    def to_xarray(self):
        import xarray as xr  # imported here: month jobs do not need it
        
        data = {k: (TRUTH_VARIABLES[k][0], v, {"units": TRUTH_VARIABLES[k][1], "long_name": TRUTH_VARIABLES[k][2]})
                for k, v in self.fields.items()}
        return xr.Dataset(data, coords={"time": self.time, "level": ("level", self.level, {"units": "hPa"}),
                                        "lat": ("lat", self.lat, {"units": "degrees_north"}),
                                        "lon": ("lon", self.lon, {"units": "degrees_east"})},
                          attrs=self.attrs())


def netcdf_bytes(truth: Truth) -> bytes:
    """Deterministic, compressed netCDF-4 bytes of a month's truth (written with netCDF4)."""
    import netCDF4

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "truth.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
            nc.setncatts(truth.attrs())
            for name, size in (("time", truth.time.size), ("level", truth.level.size),
                               ("lat", truth.lat.size), ("lon", truth.lon.size)):
                nc.createDimension(name, size)
            t = nc.createVariable("time", "i8", ("time",))
            t.units = "hours since 1970-01-01 00:00:00"
            t.calendar = "proleptic_gregorian"
            t[:] = (truth.time.astype("datetime64[h]") - np.datetime64("1970-01-01T00", "h")).astype(np.int64)
            for name, vals, units in (("level", truth.level, "hPa"), ("lat", truth.lat, "degrees_north"),
                                      ("lon", truth.lon, "degrees_east")):
                var = nc.createVariable(name, "f8", (name,))
                var.units = units
                var[:] = vals
            for name, data in truth.fields.items():
                dims, units, long_name, digits = TRUTH_VARIABLES[name]
                var = nc.createVariable(name, data.dtype, dims, zlib=True, complevel=1, shuffle=True,
                                        least_significant_digit=digits)
                var.units = units
                var.long_name = long_name
                var[:] = data
        return path.read_bytes()


def month_frames(month: str) -> np.ndarray:
    return month_frame_times(month, 12)


# ----------------------------------------------------------------------------- soundings

def outage_mask(rng: np.random.Generator, n_times: int, n_sites: int, p_outage: float,
                min_len: int, max_len: int) -> np.ndarray:
    """(n_times, n_sites) True where a site is in its one outage (lengths in [min_len, max_len))."""
    outage = rng.random(n_sites) < p_outage
    start = rng.integers(0, n_times, n_sites)
    length = rng.integers(min_len, max_len, n_sites)
    t = np.arange(n_times)[:, None]
    return outage & (t >= start) & (t < start + length)


MISS, REM = -9999, -8888  # IGRA2 missing and QC-removed values


@dataclass
class LevelLayout:
    """Which soundings and levels exist: ``exists (F, S)``, level ``kind (C,)`` (0 surface,
    1 mandatory, 2 thermodynamic significant, 3 wind significant, 4 wind by height),
    pressures ``p (F, S, C)`` hPa and ``keep (F, S, C)``."""
    exists: np.ndarray
    kind: np.ndarray
    p: np.ndarray
    keep: np.ndarray


def level_layout(rng: np.random.Generator, p_sfc: np.ndarray) -> LevelLayout:
    """Draw which soundings are launched, where they end, and their level pressures."""
    F, S = p_sfc.shape
    exists = rng.random((F, S)) >= P_MISSING_SOUNDING
    exists &= ~outage_mask(rng, F, S, P_STATION_OUTAGE, 4, 13)
    # slots: surface, mandatory, thermo significant, wind significant, wind by height
    nm = MANDATORY_HPA.size
    C = 1 + nm + N_THERMO_SIG + N_WIND_SIG + N_HEIGHT_WIND
    kind = np.concatenate([[0], np.full(nm, 1), np.full(N_THERMO_SIG, 2), np.full(N_WIND_SIG, 3),
                           np.full(N_HEIGHT_WIND, 4)])
    early = rng.random((F, S)) < P_EARLY_END
    top = np.where(early, np.exp(rng.uniform(np.log(150), np.log(500), (F, S))),
                   np.exp(rng.uniform(np.log(8), np.log(30), (F, S))))
    u_sig = rng.random((F, S, C))
    p = np.empty((F, S, C))
    p[..., 0] = np.round(p_sfc * 10) / 10  # surface pressure to 10 Pa
    p[..., 1:1 + nm] = MANDATORY_HPA
    lo, hi = np.log(np.maximum(top, 10.0))[..., None], np.log(p_sfc - 2.0)[..., None]
    sig = slice(1 + nm, C)
    p[..., sig] = np.round(np.exp(lo + (hi - lo) * u_sig[..., sig]))  # whole hPa (100 Pa)
    keep_draw = rng.random((F, S, C))
    keep = np.ones((F, S, C), bool)
    keep[..., 1:] &= p[..., 1:] < p_sfc[..., None] - 1.0
    keep &= p >= top[..., None]
    keep[..., 1:1 + nm] &= keep_draw[..., 1:1 + nm] >= P_MISSING_LEVEL
    keep[..., kind == 2] &= keep_draw[..., kind == 2] < 0.7
    keep[..., kind == 3] &= keep_draw[..., kind == 3] < 0.6
    has_hw = rng.random((F, S)) < P_HEIGHT_WIND
    keep[..., kind == 4] &= has_hw[..., None]
    keep[..., kind >= 2] &= ~np.isin(p[..., kind >= 2], MANDATORY_HPA)
    keep &= exists[..., None]
    return LevelLayout(exists, kind, p, keep)


def observed_values(rng: np.random.Generator, c, fine, z_fine, lay: LevelLayout, elev) -> dict[str, np.ndarray]:
    """The truth at every level plus instrument noise: temperature, dew-point depression,
    height, wind and relative humidity (float, physical units), and which soundings report
    humidity as RH."""
    p, kind = lay.p, lay.kind
    prof = phys.profile(c, p)  # (F, S, C) each
    z = phys.interp_lnp(fine, z_fine, p)
    z[..., 0] = elev
    t_c, td_c, u, v = prof["temperature"], prof["dewpoint"], prof["u"], prof["v"]
    u = np.where(kind == 0, 0.5 * u, u)
    v = np.where(kind == 0, 0.5 * v, v)
    t_obs = t_c + rng.normal(0, 1, p.shape) * np.where(p < 200, 0.4, 0.25)
    dpd_obs = np.maximum(t_c - td_c + rng.normal(0, 0.8, p.shape), 0.0)
    z_obs = z + rng.normal(0, 1, p.shape) * (2.0 + z / 4000.0)
    u_obs = u + rng.normal(0, 0.7, p.shape)
    v_obs = v + rng.normal(0, 0.7, p.shape)
    rh_only = np.broadcast_to((rng.random(p.shape[:2]) < P_RH_ONLY)[..., None], p.shape)
    es = phys.saturation_vapor_pressure_hpa(t_obs)
    e = phys.saturation_vapor_pressure_hpa(t_obs - dpd_obs)
    rh = np.clip(100.0 * e / es, 1.0, 100.0)
    return {"t_c": t_c, "z": z, "t_obs": t_obs, "dpd_obs": dpd_obs, "z_obs": z_obs, "u_obs": u_obs,
            "v_obs": v_obs, "rh_only": rh_only, "rh": rh}


def encoded_fields(rng: np.random.Generator, obs: dict, lay: LevelLayout, net: Network, elev) -> dict[str, np.ndarray]:
    """The IGRA2 integer fields (tenths, whole metres, Pa), with missing values, QC-removed
    values, gross errors and quality flags as in real files."""
    p, kind = lay.p, lay.kind
    temp = np.round(obs["t_obs"] * 10).astype(np.int64)
    dpdp = np.round(obs["dpd_obs"] * 10).astype(np.int64)
    rh10 = np.round(obs["rh"] * 10).astype(np.int64)
    gph = np.round(obs["z_obs"]).astype(np.int64)
    speed = np.hypot(obs["u_obs"], obs["v_obs"])
    wdir = np.round(np.mod(270.0 - np.degrees(np.arctan2(obs["v_obs"], obs["u_obs"])), 360.0)).astype(np.int64) % 360
    wspd = np.round(speed * 10).astype(np.int64)
    wdir = np.where(wspd == 0, 0, wdir)
    press = np.round(p * 100).astype(np.int64)

    thermo = (kind <= 2)
    windy = (kind != 2)
    temp = np.where(thermo, temp, MISS)
    # Modern sondes (e.g. thin-film capacitive sensors) report humidity to the lower
    # stratosphere; only the coldest air (< -85 degC) goes without, so every configured
    # level has dewpoint samples for normalisation.
    humid_ok = thermo & (obs["t_c"] > -85.0)
    humid_ok = humid_ok & (rng.random(p.shape) >= 0.02)
    dpdp = np.where(humid_ok & ~obs["rh_only"], dpdp, MISS)
    rh10 = np.where(humid_ok & obs["rh_only"], rh10, MISS)
    gph_ok = (kind == 1) | (kind == 4) | ((kind == 0) & net.sonde_sfc_gph[None, :, None])
    gph = np.where(gph_ok, gph, MISS)
    gph[..., 0] = np.where(net.sonde_sfc_gph[None, :], np.round(elev).astype(np.int64), MISS)
    wind_ok = windy & (rng.random(p.shape) >= 0.02)
    wdir = np.where(wind_ok, wdir, MISS)
    wspd = np.where(wind_ok, wspd, MISS)
    press = np.where(kind == 4, MISS, press)
    # profile ends for humidity earlier at high levels (as observed) and winds end at burst
    # QC-removed values and gross errors
    r = rng.random((4,) + p.shape)
    mand = kind == 1
    temp = np.where(mand & (r[0] < P_REMOVED) & (temp != MISS), REM, temp)
    gph = np.where(mand & (r[1] < P_REMOVED) & (gph != MISS), REM, gph)
    gross_t = (r[0] > 1 - P_GROSS_T) & (temp > -900)
    gross_z = mand & (r[1] > 1 - P_GROSS_Z) & (gph > -900)
    gross_w = (r[2] < P_GROSS_WIND) & (wspd > 0)
    mag = rng.uniform(0, 1, (3,) + p.shape)
    sgn = np.where(r[3] < 0.5, -1, 1)
    temp = np.where(gross_t, temp + sgn * np.round(100 + 200 * mag[0]).astype(np.int64), temp)
    gph = np.where(gross_z, np.maximum(gph + sgn * np.round(150 + 750 * mag[1]).astype(np.int64), 0), gph)
    wspd = np.where(gross_w, wspd * 4 + 200, wspd)
    temp = np.clip(temp, -9999, 99999)

    flag_b, flag_a, blank = ord("B"), ord("A"), fmt.SPACE
    zflag = np.where((gph > -8000) & mand, np.where(r[3] < 0.1, flag_a, flag_b), blank)
    zflag = np.where(gross_z, blank, zflag).astype(np.uint8)
    tflag = np.where(temp > -8000, flag_b, blank)
    tflag = np.where(gross_t, blank, tflag).astype(np.uint8)
    pflag = np.where(kind == 0, flag_b, blank).astype(np.uint8)
    lvl1 = np.select([kind == 0, kind == 1, kind == 4], [2, 1, 3], 2)
    lvl2 = np.where(kind == 0, 1, 0)
    secs = np.maximum((obs["z"] - elev[..., None]) / 5.0, 0.0)
    et = (secs // 60) * 100 + np.round(secs % 60).clip(0, 59)
    etime = np.where(net.sonde_has_etime[None, :, None], et.astype(np.int64), MISS)
    return dict(lvltyp1=lvl1, lvltyp2=lvl2, etime=etime, pressure=press, pflag=pflag, gph=gph, zflag=zflag,
                temp=temp, tflag=tflag, rh=rh10, dpdp=dpdp, wdir=wdir, wspd=wspd)


def ordered_levels(lay: LevelLayout, fields: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Kept levels ordered by pressure, descending (wind-by-height levels by their
    pressure), as flat columns frame-major then station; and the level count ``(F, S)``."""
    p, keep = lay.p, lay.keep
    order_key = np.where(keep, p, -np.inf)
    order = np.argsort(-order_key, axis=-1, kind="stable")

    def take(a):
        a = np.broadcast_to(a, p.shape)
        return np.take_along_axis(a, order, -1)

    keep_o = take(keep)
    # two significant levels drawn at the same whole hPa: keep the first only
    p_o = take(p)
    keep_o[..., 1:] &= ~(keep_o[..., :-1] & (p_o[..., 1:] == p_o[..., :-1]))
    keep = np.take_along_axis(keep_o, np.argsort(order, axis=-1), -1)
    cols = {name: take(a)[keep_o] for name, a in fields.items()}
    return cols, keep.sum(-1)


def soundings_month(config: dict, seed: int, world: str, month: str, net: Network,
                    rng: np.random.Generator) -> dict[str, bytes]:
    """IGRA v2 data files of one month: {station id: bytes}."""
    frames = month_frames(month)
    F, S = frames.size, net.sonde_id.size
    c = columns_at(config, seed, world, frames, net.sonde_lon, net.sonde_lat)  # (F, S)
    fine = phys.fine_levels()
    z_fine = phys.heights(c, fine)  # (F, S, L)
    elev = np.broadcast_to(net.sonde_elev, (F, S))
    p_sfc = phys.pressure_at_height(fine, z_fine, elev)

    lay = level_layout(rng, p_sfc)
    obs = observed_values(rng, c, fine, z_fine, lay, elev)
    cols, numlev = ordered_levels(lay, encoded_fields(rng, obs, lay, net, elev))
    rows = fmt.level_records(cols)
    # the rows above are ordered frame-major then station; each station's file takes its own
    row_start = np.concatenate([[0], np.cumsum(numlev.ravel())])
    minute = rng.integers(0, 60, (F, S))
    rel = np.where(calendar_fields(frames)["hour"][:, None] == 0, 2300, 1100) + minute
    rel = np.where(net.sonde_has_reltime[None, :], rel, 9999)

    out = {}
    for s in range(S):
        fs = np.flatnonzero(lay.exists[:, s] & (numlev[:, s] > 0))
        if fs.size == 0:
            continue
        idx = fs * S + s
        nl = numlev.ravel()[idx]
        lev_rows = np.concatenate([np.arange(row_start[i], row_start[i + 1]) for i in idx])
        hdr = fmt.header_records(np.full(fs.size, net.sonde_id[s]), frames[fs], rel[fs, s], nl,
                                 np.full(fs.size, net.sonde_lat[s]), np.full(fs.size, net.sonde_lon[s]))
        out[net.sonde_id[s]] = fmt.station_file_bytes(hdr, rows[lev_rows], nl)
    return out


# ----------------------------------------------------------------------------- gauges

def gauges_month(month: str, net: Network, rain_hourly: np.ndarray, rng: np.random.Generator) -> bytes:
    """Hourly gauge CSV of the hours ending in the month: rain_hourly (T, G) truth mm."""
    ends = time_range(month_start(month), month_start(month, 1) - HOUR)
    T, G = rain_hourly.shape
    assert T == ends.size
    # gauge-scale variability: gamma-distributed hourly factor with mean 1
    obs = rain_hourly * rng.gamma(0.6, 1 / 0.6, (T, G))
    tenths = np.round(obs * 10).astype(np.int64)
    present = rng.random((T, G)) >= P_GAUGE_ROW_ABSENT
    present &= ~outage_mask(rng, T, G, P_GAUGE_OUTAGE, 24, 241)
    empty = rng.random((T, G)) < P_GAUGE_EMPTY
    bad = rng.random((T, G))
    neg_vals = -rng.integers(1, 100, (T, G))
    tenths = np.where(bad < P_GAUGE_NEGATIVE, neg_vals, tenths)
    tenths = np.where(bad > 1 - P_GAUGE_ABSURD, 9999, tenths)
    return fmt.gauge_csv_bytes(net.gauge_id, ends, tenths, present, empty)


# ----------------------------------------------------------------------------- one month

def generate_month(config: dict, month: str, world: str, seed: int) -> tuple[dict[str, bytes], "Truth"]:
    """All files of one month as {relative path: bytes}, and its truth dataset."""
    net = make_network(config, seed)
    grid = make_grid(config, "concat")
    # hour ends needed: gauges [month start, next month start), truth from start - 11 h
    hour_ends = time_range(month_start(month) - 11 * HOUR, month_start(month, 1) - HOUR)
    glat, glon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    lon = np.concatenate([glon.ravel(), net.gauge_lon])
    lat = np.concatenate([glat.ravel(), net.gauge_lat])
    rain = hourly_rain(config, seed, world, hour_ends, lon, lat)
    ng = glon.size
    rng = phys.rng_for(seed, KIND_MONTH_OBS, month_number(month))
    files = {}
    for sid, data in soundings_month(config, seed, world, month, net, rng).items():
        files[f"soundings/{month}/{sid}-data.txt"] = data
    files[f"gauges/{month}.csv"] = gauges_month(month, net, rain[11:, ng:], rng)
    truth = truth_month(config, seed, world, month, rain[:, :ng], hour_ends)
    files[f"truth/{month}.nc"] = netcdf_bytes(truth)
    return files, truth


def write_files(out: Path, files: dict[str, bytes]) -> int:
    return sum(write_bytes_if_changed(out / rel, data) for rel, data in files.items())


def _month_job(args):
    config, month, world, seed, out = args
    t0 = time.perf_counter()
    files, truth = generate_month(config, month, world, seed)
    n = write_files(Path(out), files)
    return month, n, len(files), time.perf_counter() - t0, truth


def run(config: dict, out: str | Path, months: list[str], world: str, seed: int,
        write_truth_zarr: bool, workers: int = 1) -> dict:
    """Write the network files and the given months; optionally the whole truth.zarr."""
    out = Path(out)
    net = make_network(config, seed)
    written = write_files(out, network_files(net))
    jobs = [(config, m, world, seed, str(out)) for m in months]
    truths = []
    t0 = time.perf_counter()
    if workers > 1 and len(months) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_month_job, jobs)
            for month, n, nf, dt, truth in results:
                written += n
                progress_log.info("month %s: %d files (%d rewritten) in %.1f s", month, nf, n, dt)
                truths.append(truth)
    else:
        for job in jobs:
            month, n, nf, dt, truth = _month_job(job)
            written += n
            progress_log.info("month %s: %d files (%d rewritten) in %.1f s", month, nf, n, dt)
            truths.append(truth)
    if write_truth_zarr:
        with atomic_path(out / "truth.zarr") as tmp, warnings.catch_warnings():
            # zarr warns that consolidated metadata is not part of the v3 spec; we want it anyway
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            for i, truth in enumerate(truths):
                ds = truth.to_xarray()
                if i == 0:
                    ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=3)
                else:
                    ds.drop_vars(["elevation", "region1_mask", "level", "lat", "lon"]).to_zarr(
                        tmp, append_dim="time", consolidated=True)
        log.info("truth.zarr: %d frames", sum(t.time.size for t in truths))
    return {"months": months, "files_rewritten": written, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- command line

def build_parser():
    ap = cli.parser("python -m pipeline.nature_run", __doc__, progress=True,
                    threads="processes for a full run (default: min(2, usable cores)); a --month run uses one")
    ap.add_argument("--config", default=None, help="config YAML (default: the repository's config.yaml)")
    ap.add_argument("--out", required=True, help="output folder (raw layout)")
    ap.add_argument("--month", default=None, help="write only this month YYYY-MM (plus the network files)")
    ap.add_argument("--network-only", action="store_true",
                    help="write only the network files (station list, gauge stations)")
    ap.add_argument("--start", default=None, help="first month YYYY-MM (default period.start)")
    ap.add_argument("--end", default=None, help="last month YYYY-MM (default period.end)")
    ap.add_argument("--world", choices=["advective", "control"], default=None,
                    help="nature-run world (default synthetic.world)")
    ap.add_argument("--seed", type=int, default=None, help="nature-run seed (default synthetic.seed)")
    ap.add_argument("--workers", type=int, default=None, dest="workers_deprecated", help=argparse.SUPPRESS)
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[dict, list[str], str, int, bool]:
    overrides: dict = {}
    if args.start or args.end:
        overrides["period"] = {k: v for k, v in (("start", args.start), ("end", args.end)) if v}
    if args.world is not None or args.seed is not None:
        overrides["synthetic"] = {k: v for k, v in (("world", args.world), ("seed", args.seed)) if v is not None}
    config = load_config(args.config or DEFAULT_CONFIG, overrides)
    syn = config["synthetic"]
    if args.network_only:
        return config, [], syn["world"], int(syn["seed"]), False
    if args.month is not None:
        try:
            month = parse_month(args.month)
        except ValueError:
            raise ConfigError(f"--month: {args.month!r} is not a YYYY-MM month") from None
        if month != args.month:
            raise ConfigError(f"--month: {args.month!r} is not a YYYY-MM month")
        months, full = [month], False
    else:
        months, full = period_months(config), True
    return config, months, syn["world"], int(syn["seed"]), full


def _main(args: argparse.Namespace) -> int:
    config, months, world, seed, full = resolve(args)
    threads = args.threads
    if args.workers_deprecated is not None:
        log.warning("--workers is deprecated; use --threads")
        threads = threads if threads is not None else args.workers_deprecated
    if threads is None:
        threads = min(2, cli.usable_cores())
    span = f"months {months[0]}..{months[-1]}" if months else "network files only"
    log.info("nature run: world=%s seed=%d %s -> %s", world, seed, span, args.out)
    res = run(config, args.out, months, world, seed, write_truth_zarr=full, workers=threads if full else 1)
    log.info("done: %d months, %d files rewritten, %.1f s", len(months), res["files_rewritten"], res["seconds"])
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser(), _main, argv)


if __name__ == "__main__":
    sys.exit(main())
