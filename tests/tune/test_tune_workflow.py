"""The workflow target results/tune: worker jobs in parallel against one study, then the summary;
its best_params.yaml is a config overlay the main job accepts."""
from __future__ import annotations

import json

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from pipeline.common.config import load_config
from tests.training.conftest import TINY as TRAINING_TINY
from tests.training.conftest import make_processed
from tests.workflow.conftest import TINY, job_counts, snakemake, write_config

#: 2 workers x 1 trial of 1 epoch, in a space that fits the tiny model (model.groups 4).
TUNE = {"n_trials": 2, "workers": 2, "epochs": 1,
        "search_space": {"lr": {"low": 0.001, "high": 0.01}, "hidden": [[8, 16], [4, 8]],
                         "attention": ["none", "self"], "loss": ["cross_entropy", "weighted_mse"]}}
OUTPUTS = ("best_params.yaml", "trials.csv", "optimization_history.png", "param_importances.png", "study.json")


def study_trials(workdir):
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(workdir / "results/tune_study/study.journal")))
    (name,) = optuna.study.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).trials


def check_tune_results(workdir, configfile, tmp_path) -> None:
    trials = study_trials(workdir)
    assert len(trials) >= 2 and all(t.state.is_finished() for t in trials)
    by_worker = {w: [t for t in trials if t.user_attrs["worker"] == w] for w in (0, 1)}
    assert all(by_worker.values())  # both workers put trials into the one storage
    first = [by_worker[w][0] for w in (0, 1)]
    assert max(t.datetime_start for t in first) < min(t.datetime_complete for t in first)  # side by side
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 1
    out = workdir / "results" / "tune"
    assert all((out / name).stat().st_size > 0 for name in OUTPUTS)
    study = json.loads((out / "study.json").read_text())
    assert study["storage"] == "journal:results/tune_study/study.journal" and study["sampler"]["seed"] == 4
    assert study["objective"]["split"] == "val" and study["versions"]["optuna"]
    assert sum(study["trials"].values()) == len(trials)
    assert len((out / "trials.csv").read_text().splitlines()) == len(trials) + 1
    for log in ("worker0", "worker1", "summary"):
        assert (workdir / "logs" / "tune" / f"{log}.log").stat().st_size > 0
    overlay = yaml.safe_load((out / "best_params.yaml").read_text())
    assert set(overlay) <= {"model", "train"} and overlay["model"]["hidden"] in TUNE["search_space"]["hidden"]
    assert load_config(configfile, overrides=overlay)["model"]["hidden"] == overlay["model"]["hidden"]
    # the main job plans with the overlay on top of the tiny config, and reads it
    plan = tmp_path / "plan"
    proc = snakemake(plan, "-n", "results/exp2", "--configfile", str(TINY), str(out / "best_params.yaml"))
    assert job_counts(proc.stdout)["train_model"] == 2
    (effective,) = (plan / "data" / ".config").glob("config-*.yaml")
    assert yaml.safe_load(effective.read_text())["model"]["hidden"] == overlay["model"]["hidden"]


def test_a_bad_search_space_stops_the_planning_of_results_tune_only(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tune={**TUNE, "search_space": {"lr": {"low": 0.01, "high": 0.001}}})
    proc = snakemake(tmp_path, "-n", "results/tune", configfile=cfg, check=False)
    assert proc.returncode != 0 and "tune.search_space.lr" in proc.stdout + proc.stderr
    snakemake(tmp_path, "-n", "results/exp2", configfile=cfg)  # the main job does not tune


def test_tune_target_runs_parallel_workers_and_writes_an_overlay(tmp_path):
    """The tune rules alone (--allowed-rules) on the tiny processed store of tests/training."""
    workdir = tmp_path / "run"
    make_processed(workdir / "data" / "processed" / "region1.zarr", n_lon=5)
    cfg = write_config(tmp_path / "c.yaml", period=TRAINING_TINY["period"], splits=TRAINING_TINY["splits"],
                       train={"amp": "off"}, tune=TUNE)
    proc = snakemake(workdir, "results/tune", "--allowed-rules", "tune_worker", "tune", configfile=cfg)
    assert job_counts(proc.stdout + proc.stderr) == {"tune_worker": 2, "tune": 1}
    check_tune_results(workdir, cfg, tmp_path)


@pytest.mark.slow
def test_tune_target_on_the_tiny_workflow_data(tmp_path):
    """From raw data: nature run, ingest, gridding, region-1 store, then the study."""
    workdir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tune=TUNE)
    snakemake(workdir, "results/tune", configfile=cfg)
    check_tune_results(workdir, cfg, tmp_path)
    rerun = snakemake(workdir, "results/tune", configfile=cfg)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    # more trials: the workers add the new slots to the same study, nothing else reruns
    more = write_config(tmp_path / "more.yaml", tune={**TUNE, "n_trials": 3})
    proc = snakemake(workdir, "results/tune", configfile=more)
    assert job_counts(proc.stdout + proc.stderr) == {"tune_worker": 2, "tune": 1}
    assert len(study_trials(workdir)) == 3
