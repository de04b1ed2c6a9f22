"""How a processed store lays out the model's input channels, for its writer and its readers.

The model sees ``C = n_variables * n_levels + 1`` input channels per frame, in this order:
the upper-air channels variable-major (temperature at every level from the bottom up, then
dewpoint, ...), then rain. The store keeps them as two normalised variables, so that other
tools select a quantity by what it is::

    ds = xr.open_zarr("processed/region1.zarr")
    ds.x.sel(variable="temperature", pressure=850)   # (time, lat, lon), normalised
    ds.x_rain                                        # the rain input, normalised

- ``x`` (time, variable, pressure, lat, lon): the upper-air inputs, with the coordinates
  ``variable``, ``pressure`` (hPa, CF ``air_pressure``) and ``units`` (the physical units
  per variable before normalisation);
- ``x_rain`` (time, lat, lon): the rain input (the 12 h gauge rain, normalised).

Flattening ``x`` over (variable, pressure) and appending ``x_rain`` gives the model's
``(time, C, lat, lon)`` tensor; :func:`read_inputs` does it in time blocks, and
:func:`channel_names` names the channels (``temperature_850hPa``, ..., ``rain``) as the
normalisation statistics and checkpoints do. Values are the ones a single
``(time, channel, lat, lon)`` array would hold: the layout changes no number.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pipeline.common import cf

UPPER_AIR = "x"
RAIN_INPUT = "x_rain"
UPPER_AIR_DIMS = ("time", "variable", "pressure", "lat", "lon")
RAIN_INPUT_DIMS = ("time", "lat", "lon")
READ_BLOCK_FRAMES = 256  # frames read at a time into the (time, C, lat, lon) array: bounds the transient copy


def store_variables(ds) -> tuple[list[str], list[float]]:
    """The stored upper-air variables and pressure levels (hPa), in tensor order."""
    return [str(v) for v in ds[UPPER_AIR]["variable"].values], [float(p) for p in ds[UPPER_AIR]["pressure"].values]


def channel_names(ds) -> list[str]:
    """The model's input channel names of a processed store, in tensor order."""
    return cf.upper_air_names(*store_variables(ds)) + [cf.RAIN_VARIABLE]


def channel_coordinates(ds) -> tuple[np.ndarray, np.ndarray]:
    """Per input channel, in tensor order: its variable (``rain`` for rain) and pressure
    (hPa, NaN for rain)."""
    variables, levels = store_variables(ds)
    var = np.array([v for v in variables for _ in levels] + [cf.RAIN_VARIABLE])
    pressure = np.array([p for _ in variables for p in levels] + [np.nan], dtype=float)
    return var, pressure


def n_channels(ds) -> int:
    return ds.sizes["variable"] * ds.sizes["pressure"] + 1


def channel(ds, name: str):
    """One input channel of a processed store as a (time, lat, lon) DataArray (normalised)."""
    if name == cf.RAIN_VARIABLE:
        return ds[RAIN_INPUT]
    variables, levels = store_variables(ds)
    for v in variables:
        for p in levels:
            if cf.channel_name(v, p) == name:
                return ds[UPPER_AIR].sel(variable=v, pressure=p)
    raise KeyError(f"no input channel {name!r} (have {channel_names(ds)})")


def read_inputs(ds, start: int, stop: int) -> np.ndarray:
    """Frames ``start .. stop - 1`` as one C-contiguous float32 (t, C, lat, lon) array.

    ``ds``: an xarray Dataset or a zarr group of a processed store. Read in blocks of
    :data:`READ_BLOCK_FRAMES` frames straight into the output, so the only extra memory is
    one block.
    """
    upper, rain = _arrays(ds)
    t, nv, nl, ny, nx = (stop - start,) + tuple(upper.shape[1:])
    out = np.empty((t, nv * nl + 1, ny, nx), np.float32)
    for lo in range(0, t, READ_BLOCK_FRAMES):
        hi = min(lo + READ_BLOCK_FRAMES, t)
        out[lo:hi, :-1] = np.asarray(upper[start + lo:start + hi]).reshape(hi - lo, nv * nl, ny, nx)
        out[lo:hi, -1] = np.asarray(rain[start + lo:start + hi])
    return out


def _arrays(ds) -> tuple[Any, Any]:
    """Time-sliceable arrays of ``x`` and ``x_rain`` (an xarray Dataset's variables are
    sliced through ``.data`` or their lazy backend arrays, never loaded whole)."""
    if hasattr(ds, "data_vars"):
        return _Sliceable(ds[UPPER_AIR]), _Sliceable(ds[RAIN_INPUT])
    return ds[UPPER_AIR], ds[RAIN_INPUT]


class _Sliceable:
    """``a[lo:hi]`` of a DataArray along its first (time) axis, as NumPy."""

    def __init__(self, da):
        self.da = da
        self.shape = da.shape

    def __getitem__(self, index: slice) -> np.ndarray:
        return self.da.isel({self.da.dims[0]: index}).values


def split_channels(z, variables: Sequence[str], levels: Sequence[float]) -> tuple[Any, Any]:
    """(upper (time, variable, pressure, lat, lon), rain (time, lat, lon)) of a (time, C, lat, lon)
    array in tensor order (NumPy or dask; a reshape, no copy of values)."""
    nv, nl = len(variables), len(levels)
    if z.shape[1] != nv * nl + 1:
        raise ValueError(f"{z.shape[1]} channels, expected {nv} variables x {nl} levels + rain")
    t, _, ny, nx = z.shape
    return z[:, :-1].reshape(t, nv, nl, ny, nx), z[:, -1]


def coordinates(variables: Sequence[str], levels: Sequence[float]) -> dict[str, tuple]:
    """The ``variable``, ``pressure`` and ``units`` coordinates of ``x`` (for ``assign_coords``)."""
    return {
        "variable": ("variable", np.asarray(list(variables), dtype=object),
                     {"long_name": "upper-air variable"}),
        "pressure": ("pressure", np.asarray([float(p) for p in levels], dtype=np.float64), dict(cf.PRESSURE_ATTRS)),
        "units": ("variable", np.asarray([cf.channel_units(v) for v in variables], dtype=object),
                  {"long_name": "physical units of the variable before normalisation"}),
    }


def input_variables(z, variables: Sequence[str], levels: Sequence[float]) -> tuple[dict, dict]:
    """(data variables, coordinates) of a store's inputs from a normalised (time, C, lat, lon)
    array ``z`` in tensor order, for ``xr.Dataset(data_vars, coords)``."""
    upper, rain = split_channels(z, variables, levels)
    return ({UPPER_AIR: (UPPER_AIR_DIMS, upper, dict(UPPER_AIR_ATTRS)),
             RAIN_INPUT: (RAIN_INPUT_DIMS, rain, dict(RAIN_INPUT_ATTRS))},
            coordinates(variables, levels))


UPPER_AIR_ATTRS = {"long_name": "normalised upper-air inputs (see attrs normalisation); 0 where missing",
                   "units": "1",
                   "comment": "physical units of each variable before normalisation in the coordinate 'units'"}
RAIN_INPUT_ATTRS = {"long_name": "normalised rain input: gauge rain in the 12 h ending at time (see attrs "
                                 "normalisation); 0 where missing",
                    "units": "1", "comment": "physical units before normalisation: mm (rain_mm holds them)"}
