"""The report's data-quality section (README, "Bad data that parses"): target frames without
any valid rain are counted (they are not scored), with the store's frames without rain or
upper-air analysis, each run's samples with such an input frame, and the ingest's counts."""
from __future__ import annotations

import numpy as np
import xarray as xr

from evaluation import report
from evaluation.inputs import Group, Member, open_truth
from evaluation.metrics_json import data_quality_block
from pipeline.common import cf

import conftest as world_helpers


def test_data_quality_block_and_report(tmp_path):
    truth = world_helpers.make_truth(tmp_path / "ok.zarr")
    times = world_helpers.test_times(truth)
    gap = times[4:7]  # three consecutive test frames without any gauge
    valid = truth["valid"].values.copy()
    valid[np.isin(truth["time"].values, gap.values)] = False
    store = {"frames": truth.sizes["time"], "frames_without_rain": 3, "frames_without_soundings": 14,
             "regions": {"region1": {"frames_without_rain": {"count": 3, "periods": ["x"]},
                                     "frames_without_soundings": {"count": 14, "periods": ["y"]}}},
             "ingest_qc": {"gauges": {"qc_stuck_runs": 1, "qc_stuck_hours": 20, "qc_frames_without_gauges": 3,
                                      "qc_missing_hours": 99},
                           "soundings": {"qc_identical_soundings": 6}}}
    bad = truth.assign(valid=(truth["valid"].dims, valid))
    bad.attrs = cf.with_json_attrs(truth.attrs, {"data_quality": store})
    bad.chunk({"time": 32}).to_zarr(tmp_path / "bad.zarr", mode="w", consolidated=False)
    pred = xr.zeros_like(truth["rain_mm"].sel(time=times))
    groups = [Group("exp1", "experiment", [Member("exp1", 0, "run", pred, input_gaps={"without_rain": 5,
                                                                                       "without_soundings": 19}),
                                           Member("exp1", 1, "old run", pred)]),
              Group("persistence", "baseline", [Member("persistence", 0, "baseline", None)])]
    block = data_quality_block(open_truth(tmp_path / "bad.zarr"), times, groups)
    assert block["target_frames_without_rain"] == 3
    assert block["target_periods_without_rain"] == [
        f"{gap[0]:%Y-%m-%dT%H} .. {gap[-1]:%Y-%m-%dT%H} (3 frames)"]
    assert block["inputs"] == {"exp1/seed0": {"without_rain": 5, "without_soundings": 19}, "exp1/seed1": None}
    assert block["ingest_qc"] == {"gauges": {"qc_stuck_runs": 1, "qc_stuck_hours": 20, "qc_frames_without_gauges": 3},
                                  "soundings": {"qc_identical_soundings": 6}}
    text = "\n".join(report._data_quality({"data_quality": block}))
    assert "Target frames with no valid rain on any loss-mask cell (`valid` false: not scored): 3 (" in text
    assert "Data store, region1: 3 of 180 frames without any rain value, 14 without any upper-air analysis" in text
    assert "exp1/seed0: 5 predicted samples with an input frame without rain, 19 without upper-air" in text
    assert "qc_stuck_hours 20" in text and "qc_identical_soundings 6" in text
    # a store written before the block existed: the target count alone
    old = data_quality_block(open_truth(tmp_path / "ok.zarr"), times, groups[1:])
    assert old["target_frames_without_rain"] == int((~(truth["valid"].sel(time=times).values
                                                       & truth["loss_mask"].values.astype(bool)).any(axis=(1, 2))).sum())
    assert old["store_regions"] == {} and old["ingest_qc"] == {"gauges": {}, "soundings": {}}
