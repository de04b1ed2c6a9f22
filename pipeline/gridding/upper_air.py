"""Gridded upper-air source: pressure-level analyses (ERA5-like, GFS-like netCDF or GRIB)
regridded onto the region grids, as an alternative to soundings (config ``data.upper_air: gridded``).

    python -m pipeline.gridding.upper_air [--config config.yaml] --files A.nc [B.grib2 ...] \
        --gauges interim/gauges/2020-01.nc --month 2020-01 --grid region1,concat \
        --out gridded/{grid}/2020-01.nc [--grib-filter shortName=t]

The result is a monthly gridded fragment with exactly the layout of the soundings path
(docs/contracts.md section 3, :func:`pipeline.gridding.analysis.grid_month`): the same
55 upper-air channels (variables x levels_hpa, variable-major) then ``rain``, which still
comes from the gauges (objective analysis as usual), the same coverage variables and
attributes. The dataset assembly reads it unchanged.

How a file is read
------------------
- Variables are found by CF ``standard_name`` (air_temperature, dew_point_temperature,
  relative_humidity, specific_humidity, eastward_wind, northward_wind,
  geopotential_height, geopotential), else by common ERA5/GFS/CMIP names (``t``, ``ta``,
  ``Temperature_isobaric``, ``u-component_of_wind_isobaric``, ``z``, ``gh``, ...), else by
  the mapping ``data.gridded.variables`` ({project variable: file variable}).
- Levels come from the variable's vertical coordinate (units Pa, hPa or mbar, converted to
  hPa), or from the variable name when the file encodes them there (``t850``, ``u500``).
- Units are read from each variable's ``units`` attribute and converted with MetPy's pint
  registry (K -> degC, gpm -> m, geopotential m2 s-2 / g0 -> m). A variable without units, or
  whose units have the wrong dimension, is an error naming the file and variable. Dewpoint
  comes from relative or specific humidity with MetPy where no dewpoint is given.
- Bilinear regridding (:func:`bilinear`, vectorised, checked against scipy's
  RegularGridInterpolator) onto the cell centres; longitudes in 0..360 or -180..180 either
  way, a global grid wraps around. A grid that does not cover the region is an error naming
  the file and the missing extent.
- Times: every file time within ``gridding.time_tolerance_hours`` of a frame (00/12 UTC for
  12-hourly frames) fills that frame (the nearest one wins); frames without a file time stay
  NaN and are counted (attribute ``frames_without_upper_air``). Levels missing from the
  files are NaN and counted (``upper_air_levels_missing``), never zero-filled.
- GRIB (``.grib``, ``.grb``, ``.grib2``, ``.grb2``, ``.grib1``) is read with xarray's cfgrib
  engine (:func:`open_grib`; cfgrib and eccodes are in requirements.lock, the ecCodes library
  comes with the eccodes wheel). Only pressure-level messages are read (filter_by_keys
  ``typeOfLevel: isobaricInhPa`` and ``level`` in ``levels_hpa``; ``--grib-filter KEY=VALUE``
  adds keys). cfgrib's names are the ERA5 short names above (``t``, ``u``, ``v``, ``gh``, ``z``,
  ``r``, ``q``, with CF standard names), the level axis ``isobaricInhPa`` (hPa), the grid
  ``latitude``/``longitude`` (north first in most files), units as GRIB writes them (K, gpm,
  m**2 s**-2, m s**-1, %, kg kg**-1). The time is the valid time, ``time`` + ``step``: a
  forecast step fills the frame it is valid for, and several analysis times and steps become
  one time axis. No cfgrib index file is written beside the input. Messages that do not form
  one hypercube (cfgrib's DatasetBuildError, e.g. a variable lacking a configured level that
  the others have) are a one-line error naming the file and the ways out, never a variable
  silently left out; a file that is not GRIB is a one-line error too, and without cfgrib a
  GRIB file is refused with that reason. Tested on GRIB2 written with ecCodes from the GFS
  test file (tests/gridding/test_gridding_grib.py).
"""
from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.common import cf, cli
from pipeline.common.config import month_frame_times
from pipeline.common.errors import GridError
from pipeline.gridding.geometry import coverage_variables, frames_without, make_grid

log = logging.getLogger("pipeline.gridding.upper_air")

G0 = 9.80665  # m s-2, standard gravity (WMO), geopotential -> geopotential height

# project variable -> target units
TARGET_UNITS = {"temperature": "degC", "dewpoint": "degC", "u": "m/s", "v": "m/s", "geopotential_height": "m"}

# source quantity -> (CF standard_name, names used by ERA5 / GFS (THREDDS) / CMIP / NCEP files)
SOURCE_NAMES = {
    "temperature": ("air_temperature", {"t", "ta", "temp", "air", "temperature", "Temperature_isobaric"}),
    "dewpoint": ("dew_point_temperature", {"d", "td", "dpt", "dewpoint", "Dewpoint_temperature_isobaric"}),
    "relative_humidity": ("relative_humidity", {"r", "rh", "hur", "rhum", "Relative_humidity_isobaric"}),
    "specific_humidity": ("specific_humidity", {"q", "hus", "shum", "Specific_humidity_isobaric"}),
    "u": ("eastward_wind", {"u", "ua", "uwnd", "u-component_of_wind_isobaric"}),
    "v": ("northward_wind", {"v", "va", "vwnd", "v-component_of_wind_isobaric"}),
    "geopotential_height": ("geopotential_height", {"gh", "zg", "hgt", "Geopotential_height_isobaric"}),
    "geopotential": ("geopotential", {"z", "geopotential", "Geopotential_isobaric"}),
}
# short prefixes of names that carry the level, e.g. t850, u500, z300, r700
LEVEL_NAME = re.compile(r"^(t|td|d|r|rh|q|u|v|z|gh|hgt)_?(\d{2,4})$", re.IGNORECASE)
SURFACE_HINT = re.compile(r"\b(metre|meter|m)\b|surface|above ground|height", re.IGNORECASE)
_PREFIX = {"t": "temperature", "td": "dewpoint", "d": "dewpoint", "r": "relative_humidity",
           "rh": "relative_humidity", "q": "specific_humidity", "u": "u", "v": "v", "z": "geopotential",
           "gh": "geopotential_height", "hgt": "geopotential_height"}
# units spellings pint does not read as meant ('C' would be coulomb)
UNIT_ALIASES = {"C": "degC", "deg C": "degC", "degrees C": "degC", "celsius": "degC", "Celsius": "degC",
                "gpm": "m", "m s**-1": "m/s", "m**2 s**-2": "m^2/s^2", "%": "percent", "kg kg**-1": "kg/kg",
                "kg/kg": "kg/kg", "1": "dimensionless", "0-1": "dimensionless", "fraction": "dimensionless",
                "K": "kelvin", "degK": "kelvin", "mb": "hPa", "millibars": "hPa", "mbar": "hPa"}
_DIMENSION = {"temperature": "[temperature]", "dewpoint": "[temperature]", "u": "[length] / [time]",
              "v": "[length] / [time]", "geopotential_height": "[length]", "geopotential": "[length] ** 2 / [time] ** 2",
              "relative_humidity": "", "specific_humidity": "", "level": "[mass] / [length] / [time] ** 2"}
LAT_NAMES = ("lat", "latitude", "y", "nav_lat")
LON_NAMES = ("lon", "longitude", "x", "nav_lon")
GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2", ".grib1")
# cfgrib's filter_by_keys for every GRIB file: pressure-level messages only (a file holding
# surface fields too is then still one hypercube); cfgrib's names for pressure-level axes
GRIB_FILTER = {"typeOfLevel": "isobaricInhPa"}
GRIB_LEVEL_NAMES = ("isobaricInhPa", "isobaricInPa")


def units_of(text, where: str):
    """A pint quantity of unit 1 for a units attribute (MetPy's registry), with the aliases
    pint does not read as meteorologists mean them."""
    from metpy.units import units
    if text is None or str(text).strip() == "":
        raise GridError(f"{where}: no 'units' attribute; units must be stated to be converted")
    text = str(text).strip()
    try:
        return units(UNIT_ALIASES.get(text, text))
    except Exception:
        raise GridError(f"{where}: units {text!r} not understood") from None


def convert(values: np.ndarray, from_units, to_units: str, quantity: str, where: str) -> np.ndarray:
    """``values`` in ``from_units`` (a units attribute) as ``to_units``, after checking the
    dimension is that of ``quantity``."""
    q = units_of(from_units, where)
    want = _DIMENSION[quantity]
    if want and q.dimensionality != q._REGISTRY.get_dimensionality(want):
        raise GridError(f"{where}: units {from_units!r} are not units of {quantity.replace('_', ' ')}")
    out = (np.asarray(values, dtype=float) * q).to(to_units)
    return np.asarray(out.magnitude, dtype=float)


# --------------------------------------------------------------------------------------
# Reading


def open_source(path: str | Path, grib_filter: dict | None = None, levels=None) -> xr.Dataset:
    """Open a pressure-level file with xarray (netCDF; GRIB through cfgrib, :func:`open_grib`)."""
    path = Path(path)
    if not path.is_file():
        raise GridError(f"{path}: no such gridded upper-air file")
    if path.suffix.lower() in GRIB_SUFFIXES:
        return open_grib(path, grib_filter, levels)
    try:
        return xr.open_dataset(path)
    except Exception as err:
        raise GridError(f"{path}: not a readable netCDF file ({type(err).__name__}: {err})") from None


def _one_line(err: Exception, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + "..."


def open_grib(path: str | Path, grib_filter: dict | None = None, levels=None) -> xr.Dataset:
    """A GRIB file read with cfgrib: only its pressure-level messages (filter_by_keys
    ``typeOfLevel: isobaricInhPa``, and ``level`` in ``levels`` hPa where given, so a variable
    that lacks a level outside them, as GFS relative humidity lacks 20 hPa, still fits; plus
    ``grib_filter``), no index file written beside it.
    The time coordinate becomes the valid time (cfgrib's ``valid_time`` = ``time`` + ``step``),
    one axis for several reference times and steps; a single level becomes a level axis of
    one. Messages that do not form one hypercube (cfgrib's DatasetBuildError, e.g. relative
    humidity on fewer levels than temperature) are a one-line error naming the file, not a
    variable silently left out (cfgrib's default)."""
    path = Path(path)
    try:
        import cfgrib
    except ImportError:
        raise GridError(f"{path}: GRIB input needs the cfgrib package, which is not installed; "
                        f"convert the file to netCDF (e.g. grib_to_netcdf) or install cfgrib") from None
    except Exception as err:  # cfgrib without a loadable ecCodes library
        raise GridError(f"{path}: GRIB input needs the ecCodes library, which cfgrib could not load "
                        f"({type(err).__name__}: {_one_line(err)}); install the eccodes wheel of "
                        f"requirements.lock") from None
    keys = dict(GRIB_FILTER)
    if levels is not None and np.all(np.mod(np.asarray(levels, float), 1) == 0):
        keys["level"] = [int(p) for p in levels]
    keys.update(grib_filter or {})
    try:
        ds = xr.open_dataset(path, engine="cfgrib", decode_timedelta=True,
                             backend_kwargs={"indexpath": "", "filter_by_keys": keys, "errors": "raise"})
    except cfgrib.dataset.DatasetBuildError as err:
        key = re.search(r"key=('?[\w.-]+'?)", str(err))
        why = f"variables differ in {key.group(1)}" if key else _one_line(err)
        raise GridError(f"{path}: the GRIB messages on the configured pressure levels do not form one hypercube "
                        f"({why}); read one set of messages with cfgrib filter_by_keys (--grib-filter shortName=t), "
                        f"or write a file whose variables share levels and times (grib_copy -w shortName=t/u/v/gh); "
                        f"data.gridded.variables names variables the reader does not know") from None
    except Exception as err:
        raise GridError(f"{path}: not a readable GRIB file ({type(err).__name__}: {_one_line(err)})") from None
    if not ds.data_vars:
        ds.close()
        raise GridError(f"{path}: no GRIB message on pressure levels (cfgrib filter_by_keys {keys}); "
                        f"the gridded upper-air source needs isobaric fields")
    return _grib_layout(ds)


def _grib_layout(ds: xr.Dataset) -> xr.Dataset:
    """cfgrib's layout as the reader expects it: ``time`` the valid time (an axis, or a
    scalar for one time), a scalar pressure level made an axis of one."""
    for z in GRIB_LEVEL_NAMES:
        if z in ds.coords and ds[z].ndim == 0 and ds.data_vars:
            ds = ds.expand_dims(z)
    if "valid_time" not in ds.coords:
        return ds
    vt = ds["valid_time"]
    attrs = {"standard_name": "time", "long_name": "valid time (reference time + step)"}
    tdims = [d for d in ("time", "step") if d in ds.dims]
    if len(tdims) == 2:
        ds = ds.stack(__valid=tdims, create_index=False)
        vt = ds["valid_time"]
        tdims = ["__valid"]
    ds = ds.drop_vars([c for c in ("time", "step", "valid_time") if c in ds.variables])
    if not tdims:
        return ds.assign_coords(time=((), vt.values, attrs))
    d = tdims[0]
    ds = ds.assign_coords(__vt=(d, np.asarray(vt.values).reshape(-1), attrs))
    ds = ds.swap_dims({d: "__vt"}).rename({"__vt": "time"})
    return ds.isel(time=np.flatnonzero(~pd.isna(ds["time"].values)))


def _horizontal(ds: xr.Dataset, path) -> tuple[str, str]:
    lat = next((n for n in ds.coords if ds[n].attrs.get("standard_name") == "latitude"
                or ds[n].attrs.get("units") in ("degrees_north", "degree_north")), None)
    lon = next((n for n in ds.coords if ds[n].attrs.get("standard_name") == "longitude"
                or ds[n].attrs.get("units") in ("degrees_east", "degree_east")), None)
    lat = lat or next((n for n in LAT_NAMES if n in ds.coords), None)
    lon = lon or next((n for n in LON_NAMES if n in ds.coords), None)
    if lat is None or lon is None:
        raise GridError(f"{path}: no latitude/longitude coordinates (looked for standard_name latitude/longitude "
                        f"and names {LAT_NAMES}/{LON_NAMES})")
    if ds[lat].ndim != 1 or ds[lon].ndim != 1:
        raise GridError(f"{path}: latitude/longitude must be 1-D axes of a regular grid")
    return lat, lon


def _time_name(da: xr.DataArray) -> str | None:
    for name in da.coords:
        if np.issubdtype(da[name].dtype, np.datetime64) and (da[name].ndim == 0 or name in da.dims):
            return name
    for name in da.dims:  # a time axis whose units are not CF (e.g. 'Month since Jan 1988')
        if name.lower().startswith("time") or da[name].attrs.get("standard_name") == "time" \
                or da[name].attrs.get("axis") == "T":
            return name
    return None


def _find(ds: xr.Dataset, quantity: str, mapping: dict) -> list[tuple[str, float | None]]:
    """File variables holding ``quantity``: [(name, level hPa from the name or None)]."""
    if quantity in mapping:
        return [(mapping[quantity], None)] if mapping[quantity] in ds else []
    std, names = SOURCE_NAMES[quantity]
    by_std = [n for n in ds.data_vars if ds[n].attrs.get("standard_name") == std]
    if by_std:
        return [(n, None) for n in by_std]
    by_name = [n for n in ds.data_vars if n.lower() in {m.lower() for m in names}]
    if by_name:
        return [(by_name[0], None)]
    out = []
    for n in ds.data_vars:
        m = LEVEL_NAME.match(n)
        # ERA5's u10, v10 are 10 m winds, not 10 hPa: a name level needs no height-above-ground hint
        if m and _PREFIX[m.group(1).lower()] == quantity and not SURFACE_HINT.search(ds[n].attrs.get("long_name", "")):
            out.append((n, float(m.group(2))))
    return out


@dataclass
class Fields:
    """Upper-air fields of one file on its own grid: ``values[variable]`` (time, level, lat,
    lon) in target units on ``levels`` (hPa, the config's), NaN where the file lacks a level."""
    path: str
    times: pd.DatetimeIndex
    lat: np.ndarray
    lon: np.ndarray
    values: dict = field(default_factory=dict)
    missing_levels: dict = field(default_factory=dict)  # variable -> [hPa]


def _level_axis(da: xr.DataArray, name_level, lat: str, lon: str, tname, where: str):
    """(values (time, level, lat, lon), levels hPa) of one file variable."""
    extra = [d for d in da.dims if d not in (lat, lon, tname)]
    if name_level is not None:
        if extra:
            raise GridError(f"{where}: the name gives level {name_level:g} hPa, but the variable also has "
                            f"dimensions {extra}")
        da = da.expand_dims("__level")
        levels = np.array([name_level])
        zdim = "__level"
    else:
        if len(extra) != 1:
            raise GridError(f"{where}: expected one vertical (pressure) dimension besides time/lat/lon, "
                            f"found {extra or 'none'}")
        zdim = extra[0]
        if zdim not in da.coords:
            raise GridError(f"{where}: vertical dimension {zdim!r} has no coordinate values")
        zc = da[zdim]
        levels = convert(zc.values, zc.attrs.get("units"), "hPa", "level", f"{where} level coordinate {zdim!r}")
    if tname is None or da[tname].ndim == 0:
        da = da.expand_dims("__time")
        tdim = "__time"
    else:
        tdim = tname
    return da.transpose(tdim, zdim, lat, lon).values, levels


def read_fields(path: str | Path, config: dict, mapping: dict | None = None, valid_time=None,
                grib_filter: dict | None = None) -> Fields:
    """Read one pressure-level file: every project variable on the config's levels, in the
    project's units (see the module docstring). ``valid_time`` gives the time of a
    single-time file whose time coordinate is not CF (e.g. 'Month since Jan 1988');
    ``grib_filter`` adds cfgrib filter_by_keys for GRIB files (e.g. {"shortName": "t"})."""
    mapping = dict(mapping or {})
    want = np.asarray(config["levels_hpa"], dtype=float)
    ds = open_source(path, grib_filter, want)
    path = str(path)
    lat, lon = _horizontal(ds, path)
    variables = list(config["variables"])

    def gather(quantity, to_units):
        found = _find(ds, quantity, mapping)
        if not found:
            return None
        out = None
        times = None
        for name, name_level in found:
            da = ds[name]
            where = f"{path}: variable {name!r}"
            for d in (lat, lon):
                if d not in da.dims:
                    raise GridError(f"{where}: not on the file's latitude/longitude grid")
            tname = _time_name(da)
            vals, levels = _level_axis(da, name_level, lat, lon, tname, where)
            vals = convert(vals, da.attrs.get("units"), to_units, quantity, where)
            if tname is None:
                t = pd.DatetimeIndex([pd.NaT])
            elif np.issubdtype(da[tname].dtype, np.datetime64):
                t = pd.DatetimeIndex(np.atleast_1d(da[tname].values))
            else:
                t = pd.DatetimeIndex([pd.NaT] * int(da[tname].size))
            if out is None:
                out = np.full((vals.shape[0], want.size, vals.shape[2], vals.shape[3]), np.nan)
                times = t
            elif vals.shape[0] != out.shape[0]:
                raise GridError(f"{where}: {vals.shape[0]} times where other variables have {out.shape[0]}")
            for j, p in enumerate(want):
                k = np.flatnonzero(np.isclose(levels, p, atol=1e-3))
                if k.size:
                    out[:, j] = vals[:, k[0]]
        return out, times

    values, times = {}, None
    got = {}
    for q, to in (("temperature", "degC"), ("dewpoint", "degC"), ("u", "m/s"), ("v", "m/s"),
                  ("geopotential_height", "m"), ("geopotential", "m^2/s^2"), ("relative_humidity", "percent"),
                  ("specific_humidity", "kg/kg")):
        if q in ("dewpoint", "relative_humidity", "specific_humidity") and "dewpoint" not in variables:
            continue
        r = gather(q, to)
        if r is not None:
            got[q] = r[0]
            if times is None:
                times = r[1]
            elif len(r[1]) != len(times) or not ((r[1] == times) | (r[1].isna() & times.isna())).all():
                raise GridError(f"{path}: variables have different times ({list(times)} vs {list(r[1])})")
    if not got:
        raise GridError(f"{path}: no upper-air variable on pressure levels found (looked for CF standard_name "
                        f"air_temperature, eastward_wind, ... and ERA5/GFS names; map them with "
                        f"data.gridded.variables)")
    if times.isna().any() and valid_time is not None and len(times) == 1:
        times = pd.DatetimeIndex([pd.Timestamp(valid_time)])
    if times.isna().any():
        raise GridError(f"{path}: no decodable time coordinate (CF units 'hours since ...' needed; a "
                        f"single-time file can be given its time with --time)")
    if not any(np.isfinite(a).any() for a in got.values()):
        raise GridError(f"{path}: no values on the configured levels {[float(p) for p in want]} hPa "
                        f"(variables {sorted(got)} found)")
    if "geopotential_height" not in got and "geopotential" in got:
        got["geopotential_height"] = got["geopotential"] / G0
    if "dewpoint" in variables and "dewpoint" not in got and "temperature" in got:
        import metpy.calc as mc
        from metpy.units import units
        t = units.Quantity(got["temperature"], "degC")
        if "relative_humidity" in got:
            rh = units.Quantity(np.clip(got["relative_humidity"], 1e-3, None), "percent")
            with np.errstate(all="ignore"):
                got["dewpoint"] = np.asarray(mc.dewpoint_from_relative_humidity(t, rh).to("degC").magnitude)
        elif "specific_humidity" in got:
            p = units.Quantity(np.broadcast_to(want[None, :, None, None], t.shape), "hPa")
            q = units.Quantity(np.clip(got["specific_humidity"], 1e-9, None), "kg/kg")
            with np.errstate(all="ignore"):
                got["dewpoint"] = np.asarray(mc.dewpoint_from_specific_humidity(p, t, q).to("degC").magnitude)
    shape = next(iter(got.values())).shape
    fields = Fields(path, times, np.asarray(ds[lat].values, float), np.asarray(ds[lon].values, float))
    for v in variables:
        arr = got.get(v)
        if arr is None:
            arr = np.full(shape, np.nan)
        fields.values[v] = arr
        missing = [float(p) for j, p in enumerate(want) if not np.isfinite(arr[:, j]).any()]
        if missing:
            fields.missing_levels[v] = missing
    ds.close()
    return fields


# --------------------------------------------------------------------------------------
# Regridding


def _source_lon_for(src_lon: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Target longitudes in the source's convention (0..360 or -180..180)."""
    lon = np.asarray(lon, float)
    if src_lon.min() >= 0 and (lon < 0).any():
        return np.mod(lon, 360.0)
    if src_lon.max() <= 180 and (lon > 180).any():
        return np.where(lon > 180, lon - 360.0, lon)
    return lon


def bilinear(values: np.ndarray, src_lat, src_lon, lat, lon, where: str = "grid") -> np.ndarray:
    """Bilinear interpolation of ``values (..., src_lat, src_lon)`` to the grid ``lat x lon``
    (1-D axes): ``(..., lat, lon)``. Source axes may ascend or descend; longitudes may be
    0..360 or -180..180 on either side; a global source wraps around the date line. A target
    outside the source grid is a :class:`GridError` naming ``where`` and the missing extent.
    NaN at a corner with non-zero weight gives NaN (no renormalisation)."""
    values = np.asarray(values, float)
    src_lat, src_lon = np.asarray(src_lat, float), np.asarray(src_lon, float)
    if src_lat[0] > src_lat[-1]:
        src_lat, values = src_lat[::-1], values[..., ::-1, :]
    order = np.argsort(src_lon)
    src_lon, values = src_lon[order], values[..., order]
    tlat = np.asarray(lat, float)
    tlon = _source_lon_for(src_lon, lon)
    step = np.median(np.diff(src_lon)) if src_lon.size > 1 else 0.0
    if src_lon.size > 1 and src_lon[-1] - src_lon[0] + step >= 360.0 - 1e-6:  # global: wrap
        src_lon = np.concatenate([src_lon, [src_lon[0] + 360.0]])
        values = np.concatenate([values, values[..., :1]], axis=-1)
        tlon = np.where(tlon < src_lon[0], tlon + 360.0, tlon)
    eps = 1e-9
    bad = []
    if tlat.min() < src_lat[0] - eps or tlat.max() > src_lat[-1] + eps:
        bad.append(f"latitudes {tlat.min():g}..{tlat.max():g} needed, the file has {src_lat[0]:g}..{src_lat[-1]:g}")
    if tlon.min() < src_lon[0] - eps or tlon.max() > src_lon[-1] + eps:
        bad.append(f"longitudes {np.min(lon):g}..{np.max(lon):g} needed, the file has "
                   f"{src_lon[0]:g}..{src_lon[-1]:g}")
    if bad:
        raise GridError(f"{where}: the file's grid does not cover the region: " + "; ".join(bad))

    def weights(axis, t):
        i = np.clip(np.searchsorted(axis, t, side="right") - 1, 0, max(axis.size - 2, 0))
        if axis.size == 1:
            return i, np.zeros_like(t)
        w = (t - axis[i]) / (axis[i + 1] - axis[i])
        return i, np.clip(w, 0.0, 1.0)

    iy, wy = weights(src_lat, tlat)
    ix, wx = weights(src_lon, tlon)
    iy1 = np.minimum(iy + 1, src_lat.size - 1)
    ix1 = np.minimum(ix + 1, src_lon.size - 1)
    wy, wx = wy[:, None], wx[None, :]

    def take(a, b):
        return values[..., a[:, None], b[None, :]]

    # exact zero weights must not let a NaN neighbour in
    def term(v, w):
        return np.where(w == 0, 0.0, v * w)

    return (term(take(iy, ix), (1 - wy) * (1 - wx)) + term(take(iy, ix1), (1 - wy) * wx)
            + term(take(iy1, ix), wy * (1 - wx)) + term(take(iy1, ix1), wy * wx))


# --------------------------------------------------------------------------------------
# One month -> one fragment


def no_soundings(config: dict) -> xr.Dataset:
    """An interim soundings dataset with no profile (docs/contracts.md section 2 layout): what
    the gridded source leaves for the rules that read the month's soundings (network map,
    gridding leave-out), which then see no sounding station."""
    levels = np.asarray(config["levels_hpa"], float)
    ds = xr.Dataset(
        {v: (("profile", "level"), np.zeros((0, levels.size), np.float32),
             {"units": cf.channel_units(v)}) for v in config["variables"]},
        coords={"time": ("profile", np.zeros(0, "datetime64[ns]")), "lat": ("profile", np.zeros(0), cf.LAT_ATTRS),
                "lon": ("profile", np.zeros(0), cf.LON_ATTRS), "station": ("profile", np.zeros(0, dtype=object)),
                "level": ("level", levels, cf.PRESSURE_ATTRS)})
    ds.attrs = {"Conventions": cf.CONVENTIONS, "title": "no soundings: the upper air comes from gridded analyses",
                "upper_air_source": "gridded"}
    return ds


def grid_month_gridded(files: list[str], gauges: xr.Dataset, config: dict, month: str, grid_name: str = "concat",
                       gauges_where: str = "gauges", mapping: dict | None = None,
                       fields: list[Fields] | None = None) -> xr.Dataset:
    """The month's gridded fragment from pressure-level files (upper air) and interim gauges
    (rain), with the layout of :func:`pipeline.gridding.analysis.grid_month`."""
    from pipeline.gridding.analysis import grid_month

    empty = no_soundings(config)
    mapping = mapping if mapping is not None else dict(config.get("data", {}).get("gridded", {}).get("variables") or {})
    variables, levels = list(config["variables"]), list(config["levels_hpa"])
    ds = grid_month(empty, gauges, config, month, where=("upper_air", gauges_where), grid_name=grid_name)
    grid = make_grid(config, grid_name)
    frames = pd.DatetimeIndex(ds["time"].values)
    tol_ns = float(config["gridding"]["time_tolerance_hours"]) * 3600e9
    x = ds["x"].values.astype(float)
    n_sc = len(variables) * len(levels)
    x[:, :n_sc] = np.nan
    best_gap = np.full(len(frames), np.inf)
    used, unmatched = 0, 0
    missing: dict[str, set] = {}
    if fields is None:
        fields = [read_fields(f, config, mapping) for f in files]
    for fl in fields:
        for v, ls in fl.missing_levels.items():
            missing.setdefault(v, set()).update(ls)
        t = fl.times.values.astype("datetime64[ns]").astype(np.int64)
        f = frames.values.astype("datetime64[ns]").astype(np.int64)
        for i, ti in enumerate(t):
            gap = np.abs(f - ti)
            j = int(gap.argmin()) if gap.size else -1
            if j < 0 or gap[j] > tol_ns:
                unmatched += 1
                continue
            if gap[j] >= best_gap[j]:
                continue
            best_gap[j] = gap[j]
            used += 1
            stack = np.stack([fl.values[v][i] for v in variables])  # (var, level, y, x)
            out = bilinear(stack, fl.lat, fl.lon, grid.lat, grid.lon, where=fl.path)
            x[j, :n_sc] = out.reshape(n_sc, *grid.shape)
    ds["x"] = (ds["x"].dims, x.astype(np.float32), ds["x"].attrs)
    for name, (dims, vals, attrs) in coverage_variables(x, list(ds["channel"].values), grid).items():
        ds[name] = (dims, vals, attrs)
    n_missing_frames = int((~np.isfinite(best_gap)).sum())
    n_missing_levels = sum(len(v) for v in missing.values())
    if n_missing_frames:
        log.warning("%s: %d of %d frames have no upper-air field within %.1f h (NaN)", month, n_missing_frames,
                    len(frames), tol_ns / 3600e9)
    if n_missing_levels:
        log.warning("%s: levels missing from the files (NaN): %s", month,
                    {v: sorted(ls, reverse=True) for v, ls in missing.items()})
    ds["x"].attrs["long_name"] = "bilinear regridding of gridded upper-air analyses and objective analysis of 12 h gauge rain"
    ds["x"].attrs["missing"] = ("NaN: upper air - no file time within the tolerance of the frame, or a level or "
                                "variable the files lack; rain - no gauge within the coverage radius")
    ds.attrs.update({
        "title": f"gridded upper-air analyses and gauge rain, {month}",
        "upper_air_source": "gridded",
        "upper_air_method": "bilinear",
        "upper_air_files": ", ".join(Path(fl.path).name for fl in fields),
        "upper_air_times_used": used,
        "upper_air_times_not_on_a_frame": unmatched,
        "upper_air_levels_missing": n_missing_levels,
        "frames_without_upper_air": n_missing_frames,
        "frames_without_soundings": int(frames_without(ds, "sounding_coverage").sum()),
        "frames_without_rain": int(frames_without(ds, "rain_coverage").sum()),
    })
    return ds


def grib_keys(items: list[str], ap=None) -> dict:
    """``KEY=VALUE`` words as cfgrib filter_by_keys (integer values as integers)."""
    keys = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            msg = f"--grib-filter takes KEY=VALUE words (e.g. shortName=t), got {item!r}"
            if ap is not None:
                ap.error(msg)
            raise GridError(msg)
        keys[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return keys


def main(argv: list[str] | None = None) -> int:
    from pipeline.common import integrity
    from pipeline.common.config import load_config
    from pipeline.gridding.cli import warn_uncovered, write_fragment

    ap = cli.parser("python -m pipeline.gridding.upper_air", __doc__)
    cli.add_config(ap)
    ap.add_argument("--files", nargs="+", required=True, help="pressure-level netCDF or GRIB files (any order)")
    ap.add_argument("--gauges", required=True, help="interim gauge netCDF of the month")
    ap.add_argument("--month", required=True, help="YYYY-MM")
    ap.add_argument("--grid", required=True, type=cli.grid_names, metavar="GRID[,GRID]",
                    help="target grid(s): region1, concat, or region1,concat")
    ap.add_argument("--soundings-out", default=None,
                    help="also write an interim soundings file without profiles (for rules that read one)")
    ap.add_argument("--time", default=None, help="valid time of single-time files whose time coordinate is not CF")
    ap.add_argument("--grib-filter", nargs="+", default=None, metavar="KEY=VALUE",
                    help="cfgrib filter_by_keys for GRIB files, besides typeOfLevel=isobaricInhPa (e.g. shortName=t)")
    ap.add_argument("--out", required=True, help="fragment netCDF to write; with several grids it must contain '{grid}'")

    def body(args) -> int:
        if not re.fullmatch(r"\d{4}-\d{2}", args.month):
            ap.error(f"--month must be YYYY-MM, got {args.month!r}")
        if len(args.grid) > 1 and "{grid}" not in args.out:
            ap.error(f"--out must contain '{{grid}}' when several grids are given, got {args.out!r}")
        config = load_config(args.config)
        t0 = time.perf_counter()
        mapping = dict(config.get("data", {}).get("gridded", {}).get("variables") or {})
        grib_filter = grib_keys(args.grib_filter or [], ap)
        fields = [read_fields(f, config, mapping, args.time, grib_filter) for f in args.files]
        gau = integrity.open_netcdf(args.gauges)
        for grid in args.grid:
            out = args.out.replace("{grid}", grid)
            ds = grid_month_gridded(args.files, gau, config, args.month, grid, args.gauges, mapping, fields)
            write_fragment(ds, out)
            log.info("upper air %s %s: wrote %s (%d frames, %d file times used, %.1f%% covered) in %.1f s", args.month,
                     grid, out, ds.sizes["time"], ds.attrs["upper_air_times_used"],
                     100 * np.isfinite(ds["x"].values).mean(), time.perf_counter() - t0)
            warn_uncovered(ds, out)
        if args.soundings_out:
            from pipeline.common.atomic import atomic_path
            empty = no_soundings(config)
            with atomic_path(Path(args.soundings_out)) as tmp:
                empty.to_netcdf(tmp, engine="netcdf4", encoding={"time": dict(cf.TIME_ENCODING)})
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
