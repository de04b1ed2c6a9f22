"""The workflow's DAG and parse-time config validation (dry runs, no computation)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.workflow.conftest import REPO, job_counts, snakemake, write_config


def test_dry_run_of_main_job_has_every_stage_per_month(tmp_path):
    proc = snakemake(tmp_path, "-n", "results/exp2")
    counts = job_counts(proc.stdout)
    months = 3
    assert counts == {
        "generate_network": 1,
        "generate_month": months,
        "prepare_month": months,  # ingest soundings and gauges, grid both grids: one process
        "build_dataset": 2,  # region1 and concat
        "train_model": 2,  # exp1 and exp2, one seed
        "predict_test": 2,
        "advection_baseline": 1,
        "evaluate_experiment": 1,
        "compare_experiment": 1,
        "gridding_leaveout": 1,
        "network_map": 1,  # leave-out validation of the gridding, read by the report
    }


def test_several_seeds_multiply_training_jobs(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", train={"epochs": 1, "batch_size": 8, "seeds": [0, 1, 2]})
    counts = job_counts(snakemake(tmp_path, "-n", "results/exp2", configfile=cfg).stdout)
    assert counts["train_model"] == 6 and counts["predict_test"] == 6


def test_results_exp1_alone_skips_the_joined_grid(tmp_path):
    counts = job_counts(snakemake(tmp_path, "-n", "results/exp1").stdout)
    assert counts["build_dataset"] == 1 and counts["train_model"] == 1
    assert "compare_experiment" not in counts


def test_unknown_key_fails_at_parse_time_naming_it(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", grid={"resolution_deg": 1.0, "resolutoin_deg": 2.0})
    proc = snakemake(tmp_path, "-n", "results/exp2", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert "resolutoin_deg" in proc.stdout + proc.stderr


def test_experiment_reference_cycle_fails_at_parse_time_naming_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", experiments={"exp1": {"grid": "region1", "reference": "exp2"}})
    proc = snakemake(tmp_path, "-n", "results/exp2", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert "config key 'experiments.exp1.reference': reference cycle exp1 -> exp2 -> exp1" in proc.stdout + proc.stderr


def test_wrong_type_fails_at_parse_time_naming_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", train={"epochs": "many"})
    proc = snakemake(tmp_path, "-n", "results/exp2", configfile=cfg, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "epochs" in text and "many" in text


def test_split_gap_shorter_than_input_window_is_rejected(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", splits={
        "train": {"start": "2020-01-01", "end": "2020-02-10"},
        "val": {"start": "2020-02-12", "end": "2020-02-29"},
        "test": {"start": "2020-03-04", "end": "2020-03-31"},
    })
    proc = snakemake(tmp_path, "-n", "results/exp2", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert "splits.val.start" in proc.stdout + proc.stderr


def test_region2_side_contradicting_the_boxes_fails_at_parse_time(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", regions={"region2_side": "east"})  # the tiny boxes put it west
    proc = snakemake(tmp_path, "-n", "results/exp2", configfile=cfg, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "regions.region2_side" in text and "'east'" in text and "west of region 1" in text


def test_raw_source_without_data_fails_clearly(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", data={"source": "raw", "raw_dir": "nowhere"})
    proc = snakemake(tmp_path, "-n", "results/exp2", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert "nowhere" in proc.stdout + proc.stderr


@pytest.mark.parametrize("target,section,key,value,n_train", [
    ("run", "train", "seeds", [0], 2), ("study", "train", "seeds", [0, 1, 2], 6),
    ("control", "synthetic", "world", "control", 2),
    ("attribution", "attribution", "relearn", ["rain", "temperature", "dewpoint", "wind", "geopotential_height"], 21)])
def test_make_targets_parse_and_pick_their_config(tmp_path, target, section, key, value, n_train):
    """The README's commands as the Makefile runs them (dry run in a scratch directory):
    the target must come before --configfile, which takes every following word as a file."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    shutil.copy(REPO / "config.yaml", tmp_path)  # the Snakefile's default configfile, found in the workdir
    proc = subprocess.run(["make", "-s", target, f"ARGS=--dry-run --directory {tmp_path}"], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert job_counts(proc.stdout)["train_model"] == n_train
    (effective,) = (tmp_path / "data" / ".config").glob("config-*.yaml")
    assert yaml.safe_load(effective.read_text())[section][key] == value


@pytest.mark.parametrize("processes", [1, 2])
def test_training_job_launches_data_parallel_processes_from_its_resource(tmp_path, processes):
    """resources.ddp_processes of train_model (README "Several GPUs"): 1 is a plain process
    with the job's threads; N > 1 launches torchrun with N processes on the node, the
    threads shared among them, and the same training arguments."""
    proc = snakemake(tmp_path, "-n", "-p", "results/exp1", "--set-resources", f"train_model:ddp_processes={processes}")
    lines = [ln for ln in proc.stdout.splitlines() if "-m training.train" in ln]
    assert len(lines) == 1, proc.stdout[-3000:]
    if processes == 1:
        assert "OMP_NUM_THREADS=2 " in lines[0] and "-m training.train --threads 2 --config" in lines[0]
        assert "torch.distributed.run" not in lines[0]
    else:
        assert ("-m torch.distributed.run --standalone --nnodes 1 --nproc-per-node 2 -m training.train "
                "--threads 1 --config") in lines[0]
        assert "OMP_NUM_THREADS=1 " in lines[0]
    assert "--exp exp1 --seed 0 --out results/runs/exp1/seed0 --resume" in lines[0]
