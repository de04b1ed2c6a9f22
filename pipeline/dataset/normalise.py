"""Per-channel normalisation: z-score, and log1p then z-score for the rain channel.

Statistics are accumulated in pieces (one :class:`Moments` per monthly fragment, combined
in a fixed order with Chan's parallel formula), so they never need the whole period in
memory, and their value depends only on the fragments that contribute: fitting on the
training split makes them bit-identical when later months are added.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.common.errors import NormalisationError

RAIN_CHANNEL = "rain"
METHOD = "zscore per channel on the train split; rain channel log1p(mm) then zscore; NaN -> 0 after"


@dataclass
class Moments:
    """Count, mean and sum of squared deviations per channel (float64)."""

    count: np.ndarray  # (C,) number of finite values
    mean: np.ndarray  # (C,)
    m2: np.ndarray  # (C,) sum of squared deviations from mean

    @classmethod
    def empty(cls, n_channels: int) -> "Moments":
        z = np.zeros(n_channels)
        return cls(z.copy(), z.copy(), z.copy())

    def merge(self, other: "Moments") -> "Moments":
        """Chan et al. pairwise combination (deterministic for a given order)."""
        n = self.count + other.count
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = other.mean - self.mean
            frac = np.where(n > 0, other.count / np.where(n > 0, n, 1), 0.0)
            mean = self.mean + delta * frac
            m2 = self.m2 + other.m2 + delta**2 * self.count * frac
        return Moments(n, mean, m2)


def transform_physical(x: np.ndarray, channels: list[str], channel_axis: int = 1) -> np.ndarray:
    """Physical values -> the scale statistics are fitted on (log1p for rain), float64."""
    x = np.asarray(x, dtype=np.float64)
    if RAIN_CHANNEL in channels:
        k = channels.index(RAIN_CHANNEL)
        idx = [slice(None)] * x.ndim
        idx[channel_axis] = k
        rain = x[tuple(idx)]
        neg = rain[np.isfinite(rain) & (rain < 0)]
        if neg.size:
            raise NormalisationError(f"channel 'rain': {neg.size} negative values (min {neg.min()} mm); rain must be >= 0")
        x = x.copy()
        x[tuple(idx)] = np.log1p(rain)
    return x


def moments_of(x: np.ndarray, channels: list[str], channel_axis: int = 1) -> Moments:
    """Moments of one block (e.g. a month of (time, channel, lat, lon)), NaN ignored."""
    t = np.moveaxis(transform_physical(x, channels, channel_axis), channel_axis, 0).reshape(len(channels), -1)
    ok = np.isfinite(t)
    count = ok.sum(axis=1).astype(np.float64)
    total = np.where(ok, t, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    dev = np.where(ok, t - mean[:, None], 0.0)
    return Moments(count, mean, (dev * dev).sum(axis=1))


@dataclass
class NormStats:
    """Normalisation statistics of every channel, on the transformed scale."""

    channels: list[str]
    mean: np.ndarray  # (C,) float64
    std: np.ndarray  # (C,) float64
    count: np.ndarray  # (C,) int
    fitted_on: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "method": METHOD,
            "channels": list(self.channels),
            "transform": ["log1p_zscore" if c == RAIN_CHANNEL else "zscore" for c in self.channels],
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "count": [int(v) for v in self.count],
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        return cls(list(d["channels"]), np.asarray(d["mean"], float), np.asarray(d["std"], float),
                   np.asarray(d.get("count", [0] * len(d["channels"])), int), dict(d.get("fitted_on", {})))


def finalise(moments: Moments, channels: list[str], min_samples: int = 10, fitted_on: dict | None = None) -> NormStats:
    """Statistics from accumulated moments; zero variance or too few samples is an error."""
    for k, name in enumerate(channels):
        n = int(moments.count[k])
        if n < min_samples:
            raise NormalisationError(f"channel '{name}': only {n} valid training values (need >= {min_samples})")
    std = np.sqrt(moments.m2 / moments.count)  # population std
    for k, name in enumerate(channels):
        if not np.isfinite(std[k]) or std[k] <= 1e-10 * max(abs(moments.mean[k]), 1.0):
            raise NormalisationError(
                f"channel '{name}': zero variance in the training split (all {int(moments.count[k])} values "
                f"= {moments.mean[k]:.6g}); it cannot be z-scored")
    return NormStats(list(channels), moments.mean.copy(), std, moments.count.astype(int), dict(fitted_on or {}))


def _shape(v: np.ndarray, ndim: int, channel_axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[channel_axis] = -1
    return np.asarray(v).reshape(shape)


def _normalise_block(x: np.ndarray, rain: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """:func:`normalise` of a numpy block holding every channel: log1p on the rain
    channel(s) only (the other channels never need it), then the z-score."""
    xs = x.astype(np.float64)
    if rain.any():
        xs[:, rain] = np.log1p(xs[:, rain])
    return (xs - mean) / std


def normalise(x, stats: NormStats, channel_axis: int = 1):
    """Physical -> normalised (NaN stays NaN). Works on numpy and dask arrays."""
    is_rain = np.array([c == RAIN_CHANNEL for c in stats.channels])
    nd = x.ndim
    if hasattr(x, "dask") and channel_axis == 1 and nd >= 2 and len(x.chunks[1]) == 1:
        # one task per block, log1p on the rain channel only (same values as below)
        return x.map_blocks(_normalise_block, is_rain, _shape(stats.mean, nd, channel_axis),
                            _shape(stats.std, nd, channel_axis), dtype=np.float64)
    xs = x.astype(np.float64)
    if is_rain.any():
        import dask.array as da

        lib = da if hasattr(xs, "dask") else np
        xs = lib.where(_shape(is_rain, nd, channel_axis), lib.log1p(lib.where(_shape(is_rain, nd, channel_axis), xs, 0.0)), xs)
    return (xs - _shape(stats.mean, nd, channel_axis)) / _shape(stats.std, nd, channel_axis)


def invert(z, stats: NormStats, channel_axis: int = 1):
    """Normalised -> physical units (inverse of :func:`normalise`)."""
    is_rain = np.array([c == RAIN_CHANNEL for c in stats.channels])
    nd = z.ndim
    x = z.astype(np.float64) * _shape(stats.std, nd, channel_axis) + _shape(stats.mean, nd, channel_axis)
    if is_rain.any():
        import dask.array as da

        lib = da if hasattr(x, "dask") else np
        rain = _shape(is_rain, nd, channel_axis)
        x = lib.where(rain, lib.expm1(lib.where(rain, x, 0.0)), x)
    return x
