"""A NaN that reaches the model (README, "Bad data that parses"): a non-finite input or
target stops the run when the dataset is built, naming the store, the channel and the time;
a non-finite loss stops training at the batch where it appears."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
import zarr

from conftest import make_processed, tiny_config
from pipeline.common.errors import NonFiniteDataError, TrainingDivergedError
from training.config import frames_config
from training.data import WindowDataset, open_processed, split_samples


def _dataset(path, preload_max_gb=4.0):
    cfg = tiny_config()
    fc = frames_config(cfg)
    ds = open_processed(path)
    return WindowDataset(path, ds, split_samples(ds, cfg, fc, "train", drop_empty=True), fc, "log1p", preload_max_gb)


@pytest.mark.parametrize("value, preload", [(np.nan, 4.0), (np.inf, 4.0), (-np.inf, 0.0)])
def test_non_finite_input_names_store_channel_and_time(tmp_path, value, preload):
    path = make_processed(tmp_path / "bad.zarr")
    zarr.open_group(str(path), mode="r+")["x"][10, 0, 2, 1, 3] = value  # 2020-01-06T00:00, temperature at 900 hPa
    with pytest.raises(NonFiniteDataError) as err:
        _dataset(path, preload)
    msg = str(err.value)
    assert msg.startswith(f"{path}: variable 'x' channel 'temperature_900hPa' at time 2020-01-06T00:00:00 holds {value}")
    assert "(cell lat 28.375, lon 106.875); NaN or inf in 1 of the 47 frames checked" in msg


def test_non_finite_target_marked_valid_is_an_error(tmp_path):
    path = make_processed(tmp_path / "bad.zarr")
    g = zarr.open_group(str(path), mode="r+")
    lm = np.asarray(g["loss_mask"][:]).astype(bool)
    i, j = np.argwhere(lm)[0]
    g["rain_mm"][20, i, j] = np.nan
    g["valid"][20, i, j] = True
    with pytest.raises(NonFiniteDataError, match=rf"bad.zarr: variable 'rain_mm' at time 2020-01-11T00:00:00 holds "
                                                 rf"nan at a cell marked valid"):
        _dataset(path)


def test_clean_store_passes_the_check(processed_concat):
    assert len(_dataset(processed_concat)) > 0


def test_non_finite_loss_stops_training_with_a_clear_error(processed_region1, tmp_path, monkeypatch, capsys):
    import training.train as train_mod

    real = train_mod.make_loss
    calls = {"n": 0}

    def poisoned(*args):
        loss = real(*args)

        def f(out, y, mask):
            calls["n"] += 1
            value = loss(out, y, mask)
            return value * float("nan") if calls["n"] == 3 else value
        return f

    monkeypatch.setattr(train_mod, "make_loss", poisoned)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config(train={"epochs": 1})))
    out = tmp_path / "run"
    rc = train_mod.main(["--config", str(tmp_path / "c.yaml"), "--data", str(processed_region1), "--exp", "exp1",
                         "--out", str(out), "--threads", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert ("error: exp1 s0 epoch 1/1: loss is nan at batch 3 of 6 (inputs and targets are finite and the weights "
            "are finite: the model diverged; lower train.lr (0.005)") in err
    assert calls["n"] == 3  # stopped at once: nothing after the bad batch
    assert not (out / "checkpoint.pt").exists() and not (out / "train_log.csv").exists()


def test_non_finite_weights_are_named(processed_region1):
    from training.losses import make_loss
    from training.model import ConvLSTMUNet
    from training.config import model_config, train_config
    from training.data import make_loader
    from training.train import run_epoch

    cfg = tiny_config()
    mc, tc = model_config(cfg), train_config(cfg)
    model = ConvLSTMUNet.from_config(4, mc)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    loader = make_loader(_dataset(processed_region1), 8, None, 0)
    with pytest.raises(TrainingDivergedError, match=r"^val: loss is nan at batch 1 of 6 \(inputs and targets are "
                                                    r"finite and the weights hold NaN or inf"):
        run_epoch(model, loader, tc, torch.device("cpu"), None,
                  make_loss(tc.loss, mc.head, tc.loss_alpha, tc.target_transform, mc.bin_edges_mm), desc="  val",
                  progress=False)
