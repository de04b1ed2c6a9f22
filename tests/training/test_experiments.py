"""Experiments declared in the config: the channels, frames and region-2 cells an experiment
selects from a processed store (values checked against the store), its errors, and a model
trained on a selection that prediction applies again."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pipeline.common.errors import ConfigError
from pipeline.common.experiments import experiment, experiments_config, frame_lags
from pipeline.dataset import layout
from tests.training.conftest import tiny_config
from training.config import FramesConfig
from training.data import SplitSamples, WindowDataset, input_selection

VARIABLES = ["temperature", "u", "v"]
LEVELS = [1000.0, 850.0, 500.0, 200.0]
FRAMES = FramesConfig(input_steps=3, step_hours=12, lead_steps=1)


def _store(n_time=6, n_lat=3, n_lon=4) -> xr.Dataset:
    """A joined-grid store in memory: region 1 is the eastern 2 columns; every input value distinct."""
    rng = np.random.default_rng(3)
    z = rng.uniform(1.0, 2.0, (n_time, len(VARIABLES) * len(LEVELS) + 1, n_lat, n_lon)).astype(np.float32)
    inputs, coords = layout.input_variables(z, VARIABLES, LEVELS)
    r1 = np.zeros((n_lat, n_lon), bool)
    r1[:, 2:] = True
    ds = xr.Dataset({**inputs,
                     "rain_mm": (("time", "lat", "lon"), np.ones((n_time, n_lat, n_lon), np.float32)),
                     "valid": (("time", "lat", "lon"), np.ones((n_time, n_lat, n_lon), bool)),
                     "loss_mask": (("lat", "lon"), r1.astype(np.uint8)),
                     "region1_mask": (("lat", "lon"), r1)},
                    coords={"time": pd.date_range("2020-01-01", periods=n_time, freq="12h"), **coords,
                            "lat": np.arange(n_lat, dtype=float), "lon": np.arange(n_lon, dtype=float)})
    return ds


def _items(ds, exp) -> tuple[np.ndarray, np.ndarray, object]:
    """(items x (N, T, C, H, W) of the selection, the store's full windows (N, 3, 13, H, W), selection)."""
    sel = input_selection(ds, exp, FRAMES)
    smp = SplitSamples("test", np.array([0, 2]), np.array([3, 5]), pd.DatetimeIndex(ds["time"].values[[3, 5]]))
    dset = WindowDataset("mem", ds, smp, FRAMES, "log1p", selection=sel)
    full = layout.read_inputs(ds, 0, ds.sizes["time"])
    return (np.stack([dset[i][0].numpy() for i in range(2)]),
            np.stack([full[f:f + 3] for f in smp.first]), sel)


def _exp(name="abl", **entry):
    return experiment({"experiments": {name: entry}}, name)


def test_defaults_are_exp1_and_exp2_and_select_everything():
    exps = experiments_config({})
    assert {n: (e.grid, e.reference) for n, e in exps.items()} == {"exp1": ("region1", None), "exp2": ("concat", "exp1")}
    ds = _store()
    x, full, sel = _items(ds, exps["exp2"])
    assert sel.identity and sel.names == layout.channel_names(ds)
    np.testing.assert_array_equal(x, full)  # the same tensor, value for value


def test_upstream_rain_only_zeroes_region2_except_rain():
    ds = _store()
    x, full, sel = _items(ds, _exp(grid="concat", region2_variables=["rain"], reference="exp1"))
    assert x.shape == full.shape == (2, 3, 13, 3, 4)  # region 1 keeps every channel
    assert sel.names[-1] == "rain" and not sel.region2_zero[-1] and sel.region2_zero[:-1].all()
    np.testing.assert_array_equal(x[..., 2:], full[..., 2:])  # region 1 untouched
    np.testing.assert_array_equal(x[:, :, -1], full[:, :, -1])  # region-2 rain kept
    assert (x[:, :, :-1, :, :2] == 0).all() and (full[:, :, :-1, :, :2] >= 1).all()


def test_variable_groups_level_bands_and_lags_select_channels_and_frames():
    ds = _store()
    x, full, sel = _items(ds, _exp(grid="region1", variables=["wind"], levels=["lower"], lags_hours=[12, 36]))
    assert frame_lags(3, 12, 1) == [36, 24, 12]
    assert sel.names == ["u_1000hPa", "u_850hPa", "v_1000hPa", "v_850hPa"]
    assert list(sel.frames) == [0, 2]
    np.testing.assert_array_equal(x, full[:, [0, 2]][:, :, [4, 5, 8, 9]])
    _, _, sel = _items(ds, _exp(grid="concat", variables=["wind", "rain"], levels=["upper"],
                                region2_levels=["upper"], region2_variables=["wind"]))
    assert sel.names == ["u_200hPa", "v_200hPa", "rain"]
    assert list(sel.region2_zero) == [False, False, True]


@pytest.mark.parametrize("entry,key,words", [
    ({"abl": {"grid": "concat", "variables": ["humidity"]}}, "experiments.abl.variables", "'humidity'"),
    ({"abl": {"grid": "concat", "region2_levels": ["stratosphere"]}}, "experiments.abl.region2_levels",
     "'stratosphere'"),
    ({"abl": {"grid": "concat", "reference": "exp9"}}, "experiments.abl.reference", "'exp9'"),
    ({"a": {"grid": "concat", "reference": "b"}, "b": {"grid": "region1", "reference": "a"}},
     "experiments.a.reference", "a -> b -> a"),
    ({"abl": {"grid": "region1", "region2_variables": ["rain"]}}, "experiments.abl.region2_variables", "region1"),
    ({"runs": {"grid": "region1"}}, "experiments.runs", "runs"),
])
def test_config_errors_are_one_line_naming_the_key(entry, key, words):
    with pytest.raises(ConfigError) as err:
        experiments_config({"experiments": entry})
    msg = str(err.value)
    assert f"'{key}" in msg and words in msg and "\n" not in msg


def test_store_dependent_errors_name_the_key():
    ds = _store()
    with pytest.raises(ConfigError, match=r"'experiments.abl.lags_hours': 48 h is not an input frame"):
        input_selection(ds, _exp(grid="concat", lags_hours=[48]), FRAMES)
    with pytest.raises(ConfigError, match=r"'experiments.abl.variables': group 'dewpoint' has no input channel"):
        input_selection(ds, _exp(grid="concat", variables=["dewpoint"]), FRAMES)


def test_training_and_prediction_use_the_recorded_selection(processed_concat, tmp_path):
    from training import checkpoint as ckpt_io
    from training.predict import load_for_prediction
    from training.train import train

    cfg = tiny_config(train={"epochs": 1},
                      experiments={"rain_last": {"grid": "concat", "variables": ["rain"], "lags_hours": [12, 24],
                                                 "reference": "exp1"}})
    train(cfg, processed_concat, "rain_last", 0, tmp_path, threads=1, progress=False)
    ck = ckpt_io.load(tmp_path / "checkpoint.pt")
    assert ck["model_args"]["in_channels"] == 1
    assert ck["experiment"]["channels"] == ["rain"] and ck["experiment"]["frames"] == [4, 5]
    ld = load_for_prediction(tmp_path / "checkpoint.pt", processed_concat, "test")
    x = ld.dataset[0][0]
    full = torch.from_numpy(layout.read_inputs(ld.ds, int(ld.samples.first[0]), int(ld.samples.first[0]) + 6))
    torch.testing.assert_close(x, full[4:, -1:], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="experiments.nope"):
        train(cfg, processed_concat, "nope", 0, tmp_path / "x", threads=1, progress=False)


def test_lazy_and_in_memory_reads_give_the_same_selected_items(tmp_path):
    """The selection is applied once to frames held in memory and per sample when read lazily
    from the store: both give the same items."""
    ds = _store()
    ds.to_zarr(tmp_path / "s.zarr", mode="w", consolidated=True)
    exp = _exp(grid="concat", variables=["wind", "rain"], region2_variables=["rain"], lags_hours=[36, 12],
               reference="exp1")
    sel = input_selection(ds, exp, FRAMES)
    smp = SplitSamples("test", np.array([0, 2]), np.array([3, 5]), pd.DatetimeIndex(ds["time"].values[[3, 5]]))
    got = {}
    for preload in (4.0, 0.0):
        dset = WindowDataset(tmp_path / "s.zarr", xr.open_zarr(tmp_path / "s.zarr"), smp, FRAMES, "log1p",
                             preload, sel)
        assert dset.in_memory == (preload > 0)
        got[preload] = np.stack([dset[i][0].numpy() for i in range(2)])
    np.testing.assert_array_equal(got[4.0], got[0.0])
    assert got[0.0].shape == (2, 2, 9, 3, 4)  # frames 36 h and 12 h before the target; u, v at 4 levels + rain
    assert (got[0.0][:, :, :-1, :, :2] == 0).all() and (got[0.0][:, :, -1, :, :2] >= 1).all()


def test_relearn_declares_exp2_without_each_group_compared_with_exp2():
    exps = experiments_config(tiny_config(attribution={"relearn": ["rain", "wind"]}))
    assert set(exps) == {"exp1", "exp2", "exp2_without_rain", "exp2_without_wind"}
    e = exps["exp2_without_rain"]
    assert (e.grid, e.reference, e.variables, e.lags_hours) == ("concat", "exp2", None, None)
    assert e.region2_variables == ("temperature", "dewpoint", "wind", "geopotential_height")
    assert exps["exp2_without_wind"].region2_variables == ("rain", "temperature", "dewpoint", "geopotential_height")
    # an exp2 restricted to some groups: the relearned experiment drops one of those
    cfg = tiny_config(experiments={"exp2": {"grid": "concat", "region2_variables": ["rain", "wind"],
                                            "reference": "exp1"}}, attribution={"relearn": ["wind"]})
    assert experiments_config(cfg)["exp2_without_wind"].region2_variables == ("rain",)


@pytest.mark.parametrize("overrides, message", [
    ({"attribution": {"relearn": ["rain", "rain"]}}, "'rain' is listed 2 times"),
    ({"experiments": {"exp2": {"grid": "region1"}}, "attribution": {"relearn": ["rain"]}},
     "exp2 must be on the joined grid"),
    ({"experiments": {"exp2": {"grid": "concat", "region2_variables": ["rain"]}},
      "attribution": {"relearn": ["wind"]}}, "exp2's region 2 has no 'wind' inputs"),
    ({"experiments": {"exp2": {"grid": "concat", "region2_variables": ["rain"]}},
      "attribution": {"relearn": ["rain"]}}, "region 2 contributes nothing"),
    ({"experiments": {"exp2_without_rain": {"grid": "region1"}}, "attribution": {"relearn": ["rain"]}},
     "the name is taken by attribution.relearn"),
])
def test_relearn_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match="config key '(attribution.relearn|experiments.exp2_without_rain)'") as err:
        experiments_config(tiny_config(**overrides))
    assert message in str(err.value)


def test_region2_group_dropout_holds_whole_groups_at_zero_on_region2_only():
    """train.region2_group_dropout: p = 1 holds every group region 2 contributes at 0 on
    region-2 cells (region 1 untouched, held groups stay held), p = 0.5 drops each group in
    about half the samples, whole (every level, every frame), and the same generator seed
    draws the same masks."""
    from training.data import GroupDropout

    ds = _store()
    sel = input_selection(ds, _exp(grid="concat", region2_variables=["temperature"]), FRAMES)
    assert GroupDropout.for_selection(ds, sel, 0.0) is None
    r1 = ds["region1_mask"].values
    x = torch.from_numpy(_items(ds, _exp(grid="concat", region2_variables=["temperature"]))[0])
    x = x.repeat(200, 1, 1, 1, 1)  # (400, T, C, H, W): region-2 wind already 0 by the selection
    drop = GroupDropout.for_selection(ds, sel, 1.0)
    assert drop.names == ["temperature"]  # wind is not given by region 2, so nothing to drop
    out = drop(x, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(out[..., r1], x.numpy()[..., r1])
    assert (out[..., ~r1] == 0).all()
    everything = input_selection(ds, experiments_config({})["exp2"], FRAMES)
    drop = GroupDropout.for_selection(ds, everything, 0.5)
    assert drop.names == ["rain", "temperature", "wind"]
    xs = torch.from_numpy(_items(ds, experiments_config({})["exp2"])[0]).repeat(200, 1, 1, 1, 1)
    out = drop(xs, torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(out[..., r1], xs.numpy()[..., r1])
    var = np.array([n.split("_")[0] for n in everything.names])
    held = out[..., ~r1] == 0  # (N, T, C, cells): inputs are in [1, 2], so 0 means held
    for group, names in (("temperature", ["temperature"]), ("wind", ["u", "v"]), ("rain", ["rain"])):
        h = held[:, :, np.isin(var, names)]
        per_sample = h.reshape(len(h), -1)
        assert (per_sample.all(1) | ~per_sample.any(1)).all()  # whole group, every frame and level
        assert 0.4 < per_sample.all(1).mean() < 0.6, group  # 400 samples at p = 0.5
    again = drop(xs, torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(out, again)
    assert GroupDropout.for_selection(ds.drop_vars("region1_mask"), everything, 0.5) is None
