"""Bad data that parses, through gridding, assembly and the training samples (README, "Bad
data that parses"): a month in which every gauge is missing, and a week in which the
upstream sounding network is silent. Neither may become zeros or a field made up from
nothing; both are counted per frame and region and flagged where training and evaluation
see them."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.common import cf
from pipeline.dataset.assemble import build_dataset
from pipeline.gridding.analysis import grid_month
from pipeline.gridding.cli import warn_uncovered, write_fragment
from training.config import frames_config
from training.data import open_processed, split_samples

from gridding_helpers import make_interim, write_config

MONTHS = ("2020-01", "2020-02", "2020-03")
OUTAGE = ("2020-03-08T00:00", "2020-03-14T12:00")  # region-2 soundings silent: 14 frames


def _interim(config, month: str):
    snd, gau = make_interim(config, month, seed=int(month[-2:]))
    gau.attrs["qc_stuck_hours"] = 5  # what the ingest counted; summed into the store
    if month == "2020-02":  # every gauge missing for the whole month
        gau["rain_mm"][:] = np.nan
    if month == "2020-03":  # no sounding west of 114E (region 2) for a week
        t = pd.DatetimeIndex(snd["time"].values)
        silent = (snd["lon"].values < 114.0) & (t >= pd.Timestamp(OUTAGE[0]) - pd.Timedelta(hours=1)) \
            & (t <= pd.Timestamp(OUTAGE[1]))
        snd = snd.isel(profile=~silent)
    return snd, gau


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baddata")
    _, config = write_config(tmp)
    paths = {"region1": [], "concat": []}
    fragments = {}
    for m in MONTHS:
        snd, gau = _interim(config, m)
        for grid in paths:
            ds = grid_month(snd, gau, config, m, grid_name=grid)
            fragments[grid, m] = ds
            paths[grid].append(str(write_fragment(ds, tmp / grid / f"{m}.nc")))
    return tmp, config, paths, fragments


def test_fragments_leave_missing_data_missing_and_count_it(built, caplog):
    _, _, _, fragments = built
    feb = fragments["concat", "2020-02"]
    assert feb["x"].sel(channel="rain").isnull().all()  # no zeros, no field from nothing
    assert (feb["rain_coverage"] == 0).all() and (feb["sounding_coverage"] > 0).all()
    assert feb.attrs["frames_without_rain"] == 58 and feb.attrs["frames_without_soundings"] == 0
    mar = fragments["concat", "2020-03"]
    times = pd.DatetimeIndex(mar["time"].values)
    out = (times >= OUTAGE[0]) & (times <= OUTAGE[1])
    empty = (mar["sounding_coverage"].sel(region="region2") == 0).values
    np.testing.assert_array_equal(empty, out)
    assert (mar["sounding_coverage"].sel(region="region1") > 0).all()
    upper_air_r2 = mar["x"].values[out][:, :55][..., mar["lon"].values < 114.0]  # (14, 55, lat, region-2 lon)
    assert upper_air_r2.size and np.isnan(upper_air_r2).all()
    assert mar.attrs["frames_without_soundings"] == 14 and mar.attrs["frames_without_rain"] == 0
    assert cf.json_attribute(mar.attrs, "ingest_qc")["gauges"]["qc_stuck_hours"] == 5
    r1 = fragments["region1", "2020-03"]
    assert list(r1["region"].values) == ["region1"] and r1.attrs["frames_without_soundings"] == 0
    with caplog.at_level(logging.WARNING, logger="pipeline.gridding"):
        warn_uncovered(mar, "g/2020-03.nc")
    assert ("g/2020-03.nc: 14 of 62 frames have no upper-air analysis (no sounding station within the "
            "analysis radii) in region2: 2020-03-08T00 .. 2020-03-14T12 (14 frames)") in caplog.text


def test_store_flags_frames_and_training_knows(built, caplog):
    tmp, config, paths, _ = built
    stores = {}
    with caplog.at_level(logging.WARNING, logger="pipeline.dataset"):
        for grid in ("region1", "concat"):
            stores[grid] = tmp / f"{grid}.zarr"
            build_dataset(paths[grid], config, grid, stores[grid], tmp / f"{grid}.json")
    assert ": 58 of 182 frames have no rain value at any cell" in caplog.text
    ds = xr.open_zarr(stores["concat"]).load()
    feb = pd.DatetimeIndex(ds["time"].values).month == 2
    assert not ds["valid"].values[feb].any() and np.isnan(ds["rain_mm"].values[feb]).all()
    assert (ds["x_rain"].values[feb] == 0).all()  # the documented 0 of a missing input
    assert ds["valid"].values[~feb].any(axis=(1, 2)).all()
    assert ds.attrs["frames_without_rain"] == 58 and ds.attrs["frames_without_soundings"] == 14
    quality = cf.json_attribute(ds.attrs, "data_quality")
    assert quality["regions"]["region1"]["frames_without_rain"] == {
        "count": 58, "periods": ["2020-02-01T00 .. 2020-02-29T12 (58 frames)"]}
    assert quality["regions"]["region2"]["frames_without_soundings"] == {
        "count": 14, "periods": ["2020-03-08T00 .. 2020-03-14T12 (14 frames)"]}
    assert quality["ingest_qc"]["gauges"]["qc_stuck_hours"] == 15  # 5 in each of the 3 months
    region1 = xr.open_zarr(stores["region1"])
    assert region1.attrs["frames_without_rain"] == 58 and region1.attrs["frames_without_soundings"] == 0
    # training: the test samples whose inputs include an outage frame are flagged, exactly those
    fc = frames_config(config)
    with caplog.at_level(logging.WARNING, logger="training.data"):
        smp = split_samples(open_processed(stores["concat"]), config, fc, "test", drop_empty=True)
    lo, hi = pd.Timestamp(OUTAGE[0]), pd.Timestamp(OUTAGE[1])
    step = pd.Timedelta(hours=12)
    want = [any(lo <= t - k * step <= hi for k in range(1, 7)) for t in smp.times]
    np.testing.assert_array_equal(smp.inputs_without_soundings, want)
    assert sum(want) == 19 and not smp.inputs_without_rain.any()  # targets 2020-03-08T12 .. 03-17T12
    assert f"test: 19 of {len(smp)} samples have an input frame with no upper-air analysis" in caplog.text
    assert not split_samples(open_processed(stores["region1"]), config, fc, "test", True).inputs_without_soundings.any()
    # the validation month has no valid target at all: no validation sample is left
    assert len(split_samples(open_processed(stores["concat"]), config, fc, "val", drop_empty=True)) == 0
