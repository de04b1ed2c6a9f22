"""Fixtures: a small processed zarr in exactly the layout of docs/contracts.md section 4."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from pipeline.common import cf
from pipeline.common.config import deep_update, validate_config
from pipeline.dataset import layout

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is fastest, and immune to other jobs on a shared machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

TINY = {
    "period": {"start": "2020-01", "end": "2020-02"},
    "splits": {
        "train": {"start": "2020-01-01", "end": "2020-01-24"},
        "val": {"start": "2020-01-28", "end": "2020-02-08"},
        "test": {"start": "2020-02-12", "end": "2020-02-29"},
    },
    # the regression head here (its tests compare against expm1 of the output); the bins
    # head has its own tests (test_training_bins.py)
    "model": {"hidden": [8, 16], "groups": 4, "head": "regression"},
    "train": {"epochs": 2, "batch_size": 8, "lr": 0.005, "amp": "off", "device": "cpu", "loss": "weighted_mse",
              "num_workers": 0, "deterministic": True},
}


def tiny_config(**overrides) -> dict:
    with open(ROOT / "config.yaml") as f:
        base = yaml.safe_load(f)
    cfg = deep_update(base, copy.deepcopy(TINY))
    cfg = deep_update(cfg, overrides)
    return validate_config(cfg)


def make_processed(path, n_lat=5, n_lon=9, n_channels=4, region1_cols=None, seed=0, drop_times=(),
                   start="2020-01-01", end="2020-02-29T12:00") -> Path:
    """Write a processed zarr: the inputs x and x_rain normalised (NaN -> 0), rain_mm (NaN where missing), valid,
    loss_mask (region 1 only), region1_mask, attrs normalisation and config_hash.

    Region 1 is the eastern ``region1_cols`` columns (all columns if None). Rain at t is a
    smooth function of the rain channel at t-1, so a model can learn it.
    """
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, end, freq="12h")
    times = times.delete([times.get_loc(pd.Timestamp(t)) for t in drop_times]) if drop_times else times
    nt = times.size
    lat = 28.125 + 0.25 * np.arange(n_lat)
    lon = 106.125 + 0.25 * np.arange(n_lon)
    r1 = np.zeros((n_lat, n_lon), bool)
    r1[:, (n_lon - (region1_cols or n_lon)):] = True
    x = rng.standard_normal((nt, n_channels, n_lat, n_lon)).astype(np.float32)
    rain_chan = x[:, -1]
    rain = np.empty((nt, n_lat, n_lon), np.float32)
    rain[0] = 0.0
    rain[1:] = np.maximum(0.0, 3.0 * rain_chan[:-1] + 1.0)
    valid = rng.random((nt, n_lat, n_lon)) > 0.1
    rain[~valid] = np.nan
    loss_mask = (r1 & (rng.random((n_lat, n_lon)) > 0.1)).astype(np.uint8)
    levels = [1000.0 - 50.0 * i for i in range(n_channels - 1)]  # upper-air channels: temperature at these levels
    inputs, input_coords = layout.input_variables(x, ["temperature"], levels)
    channels = cf.upper_air_names(["temperature"], levels) + ["rain"]
    ds = xr.Dataset(
        {
            **inputs,
            "rain_mm": (("time", "lat", "lon"), rain),
            "valid": (("time", "lat", "lon"), valid),
            "loss_mask": (("lat", "lon"), loss_mask),
            "region1_mask": (("lat", "lon"), r1),
        },
        coords={"time": times, **input_coords, "lat": lat, "lon": lon},
        attrs=cf.with_json_attrs({  # the processed-store layout: nested attributes as JSON text
            "config_hash": "0123456789abcdef",
            "grid": "concat" if region1_cols else "region1",
        }, {"normalisation": {"method": "zscore", "mean": {c: 0.0 for c in channels},
                              "std": {c: 1.0 for c in channels}}}),
    )
    ds = ds.chunk({"time": 16})
    ds.to_zarr(path, mode="w")
    return Path(path)


@pytest.fixture(scope="session")
def processed_concat(tmp_path_factory) -> Path:
    return make_processed(tmp_path_factory.mktemp("proc") / "concat.zarr", region1_cols=5)


@pytest.fixture(scope="session")
def processed_region1(tmp_path_factory) -> Path:
    return make_processed(tmp_path_factory.mktemp("proc") / "region1.zarr", n_lon=5)
