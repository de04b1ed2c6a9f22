"""CF metadata shared by every output: variable attributes, time bounds, encodings, JSON attributes.

One place for what the interim, gridded and processed files say about themselves, so
they agree: standard names and units of the sounding variables and of rain, the 12 h
``time_bnds`` of rain sums, no ``_FillValue`` on coordinates, and global attributes that
any netCDF or zarr writer accepts.

Global attributes are plain strings, numbers or flat lists. A nested structure (the
normalisation statistics, the gridding settings, package versions) is stored as JSON
text under its usual name, and the global attribute ``json_attributes`` lists those
names (space-separated), so a reader decodes them with :func:`decode_json_attrs` (or
:func:`json_attribute` for one of them) or ``json.loads``.

Channels: a processed store keeps the upper-air inputs with their own ``variable`` and
``pressure`` dimensions, so ``xr.open_zarr(store).x.sel(variable="temperature",
pressure=850)`` works (:mod:`pipeline.dataset.layout`). The monthly gridded fragments keep
one ``channel`` axis, where every channel carries the coordinates ``variable``,
``pressure`` (hPa, NaN for rain) and ``units`` (physical units)::

    x = xr.open_dataset(fragment)["x"]
    x.set_xindex(["variable", "pressure"]).sel(variable="temperature", pressure=850)
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import numpy as np

CONVENTIONS = "CF-1.8"

# Sounding variables: units, CF standard name, long name.
VARIABLE_ATTRS = {
    "temperature": {"units": "degC", "standard_name": "air_temperature", "long_name": "air temperature"},
    "dewpoint": {"units": "degC", "standard_name": "dew_point_temperature", "long_name": "dew-point temperature"},
    "u": {"units": "m s-1", "standard_name": "eastward_wind", "long_name": "eastward wind component"},
    "v": {"units": "m s-1", "standard_name": "northward_wind", "long_name": "northward wind component"},
    "geopotential_height": {"units": "m", "standard_name": "geopotential_height", "long_name": "geopotential height"},
}
# Rain: a gauge measures the liquid-water-equivalent depth of precipitation (mm); CF's
# precipitation_amount is the same quantity as a mass per area (kg m-2).
RAIN_VARIABLE = "rain"
RAIN_WINDOW_HOURS = 12  # a rain value is the sum over the 12 h ending at its time
RAIN_ATTRS = {"units": "mm", "standard_name": "lwe_thickness_of_precipitation_amount",
              "cell_methods": "time: sum"}
LAT_ATTRS = {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"}
LON_ATTRS = {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"}
PRESSURE_ATTRS = {"units": "hPa", "standard_name": "air_pressure", "long_name": "pressure level", "positive": "down",
                  "axis": "Z"}
# Compression of the monthly netCDF intermediates: zlib level 1 with byte shuffling. On a
# gridded month it writes twice as fast as level 4 and the file is 1.4% larger.
INTERMEDIATE_COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
# The gridded fragments' analysis values (float32 x) are stored uncompressed: zlib keeps
# only 40% of their bytes (the low mantissa bits of an analysis are noise) for about
# 0.45 CPU-s per month of writing and more of reading in build_dataset.
GRIDDED_X_COMPRESSION = {"zlib": False, "shuffle": False}
TIME_ENCODING = {"units": "hours since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian", "dtype": "int64"}
BOUNDS_DIM = "nv"
JSON_ATTRS_KEY = "json_attributes"


def channel_units(variable: str) -> str:
    """Physical units of a channel's variable ('rain' or a sounding variable)."""
    return RAIN_ATTRS["units"] if variable == RAIN_VARIABLE else VARIABLE_ATTRS[variable]["units"]


def channel_name(variable: str, pressure: float) -> str:
    """``temperature_850hPa``: the name of one upper-air input channel."""
    level = str(int(pressure)) if float(pressure).is_integer() else str(pressure)
    return f"{variable}_{level}hPa"


def upper_air_names(variables: Iterable[str], levels: Iterable[float]) -> list[str]:
    """Upper-air channel names in tensor order (variable-major: every level of the first
    variable, then the next variable)."""
    levels = list(levels)
    return [channel_name(v, p) for v in variables for p in levels]


def time_bounds(times, hours: float) -> np.ndarray:
    """(time, 2) datetime64[ns] bounds ``[t - hours, t]`` of sums over the ``hours`` ending at ``t``."""
    import pandas as pd
    t = pd.DatetimeIndex(times).values.astype("datetime64[ns]")
    return np.stack([t - np.timedelta64(int(round(hours * 3600)), "s").astype("timedelta64[ns]"), t], axis=1)


def add_time_bounds(ds, hours: float, name: str = "time_bnds"):
    """``ds`` with the ``time`` coordinate bounded by the ``hours`` ending at each time (CF cell bounds)."""
    out = ds.assign({name: (("time", BOUNDS_DIM), time_bounds(ds["time"].values, hours))})
    out["time"].attrs = {**out["time"].attrs, "bounds": name}
    return out


def coordinate_encoding(ds, names: Iterable[str] | None = None) -> dict[str, dict]:
    """Encoding entries that keep ``_FillValue`` off the coordinates (and bounds) of ``ds``.

    Coordinates never hold missing values, so a fill value would only make readers mask
    nothing. A time coordinate with bounds and its bounds are both encoded in
    :data:`TIME_ENCODING` (CF: bounds share the units of their coordinate).
    """
    names = list(ds.coords) if names is None else list(names)
    bounded = {c: ds[c].attrs["bounds"] for c in names if ds[c].attrs.get("bounds") in ds.variables}
    enc = {name: {"_FillValue": None} for name in names + list(bounded.values())}
    for c, b in bounded.items():  # a time and its bounds in the same units (CF), hours since 1970
        if np.issubdtype(ds[c].dtype, np.datetime64):
            enc[c].update(TIME_ENCODING)
            enc[b].update(TIME_ENCODING)
    return enc


def json_attr(value: Any) -> str:
    """JSON text of a nested attribute value.

    Keys keep their order, so the decoded value equals the structure that was encoded,
    key order included (deterministic: the writers build their dicts in a fixed order).
    """
    return json.dumps(value)


def with_json_attrs(attrs: Mapping[str, Any], nested: Mapping[str, Any]) -> dict:
    """Global attributes ``attrs`` plus each of ``nested`` as JSON text, listed in ``json_attributes``."""
    out = dict(attrs)
    for name, value in nested.items():
        out[name] = json_attr(value)
    out[JSON_ATTRS_KEY] = " ".join(nested)
    return out


def decode_json_attrs(attrs: Mapping[str, Any]) -> dict:
    """Attributes with the JSON-text ones (named in ``json_attributes``) decoded."""
    out = dict(attrs)
    for name in str(attrs.get(JSON_ATTRS_KEY, "")).split():
        if isinstance(out.get(name), str):
            out[name] = json.loads(out[name])
    return out


def json_attribute(attrs: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """One nested global attribute, decoded: JSON text is parsed; a value that is already
    a structure (a store written before attributes were flattened) is returned as is;
    ``default`` when absent."""
    value = attrs.get(name, default)
    if isinstance(value, str) and (name in str(attrs.get(JSON_ATTRS_KEY, "")).split()
                                   or value.lstrip()[:1] in ("{", "[")):
        return json.loads(value)
    return value
