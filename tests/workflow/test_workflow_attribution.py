"""The target results/attribution on the tiny main job's exp2 model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.workflow.conftest import snakemake


def test_the_attribution_target_runs_on_the_main_jobs_model(tiny_run):
    workdir, _ = tiny_run
    snakemake(workdir, "results/attribution")
    out = workdir / "results" / "attribution"
    res = json.loads((out / "attribution.json").read_text())
    assert res["exp"] == "exp2" and res["primary_score"] == "crps" and res["samples"] > 0
    assert {r["kind"] for r in res["variants"]} == {"all", "occlusion", "variable", "level band", "lag"}
    for r in res["variants"]:
        assert np.isfinite(r["crps"]) and r["ci_low"] <= r["difference"] <= r["ci_high"]
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
