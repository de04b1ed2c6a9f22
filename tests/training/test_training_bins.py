"""The bins head, the balanced loss, warm-up, and the config views against the schema."""
from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
import torch
import xarray as xr

from pipeline.common.config import load_schema
from pipeline.common.errors import ConfigError
from tests.training.conftest import tiny_config
from training import bins
from training.config import FramesConfig, ModelConfig, TrainConfig
from training.losses import balanced_weight, make_loss, masked_loss
from training.model import ConvLSTMUNet
from training.train import lr_lambda

EDGES = (0.1, 1.0, 5.0)  # bins [0, .1) [.1, 1) [1, 5) [5, 10]; top closed at 2 * 5


def test_bin_index_puts_edge_values_in_the_bin_above():
    rain = torch.tensor([0.0, 0.0999, 0.1, 0.5, 1.0, 4.99, 5.0, 80.0])
    assert bins.bin_index(rain, EDGES).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_exceedance_and_quantile_worked_example():
    p = np.array([0.4, 0.3, 0.2, 0.1])[None, :, None, None]  # (1, bins, 1, 1)
    ex = bins.exceedance(p, EDGES, [0.1, 1.0, 5.0])[0, :, 0, 0]
    np.testing.assert_allclose(ex, [0.6, 0.3, 0.1])
    # median: cdf 0.4 after bin 0, 0.7 after bin 1 -> in [0.1, 1), (0.5-0.4)/0.3 of the way
    assert bins.quantile(p, EDGES, 0.5)[0, 0, 0] == pytest.approx(0.1 + 0.9 / 3, rel=1e-6)
    # 0.2-quantile inside the dry bin: 0.2/0.4 of [0, 0.1)
    assert bins.quantile(p, EDGES, 0.2)[0, 0, 0] == pytest.approx(0.05, rel=1e-6)
    # 0.95-quantile in the top bin [5, 10]: (0.95 - 0.9)/0.1 of the way
    assert bins.quantile(p, EDGES, 0.95)[0, 0, 0] == pytest.approx(7.5, rel=1e-6)
    assert bins.mean(p, EDGES)[0, 0, 0] == pytest.approx(0.4 * 0.05 + 0.3 * 0.55 + 0.2 * 3 + 0.1 * 7.5)
    t = torch.tensor(p)
    np.testing.assert_allclose(bins.exceedance(t, EDGES, [1.0]).numpy()[0, 0, 0, 0], 0.3)
    with pytest.raises(ValueError, match="not a bin edge"):
        bins.exceedance(p, EDGES, [15.0])


def test_cross_entropy_against_hand_values_and_mask():
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))[None, :, None, None].repeat(1, 1, 1, 3)  # (1,4,1,3)
    rain = torch.tensor([[[[0.0, 2.0, float("nan")]]]])
    mask = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    total = bins.masked_cross_entropy(logits, rain, mask, EDGES)
    assert total.item() == pytest.approx(-math.log(0.4) - math.log(0.2), rel=1e-5)


def test_balanced_loss_worked_values():
    y_mm = torch.tensor([0.0, 0.1, 5.0, 15.0, 40.0])
    assert balanced_weight(y_mm).tolist() == [1.0, 2.0, 5.0, 10.0, 30.0]
    y = torch.log1p(torch.tensor([0.0, 20.0])).view(1, 1, 1, 2)
    pred = y + torch.tensor([0.5, -2.0]).view(1, 1, 1, 2)
    mask = torch.ones_like(y)
    # (1 * (0.25 + 0.5) + 10 * (4 + 2)) / 2
    assert masked_loss(pred, y, mask, "balanced").item() == pytest.approx((0.75 + 60.0) / 2, rel=1e-5)


def test_head_and_loss_must_fit():
    with pytest.raises(ConfigError, match="train.loss"):
        make_loss("cross_entropy", "regression", 1.0, "log1p", EDGES)
    with pytest.raises(ConfigError, match="train.loss"):
        make_loss("mse", "bins", 1.0, "log1p", EDGES)


def test_bins_model_shapes():
    m = ConvLSTMUNet(3, hidden=(8, 16), groups=4, head="bins", bin_edges_mm=EDGES, dropout=0.1)
    out = m(torch.zeros(2, 4, 3, 7, 9))
    assert out.shape == (2, len(EDGES) + 1, 7, 9)


def test_warmup_then_cosine():
    f = lr_lambda(100, "cosine", 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    assert lr_lambda(10, "none", 0.0)(7) == 1.0


def test_dataclass_defaults_are_the_schema_defaults():
    schema = load_schema()["properties"]
    for cls, section in ((FramesConfig, "frames"), (ModelConfig, "model"), (TrainConfig, "train")):
        props = schema[section]["properties"]
        assert {f.name for f in dataclasses.fields(cls)} == set(props), section
        inst = cls()
        for name, prop in props.items():
            value = getattr(inst, name)
            value = list(value) if isinstance(value, tuple) else value
            assert value == prop["default"], f"{section}.{name}"


def test_bins_head_trains_and_predicts_probabilities(processed_concat, tmp_path):
    from training.predict import predict
    from training.train import train

    cfg = tiny_config(model={"hidden": [8, 16], "groups": 4, "head": "bins", "bin_edges_mm": [0.1, 1.0, 5.0],
                             "quantile": 0.65},
                      train={"loss": "cross_entropy", "epochs": 3, "lr": 0.01},
                      evaluation={"thresholds_mm": [0.1, 5.0]})
    train(cfg, processed_concat, "exp2", 0, tmp_path, threads=1, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    pred = predict(tmp_path / "checkpoint.pt", processed_concat, "test", tmp_path / "p.zarr", threads=1,
                   progress=False)
    back = xr.open_zarr(tmp_path / "p.zarr", consolidated=False)
    p = back["bin_prob"].values
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(back["prob_exceed"].sel(threshold=5.0).values, p[:, 3], atol=1e-6)
    assert back["threshold"].values.tolist() == [0.1, 5.0]
    np.testing.assert_allclose(back["rain_mm_pred"].values, bins.quantile(p, [0.1, 1.0, 5.0], cfg["model"]["quantile"]), rtol=1e-6)
    assert pred.attrs["quantile"] == cfg["model"]["quantile"] == 0.65
    assert pred.attrs["quantile_method"] == "fixed (model.quantile)"
    assert pred.attrs["head"] == "bins"


def test_fit_quantile_worked_example():
    """Edges [1, 10]: bins [0, 1) [1, 10) [10, 20], each with probability 1/3 at every cell.
    A quantile q <= 2/3 forecasts 1 + 27 (q - 1/3) mm (below 10 mm); q > 2/3 forecasts >= 10 mm."""
    from training.predict import QUANTILE_CANDIDATES, fit_quantile

    probs = np.full((1, 3, 1, 4), 1 / 3)
    rain = np.array([[[0.0, 2.0, 5.0, 12.0]]])
    valid = np.ones_like(rain, bool)
    q, fit = fit_quantile(probs, [1.0, 10.0], rain, valid, [1.0, 10.0, 50.0])
    # 50 mm: no observed cell reaches it, so it is left out
    assert fit["thresholds_mm"] == [1.0, 10.0]
    rows = {r["quantile"]: r for r in fit["candidates"]}
    assert sorted(rows) == list(QUANTILE_CANDIDATES)
    # q = 0.65: 4 of 4 forecasts >= 1 mm against 3 observed; none >= 10 mm against 1 (bias floored at 0.01)
    assert rows[0.65]["frequency_bias"] == [pytest.approx(4 / 3, abs=1e-4), 0.0]
    assert rows[0.65]["score"] == pytest.approx((math.log(4 / 3) + math.log(100)) / 2, rel=1e-5)
    # q = 0.67 > 2/3: every forecast >= 10 mm: biases 4/3 and 4
    assert rows[0.67]["frequency_bias"] == [pytest.approx(4 / 3, abs=1e-4), 4.0]
    assert rows[0.67]["score"] == pytest.approx((math.log(4 / 3) + math.log(4)) / 2, rel=1e-5)
    assert rows[0.66]["frequency_bias"][1] == 0.0
    # 0.67 ... 0.95 tie; the lowest wins
    assert q == 0.67
    # invalid cells are not counted: without the 12 mm cell no threshold of 10 mm remains
    valid[0, 0, 3] = False
    q2, fit2 = fit_quantile(probs, [1.0, 10.0], rain, valid, [1.0, 10.0])
    assert fit2["thresholds_mm"] == [1.0] and q2 == 0.4  # bias 3/2 everywhere: the lowest candidate


def test_fit_quantile_refuses_validation_without_events():
    from training.data import TrainingDataError
    from training.predict import fit_quantile

    with pytest.raises(TrainingDataError, match="no validation cell reaches"):
        fit_quantile(np.full((1, 2, 1, 1), 0.5), [1.0], np.zeros((1, 1, 1)), np.ones((1, 1, 1), bool), [5.0])


def test_quantile_auto_is_fitted_on_the_validation_split(processed_concat, tmp_path):
    from pipeline.common.cf import decode_json_attrs
    from training.predict import QUANTILE_CANDIDATES, predict
    from training.train import train

    cfg = tiny_config(model={"hidden": [8, 16], "groups": 4, "head": "bins", "bin_edges_mm": [0.1, 1.0, 5.0],
                             "quantile": "auto", "quantile_fit_mm": [0.1, 1.0]},
                      train={"loss": "cross_entropy", "epochs": 2, "lr": 0.01},
                      evaluation={"thresholds_mm": [0.1, 5.0]})
    train(cfg, processed_concat, "exp2", 0, tmp_path, threads=1, progress=False)
    pred = predict(tmp_path / "checkpoint.pt", processed_concat, "test", tmp_path / "p.zarr", threads=1,
                   progress=False)
    back = xr.open_zarr(tmp_path / "p.zarr", consolidated=False)
    attrs = decode_json_attrs(back.attrs)
    q = attrs["quantile"]
    assert q in QUANTILE_CANDIDATES and attrs["quantile_method"] == "validation frequency bias"
    fit = attrs["quantile_fit"]
    scores = {r["quantile"]: r["score"] for r in fit["candidates"]}
    assert scores[q] == min(scores.values())
    np.testing.assert_allclose(back["rain_mm_pred"].values, bins.quantile(back["bin_prob"].values,
                               [0.1, 1.0, 5.0], q), rtol=1e-6)
    # the fit is that of the validation split, reproduced from the val predictions
    val = predict(tmp_path / "checkpoint.pt", processed_concat, "val", tmp_path / "v.zarr", threads=1,
                  progress=False)
    assert val.attrs["quantile"] == q


def test_quantile_must_be_auto_or_a_probability():
    with pytest.raises(ConfigError, match="model.quantile"):
        tiny_config(model={"quantile": "median"})
    with pytest.raises(ConfigError, match="model.quantile"):
        tiny_config(model={"quantile": 1.0})
