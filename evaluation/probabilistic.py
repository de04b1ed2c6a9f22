"""Probabilistic verification: Brier score and skill, reliability, CRPS of binned distributions.

Like :mod:`evaluation.scores`, everything is kept as per-time sums over the scored cells
(so the block bootstrap re-weights them), and scores are pure functions of summed rows.

Forecasts (docs/contracts.md, prediction stores):

- ``prob_exceed`` ``(time, threshold, lat, lon)``: P(rain >= threshold) at the evaluation
  thresholds; a deterministic forecast ``f`` enters as ``1{f >= threshold}``;
- ``bin_prob`` ``(time, bin, lat, lon)`` with bin bounds ``bin_lower``/``bin_upper`` (mm,
  contiguous from 0): a distribution uniform within each bin, i.e. a CDF that is piecewise
  linear between the bin bounds and 1 above the last upper bound. Its CRPS is computed
  exactly (:func:`crps_binned`); a deterministic forecast's CRPS is its absolute error.

Brier skill score ``BSS = 1 - BS / BS_ref`` with the reference the training-period
climatological event frequency per cell and time of day
(:func:`evaluation.baselines.climatological_frequency`); both sums run over the same
cells and times, so the ratio is of sums (never a mean of per-time ratios).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Reliability diagram bins of the forecast probability: [0, 0.1), ..., [0.9, 1.0].
N_RELIABILITY_BINS = 10
#: Tolerances of the prediction-store checks (float32 probabilities).
PROB_TOL = 1e-4
SUM_TOL = 1e-3


def _div(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


@dataclass
class BinnedForecast:
    """A chunk of probabilistic forecasts: ``prob_exceed (T, n_thr, H, W)``,
    ``bin_prob (T, K, H, W)`` and the bin bounds ``lower``, ``upper`` ``(K,)`` in mm."""
    prob_exceed: np.ndarray
    bin_prob: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def mixture(forecasts: list[BinnedForecast]) -> BinnedForecast:
    """Equal-weight mixture of forecasts on the same bins (the seed average)."""
    first = forecasts[0]
    return BinnedForecast(np.mean([f.prob_exceed for f in forecasts], axis=0),
                          np.mean([f.bin_prob for f in forecasts], axis=0), first.lower, first.upper)


def crps_binned(bin_prob: np.ndarray, lower, upper, obs: np.ndarray, axis: int = 1) -> np.ndarray:
    """Exact CRPS ``int (F(x) - 1{x >= y})^2 dx`` of binned distributions (mm).

    ``bin_prob`` has the bins on ``axis``; bins ``[lower_k, upper_k)`` are contiguous
    (``upper_k == lower_{k+1}``); within a bin the CDF is linear, below ``lower_0`` it is 0
    and above the last ``upper`` it is 1. ``obs`` has ``bin_prob``'s shape without ``axis``.
    On each bin the integrand is the square of a linear function, integrated in closed form
    on both sides of the observation: ``L (g0^2 + g0 g1 + g1^2) / 3``.
    """
    p = np.moveaxis(np.asarray(bin_prob, dtype=np.float64), axis, 0)
    y = np.asarray(obs, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    cdf_hi = np.cumsum(p, axis=0)
    total = np.maximum(lower[0] - y, 0.0) + np.maximum(y - upper[-1], 0.0)
    f0 = np.zeros_like(y)
    for k in range(p.shape[0]):
        a, b = lower[k], upper[k]
        f1 = cdf_hi[k]
        s = np.clip(y, a, b)
        fs = f0 + (f1 - f0) * ((s - a) / (b - a) if b > a else 0.0)
        below = (s - a) * (f0 * f0 + f0 * fs + fs * fs) / 3.0
        g0, g1 = fs - 1.0, f1 - 1.0
        above = (b - s) * (g0 * g0 + g0 * g1 + g1 * g1) / 3.0
        total = total + below + above
        f0 = f1
    return total


def brier_rows(prob: np.ndarray, obs: np.ndarray, mask: np.ndarray, thresholds,
               clim_freq: np.ndarray) -> np.ndarray:
    """Per time and threshold ``(T, n_thr, 3)``: scored cells, ``sum (p - o)^2`` and the
    reference ``sum (c - o)^2`` over the masked cells (``o = 1{obs >= threshold}``).
    ``prob`` and ``clim_freq`` are ``(T, n_thr, H, W)``."""
    out = np.empty((obs.shape[0], len(thresholds), 3), dtype=np.float64)
    m = mask.astype(np.float64)
    with np.errstate(invalid="ignore"):
        for k, thr in enumerate(thresholds):
            o = (obs >= thr).astype(np.float64)
            p = np.where(mask, prob[:, k], 0.0).astype(np.float64)
            c = np.where(mask, clim_freq[:, k], 0.0).astype(np.float64)
            out[:, k, 0] = m.sum((1, 2))
            out[:, k, 1] = np.where(mask, (p - o) ** 2, 0.0).sum((1, 2))
            out[:, k, 2] = np.where(mask, (c - o) ** 2, 0.0).sum((1, 2))
    return out


def reliability_bin(prob: np.ndarray, n_bins: int = N_RELIABILITY_BINS) -> np.ndarray:
    """Bin index of each probability: ``k`` for ``k/n <= p < (k+1)/n``, 1.0 in the last bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, np.asarray(prob, np.float64), side="right") - 1, 0, n_bins - 1)


def reliability_rows(prob: np.ndarray, obs: np.ndarray, mask: np.ndarray, thresholds,
                     n_bins: int = N_RELIABILITY_BINS) -> np.ndarray:
    """Per time, threshold and probability bin ``(T, n_thr, n_bins, 3)``: count, sum of the
    forecast probabilities and number of observed events over the masked cells."""
    t = obs.shape[0]
    out = np.zeros((t, len(thresholds), n_bins, 3), dtype=np.float64)
    tt = np.broadcast_to(np.arange(t)[:, None, None], obs.shape)[mask]
    with np.errstate(invalid="ignore"):
        for k, thr in enumerate(thresholds):
            p = np.asarray(prob[:, k], np.float64)[mask]
            o = (obs >= thr)[mask].astype(np.float64)
            idx = tt * n_bins + reliability_bin(p, n_bins)
            for j, w in enumerate((np.ones_like(p), p, o)):
                out[:, k, :, j] = np.bincount(idx, weights=w, minlength=t * n_bins).reshape(t, n_bins)
    return out


class ProbabilisticAccumulator:
    """Brier sums (and, for probabilistic forecasts, CRPS sums and reliability counts) per time."""

    def __init__(self, thresholds):
        self.thresholds = [float(t) for t in thresholds]
        self._brier: list[np.ndarray] = []
        self._crps: list[np.ndarray] = []
        self._reliability: list[np.ndarray] = []

    def accumulate(self, obs, mask, clim_freq, forecast: BinnedForecast | None = None,
                   deterministic: np.ndarray | None = None) -> "ProbabilisticAccumulator":
        """Add a chunk: either a probabilistic ``forecast`` or a ``deterministic`` field (mm)."""
        obs = np.asarray(obs)
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), obs.shape)
        if forecast is None:
            with np.errstate(invalid="ignore"):
                prob = np.stack([np.asarray(deterministic) >= t for t in self.thresholds], axis=1)
            self._brier.append(brier_rows(prob.astype(np.float64), obs, mask, self.thresholds, clim_freq))
            return self
        self._brier.append(brier_rows(forecast.prob_exceed, obs, mask, self.thresholds, clim_freq))
        crps = crps_binned(forecast.bin_prob, forecast.lower, forecast.upper, np.where(mask, obs, 0.0))
        self._crps.append(np.stack([mask.sum((1, 2)), np.where(mask, crps, 0.0).sum((1, 2))], axis=-1))
        self._reliability.append(reliability_rows(forecast.prob_exceed, obs, mask, self.thresholds))
        return self

    @property
    def probabilistic(self) -> bool:
        return bool(self._crps)

    def stats(self) -> dict[str, np.ndarray]:
        """``brier`` ``(T, n_thr, 3)`` and, when probabilistic, ``crps`` ``(T, 2)``."""
        out = {}
        if self._brier:
            out["brier"] = np.concatenate(self._brier)
        if self._crps:
            out["crps"] = np.concatenate(self._crps)
        return out

    def reliability(self) -> np.ndarray | None:
        """Summed reliability counts ``(n_thr, n_bins, 3)`` (count, sum p, events), or None."""
        return np.concatenate(self._reliability).sum(0) if self._reliability else None


def probabilistic_from_sums(brier: np.ndarray | None, crps: np.ndarray | None) -> dict[str, np.ndarray]:
    """Brier score and skill per threshold from summed ``brier (..., n_thr, 3)``; mean CRPS
    from summed ``crps (..., 2)``."""
    out = {}
    if brier is not None:
        brier = np.asarray(brier, dtype=np.float64)
        out["brier"] = _div(brier[..., 1], brier[..., 0])
        out["bss"] = 1.0 - _div(brier[..., 1], brier[..., 2])
    if crps is not None:
        crps = np.asarray(crps, dtype=np.float64)
        out["crps"] = _div(crps[..., 1], crps[..., 0])
    return out


def reliability_table(counts: np.ndarray, n_bins: int = N_RELIABILITY_BINS) -> dict[str, np.ndarray]:
    """Reliability diagram data from summed counts ``(..., n_bins, 3)``: bin bounds,
    mean forecast probability, observed frequency (NaN in empty bins) and count."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {"bin_lower": edges[:-1], "bin_upper": edges[1:], "forecast_mean": _div(counts[..., 1], counts[..., 0]),
            "observed_frequency": _div(counts[..., 2], counts[..., 0]), "count": counts[..., 0]}
