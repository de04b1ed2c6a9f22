"""Tiny synthetic inputs in exactly the layout of docs/contracts.md sections 4-5.

region1.zarr: rain_mm (time, lat, lon) mm with NaN where missing, valid, loss_mask.
Run folders: predictions.zarr (rain_mm_pred (time, lat, lon), attrs exp, seed),
train_log.csv, loss_curve.png. exp2 is planted to be better than exp1 (smaller error).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from scipy.ndimage import gaussian_filter

REPO = Path(__file__).resolve().parents[2]
SPLITS = {"train": {"start": "2021-01-01", "end": "2021-02-10"},
          "val": {"start": "2021-02-14", "end": "2021-02-28"},
          "test": {"start": "2021-03-04", "end": "2021-03-31"}}


def write_config(path: Path, **evaluation) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["period"] = {"start": "2021-01", "end": "2021-03"}
    config["splits"] = SPLITS
    config["evaluation"].update({"bootstrap_samples": 200, "n_cases": 2, **evaluation})
    path.write_text(yaml.safe_dump(config))
    return path


def make_truth(path: Path, n_lat=12, n_lon=14, seed=1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2021-01-01", "2021-03-31 12:00", freq="12h")
    field = np.zeros((len(times), n_lat, n_lon))
    state = gaussian_filter(rng.normal(size=(n_lat, n_lon)), 2)
    for t in range(len(times)):
        state = 0.7 * np.roll(state, 1, axis=1) + 0.7 * gaussian_filter(rng.normal(size=(n_lat, n_lon)), 2)
        field[t] = state
    rain = np.maximum(0.0, 90.0 * (field - 0.1)).astype(np.float32)
    valid = rng.random(rain.shape) > 0.03
    rain[~valid] = np.nan
    loss_mask = np.ones((n_lat, n_lon), dtype=np.uint8)
    loss_mask[:2, :3] = 0
    lat = 28.125 + 0.25 * np.arange(n_lat)
    lon = 112.125 + 0.25 * np.arange(n_lon)
    ds = xr.Dataset(
        {"rain_mm": (("time", "lat", "lon"), rain), "valid": (("time", "lat", "lon"), valid),
         "loss_mask": (("lat", "lon"), loss_mask), "region1_mask": (("lat", "lon"), np.ones((n_lat, n_lon), bool))},
        coords={"time": times, "lat": lat, "lon": lon},
        attrs={"config_hash": "testhash0000", "grid": "region1"},
    )
    ds.chunk({"time": 32}).to_zarr(path, mode="w", consolidated=False)
    return ds


def test_times(truth: xr.Dataset) -> pd.DatetimeIndex:
    t = pd.DatetimeIndex(truth.time.values)
    return t[(t >= "2021-03-07") & (t < "2021-04-01")]


def make_run(run_dir: Path, truth: xr.Dataset, exp: str, seed: int, noise_mm: float,
             drop_last: int = 0) -> Path:
    rng = np.random.default_rng(100 + seed + (0 if exp == "exp1" else 50))
    times = test_times(truth)
    if drop_last:
        times = times[:-drop_last]
    obs = np.nan_to_num(truth.rain_mm.sel(time=times).values)
    # multiplicative and additive error: a skilful but imperfect forecast
    pred = obs * (1.0 + rng.normal(0, noise_mm, obs.shape)) + rng.normal(0, noise_mm, obs.shape)
    pred = np.maximum(0.0, pred).astype(np.float32)
    run_dir.mkdir(parents=True)
    xr.Dataset({"rain_mm_pred": (("time", "lat", "lon"), pred)},
               coords={"time": times, "lat": truth.lat.values, "lon": truth.lon.values},
               attrs={"exp": exp, "seed": seed}).to_zarr(run_dir / "predictions.zarr", mode="w", consolidated=False)
    epochs = np.arange(1, 6)
    pd.DataFrame({"epoch": epochs, "train_loss": 1.0 / epochs, "val_loss": 1.2 / epochs + 0.05 * seed,
                  "lr": 0.002, "seconds": 1.0}).to_csv(run_dir / "train_log.csv", index=False)
    (run_dir / "loss_curve.png").write_bytes(b"")
    return run_dir


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalworld")
    truth = make_truth(root / "region1.zarr")
    runs = {
        "exp1": [make_run(root / "runs/exp1/seed0", truth, "exp1", 0, 0.6),
                 make_run(root / "runs/exp1/seed1", truth, "exp1", 1, 0.6, drop_last=1)],
        "exp2": [make_run(root / "runs/exp2/seed0", truth, "exp2", 0, 0.3),
                 make_run(root / "runs/exp2/seed1", truth, "exp2", 1, 0.3)],
    }
    return {"root": root, "truth": truth, "data": root / "region1.zarr", "runs": runs,
            "config": write_config(root / "config.yaml")}


@pytest.fixture(scope="session")
def exp1_results(world):
    """``results/exp1`` of the fixture world (no --reference, no --upstream-data), evaluated
    once per session for every test that reads it or compares with it."""
    from evaluation.evaluate import main

    r1 = world["root"] / "results/exp1"
    assert main(["--config", str(world["config"]), "--data", str(world["data"]), "--exp", "exp1",
                 "--runs", *map(str, world["runs"]["exp1"]), "--out", str(r1)]) == 0
    return r1
