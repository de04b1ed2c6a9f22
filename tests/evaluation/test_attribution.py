"""Attribution of exp2's skill to region-2 inputs: the variants, the input modification and
the scores against worked examples (the workflow target: tests/workflow/test_workflow_attribution.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from evaluation.attribution import (ModifiedInputs, Variant, conditional_partners, crps_rows, importance,
                                   region1_features, variants)
from evaluation.inputs import EvaluationError
from evaluation.bootstrap import block_bootstrap_weights
from evaluation.probabilistic import crps_binned

LEVELS = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]
VARS = ["temperature", "dewpoint", "u", "v", "geopotential_height"]


def _store() -> xr.Dataset:
    """The input coordinates of a processed store (no data needed)."""
    return xr.Dataset({"x": (("variable", "pressure"), np.zeros((len(VARS), len(LEVELS))))},
                      coords={"variable": VARS, "pressure": [float(p) for p in LEVELS]})


def test_variants_cover_variables_level_bands_lags_and_occlusion():
    vs = {(v.kind, v.name): v for v in variants(_store(), steps=6, step_hours=12)}
    assert vs[("variable", "wind")].channels.sum() == 22  # u and v at 11 levels
    assert vs[("variable", "rain")].channels.sum() == 1
    assert [vs[("level band", n)].channels.sum() for n in
            ("lower (1000-700 hPa)", "middle (500-300 hPa)", "upper (250-100 hPa)")] == [20, 15, 20]
    lags = [v for v in vs.values() if v.kind == "lag"]
    assert [v.name for v in lags] == ["72 h", "60 h", "48 h", "36 h", "24 h", "12 h"]  # before the target time
    assert lags[-1].frames.tolist() == [False] * 5 + [True]  # the latest input frame: 12 h before the target
    assert vs[("occlusion", "region 2 at its training mean")].occlude
    assert len(vs) == 2 + 5 + 3 + 6


class _Windows(torch.utils.data.Dataset):
    """A WindowDataset stand-in: windows of a (time, C, H, W) tensor."""

    def __init__(self, x: torch.Tensor, steps: int):
        self._x, self.steps = x, steps
        self.samples = type("S", (), {"first": np.arange(x.shape[0] - steps + 1)})()
        self.y = torch.zeros(len(self.samples.first), 1, x.shape[2], x.shape[3])

    def __len__(self):
        return len(self.samples.first)

    def _read(self, first):
        return self._x[first:first + self.steps]

    def __getitem__(self, i):
        return self._read(int(self.samples.first[i])), self.y[i], self.y[i]


def test_modified_inputs_change_only_the_group_on_region_2():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((10, 3, 4, 6)).astype(np.float32))
    base = _Windows(x, steps=2)
    region2 = np.zeros((4, 6), bool)
    region2[:, :3] = True  # the western half
    chans, frames = np.array([False, True, False]), np.array([False, True])
    partner = np.array([4, 0, 1, 2, 3, 5, 6, 7, 8])
    mod = ModifiedInputs(base, region2, Variant("variable", "c1", chans, frames), partner)
    for i in (0, 3):
        got, orig, other = mod[i][0], base[i][0], base[int(partner[i])][0]
        sel = torch.zeros_like(got, dtype=torch.bool)
        sel[1, 1, :, :3] = True
        assert torch.equal(got[sel], other[sel])  # channel 1, latest frame, region 2: the partner's
        assert torch.equal(got[~sel], orig[~sel])  # everything else untouched, region 1 above all
    occ = ModifiedInputs(base, region2, Variant("occlusion", "all", np.ones(3, bool), np.ones(2, bool), True), None)
    got = occ[2][0]
    assert torch.all(got[..., :3] == 0) and torch.equal(got[..., 3:], base[2][0][..., 3:])


def test_crps_rows_and_importance_against_worked_examples():
    lo, hi = np.array([0.0, 1.0, 5.0]), np.array([1.0, 5.0, 10.0])
    edges = [1.0, 5.0]
    # one cell, all probability in [1, 5): CRPS for an observation of 3 mm, by hand
    p = np.zeros((1, 3, 1, 1))
    p[0, 1] = 1.0
    s, n = crps_rows({"bin_prob": p}, edges, np.array([[[3.0]]]), np.ones((1, 1, 1), bool))
    # F rises linearly from 0 at 1 mm to 1 at 5 mm: int_1^3 ((x-1)/4)^2 + int_3^5 (1-(x-1)/4)^2 = 2 * 8/48
    assert s[0] == pytest.approx(1.0 / 3.0) and n[0] == 1
    assert s[0] == pytest.approx(float(crps_binned(p, lo, hi, np.array([[[3.0]]]))[0, 0, 0]))
    # a deterministic forecast: its absolute error, over the scored cells only
    s, n = crps_rows({"rain_mm": np.array([[[2.0, 9.0]]])}, None, np.array([[[3.5, 0.0]]]),
                     np.array([[[True, False]]]))
    assert s[0] == pytest.approx(1.5) and n[0] == 1
    # importance: the variant's per-sample sums are the base's plus 0.1 per cell
    rng = np.random.default_rng(1)
    sums, counts = rng.uniform(1, 2, 50) * 10, np.full(50, 10.0)
    w = block_bootstrap_weights(50, 5, 200, rng)
    same = importance((sums, counts), (sums, counts), w, 0.95)
    assert same["difference"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0 and same["p_value"] == 1
    worse = importance((sums, counts), (sums + 1.0, counts), w, 0.95)
    assert worse["difference"] == pytest.approx(0.1) and worse["ci_low"] == pytest.approx(0.1)
    assert worse["relative_pct"] == pytest.approx(100 * 0.1 / (sums.sum() / counts.sum()))



def _year(n: int = 730) -> np.ndarray:
    return np.datetime64("2022-01-01T12", "ns") + np.arange(n) * np.timedelta64(12, "h")


def test_conditional_partners_are_near_in_region1_state_and_apart_in_time():
    rng = np.random.default_rng(3)
    t = _year()
    day = np.arange(t.size) / 2.0
    season = np.c_[np.cos(2 * np.pi * day / 365), np.sin(2 * np.pi * day / 365)]
    flow = np.convolve(rng.standard_normal(t.size + 20), np.ones(21) / 21, mode="valid")[:, None]
    features = np.c_[season, 3 * flow, rng.standard_normal((t.size, 1)) * 1e-3]
    gap = np.timedelta64(84, "h")
    draws = conditional_partners(features, t, gap, neighbours=8, rng=np.random.default_rng(0), repeats=3)
    assert len(draws) == 3 and all(d.shape == (t.size,) for d in draws)
    for d in draws:
        assert (d != np.arange(t.size)).all()
        assert (np.abs(t[d] - t) >= gap).all()  # never an overlapping window or target
    assert not np.array_equal(draws[0], draws[1])
    # matched on the state: far nearer than a random partner (in season and in flow)
    z = (features - features.mean(0)) / features.std(0)
    near = np.linalg.norm(z[draws[0], :3] - z[:, :3], axis=1).mean()
    rand = np.linalg.norm(z[rng.permutation(t.size), :3] - z[:, :3], axis=1).mean()
    assert near < 0.25 * rand
    again = conditional_partners(features, t, gap, neighbours=8, rng=np.random.default_rng(0), repeats=3)
    assert all(np.array_equal(a, b) for a, b in zip(draws, again))  # seeded
    for block in (1, 50, 10_000):  # computed in blocks of rows: the same partners whatever the block
        other = conditional_partners(features, t, gap, 8, np.random.default_rng(0), repeats=3, block=block)
        assert all(np.array_equal(a, b) for a, b in zip(draws, other)), block


def test_conditional_permutation_costs_nothing_for_redundant_inputs():
    """A worked example of why partners are matched: y = s + noise, region 1 sees s, region 2 sees
    a copy of s (redundant) and an independent signal u that y also depends on. A fitted linear
    model leans on both copies of s. Marginal permutation of the redundant copy costs a lot;
    conditional permutation costs about nothing. The informative u keeps its importance."""
    rng = np.random.default_rng(5)
    t = _year()
    day = np.arange(t.size) / 2.0
    s = np.cos(2 * np.pi * day / 365) * 2 + np.convolve(rng.standard_normal(t.size + 30), np.ones(31) / 5.5,
                                                         mode="valid")
    u = rng.standard_normal(t.size)
    r1 = s + 0.3 * rng.standard_normal(t.size)
    r2 = s + 0.3 * rng.standard_normal(t.size)
    y = s + 0.5 * u + 0.3 * rng.standard_normal(t.size)
    coef = np.linalg.lstsq(np.c_[r1, r2, u], y, rcond=None)[0]
    assert coef[1] > 0.3  # the model relies on the redundant copy

    def mae(r2_, u_):
        return np.abs(np.c_[r1, r2_, u_] @ coef - y).mean()

    base = mae(r2, u)
    gap = np.timedelta64(84, "h")
    cond = conditional_partners(r1[:, None], t, gap, neighbours=10, rng=np.random.default_rng(1), repeats=5)
    marg = [np.random.default_rng(i).permutation(t.size) for i in range(5)]
    redundant_cond = np.mean([mae(r2[p], u) for p in cond]) - base
    redundant_marg = np.mean([mae(r2[p], u) for p in marg]) - base
    informative_cond = np.mean([mae(r2, u[p]) for p in cond]) - base
    assert redundant_marg > 0.3
    assert abs(redundant_cond) < 0.2 * redundant_marg
    assert informative_cond > 0.15


def test_conditional_partners_need_samples_far_enough_apart():
    t = _year(5)  # 2 days: no two samples 84 h apart
    with pytest.raises(EvaluationError, match="no other sample at least"):
        conditional_partners(np.zeros((5, 2)), t, np.timedelta64(84, "h"), 10, np.random.default_rng(0))


def test_region1_features_are_area_means_over_region1():
    x = torch.arange(2 * 3 * 2 * 2 * 3, dtype=torch.float32).reshape(6, 2, 2, 3)  # (time, C, H, W)
    base = _Windows(x, steps=2)
    region1 = np.zeros((2, 3), bool)
    region1[:, 1:] = True
    f = region1_features(base, region1)
    assert f.shape == (len(base), 2 * 2)
    want = x[:2][..., torch.from_numpy(region1)].mean(-1).reshape(-1).numpy()
    np.testing.assert_allclose(f[0], want)
