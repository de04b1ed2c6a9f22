"""Verification of reflectivity nowcasts (contract 4): categorical scores, FSS, RMSE/MAE,
skill against lead time, spectra, and paired comparisons of two models.

Inputs: observed and forecast reflectivity (dBZ) with dims ``(sample, lead, y, x)``
(lead 1..10 = 6..60 min), a ``(y, x)`` mask of cells to score. A cell is scored where the
mask is true and both fields are finite. Conventions are the main track's
(:mod:`evaluation.scores`): an event is ``value >= threshold``; scores are computed from
contingency counts / sums aggregated over the sample set (never averaged per sample);
FSS uses windows lying inside the grid (``scores.spatial.fss_2d``, ``zero_padding=False``),
with cells not scored counting as non-events in both fields, aggregated as
``1 - sum D / sum (F + O)``; the useful-skill level is ``0.5 + f0/2`` with ``f0`` the
observed event frequency over the scored cells. Rain-rate thresholds use Marshall-Palmer
(:func:`radar.qpe.rain_from_dbz`). A score with a zero denominator is NaN (``null`` in JSON).

Per-sample rows (sums and counts per sample and lead) are kept so the paired block
bootstrap over samples (:mod:`evaluation.bootstrap`) is a weighted sum of rows; with
several training seeds per model the bootstrap also draws the seeds (:func:`compare`).
"""
from __future__ import annotations

import warnings

import numpy as np

from evaluation.bootstrap import (block_bootstrap_weights, bootstrap_p_value, percentile_interval, seed_draws,
                                  seed_resampled_mean)
from evaluation.scores import (categorical_from_counts, continuous_from_sums, continuous_rows,
                               contingency_rows, fss_from_sums, fss_rows)
from evaluation.multiplicity import holm
from evaluation.verdicts import p_text
from radar.qpe import _clean, rain_from_dbz, verdict

DEFAULTS = {
    "thresholds_dbz": [20.0, 30.0, 40.0],
    "thresholds_mmh": [1.0, 5.0, 10.0],
    "fss_scales_km": [1.0, 5.0, 11.0, 21.0],
    "fss_threshold_dbz": None,
    "block_length": 10,
    "bootstrap_samples": 1000,
    "confidence": 0.95,
    "primary_threshold_dbz": 30.0,
    "zr_a": 200.0, "zr_b": 1.6,
    "step_minutes": 6,
    "chunk_samples": 16,
}
CATEGORICAL = ("csi", "pod", "far", "frequency_bias")


def settings(cfg: dict | None) -> dict:
    out = dict(DEFAULTS)
    out.update(cfg or {})
    return out


def settings_from_config(config: dict) -> dict:
    """``radar.evaluation`` of a validated config, with the Marshall-Palmer coefficients of
    ``radar.qpe`` (``zr_a``, ``zr_b``) used for the rain-rate thresholds."""
    radar = (config or {}).get("radar") or {}
    s = settings(radar.get("evaluation"))
    q = radar.get("qpe") or {}
    for k in ("zr_a", "zr_b"):
        if k in q:
            s[k] = q[k]
    return s


def _values(a) -> np.ndarray:
    return np.asarray(getattr(a, "values", a), dtype=np.float64)


def grid_spacing_km(field) -> float:
    """Grid spacing in km from the ``x`` coordinate (m) of a DataArray (1 km without one)."""
    try:
        x = np.asarray(field["x"].values, dtype=np.float64)
        return float(np.median(np.abs(np.diff(x)))) / 1000.0
    except (KeyError, TypeError, AttributeError, IndexError):
        return 1.0


def fss_windows(scales_km, dx_km: float) -> list[int]:
    """Odd window sizes in cells closest to each scale: ``2 floor((s/dx - 1)/2 + 1/2) + 1`` (>= 1; halves round up)."""
    return [max(1, 2 * int(np.floor((float(s) / dx_km - 1.0) / 2.0 + 0.5)) + 1) for s in scales_km]


def sample_rows(obs, fcst, mask, cfg: dict | None = None, dx_km: float | None = None) -> dict:
    """Per-(sample, lead) sufficient statistics: ``cont`` (S, L, 9), ``cat_dbz`` (S, L, K, 4),
    ``cat_mmh`` (S, L, K', 4), ``fss`` (S, L, K, J, 3) (FSS at the dBZ thresholds)."""
    s = settings(cfg)
    if dx_km is None:
        dx_km = grid_spacing_km(obs)
    o_all, f_all = _values(obs), _values(fcst)
    if o_all.shape != f_all.shape or o_all.ndim != 4:
        raise ValueError(f"observed {o_all.shape} and forecast {f_all.shape} must both be (sample, lead, y, x)")
    m2 = np.asarray(getattr(mask, "values", mask), dtype=bool)
    S, L, H, W = o_all.shape
    thr_z = [float(t) for t in s["thresholds_dbz"]]
    thr_r = [float(t) for t in s["thresholds_mmh"]]
    wins = fss_windows(s["fss_scales_km"], dx_km)
    too_big = [sc for sc, w in zip(s["fss_scales_km"], wins) if w > min(H, W)]
    if too_big:
        raise ValueError(f"config key radar.evaluation.fss_scales_km: {too_big} km do not fit in a {H} x {W} grid "
                         f"of {dx_km:g} km cells")
    out = {"cont": [], "cat_dbz": [], "cat_mmh": [], "fss": []}
    step = max(1, int(s["chunk_samples"]))
    for i in range(0, S, step):
        o = o_all[i:i + step].reshape(-1, H, W)
        f = f_all[i:i + step].reshape(-1, H, W)
        m = m2[None] & np.isfinite(o) & np.isfinite(f)
        n = o.shape[0] // L
        out["cont"].append(continuous_rows(f, o, m).reshape(n, L, -1))
        out["cat_dbz"].append(contingency_rows(f, o, m, thr_z).reshape(n, L, len(thr_z), 4))
        ro, rf = rain_from_dbz(o, s["zr_a"], s["zr_b"]), rain_from_dbz(f, s["zr_a"], s["zr_b"])
        out["cat_mmh"].append(contingency_rows(rf, ro, m, thr_r).reshape(n, L, len(thr_r), 4))
        out["fss"].append(fss_rows(f, o, m, thr_z, wins).reshape(n, L, len(thr_z), len(wins), 3))
    rows = {k: np.concatenate(v, axis=0) for k, v in out.items()}
    rows["meta"] = {"thresholds_dbz": thr_z, "thresholds_mmh": thr_r, "fss_scales_km": [float(x) for x in s["fss_scales_km"]],
                    "fss_windows_cells": wins, "dx_km": dx_km, "n_leads": L, "step_minutes": int(s["step_minutes"])}
    return rows


def scores_from_totals(tot: dict) -> dict:
    """Scores from rows summed over samples (any leading dims, e.g. (B, L) or (L,)): a flat
    dict of arrays keyed ``rmse``, ``csi@30dBZ``, ``fss@30dBZ@5km``, ``fss_useful@30dBZ``..."""
    meta = tot["meta"]
    out = {}
    c = continuous_from_sums(tot["cont"])
    for k in ("rmse", "mae", "bias"):
        out[k] = c[k]
    for tag, key, thrs in (("dBZ", "cat_dbz", meta["thresholds_dbz"]), ("mmh", "cat_mmh", meta["thresholds_mmh"])):
        k = categorical_from_counts(tot[key])
        counts = tot[key]
        n = counts.sum(-1)
        base = np.where(n > 0, (counts[..., 0] + counts[..., 2]) / np.where(n > 0, n, 1), np.nan)
        for j, t in enumerate(thrs):
            for sc in CATEGORICAL:
                out[f"{sc}@{t:g}{tag}"] = k[sc][..., j]
            out[f"base_rate@{t:g}{tag}"] = base[..., j]
    fss = fss_from_sums(tot["fss"])
    for j, t in enumerate(meta["thresholds_dbz"]):
        for i, sc in enumerate(meta["fss_scales_km"]):
            out[f"fss@{t:g}dBZ@{sc:g}km"] = fss[..., j, i]
        out[f"fss_useful@{t:g}dBZ"] = 0.5 + out[f"base_rate@{t:g}dBZ"] / 2.0
    return out


def _sum(rows: dict, weights=None, all_leads=False) -> dict:
    out = {"meta": rows["meta"]}
    for k in ("cont", "cat_dbz", "cat_mmh", "fss"):
        r = rows[k]
        t = r.sum(0) if weights is None else np.tensordot(weights, r, axes=(1, 0))
        if all_leads:  # lead axis: 0 without weights, 1 with
            t = t.sum(0 if weights is None else 1)
        out[k] = t
    return out


def verify_nowcast(obs, fcst, mask, cfg: dict | None = None, dx_km: float | None = None, rows: dict | None = None) -> dict:
    """Scores of one model: ``{"leads_min": [...], "scores": {name: {"all": x, "by_lead": [...]}}, ...}``.

    ``all`` aggregates the counts over every sample and lead, ``by_lead`` over the samples
    at each lead (skill against lead time). JSON-ready; schema in docs/contracts.md."""
    if rows is None:
        rows = sample_rows(obs, fcst, mask, cfg, dx_km)
    meta = rows["meta"]
    per_lead = scores_from_totals(_sum(rows))
    overall = scores_from_totals(_sum(rows, all_leads=True))
    out = dict(meta)
    out["n_samples"] = int(rows["cont"].shape[0])
    out["leads_min"] = [meta["step_minutes"] * (i + 1) for i in range(meta["n_leads"])]
    out["scores"] = {k: {"all": overall[k], "by_lead": per_lead[k]} for k in per_lead}
    return _clean(out)


def _rapsd_bins(m: int, n: int):
    yc = np.arange(m) - (m // 2)
    xc = np.arange(n) - (n // 2)
    r = np.sqrt(xc[None, :] ** 2 + yc[:, None] ** 2).round().astype(int)
    L = max(m, n)
    nr = int(L / 2) + 1 if L % 2 == 1 else int(L / 2)
    return r, nr, L


def rapsd(fields: np.ndarray, d: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of ``fields (..., M, N)`` (vectorised over
    leading dims), as ``pysteps.utils.spectral.rapsd(field, fft_method=numpy.fft)``:
    ``|fftshift(fft2)|^2 / (M N)`` averaged over integer radii ``0..L/2`` (L = max(M, N)),
    and the frequencies ``fftfreq(L, d)`` of those radii (cycles per unit of ``d``)."""
    f = np.asarray(fields, dtype=np.float64)
    m, n = f.shape[-2:]
    psd = np.abs(np.fft.fftshift(np.fft.fft2(f), axes=(-2, -1))) ** 2 / (m * n)
    r, nr, L = _rapsd_bins(m, n)
    flat = psd.reshape(-1, m * n)
    rr = r.ravel()
    keep = rr < nr
    onehot = np.zeros((m * n, nr))
    onehot[np.flatnonzero(keep), rr[keep]] = 1.0
    out = (flat @ onehot) / onehot.sum(0)
    return out.reshape(f.shape[:-2] + (nr,)), np.fft.fftfreq(L, d=d)[:nr]


def power_spectra(obs, fcst, mask=None, floor: float = 0.0, dx_km: float | None = None) -> dict:
    """Sharpness: the RAPSD of forecasts and observations per lead, averaged over samples
    (NaN cells, e.g. outside coverage, set to ``floor`` first). Returns wavelengths (km,
    the zero frequency left out) and ``obs``/``fcst`` lists (lead, wavelength), plus the
    ratio fcst/obs of the power at each lead summed over wavelengths shorter than 16 km
    (1 = as sharp as observed; < 1 smoother)."""
    if dx_km is None:
        dx_km = grid_spacing_km(obs)
    out = {}
    for name, field in (("obs", obs), ("fcst", fcst)):
        v = _values(field)
        if mask is not None:
            v = np.where(np.asarray(getattr(mask, "values", mask), bool), v, np.nan)
        v = np.where(np.isfinite(v), v, floor)
        p, freq = rapsd(v, d=dx_km)
        out[name] = p.mean(0)[:, 1:]
    wl = 1.0 / freq[1:]
    small = wl < 16.0
    ratio = out["fcst"][:, small].sum(1) / out["obs"][:, small].sum(1)
    return _clean({"wavelength_km": wl, "obs": out["obs"], "fcst": out["fcst"], "small_scale_power_ratio": ratio})


def _seed_list(x) -> list:
    """A forecast or rows dict of one training seed, or a list/tuple of them: a list."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


def seed_mean(values, axis: int = 0) -> np.ndarray:
    """Mean over training seeds of per-seed scores; a score undefined for a seed (NaN) is
    left out, NaN only where it is undefined for every seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(values, dtype=np.float64), axis=axis)


def _seed_scores(rows_list: list, weights=None, all_leads=False) -> dict:
    """Scores of every seed, stacked: ``(S, ...)`` without weights, ``(B, S, ...)`` with."""
    per = [scores_from_totals(_sum(r, weights, all_leads)) for r in rows_list]
    axis = 0 if weights is None else 1
    return {k: np.stack([p[k] for p in per], axis=axis) for k in per[0]}


def interval_text(n_seeds_a: int, n_seeds_b: int) -> tuple[str, str]:
    """How the interval was obtained, and the caveat: over samples and training seeds when a
    model has several seeds (no caveat); over samples only with one seed each, and then
    training-run variability is not in the interval."""
    if max(n_seeds_a, n_seeds_b) > 1:
        return "paired block bootstrap over samples and training seeds", ""
    return ("paired block bootstrap over samples",
            "one training seed per experiment, so the variability between training runs is not in the interval")


def compare(obs, fcst_a, fcst_b, mask, cfg: dict | None = None, seed: int = 0, name_a: str = "a",
            name_b: str = "b", dx_km: float | None = None, rows_a=None, rows_b=None) -> dict:
    """Model b (e.g. ``dualpol``) against its reference a (``reflectivity``) on the same
    samples: differences b - a of CSI (each dBZ threshold), FSS (each threshold and scale)
    and RMSE, over all leads and per lead, with paired block-bootstrap intervals over
    samples (blocks of ``block_length`` consecutive samples, circular) and p-values. The
    primary score is CSI at ``primary_threshold_dbz`` over all leads; its verdict is the
    one line. Every other comparison is secondary: ``p_holm`` is its Holm-adjusted p-value
    over that family (evaluation/multiplicity.py), as in the main track.

    Several training seeds: ``fcst_a`` / ``fcst_b`` (or ``rows_a`` / ``rows_b``) may be
    lists, one forecast (rows of :func:`sample_rows`) per seed, all on the same samples.
    Each model's score is then the mean over its seeds of each seed's own score, and the
    bootstrap has two stages (evaluation/bootstrap.py): every resample applies the same
    block weights to both models and, independently per model, draws its seeds with
    replacement (:func:`evaluation.bootstrap.seed_draws`, key = the model's name, seed =
    ``seed``); the resampled score is the mean over the drawn seeds. With one seed each the
    numbers are those of the samples-only bootstrap. JSON-ready; schema in docs/contracts.md."""
    s = settings(cfg)
    if rows_a is None:
        rows_a = [sample_rows(obs, f, mask, s, dx_km) for f in _seed_list(fcst_a)]
    if rows_b is None:
        rows_b = [sample_rows(obs, f, mask, s, dx_km) for f in _seed_list(fcst_b)]
    rows_a, rows_b = _seed_list(rows_a), _seed_list(rows_b)
    n = rows_a[0]["cont"].shape[0]
    if any(r["cont"].shape[0] != n for r in rows_a + rows_b):
        raise ValueError(f"{name_a} / {name_b}: every seed's forecast must cover the same {n} samples")
    n_boot = int(s["bootstrap_samples"])
    rng = np.random.default_rng(seed)
    w = block_bootstrap_weights(n, int(s["block_length"]), n_boot, rng)
    draws_a = seed_draws(n_boot, len(rows_a), seed, name_a)
    draws_b = seed_draws(n_boot, len(rows_b), seed, name_b)
    conf = float(s["confidence"])
    meta = rows_a[0]["meta"]
    keys = ["rmse"] + [f"csi@{t:g}dBZ" for t in meta["thresholds_dbz"]] + \
        [f"fss@{t:g}dBZ@{sc:g}km" for t in meta["thresholds_dbz"] for sc in meta["fss_scales_km"]]
    out = {"a": name_a, "b": name_b, "n_samples": n, "block_length": int(s["block_length"]),
           "bootstrap_samples": n_boot, "confidence": conf, "seeds_a": len(rows_a), "seeds_b": len(rows_b),
           "seeds_resampled": max(len(rows_a), len(rows_b)) > 1,
           "leads_min": [meta["step_minutes"] * (i + 1) for i in range(meta["n_leads"])], "scores": {}}
    for scope, all_leads in (("all", True), ("by_lead", False)):
        sa, sb = _seed_scores(rows_a, all_leads=all_leads), _seed_scores(rows_b, all_leads=all_leads)
        ba = _seed_scores(rows_a, w, all_leads)
        bb = _seed_scores(rows_b, w, all_leads)
        for k in keys:
            pa, pb = seed_mean(sa[k]), seed_mean(sb[k])
            d = seed_resampled_mean(bb[k], draws_b) - seed_resampled_mean(ba[k], draws_a)
            lo, hi = percentile_interval(d, conf)
            diff = pb - pa
            orient = -1 if k == "rmse" else 1
            entry = {"a": pa, "b": pb, "difference": diff, "ci_low": lo, "ci_high": hi,
                     "p_value": bootstrap_p_value(d)}
            if all_leads:
                entry["verdict"] = verdict(float(diff), float(lo), float(hi), orient)
                entry["a_by_seed"], entry["b_by_seed"] = sa[k], sb[k]
            else:
                entry["verdict"] = [verdict(float(x), float(y), float(z), orient) for x, y, z in zip(diff, lo, hi)]
            out["scores"].setdefault(k, {})[scope] = entry
    primary = f"csi@{float(s['primary_threshold_dbz']):g}dBZ"
    if primary not in out["scores"]:
        raise ValueError(f"config key radar.evaluation.primary_threshold_dbz: {s['primary_threshold_dbz']} "
                         f"is not one of thresholds_dbz {meta['thresholds_dbz']}")
    # every comparison but the primary one (all leads) is secondary: Holm over that family
    family = [(k, sc) for k in keys for sc in ("all", "by_lead") if (k, sc) != (primary, "all")]
    flat = np.concatenate([np.atleast_1d(out["scores"][k][sc]["p_value"]) for k, sc in family])
    adj = holm(flat)
    i = 0
    for k, sc in family:
        n_p = np.atleast_1d(out["scores"][k][sc]["p_value"]).size
        out["scores"][k][sc]["p_holm"] = adj[i] if sc == "all" else adj[i:i + n_p]
        i += n_p
    p = out["scores"][primary]["all"]
    out["primary"] = primary
    out["verdict"] = p["verdict"]
    out["interval"], out["caveat"] = interval_text(len(rows_a), len(rows_b))

    def fmt(x, spec):
        return "n/a" if x is None or not np.isfinite(x) else format(float(x), spec)
    seeds = ""
    if out["seeds_resampled"]:
        each = f"{len(rows_a)} training seeds each" if len(rows_a) == len(rows_b) else \
            f"{len(rows_b)} and {len(rows_a)} training seeds"
        seeds = f" (means over {each})"
    out["line"] = (f"{name_b} vs {name_a}: CSI >= {float(s['primary_threshold_dbz']):g} dBZ (6-60 min) "
                   f"{fmt(p['b'], '.3f')} vs {fmt(p['a'], '.3f')}{seeds}, difference {fmt(p['difference'], '+.3f')} "
                   f"[{fmt(p['ci_low'], '+.3f')}, {fmt(p['ci_high'], '+.3f')}] ({conf:.0%} {out['interval']}, "
                   f"{p_text(p['p_value'], n_boot)}): {p['verdict']}" + (f"; {out['caveat']}" if out["caveat"] else ""))
    return _clean(out)
