"""Quality control of a radar volume, with the number of gates each test removes.

Tests, applied in this order to the gates that hold an echo (DBZH not masked); a gate is
counted under the first test that removes it:

1. ``rhohv``: RHOHV below ``radar.ingest.rhohv_min`` (non-meteorological echo);
2. ``snr``: SNR below ``radar.ingest.snr_min_db`` (only where the volume has SNR);
3. ``clutter``: within ``clutter_range_km`` of the radar, a DBZH texture (root-mean-square
   difference of consecutive gates along range over ``texture_gates`` gates) above
   ``clutter_texture_db`` (ground clutter is spiky along range, rain is smooth);
4. ``speckle``: an echo with fewer than ``speckle_min_gates`` echo gates in the centred
   window of ``speckle_window_gates`` gates along the ray (isolated noise gates).

Removed gates are returned as a boolean mask (nrays, ngates): gridding turns them into NaN
(not "no echo"), so the CAPPI tells QC-removed cells from dry ones.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

TESTS = ("rhohv", "snr", "clutter", "speckle")

DEFAULTS = {"rhohv_min": 0.8, "snr_min_db": 3.0, "clutter_range_km": 20.0, "clutter_texture_db": 12.0,
            "texture_gates": 5, "speckle_window_gates": 5, "speckle_min_gates": 3}


def _texture(dbz: np.ndarray, n: int) -> np.ndarray:
    d = np.diff(np.nan_to_num(dbz), axis=1, prepend=np.nan_to_num(dbz[:, :1]))
    return np.sqrt(uniform_filter1d(d * d, size=n, axis=1, mode="nearest"))


def quality_control(fields: dict, range_m: np.ndarray, settings: dict | None = None) -> tuple[np.ndarray, dict]:
    """(removed mask (nrays, ngates) bool, {test: gates removed}) for one volume's fields."""
    s = {**DEFAULTS, **(settings or {})}
    dbz = np.ma.masked_invalid(fields["DBZH"])
    echo = ~np.ma.getmaskarray(dbz)
    removed = np.zeros(echo.shape, bool)
    counts = {}

    def apply(name, bad):
        nonlocal removed
        new = bad & echo & ~removed
        counts[name] = int(new.sum())
        removed |= new

    if "RHOHV" in fields:
        rho = np.ma.masked_invalid(fields["RHOHV"])
        apply("rhohv", np.ma.filled(rho < s["rhohv_min"], False))
    else:
        counts["rhohv"] = 0
    if "SNR" in fields:
        snr = np.ma.masked_invalid(fields["SNR"])
        apply("snr", np.ma.filled(snr < s["snr_min_db"], False))
    else:
        counts["snr"] = 0
    vals = np.where(echo, dbz.filled(np.nan), np.nan)
    tex = _texture(vals, int(s["texture_gates"]))
    near = (np.asarray(range_m) <= s["clutter_range_km"] * 1000.0)[None, :]
    apply("clutter", near & (tex > s["clutter_texture_db"]))
    left = (echo & ~removed).astype(np.float64)
    n = int(s["speckle_window_gates"])
    neighbours = np.rint(uniform_filter1d(left, size=n, axis=1, mode="constant") * n)
    apply("speckle", neighbours < s["speckle_min_gates"])
    return removed, counts
