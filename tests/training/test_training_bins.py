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

    cfg = tiny_config(model={"hidden": [8, 16], "groups": 4, "head": "bins", "bin_edges_mm": [0.1, 1.0, 5.0]},
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
    assert pred.attrs["quantile"] == cfg["model"]["quantile"]
    assert pred.attrs["head"] == "bins"
