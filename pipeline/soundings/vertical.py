"""Vertical interpolation of many soundings to fixed pressure levels, linear in log-pressure.

All profiles are handled at once: the valid (profile, pressure) points of a variable are
put on one sorted key axis ``profile * SPAN + (ln p_max - ln p)`` and every target level
of every profile is located with a single ``searchsorted``. A target is interpolated
only between two reported points of the same profile that bracket it (or taken exactly
when a point sits on it); anything outside the profile's valid range for that variable
(below ground, above the burst height, beyond the last wind report) is NaN: there is
no extrapolation. Equivalent to :func:`metpy.interpolate.log_interpolate_1d` per profile
with ``fill_value=nan`` (checked in the tests).
"""
from __future__ import annotations

import numpy as np

LN_P_MAX = np.log(2000.0)  # hPa; keys stay positive for any physical pressure
SPAN = 64.0  # wider than ln(2000 hPa) - ln(1e-9 hPa)


def interpolate_to_levels(profile: np.ndarray, pressure: np.ndarray, values: np.ndarray,
                          n_profiles: int, levels_hpa) -> np.ndarray:
    """Interpolate ``values`` (one per level record) to ``levels_hpa`` for every profile.

    ``profile`` (int, 0..n_profiles-1) and ``pressure`` (hPa, > 0) give each record's
    sounding and pressure; records may come in any order, NaN values and pressures are
    ignored. Pressures must be distinct within a profile (QC guarantees it). Returns a
    float64 array (n_profiles, n_levels).
    """
    levels = np.asarray(levels_hpa, dtype=np.float64)
    out = np.full((n_profiles, levels.size), np.nan)
    ok = np.isfinite(values) & np.isfinite(pressure) & (pressure > 0)
    if not ok.any() or n_profiles == 0:
        return out
    prof = np.asarray(profile)[ok].astype(np.int64)
    lnp = np.log(np.asarray(pressure, dtype=np.float64)[ok])
    val = np.asarray(values, dtype=np.float64)[ok]
    key = prof * SPAN + (LN_P_MAX - lnp)
    order = np.argsort(key, kind="stable")
    key, prof, lnp, val = key[order], prof[order], lnp[order], val[order]

    tprof = np.repeat(np.arange(n_profiles, dtype=np.int64), levels.size)
    tlnp = np.tile(np.log(levels), n_profiles)
    tkey = tprof * SPAN + (LN_P_MAX - tlnp)
    hi = np.searchsorted(key, tkey, side="left")  # first point at or above the target (lower p)
    lo = hi - 1
    n = key.size
    hi_c = np.minimum(hi, n - 1)
    lo_c = np.maximum(lo, 0)
    exact = (hi < n) & (prof[hi_c] == tprof) & (lnp[hi_c] == tlnp)
    inside = (lo >= 0) & (hi < n) & (prof[lo_c] == tprof) & (prof[hi_c] == tprof)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (tlnp - lnp[lo_c]) / (lnp[hi_c] - lnp[lo_c])
        interp = val[lo_c] + w * (val[hi_c] - val[lo_c])
    result = np.where(exact, val[hi_c], np.where(inside, interp, np.nan))
    return result.reshape(n_profiles, levels.size)
