"""Quantitative precipitation estimation (QPE) from the CAPPIs, verified against gauges.

Estimators (rain rate R in mm/h; coefficients are config keys ``radar.qpe``):

- ``rz``: Marshall & Palmer (1948), ``Z = a R^b`` with ``a = 200``, ``b = 1.6`` (Z in
  mm^6 m^-3, ``Z = 10^(dBZ/10)``), so ``R = (Z / a)^(1/b)``. 1 mm/h <-> 23.0 dBZ.
- ``rzzdr``: ``R = c Z^d 10^(e Z_DR / 10)`` with ``c = 6.7e-3``, ``d = 0.927``,
  ``e = -3.43`` (Z_DR in dB, i.e. ``zeta_dr^-3.43`` for the linear ratio); S band,
  Bringi & Chandrasekar (2001, *Polarimetric Doppler Weather Radar*, eq. 8.22; the CSU-HIDRO
  relation). Z_DR below ``zdr_min_db`` (0.1 dB by default; the power law diverges as Z_DR
  goes to 0 and noise makes it negative) falls back to ``rz``.
- ``rkdp``: ``R = f sign(K_DP) |K_DP|^g`` with ``f = 40.5``, ``g = 0.85`` (K_DP in deg/km);
  S band, Bringi & Chandrasekar (2001, eq. 8.15; Sachidananda & Zrnic 1987). Negative
  K_DP (noise) gives R = 0.
- ``learned`` / ``learned_no_zdr``: least squares in log space,
  ``ln R = w . [1, dBZ, Z_DR, ln(1 + max(K_DP, 0))]`` (without Z_DR for ``learned_no_zdr``),
  fitted on gauge-cell pairs of the training period with gauge rain of at least
  ``learned_min_mmh`` and an echo above the floor; a cell at or below the floor gives 0.

The S band is assumed (the nature run's virtual radars); for C band use e.g.
``R = 21 K_DP^0.72`` (Bringi & Chandrasekar 2001, table 7.1) via the config keys.

Gauge matching: each station is matched to the CAPPI cell nearest to it (great-circle
distance to the 2-D ``lat``/``lon``) at the lowest height; a gauge value at time ``t``
(rain in the 6 minutes before ``t``, contract 2) is compared with the mean of the radar
rates at ``t - 6 min`` and ``t`` (trapezoid over the period), or the one of them present.
Pairs with a NaN on either side (outside coverage, QC) are not scored.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from evaluation.bootstrap import block_bootstrap_weights
from evaluation.scores import categorical_from_counts, continuous_from_sums, continuous_rows, contingency_rows

DEFAULTS = {
    "zr_a": 200.0, "zr_b": 1.6,
    "zzdr_c": 6.7e-3, "zzdr_d": 0.927, "zzdr_e": -3.43, "zdr_min_db": 0.1,
    "kdp_f": 40.5, "kdp_g": 0.85,
    "thresholds_mmh": [1.0, 5.0, 10.0],
    "learned_min_mmh": 0.1,
    "dbz_floor": 0.0,
    "block_length": 20, "bootstrap_samples": 1000, "confidence": 0.95,
    "max_distance_km": 2.0,
}
ESTIMATORS = ("rz", "rzzdr", "rkdp", "learned", "learned_no_zdr")
# Paired comparisons reported as the contribution of Z_DR: (reference a, candidate b).
ZDR_COMPARISONS = (("rz", "rzzdr"), ("learned_no_zdr", "learned"))


def settings(cfg: dict | None) -> dict:
    out = dict(DEFAULTS)
    out.update(cfg or {})
    return out


# ---------------------------------------------------------------------------------------
# Relations
# ---------------------------------------------------------------------------------------

def rain_from_dbz(dbz, a: float = 200.0, b: float = 1.6, floor: float | None = None) -> np.ndarray:
    """Marshall-Palmer ``R = (10^(dBZ/10) / a)^(1/b)`` in mm/h; NaN stays NaN; with a
    ``floor``, values at or below it give 0 (no echo)."""
    dbz = np.asarray(dbz, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        r = (10.0 ** (dbz / 10.0) / a) ** (1.0 / b)
    if floor is not None:
        r = np.where(dbz <= floor, 0.0, r)
    return r


def dbz_from_rain(rate, a: float = 200.0, b: float = 1.6) -> np.ndarray:
    """Inverse of :func:`rain_from_dbz`: ``10 log10(a R^b)`` (-inf for R = 0)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(a * np.asarray(rate, dtype=np.float64) ** b)


def rain_from_z_zdr(dbz, zdr, c: float = 6.7e-3, d: float = 0.927, e: float = -3.43,
                    zdr_min_db: float = 0.1, a: float = 200.0, b: float = 1.6,
                    floor: float | None = None) -> np.ndarray:
    """``R = c Z^d 10^(e Z_DR/10)`` (mm/h); Z_DR < ``zdr_min_db`` falls back to R(Z)."""
    dbz = np.asarray(dbz, dtype=np.float64)
    zdr = np.asarray(zdr, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        r = c * (10.0 ** (dbz / 10.0)) ** d * 10.0 ** (e * zdr / 10.0)
    r = np.where(zdr < zdr_min_db, rain_from_dbz(dbz, a, b), r)
    r = np.where(np.isnan(zdr) | np.isnan(dbz), np.nan, r)
    if floor is not None:
        r = np.where(dbz <= floor, 0.0, r)
    return r


def rain_from_kdp(kdp, f: float = 40.5, g: float = 0.85) -> np.ndarray:
    """``R = f K_DP^g`` (mm/h) for K_DP > 0, 0 for K_DP <= 0, NaN for NaN."""
    kdp = np.asarray(kdp, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(kdp > 0, f * np.abs(kdp) ** g, np.where(np.isnan(kdp), np.nan, 0.0))


def _features(dbz, zdr, kdp, with_zdr: bool) -> np.ndarray:
    cols = [np.ones_like(dbz), dbz]
    if with_zdr:
        cols.append(zdr)
    cols.append(np.log1p(np.maximum(kdp, 0.0)))
    return np.stack(cols, axis=-1)


@dataclass
class LearnedQPE:
    """``ln R = features @ weights``; see the module docstring."""
    weights: np.ndarray
    with_zdr: bool
    floor: float = 0.0

    def __call__(self, dbz, zdr, kdp) -> np.ndarray:
        dbz, zdr, kdp = (np.asarray(v, dtype=np.float64) for v in (dbz, zdr, kdp))
        x = _features(dbz, zdr, kdp, self.with_zdr)
        with np.errstate(over="ignore", invalid="ignore"):
            r = np.exp(np.clip(x @ self.weights, -50.0, 10.0))
        bad = np.isnan(dbz) | np.isnan(kdp) | (np.isnan(zdr) if self.with_zdr else False)
        return np.where(bad, np.nan, np.where(dbz <= self.floor, 0.0, r))

    def to_dict(self) -> dict:
        return {"weights": [float(w) for w in self.weights], "with_zdr": self.with_zdr,
                "features": ["1", "DBZH"] + (["ZDR"] if self.with_zdr else []) + ["ln(1+KDP+)"]}


def fit_learned(dbz, zdr, kdp, gauge_mmh, with_zdr: bool, min_mmh: float = 0.1,
                floor: float = 0.0) -> LearnedQPE:
    """Least squares of ``ln(gauge)`` on the features over pairs with gauge >= ``min_mmh``,
    an echo above ``floor`` and every input finite."""
    dbz, zdr, kdp, g = (np.asarray(v, dtype=np.float64).ravel() for v in (dbz, zdr, kdp, gauge_mmh))
    x = _features(dbz, zdr, kdp, with_zdr)
    ok = np.isfinite(x).all(-1) & np.isfinite(g) & (g >= min_mmh) & (dbz > floor)
    if ok.sum() < x.shape[1] + 1:
        raise ValueError(f"learned QPE: only {int(ok.sum())} training pairs with gauge rain >= {min_mmh} mm/h "
                         f"and an echo (config key radar.qpe.learned_min_mmh)")
    w, *_ = np.linalg.lstsq(x[ok], np.log(g[ok]), rcond=None)
    return LearnedQPE(weights=w, with_zdr=with_zdr, floor=floor)


# ---------------------------------------------------------------------------------------
# Gauges and matching
# ---------------------------------------------------------------------------------------

def read_gauges(path) -> dict:
    """Gauge CSV of contract 2 -> ``{"station": (n,), "lat", "lon", "time" (datetime64[ns]),
    "rain_mm"}``. A malformed row raises ``InvalidGaugeError`` naming ``path:line``."""
    from pipeline.common.errors import InvalidGaugeError

    cols = ("station", "lat", "lon", "time", "rain_mm")
    rows = {c: [] for c in cols}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidGaugeError(f"{path}:1: missing column(s) {', '.join(missing)} (expected {','.join(cols)})")
        for line, rec in enumerate(reader, start=2):
            try:
                rows["station"].append(rec["station"])
                rows["lat"].append(float(rec["lat"]))
                rows["lon"].append(float(rec["lon"]))
                rows["time"].append(np.datetime64(rec["time"].rstrip("Z"), "ns"))
                rows["rain_mm"].append(float(rec["rain_mm"]) if rec["rain_mm"] != "" else np.nan)
            except (ValueError, TypeError) as exc:
                raise InvalidGaugeError(f"{path}:{line}: bad value in {rec!r} ({exc})") from None
            if rows["rain_mm"][-1] < 0:
                raise InvalidGaugeError(f"{path}:{line}: rain_mm = {rec['rain_mm']} is negative")
    out = {c: np.asarray(v) for c, v in rows.items()}
    out["time"] = out["time"].astype("datetime64[ns]")
    return out


def nearest_cells(lat2d, lon2d, lat, lon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(iy, ix)`` of the grid cell nearest (great circle) to each point, and the
    distance in km."""
    la1, lo1 = np.radians(np.asarray(lat2d, float)).ravel(), np.radians(np.asarray(lon2d, float)).ravel()
    la2, lo2 = np.radians(np.asarray(lat, float))[:, None], np.radians(np.asarray(lon, float))[:, None]
    h = np.sin((la1 - la2) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo1 - lo2) / 2) ** 2
    dist = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
    k = dist.argmin(1)
    iy, ix = np.unravel_index(k, np.shape(lat2d))
    return iy, ix, dist[np.arange(len(k)), k]


def match_gauges(cappi, gauges: dict, max_distance_km: float = 2.0) -> dict:
    """Pairs of gauge rate (mm/h) and radar variables at the lowest height.

    ``cappi``: the contract-3 dataset (``DBZH``, ``ZDR``, ``KDP`` (time, height, y, x),
    ``lat``, ``lon``). Returns arrays over the pairs: ``time`` (gauge period end),
    ``station``, ``gauge_mmh`` (= 10 rain_mm), and for each variable the values at the
    period's two bounding frames ``DBZH_0``/``DBZH_1`` (start/end; NaN where the frame is
    absent). Stations farther than ``max_distance_km`` from every cell are dropped.
    """
    low = cappi.isel(height=0)
    iy, ix, dist = nearest_cells(cappi["lat"].values, cappi["lon"].values, gauges["lat"], gauges["lon"])
    keep = dist <= max_distance_km
    times = cappi["time"].values.astype("datetime64[ns]")
    pos = {t: i for i, t in enumerate(times)}
    t_end = gauges["time"]
    t_start = t_end - np.timedelta64(6, "m")
    i1 = np.array([pos.get(t, -1) for t in t_end])
    i0 = np.array([pos.get(t, -1) for t in t_start])
    sel = keep & ((i0 >= 0) | (i1 >= 0))
    out = {"time": t_end[sel], "station": gauges["station"][sel], "gauge_mmh": 10.0 * gauges["rain_mm"][sel]}
    for var in ("DBZH", "ZDR", "KDP"):
        arr = low[var].values
        for tag, idx in (("0", i0), ("1", i1)):
            vals = arr[np.clip(idx, 0, None), iy, ix].astype(np.float64)
            out[f"{var}_{tag}"] = np.where(idx >= 0, vals, np.nan)[sel]
    return out


def estimate(pairs: dict, name: str, cfg: dict, learned: dict | None = None) -> np.ndarray:
    """Radar rate (mm/h) over each gauge period for estimator ``name``: the mean over the
    bounding frames present (NaN when a present frame is NaN)."""
    s = settings(cfg)
    rates = []
    for tag in ("0", "1"):
        z, zdr, kdp = pairs[f"DBZH_{tag}"], pairs[f"ZDR_{tag}"], pairs[f"KDP_{tag}"]
        if name == "rz":
            r = rain_from_dbz(z, s["zr_a"], s["zr_b"], floor=s["dbz_floor"])
        elif name == "rzzdr":
            r = rain_from_z_zdr(z, zdr, s["zzdr_c"], s["zzdr_d"], s["zzdr_e"], s["zdr_min_db"],
                                s["zr_a"], s["zr_b"], floor=s["dbz_floor"])
        elif name == "rkdp":
            r = np.where(np.isnan(z), np.nan, rain_from_kdp(kdp, s["kdp_f"], s["kdp_g"]))
        elif name in ("learned", "learned_no_zdr"):
            r = learned[name](z, zdr, kdp)
        else:
            raise ValueError(f"unknown QPE estimator {name!r} (one of {ESTIMATORS})")
        rates.append(r)
    both = np.stack(rates)
    # an absent frame (or a NaN cell) is NaN in every variable: average the rest
    cnt = np.isfinite(both).sum(0)
    return np.where(cnt > 0, np.nansum(both, 0) / np.maximum(cnt, 1), np.nan)


# ---------------------------------------------------------------------------------------
# Verification against gauges
# ---------------------------------------------------------------------------------------

def _rows_by_time(times, est, gauge, thresholds):
    """Per-time continuous sums (T, 9) and contingency counts (T, K, 4) over stations."""
    ut, inv = np.unique(times, return_inverse=True)
    T = len(ut)
    n_st = np.bincount(inv).max() if len(inv) else 0
    # pad into (T, n_st) fields so the main track's row functions apply
    f = np.full((T, max(n_st, 1)), np.nan)
    o = np.full_like(f, np.nan)
    slot = np.zeros(len(inv), dtype=int)
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=T)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(len(inv)) - np.repeat(starts, counts)
    f[inv, slot] = est
    o[inv, slot] = gauge
    m = np.isfinite(f) & np.isfinite(o)
    return ut, continuous_rows(f, o, m), contingency_rows(f, o, m, thresholds)


def _scores(cont, cat, thresholds) -> dict:
    c = continuous_from_sums(cont)
    k = categorical_from_counts(cat)
    out = {"n": c["n"], "rmse": c["rmse"], "bias": c["bias"], "mae": c["mae"], "correlation": c["correlation"]}
    for j, thr in enumerate(thresholds):
        out[f"csi_{thr:g}"] = k["csi"][..., j]
    return out


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def verdict(diff: float, lo: float, hi: float, orientation: int) -> str:
    """``significant improvement`` / ``no significant difference`` / ``significantly worse``
    for ``b - a`` with interval [lo, hi] and orientation +1 (higher better) or -1."""
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "undefined"
    if lo > 0 or hi < 0:
        better = (lo > 0) == (orientation > 0)
        return "significant improvement" if better else "significantly worse"
    return "no significant difference"


def verify_qpe(cappi, gauges: dict, train_times, test_times, cfg: dict | None = None, seed: int = 0,
               floor: float | None = None) -> dict:
    """Score every estimator against the gauges over ``test_times`` (the learned ones fitted
    over ``train_times``; both are collections of gauge period ends, datetime64), and the
    contribution of Z_DR by paired block bootstrap over test times (blocks of
    ``block_length`` consecutive 6-minute periods). ``floor``: ``radar.grid.dbz_floor``
    (no echo, R = 0). JSON-ready; schema in docs/contracts.md."""
    s = settings(cfg)
    if floor is not None:
        s["dbz_floor"] = float(floor)
    thr = [float(t) for t in s["thresholds_mmh"]]
    pairs = match_gauges(cappi, gauges, float(s["max_distance_km"]))
    train = np.isin(pairs["time"], np.asarray(train_times, dtype="datetime64[ns]"))
    test = np.isin(pairs["time"], np.asarray(test_times, dtype="datetime64[ns]"))
    learned = {}
    for name, with_zdr in (("learned", True), ("learned_no_zdr", False)):
        z = np.concatenate([pairs["DBZH_0"][train], pairs["DBZH_1"][train]])
        zd = np.concatenate([pairs["ZDR_0"][train], pairs["ZDR_1"][train]])
        kd = np.concatenate([pairs["KDP_0"][train], pairs["KDP_1"][train]])
        g = np.concatenate([pairs["gauge_mmh"][train]] * 2)
        learned[name] = fit_learned(z, zd, kd, g, with_zdr, s["learned_min_mmh"], s["dbz_floor"])
    test_pairs = {k: v[test] for k, v in pairs.items()}
    rows = {}
    ut = None
    for name in ESTIMATORS:
        est = estimate(test_pairs, name, s, learned)
        ut, cont, cat = _rows_by_time(test_pairs["time"], est, test_pairs["gauge_mmh"], thr)
        rows[name] = (cont, cat)
    out = {"thresholds_mmh": thr, "n_test_pairs": int(test.sum()), "n_train_pairs": int(train.sum()),
           "n_test_times": 0 if ut is None else len(ut),
           "learned": {k: v.to_dict() for k, v in learned.items()}, "estimators": {}, "zdr_contribution": []}
    for name, (cont, cat) in rows.items():
        out["estimators"][name] = _scores(cont.sum(0), cat.sum(0), thr)
    rng = np.random.default_rng(seed)
    n_t = rows["rz"][0].shape[0]
    w = block_bootstrap_weights(n_t, int(s["block_length"]), int(s["bootstrap_samples"]), rng)
    for a, b in ZDR_COMPARISONS:
        out["zdr_contribution"].append(paired_scores(rows[a], rows[b], w, thr, float(s["confidence"]), a, b))
    out["block_length"] = int(s["block_length"])
    out["bootstrap_samples"] = int(s["bootstrap_samples"])
    out["confidence"] = float(s["confidence"])
    return _clean(out)


ORIENT = {"rmse": -1, "mae": -1, "correlation": 1}


def paired_scores(rows_a, rows_b, weights, thresholds, confidence, name_a="a", name_b="b") -> dict:
    """Differences b - a of RMSE, MAE, correlation and CSI per threshold, with paired
    block-bootstrap intervals, p-values and verdicts; the primary (RMSE) verdict first."""
    from evaluation.bootstrap import bootstrap_p_value, percentile_interval
    from evaluation.verdicts import p_text

    sa = _scores(rows_a[0].sum(0), rows_a[1].sum(0), thresholds)
    sb = _scores(rows_b[0].sum(0), rows_b[1].sum(0), thresholds)
    ra = _scores(np.einsum("bt,tk->bk", weights, rows_a[0]), np.einsum("bt,tkc->bkc", weights, rows_a[1]), thresholds)
    rb = _scores(np.einsum("bt,tk->bk", weights, rows_b[0]), np.einsum("bt,tkc->bkc", weights, rows_b[1]), thresholds)
    scores = {}
    for key in ["rmse", "mae", "correlation"] + [f"csi_{t:g}" for t in thresholds]:
        d = rb[key] - ra[key]
        lo, hi = percentile_interval(d, confidence)
        orient = ORIENT.get(key, 1)
        diff = float(sb[key] - sa[key])
        scores[key] = {"a": float(sa[key]), "b": float(sb[key]), "difference": diff, "ci_low": float(lo),
                       "ci_high": float(hi), "p_value": float(bootstrap_p_value(d)),
                       "verdict": verdict(diff, float(lo), float(hi), orient)}
    p = scores["rmse"]
    line = (f"{name_b} vs {name_a}: RMSE {p['b']:.3f} vs {p['a']:.3f} mm/h, difference {p['difference']:+.3f} "
            f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}] ({confidence:.0%} paired block bootstrap, "
            f"{p_text(p['p_value'], int(weights.shape[0]))}): {p['verdict']}")
    return _clean({"a": name_a, "b": name_b, "primary": "rmse", "verdict": p["verdict"], "line": line,
                   "scores": scores})
