"""The target results/attribution on the tiny main job's exp2 model, with one relearned
group (attribution.relearn: exp2 retrained without region 2's rain)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from tests.workflow.conftest import job_counts, snakemake, write_config


def test_the_attribution_target_runs_on_the_main_jobs_model(tiny_run, tmp_path):
    src, _ = tiny_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True, copy_function=shutil.copy2)
    config = write_config(tmp_path / "config.yaml", attribution={"relearn": ["rain"]})
    proc = snakemake(workdir, "results/attribution", configfile=config)
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {"train_model": 1, "predict_test": 1, "compare_experiment": 1, "attribution": 1}, counts
    out = workdir / "results" / "attribution"
    res = json.loads((out / "attribution.json").read_text())
    assert res["exp"] == "exp2" and res["primary_score"] == "crps" and res["samples"] > 0
    assert res["split"] == "test" and res["matching"]["partners"] == "conditional"  # the config's default
    assert res["matching"]["neighbours"] == 10 and res["matching"]["min_gap_hours"] > 0
    assert {r["kind"] for r in res["variants"]} == {"all", "occlusion", "variable", "level band", "lag", "relearned"}
    for r in res["variants"]:
        assert np.isfinite(r["crps"]) and r["ci_low"] <= r["difference"] <= r["ci_high"]
    # the relearned row is the comparison of exp2 retrained without region 2's rain with exp2
    (relearned,) = [r for r in res["variants"] if r["kind"] == "relearned"]
    comp = json.loads((workdir / "results" / "exp2_without_rain" / "comparison.json").read_text())
    (primary,) = [r for r in comp["scores"] if r["score"] == "crps" and r["role"] == "primary"]
    assert (comp["a"], comp["b"]) == ("exp2", "exp2_without_rain") == (relearned["reference"], relearned["experiment"])
    assert relearned["difference"] == primary["difference"] == pytest.approx(primary["b"] - primary["a"])
    ck = torch.load(workdir / "results/runs/exp2_without_rain/seed0/checkpoint.pt", weights_only=True)
    assert set(ck["experiment"]["region2_zero"]) == {"rain"}
    assert "| relearned | rain |" in (out / "attribution.md").read_text()
    # the original inputs' score is the model's own: the tiny config's regression head, whose
    # CRPS is the MAE of its predictions over the scored region-1 cells of every test sample
    import xarray as xr

    pred = xr.open_zarr(workdir / "results" / "runs" / "exp2" / f"seed{res['seed']}" / "predictions.zarr")
    truth = xr.open_zarr(workdir / "data" / "processed" / "region1.zarr").sel(time=pred["time"])
    cells = truth["valid"].values & truth["loss_mask"].values.astype(bool)[None] & np.isfinite(truth["rain_mm"].values)
    mae = np.abs(pred["rain_mm_pred"].values - truth["rain_mm"].values)[cells].mean()
    assert res["samples"] == pred.sizes["time"] and res["crps_original"] == pytest.approx(float(mae), rel=1e-5)
    assert "| occlusion |" in (out / "attribution.md").read_text()
    assert (out / "attribution.png").stat().st_size > 10_000
    assert (workdir / "logs" / "attribution" / "exp2.log").stat().st_size > 0
