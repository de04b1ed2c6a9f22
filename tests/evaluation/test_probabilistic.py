"""Probabilistic verification: CRPS of binned distributions against ``scores``, Brier score
and skill, reliability counts, bootstrap p-values and Holm's adjustment, worked by hand;
then ``python -m evaluation.evaluate`` on probabilistic prediction stores."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from evaluation.bootstrap import bootstrap_p_value
from evaluation.evaluate import EvaluationError, main
from evaluation.multiplicity import holm
from evaluation.probabilistic import (BinnedForecast, ProbabilisticAccumulator, brier_rows, crps_binned, mixture,
                                      probabilistic_from_sums, reliability_rows)
from evaluation.scores import ORIENTATION, Verifier, scores_from_stats
from tests.evaluation.conftest import make_run, write_config
from tests.evaluation.conftest import test_times as target_times

LOWER = np.array([0.0, 0.1, 1.0, 5.0, 15.0, 30.0])
UPPER = np.array([0.1, 1.0, 5.0, 15.0, 30.0, 60.0])
THRESHOLDS = [0.1, 1.0, 5.0, 15.0, 30.0]


def random_bins(rng, shape) -> np.ndarray:
    p = rng.dirichlet(np.ones(len(LOWER)) * 0.7, size=shape)  # (..., K)
    return np.moveaxis(p, -1, 1)  # bins on axis 1


def test_crps_binned_matches_scores_crps_cdf():
    from scores.probability import crps_cdf

    rng = np.random.default_rng(3)
    p = random_bins(rng, (40,))[..., None]                      # (40, K, 1)
    obs = np.concatenate([rng.gamma(0.8, 8.0, 36), [0.0, 0.05, 59.0, 75.0]])[:, None]  # inside and above the bins
    ours = crps_binned(p, LOWER, UPPER, obs)[:, 0]
    # the same distribution as a CDF at the bin bounds, linear in between, 1 above the top
    edges = np.concatenate([LOWER[:1], UPPER])
    cdf = np.clip(np.concatenate([np.zeros((40, 1)), np.cumsum(p[:, :, 0], axis=1)], axis=1), 0.0, 1.0)
    fcst = xr.DataArray(cdf, dims=("case", "threshold"), coords={"threshold": edges})
    theirs = crps_cdf(fcst, xr.DataArray(obs[:, 0], dims="case"), threshold_dim="threshold",
                      preserve_dims=["case"], integration_method="exact", fcst_fill_method="linear")["total"].values
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_crps_of_a_point_mass_is_the_absolute_error():
    # all probability in the bin [5, 15): uniform on it; an observation at 20 mm is 10 mm
    # above its top, so CRPS = (20 - 15) + int_5^15 ((x - 5) / 10)^2 dx = 5 + 10/3
    p = np.zeros((1, len(LOWER), 1))
    p[0, 3, 0] = 1.0
    assert crps_binned(p, LOWER, UPPER, np.array([[20.0]]))[0, 0] == pytest.approx(5 + 10 / 3)
    # and inside the bin, at 10 mm: int_5^10 ((x-5)/10)^2 + int_10^15 ((x-5)/10 - 1)^2 = 2 * 125/300
    assert crps_binned(p, LOWER, UPPER, np.array([[10.0]]))[0, 0] == pytest.approx(2 * 125 / 300)


def test_deterministic_crps_is_the_mae_and_brier_uses_zero_one_probabilities():
    rng = np.random.default_rng(5)
    obs = rng.gamma(0.6, 6.0, (6, 4, 5))
    fcst = rng.gamma(0.6, 6.0, (6, 4, 5))
    mask = rng.random(obs.shape) > 0.2
    clim = np.full((6, len(THRESHOLDS), 4, 5), 0.3)
    v = Verifier(THRESHOLDS, [1], (4, 5)).accumulate(fcst, obs, mask, clim)
    s = scores_from_stats(v.stats())
    assert s["crps"] == pytest.approx(np.abs(fcst - obs)[mask].mean())
    for k, t in enumerate(THRESHOLDS):
        o, f = (obs >= t)[mask].astype(float), (fcst >= t)[mask].astype(float)
        assert s["brier"][k] == pytest.approx(np.mean((f - o) ** 2))
        assert s["bss"][k] == pytest.approx(1 - np.mean((f - o) ** 2) / np.mean((0.3 - o) ** 2))


def test_brier_and_skill_worked_example():
    # four cells, one time: probabilities 0.9, 0.2, 0.6, 0.0; events at cells 0 and 2
    obs = np.array([[[10.0, 0.0], [6.0, 1.0]]])
    prob = np.array([[[[0.9, 0.2], [0.6, 0.0]]]])  # (T, n_thr=1, H, W) at 5 mm
    clim = np.full_like(prob, 0.5)
    rows = brier_rows(prob, obs, np.ones_like(obs, bool), [5.0], clim)
    bs = (0.1**2 + 0.2**2 + 0.4**2 + 0.0) / 4
    assert rows[0, 0].tolist() == pytest.approx([4, 4 * bs, 4 * 0.25])
    out = probabilistic_from_sums(rows.sum(0), None)
    assert out["brier"][0] == pytest.approx(bs) and out["bss"][0] == pytest.approx(1 - bs / 0.25)


def test_reliability_counts():
    obs = np.array([[[10.0, 0.0, 6.0, 1.0, 8.0]]])
    prob = np.array([[[[0.05, 0.05, 0.55, 0.59, 1.0]]]])
    mask = np.array([[[True, True, True, True, False]]])
    r = reliability_rows(prob, obs, mask, [5.0])[0, 0]   # (bins, 3): count, sum p, events
    assert r[0].tolist() == pytest.approx([2, 0.1, 1])
    assert r[5].tolist() == pytest.approx([2, 1.14, 1])
    assert r[9].tolist() == [0, 0, 0]  # the masked cell (p = 1) is not counted
    assert r[:, 0].sum() == mask.sum()


def test_mixture_averages_probabilities():
    a = BinnedForecast(np.full((1, 1, 1, 1), 0.2), np.array([[[[1.0]], [[0.0]]]]), LOWER[:2], UPPER[:2])
    b = BinnedForecast(np.full((1, 1, 1, 1), 0.6), np.array([[[[0.0]], [[1.0]]]]), LOWER[:2], UPPER[:2])
    m = mixture([a, b])
    assert m.prob_exceed.item() == pytest.approx(0.4)
    assert m.bin_prob[0, :, 0, 0].tolist() == [0.5, 0.5]


def test_bootstrap_p_value():
    assert bootstrap_p_value(np.array([1.0, 2.0, 3.0, 4.0])) == 0.0          # no resample reaches 0
    assert bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(0.5)  # 2 * 1/4
    assert bootstrap_p_value(np.array([-2.0, -1.0, 1.0, 2.0])) == 1.0
    assert np.isnan(bootstrap_p_value(np.array([np.nan, np.nan])))
    # p < 0.05 exactly when the 95% percentile interval excludes 0 (1000 resamples)
    rng = np.random.default_rng(0)
    for shift in (0.0, 1.5, 2.5):
        d = rng.normal(shift, 1.0, 1000)
        lo, hi = np.percentile(d, [2.5, 97.5])
        assert (bootstrap_p_value(d) < 0.05) == (lo > 0 or hi < 0)


def test_holm_worked_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04 -> running max
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.6])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.4) and out[2] == pytest.approx(0.6)
    assert holm([0.9, 0.8])[0] == 1.0  # capped at 1 (2 * 0.8 = 1.6, then the running max)


# ---------------------------------------------------------------------------------------
# End to end: probabilistic prediction stores
# ---------------------------------------------------------------------------------------

def add_probabilities(run_dir, truth, sigma_mm: float, thresholds):
    """Write ``bin_prob``/``prob_exceed`` into a run's store: a normal distribution of width
    ``sigma_mm`` around the run's deterministic forecast, cut at 0 and binned."""
    store = run_dir / "predictions.zarr"
    ds = xr.open_zarr(store).load()
    mu = ds["rain_mm_pred"].values.astype(np.float64)
    edges = np.concatenate([LOWER, UPPER[-1:]])
    cdf = norm.cdf((edges[None, :, None, None] - mu[:, None]) / sigma_mm)
    cdf[:, 0] = 0.0  # no mass below 0 mm
    cdf[:, -1] = 1.0  # nor above the top
    bin_prob = np.diff(cdf, axis=1)
    upper_cdf = np.cumsum(bin_prob, axis=1)
    exceed = []
    for t in thresholds:
        k = np.searchsorted(UPPER, t)  # thresholds sit on bin bounds here
        exceed.append(1.0 - upper_cdf[:, k])
    ds["bin_prob"] = (("time", "bin", "lat", "lon"), bin_prob.astype(np.float32))
    ds["prob_exceed"] = (("time", "threshold", "lat", "lon"), np.clip(np.stack(exceed, 1), 0, 1).astype(np.float32))
    ds = ds.assign_coords(bin_lower=("bin", LOWER), bin_upper=("bin", UPPER), threshold=("threshold", thresholds))
    ds.to_zarr(store, mode="w", consolidated=False)
    return bin_prob


@pytest.fixture(scope="module")
def prob_world(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("probworld")
    thresholds = THRESHOLDS
    cfg = write_config(root / "config.yaml", thresholds_mm=thresholds, primary_score="crps")
    truth = world["truth"]
    runs, bins = {}, {}
    for exp, noise, sigma in (("exp1", 0.6, 4.0), ("exp2", 0.3, 2.0)):
        runs[exp] = []
        for seed in (0, 1):
            d = make_run(root / f"runs/{exp}/seed{seed}", truth, exp, seed, noise)
            bins[(exp, seed)] = add_probabilities(d, truth, sigma, thresholds)
            runs[exp].append(d)
    common = ["--config", str(cfg), "--data", str(world["data"])]
    r1, r2 = root / "results/exp1", root / "results/exp2"
    assert main(common + ["--exp", "exp1", "--runs", *map(str, runs["exp1"]), "--out", str(r1), "--no-progress"]) == 0
    assert main(common + ["--exp", "exp2", "--runs", *map(str, runs["exp2"]), "--reference", str(r1),
                          "--out", str(r2), "--no-progress"]) == 0
    return {"root": root, "truth": truth, "data": world["data"], "runs": runs, "bins": bins, "r1": r1, "r2": r2,
            "config": cfg}


def _scored(truth, times, config_path):
    from pipeline.common.config import load_config

    config = load_config(config_path)
    obs = truth.rain_mm.sel(time=times).values
    prev = truth.rain_mm.reindex(time=times - pd.Timedelta(hours=12)).values
    mask = (truth.loss_mask.values == 1) & truth.valid.sel(time=times).values & np.isfinite(obs) & np.isfinite(prev)
    return config, obs, mask


def test_crps_brier_and_reliability_by_hand(prob_world):
    pw = prob_world
    m = json.loads((pw["r2"] / "metrics.json").read_text())
    times = target_times(pw["truth"])
    times = times[(times >= m["samples"]["time_start"]) & (times <= m["samples"]["time_end"])]
    config, obs, mask = _scored(pw["truth"], times, pw["config"])
    assert mask.sum() == m["samples"]["cell_times_scored"]
    tindex = target_times(pw["truth"]).get_indexer(times)
    y = np.where(mask, obs, 0.0)
    # seeds: the CRPS of each seed's own distribution; the experiment's CRPS is their mean
    # (seeds resampled by default), the seed ensemble's is that of the averaged distribution
    own = [crps_binned(pw["bins"][("exp2", s)][tindex], LOWER, UPPER, y)[mask].mean() for s in (0, 1)]
    for s in (0, 1):
        assert m["models"][f"exp2/seed{s}"]["continuous"]["crps"] == pytest.approx(own[s], rel=1e-4)
    mix = np.mean([pw["bins"][("exp2", s)][tindex] for s in (0, 1)], axis=0)
    crps = crps_binned(mix, LOWER, UPPER, y)[mask].mean()
    e = m["models"]["exp2"]
    assert e["forecast_type"] == "probabilistic"
    assert e["seeds_resampled"] is True
    assert e["continuous"]["crps"] == pytest.approx(np.mean(own), rel=1e-4)
    assert e["ensemble"]["crps"] == pytest.approx(crps, rel=1e-4)
    assert crps < np.mean(own)  # averaging two distributions lowers the CRPS (it is convex)
    # baselines are deterministic: their CRPS is their MAE
    pers = m["models"]["persistence"]
    assert pers["forecast_type"] == "deterministic"
    assert pers["continuous"]["crps"] == pytest.approx(pers["continuous"]["mae"])
    # Brier score at 5 mm: the mean of the seeds' Brier scores; the ensemble's from the
    # averaged exceedance probabilities
    k = THRESHOLDS.index(5.0)
    o5 = (obs >= 5.0)

    def brier(bin_prob):
        p5 = np.clip(1.0 - np.cumsum(bin_prob, axis=1)[:, np.searchsorted(UPPER, 5.0)], 0, 1)
        return np.mean((p5 - o5)[mask] ** 2)
    per_seed = [brier(pw["bins"][("exp2", s)][tindex]) for s in (0, 1)]
    assert e["categorical"]["5"]["brier"] == pytest.approx(np.mean(per_seed), rel=1e-3)
    assert e["ensemble"]["brier"][k] == pytest.approx(brier(mix), rel=1e-3)
    rel = e["reliability"]["5"]
    assert sum(rel["count"]) == mask.sum()
    observed = [f for f in rel["observed_frequency"] if f is not None]
    assert all(0.0 <= f <= 1.0 for f in observed)
    assert THRESHOLDS[k] == 5.0


def test_primary_score_decides_and_secondaries_are_holm_adjusted(prob_world):
    comp = json.loads((prob_world["r2"] / "comparison.json").read_text())
    assert comp["primary_score"] == "crps"
    primary = [r for r in comp["scores"] if r["role"] == "primary"]
    assert [(r["score"], r["threshold_mm"]) for r in primary] == [("crps", None)]
    assert primary[0]["better"] == "b"  # exp2 was planted sharper and closer
    secondary = [r for r in comp["scores"] if r["role"] == "secondary"]
    finite = [r for r in secondary if r["p_value"] is not None]
    assert comp["multiplicity"]["method"] == "Holm" and comp["multiplicity"]["n_tests"] == len(finite)
    np.testing.assert_allclose([r["p_holm"] for r in finite], holm([r["p_value"] for r in finite]))
    for r in finite:
        assert r["p_holm"] >= r["p_value"]
        if ORIENTATION[r["score"]] == 0:  # bias, frequency bias: a difference, never "better"
            assert r["better_holm"] == "neither"
            continue
        assert (r["better_holm"] != "neither") == (r["p_holm"] < comp["multiplicity"]["alpha"])
    report = (prob_world["r2"] / "report.md").read_text()
    assert "VERDICT: exp2 beats exp1 (CRPS significantly lower; primary score)." in report
    assert "Holm-adjusted" in report


def test_probabilities_are_checked(prob_world, tmp_path):
    import shutil

    bad = tmp_path / "seed0"
    shutil.copytree(prob_world["runs"]["exp1"][0], bad)
    ds = xr.open_zarr(bad / "predictions.zarr").load()
    ds["bin_prob"][0] = ds["bin_prob"][0] * 0.5  # sums to 0.5 on the first frame
    ds.to_zarr(bad / "predictions.zarr", mode="w", consolidated=False)
    from evaluation.evaluate import evaluate
    from pipeline.common.config import load_config

    with pytest.raises(EvaluationError, match="bin_prob sums to 0.5"):
        evaluate(load_config(prob_world["config"]), "exp1", prob_world["data"], [bad], tmp_path / "out",
                 progress=False)


def test_report_has_probabilistic_tables_and_figures(prob_world):
    import matplotlib.image as mpimg

    report = (prob_world["r2"] / "report.md").read_text()
    assert "## Brier score and Brier skill score" in report
    assert "| exp2 | probabilistic |" in report and "| persistence | deterministic |" in report
    assert "**crps** (primary)" in report
    for fig in ("reliability.png", "spectra.png"):
        assert f"]({fig})" in report
        assert mpimg.imread(prob_world["r2"] / fig).std() > 0


def test_rapsd_shows_blurring():
    from scipy.ndimage import gaussian_filter

    from evaluation.compare import mean_rapsd

    rng = np.random.default_rng(4)
    sharp = np.maximum(rng.gamma(0.5, 8.0, (20, 24, 28)), 0.0)
    blurred = np.stack([gaussian_filter(f, 2.0) for f in sharp])
    freq, p_sharp = mean_rapsd(sharp)
    _, p_blur = mean_rapsd(blurred)
    high = freq > 0.25
    assert p_blur[high].sum() < 0.05 * p_sharp[high].sum()        # fine scales lost
    assert p_blur[0] == pytest.approx(p_sharp[0], rel=0.05)       # the mean (power at 0) kept
    # against pysteps on one field
    from pysteps.utils.spectral import rapsd

    np.testing.assert_allclose(mean_rapsd(sharp[:1])[1], rapsd(sharp[0], fft_method=np.fft))


def test_sharpness_block_in_metrics(prob_world):
    m = json.loads((prob_world["r2"] / "metrics.json").read_text())
    sp = m["sharpness"]["spectra"]
    assert set(sp) == {"truth", "exp1 (seed 0)", "exp2 (seed 0)", "persistence"}
    wl = np.array(sp["truth"]["wavelength_cells"])
    assert (np.diff(wl) < 0).all() and wl.min() >= 1.9  # from the domain size down to ~2 cells
    # persistence is the truth 12 h earlier: as sharp as the truth
    assert 0.7 < sp["persistence"]["short_scale_power_ratio"] < 1.3
    assert "short_scale_power_ratio" not in sp["truth"]


def test_comparison_names_its_seeds_and_how_the_interval_treats_them(prob_world, tmp_path):
    comp = json.loads((prob_world["r2"] / "comparison.json").read_text())
    assert comp["seeds"] == {"exp1": [0, 1], "exp2": [0, 1]}
    assert comp["bootstrap"]["resample_seeds"] is True
    assert "training seeds resampled: exp1 2, exp2 2 seeds" in " ".join(comp["verdict"])
    report = (prob_world["r2"] / "report.md").read_text()
    assert "also draws every experiment's training seeds with replacement (exp1 2, exp2 2 seeds)" in report
    assert "Seed ensembles" in report
    # the relearned attribution row carries the seed counts and says the seeds were resampled
    from evaluation.attribution import relearn_rows, report_lines

    (row,) = relearn_rows({"rain": str(prob_world["r2"] / "comparison.json")})
    assert row["seeds"] == [2, 2] and row["seeds_resampled"] is True
    primary = next(r for r in comp["scores"] if r["role"] == "primary")
    assert row["difference"] == primary["difference"] and row["ci_low"] == primary["ci_low"]
    res = {"exp": "exp2", "seed": 0, "crps_original": 1.0, "samples": 10, "repeats": 2,
           "bootstrap": {"confidence": 0.95}, "variants": [row]}
    assert "2 training seeds per experiment, resampled in the bootstrap" in "\n".join(report_lines(res))
