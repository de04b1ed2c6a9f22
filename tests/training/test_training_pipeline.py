"""Data windows, masked losses, training, exact resume, prediction crop, ONNX, memory."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from conftest import ROOT, make_processed, tiny_config
from training import checkpoint as ckpt_io
from training.config import frames_config
from training.data import TrainingDataError, WindowDataset, open_processed, sample_windows, split_samples
from training.losses import elementwise_loss, masked_loss, to_mm, to_target
from training.config import ModelConfig
from training.memory import estimate


# ------------------------------------------------------------------------ samples
def test_windows_stay_inside_split_and_skip_missing_frames(tmp_path):
    cfg = tiny_config()
    fc = frames_config(cfg)
    times = pd.date_range("2020-01-01", "2020-02-29T12:00", freq="12h")
    gap = pd.Timestamp("2020-01-10T12:00")
    times = times.delete(times.get_loc(gap))
    first, target = sample_windows(times, cfg, fc, "train")
    # train 2020-01-01 .. 2020-01-24 (48 frames, one missing); 6 inputs + target = 7 frames
    for f, t in zip(first, target):
        span = times[f : t + 1]
        assert len(span) == 7 and (np.diff(span.values) == np.timedelta64(12, "h")).all()
        assert span[0] >= pd.Timestamp("2020-01-01") and span[-1] < pd.Timestamp("2020-01-25")
        assert gap not in span
    assert times[target[0]] == pd.Timestamp("2020-01-04T00:00")
    # 48 train frame times -> 42 windows of 7; the 7 that would contain the missing frame go
    assert len(target) == 42 - 7
    val_first, val_target = sample_windows(times, cfg, fc, "val")
    assert times[val_first[0]] == pd.Timestamp("2020-01-28T00:00")  # never reaches into train


def test_dataset_items_and_region2_masked(processed_concat):
    cfg = tiny_config()
    fc = frames_config(cfg)
    ds = open_processed(processed_concat)
    smp = split_samples(ds, cfg, fc, "train", drop_empty=True)
    dset = WindowDataset(processed_concat, ds, smp, fc, "log1p")
    assert dset.in_memory
    x, y, mask = dset[3]
    assert x.shape == (6, 4, 5, 9) and y.shape == (1, 5, 9) and mask.shape == (1, 5, 9)
    t = smp.target[3]
    frames = slice(smp.first[3], smp.first[3] + 6)  # upper-air channels variable-major, then rain
    want = np.concatenate([ds["x"].values[frames].reshape(6, 3, 5, 9), ds["x_rain"].values[frames][:, None]], axis=1)
    np.testing.assert_array_equal(x.numpy(), want)
    assert (mask[0, :, :4] == 0).all()  # region 2 (western 4 columns) never in the loss
    lm = ds["loss_mask"].values.astype(bool) & ds["valid"].values[t]
    np.testing.assert_array_equal(mask[0].numpy() > 0, lm)
    np.testing.assert_allclose(torch.expm1(y[0]).numpy()[lm], ds["rain_mm"].values[t][lm], rtol=1e-6)
    assert torch.isfinite(y).all()
    # the lazy (worker) path reads the same window
    lazy = WindowDataset(processed_concat, ds, smp, fc, "log1p", preload_max_gb=0.0)
    assert not lazy.in_memory
    torch.testing.assert_close(lazy[3][0], x)


def test_missing_variable_is_a_clear_error(tmp_path):
    p = make_processed(tmp_path / "p.zarr")
    ds = xr.open_zarr(p).drop_vars("valid").load()
    ds.to_zarr(tmp_path / "bad.zarr", mode="w")
    with pytest.raises(TrainingDataError, match="bad.zarr.*'valid' missing"):
        open_processed(tmp_path / "bad.zarr")


# ------------------------------------------------------------------------- losses
def test_losses_against_worked_values():
    pred = torch.tensor([[[[1.0, 2.0, 0.0]]]])
    y = torch.tensor([[[[0.0, 2.0, 3.0]]]])
    mask = torch.tensor([[[[1.0, 1.0, 1.0]]]])
    assert masked_loss(pred, y, mask, "mse").item() == pytest.approx((1 + 0 + 9) / 3)
    # weights 1, 1 + 0.5*2, 1 + 0.5*3
    assert masked_loss(pred, y, mask, "weighted_mse", 0.5).item() == pytest.approx((1 * 1 + 2 * 0 + 2.5 * 9) / 3)
    d = torch.tensor([1.0, 0.0, -3.0])
    np.testing.assert_allclose(elementwise_loss(d, torch.zeros(3), "logcosh").numpy(), np.log(np.cosh(d.numpy())), rtol=1e-6)
    big = elementwise_loss(torch.tensor([200.0]), torch.zeros(1), "logcosh")
    assert math.isfinite(big.item()) and big.item() == pytest.approx(200 - math.log(2))
    mm = torch.tensor([0.0, 0.5, 30.0])
    torch.testing.assert_close(to_mm(to_target(mm, "log1p"), "log1p"), mm)


def test_region2_targets_do_not_change_the_loss():
    torch.manual_seed(0)
    pred = torch.rand(2, 1, 4, 8)
    y = torch.rand(2, 1, 4, 8)
    mask = torch.zeros_like(y)
    mask[..., 4:] = 1.0  # region 1 = eastern half
    base = masked_loss(pred, y, mask, "weighted_mse")
    y2 = y.clone()
    y2[..., :4] = torch.tensor(float("nan"))
    y3 = y.clone()
    y3[..., :4] = 1e6
    for kind in ("mse", "weighted_mse", "logcosh"):
        ref = masked_loss(pred, y, mask, kind)
        assert masked_loss(pred, y2, mask, kind).item() == ref.item()
        assert masked_loss(pred, y3, mask, kind).item() == ref.item()
    # and the gradient does not reach region-2 predictions
    p = pred.clone().requires_grad_()
    masked_loss(p, y3, mask, "weighted_mse").backward()
    assert (p.grad[..., :4] == 0).all() and (p.grad[..., 4:] != 0).any()
    assert base.item() > 0


# ---------------------------------------------------------------- train / resume
@pytest.fixture(scope="module")
def trained(processed_concat, tmp_path_factory):
    from training.train import train

    out = tmp_path_factory.mktemp("run")
    cfg = tiny_config()
    torch.set_num_threads(1)
    summary = train(cfg, processed_concat, "exp2", 0, out, threads=1, progress=False)
    return out, summary, cfg


def test_train_writes_outputs_and_loss_falls(trained):
    out, summary, _ = trained
    rows = list(csv.DictReader(open(out / "train_log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "lr", "seconds"]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[1]["lr"]) < float(rows[0]["lr"])  # cosine schedule
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["parameters"] > 0 and summary["flops_forward"] > 0
    assert not list(out.glob(".tmp-*"))


def test_checkpoint_round_trip(trained, processed_concat):
    out, _, cfg = trained
    ck = ckpt_io.load(out / "checkpoint.pt")  # weights_only=True inside
    model = ckpt_io.model_from_checkpoint(ck)
    assert ck["exp"] == "exp2" and ck["seed"] == 0 and ck["config"]["model"]["hidden"] == [8, 16]
    assert json.loads(ck["normalisation"])["method"] == "zscore"
    assert ck["data"]["channels"] == ["temperature_1000hPa", "temperature_950hPa", "temperature_900hPa", "rain"]
    last = ckpt_io.load(out / "checkpoint_last.pt")
    assert {"optimizer", "scheduler", "scaler", "rng", "epoch"} <= set(last)
    x = torch.randn(2, 6, 4, 5, 9)
    rebuilt = type(model)(**ck["model_args"])
    rebuilt.load_state_dict(ck["model_state"])
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), rebuilt(x), rtol=0, atol=0)


def test_loading_a_foreign_file_fails_clearly(tmp_path):
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(ckpt_io.CheckpointError, match="x.pt: not a st-rainnet"):
        ckpt_io.load(tmp_path / "x.pt")


def test_exact_resume_equals_uninterrupted(processed_concat, tmp_path):
    from training.train import train

    cfg = tiny_config(train={"epochs": 2, "grad_accumulation": 2})
    train(cfg, processed_concat, "exp2", 3, tmp_path / "straight", threads=1, progress=False)
    s = train(cfg, processed_concat, "exp2", 3, tmp_path / "killed", threads=1, progress=False, stop_after_epochs=1)
    assert s["stopped"] == "interrupted" and s["epochs"] == 1
    train(cfg, processed_concat, "exp2", 3, tmp_path / "killed", resume=True, threads=1, progress=False)
    a = ckpt_io.load(tmp_path / "straight" / "checkpoint_last.pt")
    b = ckpt_io.load(tmp_path / "killed" / "checkpoint_last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k
    assert [r["train_loss"] for r in a["log"]] == [r["train_loss"] for r in b["log"]]


def test_region2_group_dropout_trains_resumes_exactly_and_spares_validation(processed_concat, tmp_path):
    """train.region2_group_dropout changes the training (other weights than without it), a
    killed and resumed run ends with the same weights (the masks' generator is seeded per
    epoch), and validation is never dropped: the logged validation loss is the loss of the
    saved weights on the undropped inputs."""
    from training.config import train_config
    from training.train import build_trainer, run_epoch, train

    cfg = tiny_config(train={"epochs": 2, "region2_group_dropout": 0.5})
    plain = tiny_config(train={"epochs": 2})
    train(plain, processed_concat, "exp2", 3, tmp_path / "plain", threads=1, progress=False)
    train(cfg, processed_concat, "exp2", 3, tmp_path / "straight", threads=1, progress=False)
    train(cfg, processed_concat, "exp2", 3, tmp_path / "killed", threads=1, progress=False, stop_after_epochs=1)
    train(cfg, processed_concat, "exp2", 3, tmp_path / "killed", resume=True, threads=1, progress=False)
    p, a, b = (ckpt_io.load(tmp_path / d / "checkpoint_last.pt") for d in ("plain", "straight", "killed"))
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k
    assert any(not torch.equal(a["model_state"][k], p["model_state"][k]) for k in a["model_state"])
    assert a["train"]["region2_group_dropout"] == 0.5
    tr = build_trainer(cfg, processed_concat, "exp2", 3)
    assert tr.group_dropout is not None and tr.group_dropout.names == ["rain", "temperature"]
    tr.model.load_state_dict(a["model_state"])
    loader = torch.utils.data.DataLoader(tr.sets["val"], batch_size=4)
    val = run_epoch(tr.model, loader, train_config(cfg), tr.device, None, tr.loss_fn, progress=False)
    assert val == pytest.approx(a["log"][-1]["val_loss"], rel=1e-5)


def test_early_stopping(processed_concat, tmp_path):
    from training.train import train

    cfg = tiny_config(train={"epochs": 5, "lr": 1e-12, "early_stopping_patience": 1, "schedule": "none"})
    s = train(cfg, processed_concat, "exp2", 0, tmp_path, threads=1, progress=False)
    assert s["stopped"] == "early stopping" and s["epochs"] == 2  # weights frozen: no improvement after 1


# ---------------------------------------------------------------- predict / ONNX
def test_predict_crops_to_region1(trained, processed_concat, tmp_path):
    from training.predict import predict

    out, _, cfg = trained
    res = predict(out / "checkpoint.pt", processed_concat, "test", tmp_path / "pred.zarr", threads=1, progress=False)
    back = xr.open_zarr(tmp_path / "pred.zarr")
    src = xr.open_zarr(processed_concat)
    r1_lon = src["lon"].values[src["region1_mask"].values.any(axis=0)]
    np.testing.assert_array_equal(back["lon"].values, r1_lon)
    np.testing.assert_array_equal(back["lat"].values, src["lat"].values)
    assert back["rain_mm_pred"].dtype == np.float32 and back["rain_mm_pred"].dims == ("time", "lat", "lon")
    assert (back["rain_mm_pred"].values >= 0).all()
    assert back.attrs["exp"] == "exp2" and back.attrs["seed"] == 0
    assert back.attrs["checkpoint_sha256"] == ckpt_io.sha256_of(out / "checkpoint.pt")
    assert back.attrs["config_hash"] == "0123456789abcdef"
    # time = target time: test is 2020-02-12 .. 02-29, first target after 6 inputs
    assert pd.Timestamp(back["time"].values[0]) == pd.Timestamp("2020-02-15T00:00")
    # same numbers as the model on the full grid, cropped
    ck = ckpt_io.load(out / "checkpoint.pt")
    model = ckpt_io.model_from_checkpoint(ck)
    window = src.sel(time=slice("2020-02-12", "2020-02-14T12:00"))
    x = torch.from_numpy(np.concatenate([window["x"].values.reshape(6, 3, 5, 9), window["x_rain"].values[:, None]],
                                        axis=1))[None]
    with torch.no_grad():
        full = torch.expm1(model(x))[0, 0].numpy()
    np.testing.assert_allclose(back["rain_mm_pred"].values[0], full[:, 4:], rtol=1e-5, atol=1e-6)


def test_predict_cli_and_onnx_export(trained, processed_concat, tmp_path):
    out, _, _ = trained
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "training.export", "--checkpoint", str(out / "checkpoint.pt"),
                        "--out", str(tmp_path / "model.onnx")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "matches PyTorch" in r.stderr
    import onnxruntime as ort

    ck = ckpt_io.load(out / "checkpoint.pt")
    model = ckpt_io.model_from_checkpoint(ck)
    x = torch.randn(3, 6, 4, 5, 9)
    got = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------- memory
def test_budget_case_fits_12_gb():
    est = estimate(56, 6, (64, 128), 8, ModelConfig(hidden=(32, 64)), amp=True, device="cuda")
    assert est.total_bytes < 12e9
    r = subprocess.run([sys.executable, "-m", "training.memory", "--config", str(ROOT / "config.yaml"),
                        "--grid", "64", "128", "--batch", "8", "--amp"], capture_output=True, text=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "fits the 12 GB budget" in r.stdout, r.stdout + r.stderr


MEM_PROBE = r"""
import gc, json, threading, time, torch
torch.set_num_threads(1)
from training.config import ModelConfig
from training.memory import estimate
from training.model import ConvLSTMUNet

def anon():  # resident anonymous memory (heap, mmap'd tensors); file pages excluded
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

B, T, C, H, W = 4, 6, 16, 63, 65
mc = ModelConfig(hidden=(16, 32), groups=8)
m = ConvLSTMUNet.from_config(C, mc)
opt = torch.optim.AdamW(m.parameters())
x = torch.randn(B, T, C, H, W)
m(torch.randn(1, T, C, 8, 8)).sum().backward(); opt.zero_grad(set_to_none=True); gc.collect()
saved = {}
def pack(t):
    s = t.untyped_storage(); saved[s.data_ptr()] = s.nbytes(); return t
base = anon(); peak = [base]; stop = threading.Event()
def watch():  # torch kernels release the GIL, so this samples during the step
    while not stop.is_set():
        peak[0] = max(peak[0], anon()); time.sleep(0.0005)
th = threading.Thread(target=watch); th.start()
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    loss = m(x).mean()
loss.backward(); opt.step()
stop.set(); th.join()
skip = {p.untyped_storage().data_ptr() for p in m.parameters()} | {x.untyped_storage().data_ptr()}
e = estimate(C, T, (H, W), B, mc)
print(json.dumps({"peak": peak[0] - base, "saved": sum(v for k, v in saved.items() if k not in skip),
                  "est_act": e.activation_bytes, "est_step": e.total_bytes - e.weights_bytes - e.input_bytes}))
"""


def test_memory_estimate_against_measured_cpu_peak():
    """Analytical activations vs autograd's saved tensors (exact), and the step estimate
    vs the measured peak growth of resident anonymous memory during one training step
    (fresh process, sampled every 0.5 ms; weights and input exist before and are excluded)."""
    r = subprocess.run([sys.executable, "-c", MEM_PROBE], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert 1.0 <= m["est_act"] / m["saved"] <= 1.3, m
    assert 0.9 <= m["est_step"] / m["peak"] <= 1.5, m


def test_time_budget_stops_and_bf16_path_runs(processed_concat, tmp_path):
    from training.train import train

    cfg = tiny_config(train={"epochs": 3, "time_budget_minutes": 1e-4, "amp": "bf16"})
    s = train(cfg, processed_concat, "exp2", 0, tmp_path, threads=1, progress=False)
    assert s["stopped"] == "time budget" and s["epochs"] == 1
    assert math.isfinite(s["best_val"]) and (tmp_path / "checkpoint.pt").is_file()


def test_train_and_predict_command_lines(processed_region1, tmp_path):
    cfg = tiny_config(train={"epochs": 1})
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    run = tmp_path / "runs" / "exp1" / "seed1"
    r = subprocess.run([sys.executable, "-m", "training.train", "--config", str(tmp_path / "c.yaml"), "--data",
                        str(processed_region1), "--exp", "exp1", "--seed", "1", "--out", str(run), "--threads", "1"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "parameters" in r.stderr and "GFLOP forward" in r.stderr
    assert {"checkpoint.pt", "checkpoint_last.pt", "train_log.csv", "loss_curve.png"} <= {p.name for p in run.iterdir()}
    r = subprocess.run([sys.executable, "-m", "training.predict", "--checkpoint", str(run / "checkpoint.pt"), "--data",
                        str(processed_region1), "--split", "test", "--out", str(tmp_path / "p.zarr"), "--threads", "1"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    pred = xr.open_zarr(tmp_path / "p.zarr")
    assert pred["rain_mm_pred"].shape[1:] == (5, 5) and pred.attrs["seed"] == 1 and pred.attrs["exp"] == "exp1"


def test_resume_after_killed_job_restores_best_and_ignores_foreign_state(processed_concat, tmp_path):
    """The workflow's case: a job killed mid-run loses its declared outputs (checkpoint.pt,
    train_log.csv, loss_curve.png); --resume continues from checkpoint_last.pt, puts the best
    checkpoint back and ends like an uninterrupted run. A checkpoint_last.pt of another
    configuration is ignored (fresh start), never continued."""
    from training.train import train

    cfg = tiny_config(train={"epochs": 3})
    train(cfg, processed_concat, "exp2", 5, tmp_path / "straight", threads=1, progress=False)
    run = tmp_path / "killed"
    train(cfg, processed_concat, "exp2", 5, run, threads=1, progress=False, stop_after_epochs=2)
    best_before = ckpt_io.load(run / "checkpoint.pt")
    for name in ("checkpoint.pt", "train_log.csv", "loss_curve.png"):  # what Snakemake removes
        (run / name).unlink()
    train(cfg, processed_concat, "exp2", 5, run, resume=True, threads=1, progress=False)
    a = ckpt_io.load(tmp_path / "straight" / "checkpoint.pt")
    b = ckpt_io.load(run / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] and a["best_val"] == b["best_val"]
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k
    assert (run / "train_log.csv").read_text().count("\n") == 4 and (run / "loss_curve.png").is_file()
    if b["epoch"] == 3:  # the best after resuming is a later epoch; the restored one was epoch <= 2
        assert best_before["epoch"] <= 2
    # a different configuration: the old state is not continued
    other = tiny_config(train={"epochs": 3, "lr": 1e-3})
    s = train(other, processed_concat, "exp2", 5, run, resume=True, threads=1, progress=False)
    assert s["epochs"] == 3
    fresh = ckpt_io.load(run / "checkpoint_last.pt")
    assert fresh["run_key"] != ckpt_io.load(tmp_path / "straight" / "checkpoint_last.pt")["run_key"]
    assert [r["epoch"] for r in fresh["log"]] == [1, 2, 3]


def test_region_channel_trains_and_predicts_from_the_checkpoint(processed_concat, tmp_path):
    """model.region_channel: the trained model carries the store's region1_mask, and the
    prediction (rebuilt from the checkpoint alone) uses it."""
    from training.predict import predict
    from training.train import train

    cfg = tiny_config(model={"region_channel": True}, train={"epochs": 2})
    train(cfg, processed_concat, "exp2", 0, tmp_path / "run", threads=1, progress=False)
    ck = ckpt_io.load(tmp_path / "run" / "checkpoint.pt")
    src = xr.open_zarr(processed_concat)
    assert ck["model_args"]["region_shape"] == list(src["region1_mask"].shape)
    np.testing.assert_array_equal(ck["model_state"]["region"][0, 0, 0].numpy(), src["region1_mask"].values)
    assert ck["log"][-1]["train_loss"] < ck["log"][0]["train_loss"]  # it learns
    predict(tmp_path / "run" / "checkpoint.pt", processed_concat, "test", tmp_path / "pred.zarr", threads=1,
            progress=False)
    assert np.isfinite(xr.open_zarr(tmp_path / "pred.zarr")["rain_mm_pred"].values).all()
