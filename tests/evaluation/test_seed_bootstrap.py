"""The two-stage bootstrap over test times and training seeds (evaluation.bootstrap.seed_draws,
seed_resampled_mean, evaluation.compare.bootstrap_groups with resample_seeds)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.bootstrap import block_bootstrap_weights, paired_difference, seed_draws, seed_resampled_mean
from evaluation.compare import Scored, bootstrap_groups, seed_key
from evaluation.inputs import Group, Member
from evaluation.scores import Verifier, scores_from_stats

SHAPE = (6, 7)


def test_seed_draws_are_reproducible_per_experiment_and_differ_between_experiments():
    a = seed_draws(200, 3, 0, "exp2")
    assert a.shape == (200, 3) and a.min() == 0 and a.max() == 2
    np.testing.assert_array_equal(a, seed_draws(200, 3, 0, "exp2"))
    assert not np.array_equal(a, seed_draws(200, 3, 0, "exp1"))
    assert not np.array_equal(a, seed_draws(200, 3, 1, "exp2"))
    # with replacement: some resamples repeat a seed
    assert any(len(set(row)) < 3 for row in a)
    # one seed: always seed 0
    assert (seed_draws(10, 1, 0, "x") == 0).all()
    with pytest.raises(ValueError, match="x: no training seed"):
        seed_draws(10, 0, 0, "x")


def test_seed_resampled_mean_worked_example():
    values = np.array([[[1.0, 10.0], [2.0, 20.0], [4.0, np.nan]],
                       [[1.0, 10.0], [2.0, 20.0], [4.0, np.nan]]])        # (B=2, S=3, 2)
    draws = np.array([[0, 0, 2], [2, 2, 2]])
    out = seed_resampled_mean(values, draws)
    np.testing.assert_allclose(out[0], [(1 + 1 + 4) / 3, 10.0])           # NaN seed left out
    assert out[1, 0] == 4.0 and np.isnan(out[1, 1])                       # undefined for every drawn seed


def _member_fields(rng, n_t, bias):
    obs = rng.gamma(0.8, 3.0, size=(n_t,) + SHAPE)
    fcst = np.maximum(obs + bias + rng.normal(0.0, 1.0, size=obs.shape), 0.0)
    return obs, fcst


def _scored(n_t: int, biases: dict[str, list[float]], seed: int = 3):
    """Every experiment's seeds score the same truth; seed s of an experiment adds its own
    bias (the training-run offset) and independent noise."""
    rng = np.random.default_rng(seed)
    obs = rng.gamma(0.8, 3.0, size=(n_t,) + SHAPE)
    mask = np.ones(obs.shape, bool)
    verifiers, groups = {}, []
    for exp, bs in biases.items():
        members = []
        for s, b in enumerate(bs):
            fcst = np.maximum(obs + b + rng.normal(0.0, 1.0, size=obs.shape), 0.0)
            name = f"{exp}/seed{s}"
            verifiers[name] = Verifier([1.0, 5.0], [1, 3], SHAPE).accumulate(fcst, obs, mask)
            members.append(Member(exp, s, name, None))
        groups.append(Group(exp, "experiment", members))
    times = pd.date_range("2022-01-01", periods=n_t, freq="12h")
    return Scored(verifiers, times, {}, obs.mean((1, 2)), np.full(n_t, SHAPE[0] * SHAPE[1])), groups


def test_two_stage_resamples_equal_brute_force():
    scored, groups = _scored(40, {"exp1": [0.0, 0.5, 1.0], "exp2": [0.2, 0.3]})
    weights = block_bootstrap_weights(40, 4, 30, np.random.default_rng(0))
    res = bootstrap_groups(scored, groups, weights, resample_seeds=7)
    for g in groups:
        draws = seed_draws(30, len(g.members), 7, g.name)
        expect = []
        for b in range(30):
            per = [scores_from_stats(scored.verifiers[g.members[s].name].stats(), weights[b:b + 1])["rmse"][0]
                   for s in draws[b]]
            expect.append(np.mean(per))
        np.testing.assert_allclose(res[g.name].boot["rmse"], expect, rtol=1e-12)
        # the point score is the mean of the seeds' own scores on the full sample
        own = [scores_from_stats(scored.verifiers[m.name].stats())["rmse"] for m in g.members]
        assert res[g.name].point["rmse"] == pytest.approx(np.mean(own))
        assert res[g.name].seeds_resampled


def test_one_seed_gives_the_same_numbers_with_and_without_the_seed_stage():
    scored, groups = _scored(30, {"exp1": [0.4], "exp2": [0.1]})
    weights = block_bootstrap_weights(30, 3, 50, np.random.default_rng(1))
    fixed = bootstrap_groups(scored, groups, weights)
    drawn = bootstrap_groups(scored, groups, weights, resample_seeds=0)
    for g in groups:
        for k in ("rmse", "mae", "crps"):
            np.testing.assert_array_equal(fixed[g.name].boot[k], drawn[g.name].boot[k])
            np.testing.assert_array_equal(fixed[g.name].point[k], drawn[g.name].point[k])
        assert not drawn[g.name].seeds_resampled


def test_training_run_spread_widens_the_interval_and_removes_a_false_positive():
    """Two experiments drawn from the same population of training runs (seed offsets from
    one distribution, no real difference): over test times alone the seed-mean difference
    looks significant; with the seeds resampled the interval covers 0 and is wider."""
    biases = {"exp1": [0.0, 1.2, 0.3], "exp2": [0.9, 0.1, 1.0]}
    scored, groups = _scored(120, biases)
    weights = block_bootstrap_weights(120, 5, 1000, np.random.default_rng(2))
    out = {}
    for label, key in (("fixed", None), ("seeds", 0)):
        res = bootstrap_groups(scored, groups, weights, resample_seeds=key)
        a, b = res["exp1"], res["exp2"]
        out[label] = paired_difference(a.boot["rmse"], b.boot["rmse"], a.point["rmse"], b.point["rmse"], 0.95)
    fixed, seeds = out["fixed"], out["seeds"]
    assert fixed["difference"] == pytest.approx(seeds["difference"])
    assert not (fixed["ci_low"] <= 0.0 <= fixed["ci_high"])        # time-only: a false positive
    assert seeds["ci_low"] <= 0.0 <= seeds["ci_high"]              # seeds resampled: none
    assert (seeds["ci_high"] - seeds["ci_low"]) > 3 * (fixed["ci_high"] - fixed["ci_low"])


def test_seed_key_follows_the_config_switch():
    assert seed_key({"seed": 5, "resample_seeds": True}) == 5
    assert seed_key({"seed": 5}) == 5
    assert seed_key({"seed": 5, "resample_seeds": False}) is None
