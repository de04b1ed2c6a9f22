"""Streaming verification scores: accumulate per-time sufficient statistics, then compute.

The pattern is pysteps' ``det_cat_fct_init / accum / compute``: an accumulator is
created once, fed chunks of ``(time, lat, lon)`` fields, and turned into scores at the
end. Only small per-time rows are kept (a few dozen numbers per frame), never the
fields, so years of data stream through in constant memory. Keeping one row per time
(rather than one running total) is what makes the block bootstrap cheap: a resample is
a weighted sum of rows (``weights @ rows``), and every score below is a pure function of
summed rows that broadcasts over leading dimensions (resamples, seeds).

Conventions (documented in docs/metrics.md):

- Units mm / 12 h. Error ``e = forecast - observation``.
- An event is ``value >= threshold`` (rain of at least the threshold), for forecasts and
  observations alike (``scores``' ``ThresholdEventOperator`` default operator).
- Only cells where ``mask`` is true are scored. For FSS, masked cells count as
  non-events in both fields (pysteps' treatment of missing data), so both fields see the
  same domain.
- FSS uses windows lying entirely inside the grid (``scores.spatial.fss_2d`` with
  ``zero_padding=False``) and aggregates over time as Roberts & Lean (2008) / ``scores``
  do: ``1 - sum_t D_t / sum_t (F_t + O_t)``.
- A score whose denominator is zero is NaN (``scores`` returns 0 for an FSS with no
  events anywhere; NaN says "undefined" honestly).
"""
from __future__ import annotations

import numpy as np

from evaluation.probabilistic import BinnedForecast, ProbabilisticAccumulator, probabilistic_from_sums

# Per-time row of the continuous accumulator, in this order.
CONTINUOUS_FIELDS = ("n", "sum_f", "sum_o", "sum_ff", "sum_oo", "sum_fo", "sum_e", "sum_ee", "sum_abs_e")
CONTINUOUS_SCORES = ("rmse", "mae", "bias", "correlation")
# Scores of (probabilistic or deterministic) forecasts: CRPS (continuous, mm; the MAE of a
# deterministic forecast), Brier score and Brier skill score per threshold.
PROBABILISTIC_CONTINUOUS = ("crps",)
PROBABILISTIC_CATEGORICAL = ("brier", "bss")
# Contingency counts per time and threshold, in this order (a, b, c, d).
COUNT_NAMES = ("hits", "false_alarms", "misses", "correct_negatives")
CATEGORICAL_SCORES = ("csi", "pod", "far", "success_ratio", "frequency_bias", "ets", "hk")
# Orientation: +1 higher is better, -1 lower is better, 0 closer to 1 (frequency bias) or
# to 0 (bias) is better.
ORIENTATION = {
    "rmse": -1, "mae": -1, "bias": 0, "correlation": 1,
    "csi": 1, "pod": 1, "far": -1, "success_ratio": 1, "frequency_bias": 0, "ets": 1, "hk": 1,
    "fss": 1, "crps": -1, "brier": -1, "bss": 1,
}


def _div(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


# ---------------------------------------------------------------------------------------
# Pure functions of summed statistics (broadcast over any leading dimensions)
# ---------------------------------------------------------------------------------------

def continuous_from_sums(s: np.ndarray) -> dict[str, np.ndarray]:
    """RMSE, MAE, mean error (bias) and Pearson correlation from summed rows ``s[..., 9]``."""
    s = np.asarray(s, dtype=np.float64)
    n, sf, so, sff, soo, sfo, se, see, sae = (s[..., i] for i in range(len(CONTINUOUS_FIELDS)))
    mf, mo = _div(sf, n), _div(so, n)
    cov = _div(sfo, n) - mf * mo
    var_f = np.maximum(_div(sff, n) - mf**2, 0.0)
    var_o = np.maximum(_div(soo, n) - mo**2, 0.0)
    return {
        "n": n,
        "rmse": np.sqrt(_div(see, n)),
        "mae": _div(sae, n),
        "bias": _div(se, n),
        "correlation": _div(cov, np.sqrt(var_f * var_o)),
    }


def categorical_from_counts(c: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of 2x2 contingency tables ``c[..., 4]`` = (hits, false alarms, misses, correct negatives).

    CSI = a/(a+b+c); POD = a/(a+c); FAR = b/(a+b); success ratio = 1 - FAR;
    frequency bias = (a+b)/(a+c); ETS = (a - a_r)/(a+b+c - a_r) with
    a_r = (a+b)(a+c)/n; HK = POD - POFD = a/(a+c) - b/(b+d).
    """
    c = np.asarray(c, dtype=np.float64)
    a, b, m, d = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    n = a + b + m + d
    a_random = _div((a + b) * (a + m), n)
    pod = _div(a, a + m)
    return {
        "csi": _div(a, a + b + m),
        "pod": pod,
        "far": _div(b, a + b),
        "success_ratio": _div(a, a + b),
        "frequency_bias": _div(a + b, a + m),
        "ets": _div(a - a_random, a + b + m - a_random),
        "hk": pod - _div(b, b + d),
    }


def fss_from_sums(s: np.ndarray) -> np.ndarray:
    """FSS from summed ``s[..., 3]`` = (sum of squared forecast fractions, observed, differences)."""
    s = np.asarray(s, dtype=np.float64)
    return 1.0 - _div(s[..., 2], s[..., 0] + s[..., 1])


# ---------------------------------------------------------------------------------------
# Per-time rows from a chunk of fields
# ---------------------------------------------------------------------------------------

def continuous_rows(fcst: np.ndarray, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-time sums ``(T, 9)`` over the masked cells of ``(T, H, W)`` fields."""
    m = mask.astype(np.float64)
    f = np.where(mask, fcst, 0.0).astype(np.float64)
    o = np.where(mask, obs, 0.0).astype(np.float64)
    e = f - o
    axes = tuple(range(1, f.ndim))
    return np.stack(
        [m.sum(axes), f.sum(axes), o.sum(axes), (f * f).sum(axes), (o * o).sum(axes),
         (f * o).sum(axes), e.sum(axes), (e * e).sum(axes), np.abs(e).sum(axes)],
        axis=-1,
    )


def contingency_rows(fcst: np.ndarray, obs: np.ndarray, mask: np.ndarray, thresholds) -> np.ndarray:
    """Per-time contingency counts ``(T, n_thresholds, 4)`` over the masked cells."""
    axes = tuple(range(1, fcst.ndim))
    out = np.empty((fcst.shape[0], len(thresholds), 4), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        for k, thr in enumerate(thresholds):
            fe = (fcst >= thr) & mask
            oe = (obs >= thr) & mask
            out[:, k, 0] = (fe & oe).sum(axes)
            out[:, k, 1] = (fe & ~oe).sum(axes)
            out[:, k, 2] = (~fe & oe).sum(axes)
            out[:, k, 3] = (mask & ~fe & ~oe).sum(axes)
    return out


def window_sums(binary: np.ndarray, window: int) -> np.ndarray:
    """Sums of ``binary (T, H, W)`` over every ``window x window`` square inside the grid."""
    t, h, w = binary.shape
    if window > h or window > w:
        raise ValueError(f"FSS window {window} does not fit in a {h} x {w} grid (config key evaluation.fss_windows)")
    c = np.zeros((t, h + 1, w + 1), dtype=np.float64)
    c[:, 1:, 1:] = binary.cumsum(1).cumsum(2)
    n = window
    return c[:, n:, n:] - c[:, :-n, n:] - c[:, n:, :-n] + c[:, :-n, :-n]


def fss_rows(fcst: np.ndarray, obs: np.ndarray, mask: np.ndarray, thresholds, windows) -> np.ndarray:
    """Per-time FSS components ``(T, n_thresholds, n_windows, 3)``: sums over windows of
    squared forecast counts, squared observed counts and squared differences."""
    out = np.empty((fcst.shape[0], len(thresholds), len(windows), 3), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        for k, thr in enumerate(thresholds):
            fe = ((fcst >= thr) & mask).astype(np.float64)
            oe = ((obs >= thr) & mask).astype(np.float64)
            for j, win in enumerate(windows):
                pf, po = window_sums(fe, win), window_sums(oe, win)
                out[:, k, j, 0] = (pf * pf).sum((1, 2))
                out[:, k, j, 1] = (po * po).sum((1, 2))
                out[:, k, j, 2] = ((pf - po) ** 2).sum((1, 2))
    return out


# ---------------------------------------------------------------------------------------
# Accumulators (init / accumulate / compute)
# ---------------------------------------------------------------------------------------

class _RowAccumulator:
    """Collects per-time rows chunk by chunk; ``rows`` stacks them along time."""

    def __init__(self):
        self._chunks: list[np.ndarray] = []

    def _rows_of(self, fcst, obs, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def accumulate(self, fcst: np.ndarray, obs: np.ndarray, mask: np.ndarray) -> "_RowAccumulator":
        """Add a chunk of ``(time, lat, lon)`` forecast and observed fields (mm) and a
        boolean mask of the cells to score (same shape, or ``(lat, lon)``)."""
        fcst = np.asarray(fcst)
        obs = np.asarray(obs)
        if fcst.ndim == 2:
            fcst, obs = fcst[None], obs[None]
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), fcst.shape)
        if fcst.shape != obs.shape:
            raise ValueError(f"forecast shape {fcst.shape} differs from observation shape {obs.shape}")
        bad = mask & ~np.isfinite(fcst)
        if bad.any():
            raise ValueError(f"{int(bad.sum())} scored cells have a non-finite forecast")
        self._chunks.append(self._rows_of(fcst, obs, mask))
        return self

    @property
    def rows(self) -> np.ndarray:
        """Per-time sufficient statistics, time first."""
        return np.concatenate(self._chunks, axis=0)

    def totals(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Rows summed over time, or weighted sums ``weights (..., T) @ rows`` (bootstrap)."""
        rows = self.rows
        if weights is None:
            return rows.sum(0)
        return np.tensordot(np.asarray(weights, dtype=np.float64), rows, axes=([-1], [0]))


class ContinuousAccumulator(_RowAccumulator):
    """RMSE, MAE, bias and correlation over all scored cell-times."""

    def _rows_of(self, fcst, obs, mask):
        return continuous_rows(fcst, obs, mask)

    def compute(self, weights=None) -> dict[str, np.ndarray]:
        return continuous_from_sums(self.totals(weights))


class ContingencyAccumulator(_RowAccumulator):
    """2x2 contingency tables per threshold (event: value >= threshold)."""

    def __init__(self, thresholds):
        super().__init__()
        self.thresholds = [float(t) for t in thresholds]

    def _rows_of(self, fcst, obs, mask):
        return contingency_rows(fcst, obs, mask, self.thresholds)

    def compute(self, weights=None) -> dict[str, np.ndarray]:
        counts = self.totals(weights)
        out = {name: counts[..., i] for i, name in enumerate(COUNT_NAMES)}
        out.update(categorical_from_counts(counts))
        return out


class FSSAccumulator(_RowAccumulator):
    """Fractions Skill Score per threshold and window."""

    def __init__(self, thresholds, windows):
        super().__init__()
        self.thresholds = [float(t) for t in thresholds]
        self.windows = [int(w) for w in windows]

    def _rows_of(self, fcst, obs, mask):
        return fss_rows(fcst, obs, mask, self.thresholds, self.windows)

    def compute(self, weights=None) -> np.ndarray:
        """FSS ``(..., n_thresholds, n_windows)``."""
        return fss_from_sums(self.totals(weights))


class CellAccumulator:
    """Per-cell error sums over time (for maps of bias and MAE)."""

    def __init__(self, shape):
        self.n = np.zeros(shape, dtype=np.float64)
        self.sum_e = np.zeros(shape, dtype=np.float64)
        self.sum_abs_e = np.zeros(shape, dtype=np.float64)

    def accumulate(self, fcst, obs, mask) -> "CellAccumulator":
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), np.shape(fcst))
        e = np.where(mask, np.asarray(fcst, np.float64) - np.asarray(obs, np.float64), 0.0)
        self.n += mask.sum(0)
        self.sum_e += e.sum(0)
        self.sum_abs_e += np.abs(e).sum(0)
        return self

    def compute(self) -> dict[str, np.ndarray]:
        return {"bias": _div(self.sum_e, self.n), "mae": _div(self.sum_abs_e, self.n), "n": self.n}


class Verifier:
    """All scores of one forecast against the truth: continuous, contingency, FSS, per cell
    and, when given the climatological event frequency, Brier sums (and CRPS and
    reliability for probabilistic forecasts, :mod:`evaluation.probabilistic`)."""

    def __init__(self, thresholds, windows, shape):
        self.continuous = ContinuousAccumulator()
        self.contingency = ContingencyAccumulator(thresholds)
        self.fss = FSSAccumulator(thresholds, windows)
        self.cells = CellAccumulator(shape)
        self.prob = ProbabilisticAccumulator(thresholds)

    def accumulate(self, fcst, obs, mask, clim_freq: np.ndarray | None = None,
                   forecast: BinnedForecast | None = None) -> "Verifier":
        """Add a chunk of ``(time, lat, lon)`` fields; with ``clim_freq`` ``(time, n_thr, lat,
        lon)`` also the Brier sums of ``forecast`` (probabilities) or of ``fcst`` (0/1)."""
        for acc in (self.continuous, self.contingency, self.fss, self.cells):
            acc.accumulate(fcst, obs, mask)
        if clim_freq is not None:
            self.prob.accumulate(obs, mask, clim_freq, forecast, None if forecast is not None else fcst)
        return self

    def stats(self) -> dict[str, np.ndarray]:
        """Per-time rows of every accumulator: what the bootstrap resamples."""
        return {"continuous": self.continuous.rows, "contingency": self.contingency.rows, "fss": self.fss.rows,
                **self.prob.stats()}


def _weighted_total(rows: np.ndarray, weights: np.ndarray | None, time_axis: int) -> np.ndarray:
    rows = np.moveaxis(rows, time_axis, 0)
    if weights is None:
        return rows.sum(0)
    return np.tensordot(np.asarray(weights, dtype=np.float64), rows, axes=([-1], [0]))


def probabilistic_scores(stats: dict[str, np.ndarray], weights: np.ndarray | None = None,
                         time_axis: int = 0) -> dict[str, np.ndarray]:
    """``brier``, ``bss`` ``(..., n_thr)`` and ``crps`` ``(...)`` of the rows present in ``stats``."""
    brier = _weighted_total(stats["brier"], weights, time_axis) if "brier" in stats else None
    crps = _weighted_total(stats["crps"], weights, time_axis) if "crps" in stats else None
    return probabilistic_from_sums(brier, crps)


def scores_from_stats(stats: dict[str, np.ndarray], weights: np.ndarray | None = None,
                      time_axis: int = 0) -> dict[str, np.ndarray]:
    """Every score from per-time rows (time on ``time_axis``), optionally weighted.

    ``weights`` ``(B, T)`` gives resampled scores with a leading ``B`` dimension.
    Returns flat arrays: continuous scores ``(...)``, categorical ``(..., n_thr)``,
    ``fss`` ``(..., n_thr, n_win)``; with Brier rows also ``brier`` and ``bss``
    ``(..., n_thr)``; ``crps`` is the CRPS of a probabilistic forecast, the MAE of a
    deterministic one.
    """
    def total(rows):
        return _weighted_total(rows, weights, time_axis)

    out = dict(continuous_from_sums(total(stats["continuous"])))
    counts = total(stats["contingency"])
    out.update({name: counts[..., i] for i, name in enumerate(COUNT_NAMES)})
    out.update(categorical_from_counts(counts))
    out["fss"] = fss_from_sums(total(stats["fss"]))
    out.update(probabilistic_scores(stats, weights, time_axis))
    out.setdefault("crps", out["mae"])
    return out
