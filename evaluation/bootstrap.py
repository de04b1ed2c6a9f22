"""Paired block bootstrap over time, on per-time sufficient statistics.

Rain is autocorrelated over days, so resampling single frames would understate the
uncertainty. Whole blocks of consecutive test frames are resampled instead (Künsch 1989
moving blocks, or Politis & Romano 1992 circular blocks, which give every frame the same
chance of being drawn). "Paired": both forecasts are scored on the *same* resampled
frames, so the difference of their scores keeps the benefit of their correlated errors.

A resample is a vector of counts ``w[t]`` (how often frame ``t`` was drawn); with the
per-time rows of :mod:`evaluation.scores`, a resampled total is ``w @ rows``, so 1000
resamples of every score cost a few matrix products, never a pass over the fields.

With several training seeds per experiment, the bootstrap has two stages (a hierarchical
bootstrap: Davison & Hinkley 1997, section 3.8; for training runs, Agarwal et al. 2021,
"Deep reinforcement learning at the edge of the statistical precipice"): each resample
draws the time blocks and, independently for each experiment, as many seeds as it has,
with replacement (:func:`seed_draws`); the resampled score is the mean over the drawn
seeds. The interval then holds the spread between training runs as well as the sampling
of the weather. With S seeds the seed stage's variance is (S - 1) / S of the unbiased
one (0.67 with 3 seeds): intervals from few seeds are still somewhat too narrow.
"""
from __future__ import annotations

import warnings
import zlib

import numpy as np

SCHEMES = ("circular", "moving")


def block_length_frames(times, block_days: float) -> int:
    """Block length in frames: ``block_days`` divided by the median frame spacing (>= 1)."""
    times = np.asarray(times, dtype="datetime64[ns]")
    if len(times) < 2:
        return 1
    step = np.median(np.diff(times).astype("timedelta64[s]").astype(np.float64))
    return max(1, int(round(block_days * 86400.0 / step)))


def block_bootstrap_weights(n_times: int, block_length: int, n_samples: int,
                            rng: np.random.Generator, scheme: str = "circular") -> np.ndarray:
    """Resample counts ``(n_samples, n_times)``: each row draws ``ceil(n/L)`` blocks of
    ``L`` consecutive frames and keeps the first ``n`` frames drawn."""
    if scheme not in SCHEMES:
        raise ValueError(f"bootstrap scheme {scheme!r} not in {SCHEMES}")
    if n_times < 1:
        raise ValueError("cannot bootstrap an empty sample (no common test times)")
    length = int(min(max(block_length, 1), n_times))
    n_blocks = -(-n_times // length)
    high = n_times if scheme == "circular" else n_times - length + 1
    starts = rng.integers(0, high, size=(n_samples, n_blocks))
    idx = (starts[..., None] + np.arange(length)).reshape(n_samples, -1)[:, :n_times] % n_times
    weights = np.zeros((n_samples, n_times), dtype=np.float64)
    np.add.at(weights, (np.repeat(np.arange(n_samples), n_times), idx.ravel()), 1.0)
    return weights


def seed_draws(n_samples: int, n_seeds: int, seed: int, key: str) -> np.ndarray:
    """Seed indices ``(n_samples, n_seeds)`` drawn with replacement: the second stage of the
    two-stage bootstrap, where each resample also redraws an experiment's training seeds.

    The generator is seeded with ``seed`` and a checksum of ``key`` (the experiment's
    name), so the draws of one experiment are the same in every call (whole sample, flow
    regimes, attribution) and independent of another experiment's: two experiments' models
    share no training run, so their seeds are not paired."""
    if n_seeds < 1:
        raise ValueError(f"{key}: no training seed to resample")
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))])
    return rng.integers(0, n_seeds, size=(n_samples, n_seeds))


def seed_resampled_mean(values: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Mean over the drawn seeds of per-seed resampled scores: ``values (B, S, ...)``
    (resample b of the time blocks, seed s), ``draws (B, S)`` from :func:`seed_draws`;
    returns ``(B, ...)``. A score undefined for a drawn seed (NaN) is left out of that
    mean; NaN only where it is undefined for every drawn seed."""
    values = np.asarray(values, dtype=np.float64)
    picked = np.take_along_axis(values, draws.reshape(draws.shape + (1,) * (values.ndim - 2)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(picked, axis=1)


def percentile_interval(samples: np.ndarray, confidence: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval, ignoring NaN resamples."""
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():  # all-NaN slices (undefined scores) give NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(samples, alpha, axis=axis)
        hi = np.nanquantile(samples, 1.0 - alpha, axis=axis)
    return lo, hi


def bootstrap_p_value(diff: np.ndarray, axis: int = 0) -> np.ndarray:
    """Two-sided p-value of "no difference" from the bootstrap distribution of a difference:
    ``min(1, 2 min(#{d* <= 0}, #{d* >= 0}) / B)`` over the ``B`` finite resamples (NaN
    when none is finite). ``p < 1 - confidence`` exactly when fewer than a fraction
    ``(1 - confidence) / 2`` of the resamples lie on one side of 0, i.e. when the
    equal-tailed percentile interval excludes 0 (up to the quantile interpolation).
    ``p = 0`` means no resample reached 0: ``p < 1 / B``; the smallest non-zero value is
    ``2 / B``."""
    diff = np.asarray(diff, dtype=np.float64)
    finite = np.isfinite(diff)
    b = finite.sum(axis)
    le = (finite & (diff <= 0)).sum(axis)
    ge = (finite & (diff >= 0)).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(1.0, 2.0 * np.minimum(le, ge) / b)
    return np.where(b > 0, p, np.nan)


def paired_difference(score_a: np.ndarray, score_b: np.ndarray, point_a, point_b,
                      confidence: float, relative: bool = False) -> dict:
    """Bootstrap interval and two-sided p-value of ``b - a`` (and the interval of
    ``100 (b - a) / a`` when ``relative``).

    ``score_a``/``score_b`` are resampled scores ``(B, ...)`` computed with the same
    weights; ``point_*`` the scores on the full sample.
    """
    point_a = np.asarray(point_a, dtype=np.float64)
    point_b = np.asarray(point_b, dtype=np.float64)
    diff = score_b - score_a
    lo, hi = percentile_interval(diff, confidence)
    out = {"difference": point_b - point_a, "ci_low": lo, "ci_high": hi, "p_value": bootstrap_p_value(diff)}
    if relative:
        with np.errstate(all="ignore"):
            rel = 100.0 * diff / score_a
            out["relative_pct"] = 100.0 * (point_b - point_a) / point_a
        out["relative_ci_low"], out["relative_ci_high"] = percentile_interval(rel, confidence)
    return out
