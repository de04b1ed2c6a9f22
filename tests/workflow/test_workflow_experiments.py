"""An experiment declared only in a config overlay runs through the workflow with no code
change and is compared with its reference; the main job's experiments are not re-run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.workflow.conftest import job_counts, snakemake, write_config

OVERLAY = Path(__file__).with_name("experiment_upstream_rain_only.yaml")


def test_ablation_from_a_config_overlay_is_compared_with_its_reference(tiny_run, tmp_path):
    import torch

    src, _ = tiny_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True, copy_function=shutil.copy2)
    config = write_config(tmp_path / "config.yaml", **yaml.safe_load(OVERLAY.read_text()))
    proc = snakemake(workdir, "results/upstream_rain_only", configfile=config)
    assert job_counts(proc.stdout + proc.stderr) == {"train_model": 1, "predict_test": 1, "compare_experiment": 1}

    out = workdir / "results" / "upstream_rain_only"
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["exp"], metrics["reference_exp"]) == ("upstream_rain_only", "exp1")
    assert "# Verification of upstream_rain_only against exp1" in (out / "report.md").read_text()
    # the reference's scores are those of the main job's exp1 (same model, same samples)
    main = json.loads((workdir / "results" / "exp2" / "metrics.json").read_text())
    assert metrics["models"]["exp1"]["continuous"] == main["models"]["exp1"]["continuous"]
    assert metrics["models"]["upstream_rain_only"]["continuous"] != main["models"]["exp2"]["continuous"]

    ck = torch.load(workdir / "results/runs/upstream_rain_only/seed0/checkpoint.pt", weights_only=True)
    chans = ck["experiment"]["channels"]
    assert ck["model_args"]["in_channels"] == len(chans) == len(ck["data"]["channels"])  # region 1 keeps all
    assert set(ck["experiment"]["region2_zero"]) == set(chans) - {"rain"}
