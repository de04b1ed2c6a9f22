"""radar.train: the encoder-forecaster learns moving echoes (loss drops on a tiny store);
the main track's one-frame model is unchanged by the n_frames option."""
import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.radar.synthetic import make_cappi

REPO = Path(__file__).resolve().parents[2]

TINY = {"radar": {"model": {"hidden": [8, 8], "groups": 4},
                  "train": {"epochs": 4, "batch_size": 8, "lr": 1e-2, "early_stopping_patience": 10,
                            "warmup_fraction": 0.0, "schedule": "none"},
                  "frames": {"input_steps": 4, "output_steps": 3},
                  "splits": {"train_fraction": 0.6, "validation_fraction": 0.2}}}


def test_main_track_model_unchanged_and_forecaster_shape():
    from training.config import ModelConfig
    from training.model import ConvLSTMUNet

    torch.manual_seed(0)
    a = ConvLSTMUNet.from_config(5, ModelConfig())
    torch.manual_seed(0)
    b = ConvLSTMUNet(5, ModelConfig().hidden, n_frames=3, attention=ModelConfig().attention,
                     attention_mode=ModelConfig().attention_mode, norm=ModelConfig().norm,
                     groups=ModelConfig().groups, kernel_size=ModelConfig().kernel_size)
    # the forecaster is created last: every one-frame parameter has the same initial value
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == [k for k in sb if not k.startswith("forecaster.")]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert "n_frames" not in a.args and b.args["n_frames"] == 3
    x = torch.randn(2, 3, 5, 9, 11)
    with torch.no_grad():
        assert tuple(a(x).shape) == (2, 1, 9, 11)
        out = b(x)
    assert tuple(out.shape) == (2, 3, 9, 11) and (out >= 0).all()
    with pytest.raises(ValueError, match="n_frames"):
        ConvLSTMUNet(5, (8, 16), groups=4, head="bins", n_frames=3)


@pytest.mark.slow  # about 30 s on an idle core, 2 min under load
def test_training_loss_drops_on_tiny_store(tmp_path):
    from radar.train import train

    store = tmp_path / "cappi.zarr"
    make_cappi(n_times=120, ny=12, nx=12).to_zarr(store)
    s = train(TINY, store, "dualpol", 0, tmp_path / "out", show_progress=False)
    rows = list(csv.DictReader(open(tmp_path / "out" / "log.csv")))
    tr = [float(r["train_loss"]) for r in rows]
    va = [float(r["val_loss"]) for r in rows]
    assert len(rows) == 4 and s["n_train"] == 72 - 7 + 1
    assert tr[-1] < 0.6 * tr[0] and min(va) < 0.6 * va[0], (tr, va)
    ck = torch.load(tmp_path / "out" / "model.pt", weights_only=False)
    assert ck["model_args"]["n_frames"] == 3 and len(ck["channels"]) == 6
    assert (tmp_path / "out" / "loss_curve.png").stat().st_size > 1000


def test_balanced_loss_refused():
    from pipeline.common.errors import ConfigError
    from radar.train import train_settings

    with pytest.raises(ConfigError, match="radar.train.loss"):
        train_settings({"radar": {"train": {"loss": "balanced"}}})


def test_defaults_are_the_schemas():
    """radar.model / radar.train defaults are written once, in the schema: a config without
    them trains with the schema's values, and a validated config has the same ones."""
    import radar.train as rt
    from pipeline.common.config import load_schema, validate_config

    props = load_schema()["properties"]["radar"]["properties"]
    want_train = {k: v["default"] for k, v in props["train"]["properties"].items()}
    want_model = {k: v["default"] for k, v in props["model"]["properties"].items()}
    assert rt.train_settings({}) == want_train and rt.model_settings({}) == want_model
    assert not hasattr(rt, "TRAIN_DEFAULTS") and not hasattr(rt, "MODEL_DEFAULTS")
    assert want_train["time_budget_minutes"] == 0  # off: results do not depend on the machine's load
    assert rt.train_settings({"radar": {"train": {"epochs": 2}}})["epochs"] == 2
    rt.train_settings({})["seeds"].append(99)  # callers get copies
    assert rt.train_settings({})["seeds"] == want_train["seeds"]
    cfg = validate_config(yaml.safe_load(open(REPO / "config.yaml")))
    assert rt.train_settings(cfg) == want_train and rt.model_settings(cfg) == want_model


@pytest.mark.parametrize("budget, epochs_run", [(0.0, 2), (1e-9, 1)])
def test_time_budget_is_an_option(tmp_path, budget, epochs_run):
    from radar.train import train

    store = tmp_path / "cappi.zarr"
    make_cappi(n_times=70, ny=8, nx=8, heights=(1000.0,)).to_zarr(store)
    cfg = {"radar": {**TINY["radar"], "model": {"hidden": [4], "groups": 2},
                     "train": {**TINY["radar"]["train"], "epochs": 2, "batch_size": 16,
                               "time_budget_minutes": budget}}}
    assert train(cfg, store, "reflectivity", 0, tmp_path / "o", show_progress=False)["epochs_run"] == epochs_run


def test_persistence_base_starts_at_persistence_and_learns(tmp_path):
    """radar.model.base: persistence: the untrained network forecasts the last input frame of
    the target (on the target scale, floored at base_min) for every lead; the checkpoint
    rebuilds the same model; the head gets gradients."""
    import xarray as xr

    from radar.dataset import SequenceDataset, load, persistence_base
    from radar.train import build_model
    from training.checkpoint import model_from_checkpoint

    store = tmp_path / "cappi.zarr"
    make_cappi(n_times=40, ny=12, nx=12).to_zarr(store)
    cfg = {"radar": {**TINY["radar"], "model": {**TINY["radar"]["model"], "base": "persistence"}}}
    with xr.open_zarr(store) as ds:
        a = load(ds.load(), cfg, "dualpol")
    channel, (ka, kb) = persistence_base(a)
    assert a.channels[channel] == f"DBZH@{a.target_height_m:g}"
    torch.manual_seed(0)
    model = build_model(len(a.channels), cfg, a)
    x, y, m = SequenceDataset(a, "train", cfg)[0]
    with torch.no_grad():
        out = model(x[None])[0]
    # the last input frame on the target scale, from the store's own DBZH (not the model's map)
    s = int(SequenceDataset(a, "train", cfg).starts[0]) + 3
    want = np.maximum(a.y[s], 0.1)
    want = np.where(np.isfinite(want), want, 0.1)
    assert out.shape == (3, 12, 12)
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(want, out.shape), rtol=1e-4, atol=1e-5)
    assert ka == pytest.approx(a.norm["DBZH"]["std"] / 10.0) and kb == pytest.approx(a.norm["DBZH"]["mean"] / 10.0)
    loss = ((model(x[None])[0] - y) ** 2 * m).sum()
    loss.backward()
    assert model.head.weight.grad.abs().sum() > 0
    ck = {"model_args": model.args, "model_state": model.state_dict()}
    again = model_from_checkpoint(ck)
    with torch.no_grad():
        assert torch.equal(again(x[None]), model.eval()(x[None]))
    with pytest.raises(Exception, match="base"):
        build_model(len(a.channels), {"radar": {**cfg["radar"], "model": {"base": "optical_flow"}}}, a)
