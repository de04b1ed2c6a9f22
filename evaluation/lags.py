"""Lag diagnostics from the gridded data (``metrics.json``'s ``lag_diagnostics``, docs/metrics.md).

How long does region-2 rain take to show up in region 1? From the joined-grid processed
store alone (never the nature run's truth files), over **every frame of the store** (the
whole period: a data diagnostic, on which no model is selected), with the area-mean
rain series of :mod:`evaluation.upstream`:

- ``region2_leads_region1``: Pearson correlation of region-1 rain at ``t + lag`` with
  region-2 rain at ``t``, for lags 0, 12, ..., 72 h, over every ``t`` at which both values
  exist (``n_pairs``);
- ``region1_leads_region2``: the reverse (region-2 rain at ``t + lag`` with region-1 rain
  at ``t``): the contrast that shows the direction of travel;
- ``region1_autocorrelation``: region-1 rain at ``t + lag`` with itself at ``t`` (what
  region 1's own past already tells);
- ``flow_from_region2``: ``region2_leads_region1`` over the pairs whose steering wind at
  ``t`` blows from region 2 towards region 1 (along-axis component > 0);
- ``along_axis_wind``: mean of that component (m/s) and the fraction of frames with it > 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.upstream import Upstream

#: Lags (hours) of the diagnostics: 0 to 72 h in steps of 12 h (the frame spacing).
LAG_HOURS = (0, 12, 24, 36, 48, 60, 72)
#: Fewest pairs for a correlation (fewer: null).
MIN_PAIRS = 3


def lagged_correlation(times, leading, following, lag_hours: float,
                       select: np.ndarray | None = None) -> tuple[float | None, int]:
    """Pearson correlation of ``following`` at ``t + lag_hours`` with ``leading`` at ``t``,
    over every time ``t`` of ``times`` (where ``select``, if given) for which ``t + lag`` is
    also a time and both values are finite. Returns ``(r or None, number of pairs)``."""
    times = pd.DatetimeIndex(times)
    leading, following = np.asarray(leading, np.float64), np.asarray(following, np.float64)
    pos = times.get_indexer(times + pd.Timedelta(hours=lag_hours))
    ok = pos >= 0
    if select is not None:
        ok &= np.asarray(select, bool)
    x, y = leading[ok], following[pos[ok]]
    fin = np.isfinite(x) & np.isfinite(y)
    x, y = x[fin], y[fin]
    n = int(fin.sum())
    if n < MIN_PAIRS or np.std(x) == 0 or np.std(y) == 0:
        return None, n
    return float(np.corrcoef(x, y)[0, 1]), n


def lag_series(times, leading, following, lags=LAG_HOURS, select=None) -> dict:
    """``{"correlation": [...], "n_pairs": [...]}`` over ``lags`` (hours)."""
    pairs = [lagged_correlation(times, leading, following, lag, select) for lag in lags]
    return {"correlation": [r for r, _ in pairs], "n_pairs": [n for _, n in pairs]}


def lag_diagnostics(up: Upstream, lags=LAG_HOURS) -> dict:
    """The ``lag_diagnostics`` block of ``metrics.json`` from the joined-grid series ``up``."""
    t, r1, r2 = up.times, up.rain_region1, up.rain_region2
    along = np.where(up.analysed, up.along_axis(), np.nan)
    lead = lag_series(t, r2, r1, lags)
    finite = [(r, lag) for r, lag in zip(lead["correlation"], lags) if r is not None]
    peak_r, peak_lag = max(finite) if finite else (None, None)
    with np.errstate(invalid="ignore"):
        from_r2 = along > 0
    return {
        "frames": "every frame of the processed joined-grid store (the whole period; a data diagnostic, "
                  "no model is selected on it)",
        "data": up.path, "n_frames": len(t), "time_start": str(t[0]), "time_end": str(t[-1]),
        "series": "area mean of rain_mm (mm / 12 h) over each region's cells, NaN-aware (a frame without any "
                  "valid cell of a region is left out)",
        "lags_hours": [int(lag) for lag in lags],
        "region2_leads_region1": lead,
        "region1_leads_region2": lag_series(t, r1, r2, lags),
        "region1_autocorrelation": lag_series(t, r1, r1, lags),
        "flow_from_region2": lag_series(t, r2, r1, lags, select=from_r2),
        "peak_lag_hours": peak_lag, "peak_correlation": peak_r,
        "along_axis_wind": {
            "definition": f"u, v at {up.level_hpa} hPa, mean over the joined grid, projected on the direction "
                          f"from region 2 to region 1 (region 2 {up.side} of region 1); positive: from region 2",
            "mean_ms": float(np.nanmean(along)) if np.isfinite(along).any() else None,
            "fraction_from_region2": float(from_r2.sum() / max(np.isfinite(along).sum(), 1)),
        },
        "mean_rain_mm": {"region1": float(np.nanmean(r1)) if np.isfinite(r1).any() else None,
                         "region2": float(np.nanmean(r2)) if np.isfinite(r2).any() else None},
    }
