"""Scores against published worked examples and against the `scores` package."""
from __future__ import annotations

import operator

import numpy as np
import pytest
import scores
import scores.categorical
import scores.continuous
import scores.spatial
import xarray as xr

from evaluation.scores import (ContingencyAccumulator, ContinuousAccumulator, FSSAccumulator, Verifier,
                               categorical_from_counts, scores_from_stats)

# Finley's tornado forecasts (Murphy 1996; Jolliffe & Stephenson 2012, table 3.3):
# hits 28, false alarms 72, misses 23, correct negatives 2680. Published values (3 d.p.).
FINLEY = (28, 72, 23, 2680)
FINLEY_PUBLISHED = [
    ("csi", 0.228),             # threat score, J&S 2012
    ("pod", 0.549),             # hit rate
    ("far", 0.720),             # false alarm ratio
    ("frequency_bias", 1.961),  # (a+b)/(a+c)
    ("ets", 0.216),             # Gilbert skill score
    ("hk", 0.523),              # Peirce skill score (Hanssen-Kuipers)
]
# Exact fractions of the same table.
FINLEY_EXACT = [
    ("csi", 28 / 123), ("pod", 28 / 51), ("far", 72 / 100), ("success_ratio", 28 / 100),
    ("frequency_bias", 100 / 51), ("hk", 28 / 51 - 72 / 2752),
    ("ets", (28 - 100 * 51 / 2803) / (123 - 100 * 51 / 2803)),
]


@pytest.mark.parametrize("score,expected", FINLEY_PUBLISHED)
def test_finley_published_values(score, expected):
    assert categorical_from_counts(np.array(FINLEY))[score] == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("score,expected", FINLEY_EXACT)
def test_finley_exact_values(score, expected):
    assert categorical_from_counts(np.array(FINLEY))[score] == pytest.approx(expected, rel=1e-12)


def _events_with_counts(a, b, c, d):
    fcst = np.r_[np.ones(a), np.ones(b), np.zeros(c), np.zeros(d)]
    obs = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    return fcst, obs


SCORES_METHODS = {"csi": "critical_success_index", "pod": "probability_of_detection",
                  "far": "false_alarm_ratio", "success_ratio": "success_ratio",
                  "frequency_bias": "frequency_bias", "ets": "equitable_threat_score",
                  "hk": "peirce_skill_score"}


@pytest.mark.parametrize("table", [FINLEY, (1, 1, 0, 2), (50, 10, 5, 935), (3, 0, 7, 90)])
def test_contingency_matches_scores_package(table):
    """Accumulated from fields (events: value >= threshold) like scores' ThresholdEventOperator."""
    f, o = _events_with_counts(*table)
    acc = ContingencyAccumulator([0.5]).accumulate(f[None, :, None], o[None, :, None], np.ones((1, f.size, 1), bool))
    mine = acc.compute()
    assert [mine[k][0] for k in ("hits", "false_alarms", "misses", "correct_negatives")] == list(table)
    op = scores.categorical.ThresholdEventOperator(default_event_threshold=0.5, default_op_fn=operator.ge)
    table_ref = op.make_contingency_manager(xr.DataArray(f), xr.DataArray(o))
    for k, method in SCORES_METHODS.items():
        assert mine[k][0] == pytest.approx(float(getattr(table_ref, method)()), rel=1e-12, nan_ok=True), k


def test_scores_docstring_ets_example():
    """scores' own worked example: ETS 1/3 at threshold 1.3."""
    fcst = np.array([[1.5, 0.0], [0.7, 1.4]])[None]
    obs = np.array([[1.2, 0.5], [0.8, 1.5]])[None]
    out = ContingencyAccumulator([1.3]).accumulate(fcst, obs, np.ones_like(fcst, bool)).compute()
    assert out["ets"][0] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def random_fields():
    rng = np.random.default_rng(7)
    shape = (9, 15, 17)
    obs = np.maximum(0, rng.gamma(0.6, 6.0, shape) - 1.0).astype(np.float32)
    fcst = np.maximum(0, obs * rng.lognormal(0, 0.5, shape) + rng.normal(0, 2, shape)).astype(np.float32)
    mask = rng.random(shape) > 0.15
    mask[:, :3, :4] = False
    return fcst, obs, mask


def test_contingency_on_fields_matches_scores(random_fields):
    fcst, obs, mask = random_fields
    thresholds = [0.1, 5.0, 15.0]
    mine = ContingencyAccumulator(thresholds).accumulate(fcst, obs, mask).compute()
    fda = xr.DataArray(np.where(mask, fcst, np.nan), dims=("time", "lat", "lon"))
    oda = xr.DataArray(np.where(mask, obs, np.nan), dims=("time", "lat", "lon"))
    for k, thr in enumerate(thresholds):
        op = scores.categorical.ThresholdEventOperator(default_event_threshold=thr, default_op_fn=operator.ge)
        ref = op.make_contingency_manager(fda, oda)
        counts = ref.get_counts()
        assert mine["hits"][k] == int(counts["tp_count"])
        assert mine["false_alarms"][k] == int(counts["fp_count"])
        assert mine["misses"][k] == int(counts["fn_count"])
        assert mine["correct_negatives"][k] == int(counts["tn_count"])
        for name, method in SCORES_METHODS.items():
            assert mine[name][k] == pytest.approx(float(getattr(ref, method)()), rel=1e-10), (name, thr)


def test_continuous_matches_scores(random_fields):
    fcst, obs, mask = random_fields
    mine = ContinuousAccumulator().accumulate(fcst, obs, mask).compute()
    fda = xr.DataArray(np.where(mask, fcst, np.nan).astype(np.float64))
    oda = xr.DataArray(np.where(mask, obs, np.nan).astype(np.float64))
    assert mine["rmse"] == pytest.approx(float(scores.continuous.rmse(fda, oda)), rel=1e-9)
    assert mine["mae"] == pytest.approx(float(scores.continuous.mae(fda, oda)), rel=1e-9)
    assert mine["bias"] == pytest.approx(float(scores.continuous.mean_error(fda, oda)), rel=1e-9)
    f, o = fcst[mask].astype(np.float64), obs[mask].astype(np.float64)
    r = scores.continuous.correlation.pearsonr(xr.DataArray(f), xr.DataArray(o))
    assert mine["correlation"] == pytest.approx(float(r), rel=1e-9)
    assert mine["correlation"] == pytest.approx(np.corrcoef(f, o)[0, 1], rel=1e-9)
    assert mine["n"] == mask.sum()


@pytest.mark.parametrize("window", [1, 3, 5, 9])
@pytest.mark.parametrize("threshold", [0.1, 5.0, 15.0])
def test_fss_matches_scores(random_fields, threshold, window):
    fcst, obs, mask = random_fields
    mine = FSSAccumulator([threshold], [window]).accumulate(fcst, obs, mask).compute()[0, 0]
    # masked cells are non-events in both fields
    fe = xr.DataArray((fcst >= threshold) & mask, dims=("time", "lat", "lon"))
    oe = xr.DataArray((obs >= threshold) & mask, dims=("time", "lat", "lon"))
    ref = scores.spatial.fss_2d_binary(fe, oe, window_size=(window, window), spatial_dims=("lat", "lon"),
                                       reduce_dims=["time", "lat", "lon"])
    assert mine == pytest.approx(float(ref), rel=1e-9, abs=1e-12)


def test_fss_single_field_worked_example():
    """scores' documented example: FSS 0.98461538 (threshold 1.5, 2x2 window, event > threshold)."""
    fcst = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]], dtype=float)[None]
    obs = np.array([[0, 0, 1], [1, 2, 2], [2, 2, 3]], dtype=float)[None]
    # no value equals 1.5, so >= and > agree
    out = FSSAccumulator([1.5], [2]).accumulate(fcst, obs, np.ones_like(fcst, bool)).compute()
    assert out[0, 0] == pytest.approx(0.98461538, abs=1e-8)


def test_perfect_forecast(random_fields):
    _, obs, mask = random_fields
    v = Verifier([0.1, 5.0], [1, 3], obs.shape[1:]).accumulate(obs, obs, mask)
    s = scores_from_stats(v.stats())
    assert s["rmse"] == 0 and s["mae"] == 0 and s["bias"] == 0
    np.testing.assert_allclose(s["csi"], 1.0)
    np.testing.assert_allclose(s["fss"], 1.0)
    np.testing.assert_allclose(v.cells.compute()["mae"][mask.any(0)], 0.0)


def test_streaming_equals_one_pass_and_weights_equal_repeats(random_fields):
    fcst, obs, mask = random_fields
    one = Verifier([0.1, 5.0], [1, 3], obs.shape[1:]).accumulate(fcst, obs, mask)
    chunked = Verifier([0.1, 5.0], [1, 3], obs.shape[1:])
    for s in range(0, len(obs), 4):
        chunked.accumulate(fcst[s:s + 4], obs[s:s + 4], mask[s:s + 4])
    a, b = scores_from_stats(one.stats()), scores_from_stats(chunked.stats())
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)
    # integer weights == scoring a sample with repeated frames
    w = np.array([2, 0, 1, 1, 3, 0, 1, 0, 1], dtype=float)
    rep = np.repeat(np.arange(len(obs)), w.astype(int))
    direct = scores_from_stats(Verifier([0.1, 5.0], [1, 3], obs.shape[1:]).accumulate(
        fcst[rep], obs[rep], mask[rep]).stats())
    weighted = scores_from_stats(one.stats(), w[None])
    for k in direct:
        np.testing.assert_allclose(weighted[k][0], direct[k], rtol=1e-10)


def test_nonfinite_forecast_in_scored_cell_is_an_error(random_fields):
    fcst, obs, mask = random_fields
    bad = fcst.copy()
    bad[mask][0] = np.nan
    bad[0][mask[0]] = np.nan
    with pytest.raises(ValueError, match="non-finite forecast"):
        ContinuousAccumulator().accumulate(bad, obs, mask)


def test_fss_window_too_large():
    z = np.zeros((1, 4, 4))
    with pytest.raises(ValueError, match="evaluation.fss_windows"):
        FSSAccumulator([1.0], [5]).accumulate(z, z, np.ones_like(z, bool))
