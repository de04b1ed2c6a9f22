"""radar.dataset: windows, chronological splits with gaps, training-only normalisation,
NaN filling and loss mask, experiments as input sets."""
import numpy as np
import pytest

from pipeline.common.errors import ConfigError
from radar import dataset as rd
from tests.radar.synthetic import make_cappi


def test_split_ranges_and_windows_have_the_gap():
    cfg = {}
    ds = make_cappi(n_times=100)
    a = rd.load(ds, cfg, "reflectivity")
    sets = {s: rd.SequenceDataset(a, s, cfg) for s in ("train", "validation", "test")}
    # 100 frames: train [0, 60), validation [80, 80), test [100, 100) -> only train
    assert rd.split_ranges(100, 20, rd.SPLITS_DEFAULTS) == {"train": (0, 60), "validation": (80, 80), "test": (100, 100)}
    assert len(sets["train"]) == 60 - 20 + 1 and len(sets["validation"]) == 0
    r = rd.split_ranges(300, 20, rd.SPLITS_DEFAULTS)
    assert r == {"train": (0, 180), "validation": (200, 240), "test": (260, 300)}
    # last train frame 179, first validation frame 200: 20 frames (one window) between them
    a = rd.load(make_cappi(n_times=300, ny=8, nx=8), cfg, "reflectivity")
    tr, va, te = (rd.SequenceDataset(a, s, cfg) for s in ("train", "validation", "test"))
    assert tr.starts[-1] + 19 == 179 and va.starts[0] == 200 and va.starts[-1] + 19 == 239
    assert te.starts[0] == 260 and te.starts[-1] + 19 == 299 and len(te) == 21


def test_window_does_not_cross_a_time_gap():
    ds = make_cappi(n_times=60, ny=8, nx=8, gap_after=30)
    starts = rd.sample_starts(ds.time.values, 20, (0, 60))
    # windows [i, i+20) lying on one side of the gap only: 0..10 and 30..40
    assert list(starts) == list(range(0, 11)) + list(range(30, 41))


def test_normalisation_from_training_period_only_and_fill():
    ds = make_cappi(n_times=300, ny=8, nx=8)
    ds["ZDR"][200:] = ds["ZDR"][200:] + 100.0  # a later-period shift must not leak into the stats
    a = rd.load(ds, {}, "dualpol")
    z = ds["ZDR"].values[:180]
    assert a.norm["ZDR"]["mean"] == pytest.approx(float(np.nanmean(z)), rel=1e-6)
    assert a.norm["ZDR"]["std"] == pytest.approx(float(np.nanstd(z)), rel=1e-5)
    assert a.channels == ["DBZH@1000", "DBZH@2000", "ZDR@1000", "ZDR@2000", "KDP@1000", "KDP@2000"]
    # NaN outside coverage -> the normalised floor (0 dBZ; 0 dB)
    n = a.norm["DBZH"]
    assert np.isfinite(a.x).all()
    assert a.x[5, 0, 0, 0] == pytest.approx((0.0 - n["mean"]) / n["std"])
    assert a.x[5, 2, 0, 0] == pytest.approx((0.0 - a.norm["ZDR"]["mean"]) / a.norm["ZDR"]["std"])
    # in coverage: the normalised value
    v = float(ds["KDP"].values[7, 1, 5, 6])
    assert a.x[7, 5, 5, 6] == pytest.approx((v - a.norm["KDP"]["mean"]) / a.norm["KDP"]["std"], rel=1e-5)


def test_target_and_mask():
    ds = make_cappi(n_times=80, ny=8, nx=8)
    a = rd.load(ds, {}, "reflectivity")
    d = rd.SequenceDataset(a, "train", {})
    x, y, m = d[3]
    assert tuple(x.shape) == (10, 2, 8, 8) and tuple(y.shape) == (10, 8, 8)
    obs = ds["DBZH"].values[13:23, 0]
    np.testing.assert_allclose(y.numpy()[m.numpy() > 0], (obs / 10.0)[np.isfinite(obs)], rtol=1e-6)
    assert m.numpy()[:, :3, :3].sum() == 0 and m.numpy()[:, 3:, 3:].min() == 1
    np.testing.assert_allclose(rd.to_dbz(y.numpy(), a.frames)[m.numpy() > 0], obs[np.isfinite(obs)], rtol=1e-6)


def test_experiments_from_config():
    exps = rd.experiments({"radar": {"experiments": {"zdr_only": {"variables": ["ZDR"], "heights_m": [1000.0],
                                                                   "reference": "reflectivity"}}}})
    assert set(exps) == {"reflectivity", "dualpol", "zdr_only"}
    a = rd.load(make_cappi(n_times=40, ny=8, nx=8),
                {"radar": {"experiments": {"zdr_only": {"variables": ["ZDR"], "heights_m": [1000.0]}}}}, "zdr_only")
    assert a.channels == ["ZDR@1000"]
    with pytest.raises(ConfigError, match="radar.experiments.bad.variables"):
        rd.experiments({"radar": {"experiments": {"bad": {"variables": ["RHOHV"]}}}})
    with pytest.raises(ConfigError, match="radar.splits"):
        rd.splits_settings({"radar": {"splits": {"train_fraction": 0.8, "validation_fraction": 0.3}}})
