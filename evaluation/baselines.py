"""Reference forecasts every model must beat, built from the truth store itself.

- persistence: the rain of the last input frame (``t - lead_steps * step_hours``), i.e.
  "the next 12 h will be like the last 12 h";
- climatology: mean rain per cell and time of day (00 / 12 UTC) over the training split
  only (``pipeline.common.config.split_of_times``), so no test information leaks in;
- zero: no rain anywhere.

The climatological event frequency (same split, per cell and time of day) is the Brier
skill score's reference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.common.config import split_of_times
from pipeline.common.errors import ConfigError

BASELINES = ("persistence", "climatology", "zero")


def climatology(rain_mm: xr.DataArray, config: dict) -> xr.DataArray:
    """Training-period mean ``(hour, lat, lon)`` in mm; NaN where a cell never had data."""
    train = split_of_times(rain_mm["time"].values, config) == "train"
    if not train.any():
        raise ConfigError(
            f"config key 'splits.train' {config['splits']['train']}: no frame of the data "
            f"({pd.Timestamp(rain_mm.time.values[0])} .. {pd.Timestamp(rain_mm.time.values[-1])}) "
            "lies in the training split, so climatology cannot be fitted"
        )
    sub = rain_mm.isel(time=np.flatnonzero(train))
    clim = sub.groupby("time.hour").mean("time", skipna=True)
    return clim.compute().astype(np.float32)


def climatological_frequency(rain_mm: xr.DataArray, config: dict, thresholds) -> xr.DataArray:
    """Training-period event frequency ``(hour, threshold, lat, lon)``: the fraction of
    training frames with rain >= threshold among those with data, per cell and time of day
    (the Brier skill score's reference); NaN where a cell never had data."""
    train = split_of_times(rain_mm["time"].values, config) == "train"
    if not train.any():
        climatology(rain_mm, config)  # raises the config error
    sub = rain_mm.isel(time=np.flatnonzero(train)).load()
    finite = np.isfinite(sub)
    thr = xr.DataArray(np.asarray(thresholds, dtype=np.float64), dims="threshold",
                       coords={"threshold": np.asarray(thresholds, dtype=np.float64)})
    events = (sub >= thr).where(finite).astype(np.float64)
    freq = events.groupby("time.hour").mean("time", skipna=True)
    return freq.transpose("hour", "threshold", "lat", "lon").compute()


def climatological_frequency_chunk(freq: xr.DataArray, times: pd.DatetimeIndex) -> np.ndarray:
    """``(time, threshold, lat, lon)`` frequencies for the target ``times`` (NaN for an hour
    of day absent from the training split)."""
    shape = (len(times),) + freq.shape[1:]
    out = np.full(shape, np.nan, dtype=np.float64)
    known = np.isin(times.hour, freq["hour"].values)
    if known.any():
        out[known] = freq.sel(hour=xr.DataArray(times.hour[known], dims="time")).values
    return out


def persistence_lag(config: dict) -> pd.Timedelta:
    return pd.Timedelta(hours=config["frames"]["lead_steps"] * config["frames"]["step_hours"])


def baseline_chunk(name: str, rain_mm: xr.DataArray, clim: xr.DataArray, times: pd.DatetimeIndex,
                   lag: pd.Timedelta) -> np.ndarray:
    """Forecast ``(time, lat, lon)`` of baseline ``name`` for the target ``times``
    (NaN where the baseline has no value, e.g. the persistence frame is missing)."""
    shape = (len(times), rain_mm.sizes["lat"], rain_mm.sizes["lon"])
    if name == "zero":
        return np.zeros(shape, dtype=np.float32)
    if name == "persistence":
        prev = rain_mm.reindex(time=times - lag)  # frames absent from the store -> NaN
        return np.asarray(prev.values, dtype=np.float32)
    if name == "climatology":
        hours = xr.DataArray(times.hour, dims="time")
        hours_known = np.isin(times.hour, clim["hour"].values)
        out = np.full(shape, np.nan, dtype=np.float32)
        if hours_known.any():
            out[hours_known] = clim.sel(hour=hours[hours_known]).values
        return out
    raise ValueError(f"unknown baseline {name!r}; allowed: {BASELINES}")
