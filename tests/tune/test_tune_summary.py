"""The summary of a study: refused without a completed trial; with one, the overlay and a
placeholder importance figure."""
from __future__ import annotations

import json

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from pipeline.common.config import deep_update, validate_config
from tests.tune.conftest import tune_settings
from training.tune import TuneError, open_study
from training.tune_summary import summarise

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_summary_needs_a_completed_trial_and_then_writes_the_overlay(tiny_store, tmp_path, monkeypatch):
    cfg = tune_settings(storage=f"journal:{tmp_path / 'study.journal'}")
    with pytest.raises(TuneError, match="no such journal file; run the workers first"):
        summarise(cfg, tiny_store, tmp_path / "out")
    study = open_study(cfg, tiny_store)
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, intermediate_values={1: 9.0},
                                              user_attrs={"slot": 0, "worker": 0}))
    with pytest.raises(TuneError, match="no trial completed"):
        summarise(cfg, tiny_store, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=1.5, intermediate_values={1: 2.0, 2: 1.5},
        params={"lr": 0.002, "hidden": "4,8", "loss": "weighted_mse"},
        distributions={"lr": FloatDistribution(0.001, 0.01, log=True),
                       "hidden": CategoricalDistribution(["8,16", "4,8"]),
                       "loss": CategoricalDistribution(["cross_entropy", "weighted_mse"])},
        user_attrs={"slot": 1, "worker": 1}))
    called = []
    monkeypatch.setattr(optuna.importance, "get_param_importances", lambda *a, **k: called.append(1))
    info = summarise(cfg, tiny_store, tmp_path / "out")
    assert called == []  # one completed trial: the importance figure says so instead
    overlay = yaml.safe_load((tmp_path / "out" / "best_params.yaml").read_text())
    assert overlay == {"model": {"head": "regression", "hidden": [4, 8]}, "train": {"loss": "weighted_mse", "lr": 0.002}}
    validate_config(deep_update(cfg, overlay))
    assert info["trials"]["complete"] == 1 and info["trials"]["pruned"] == 1 and info["best"]["worker"] == 1
    assert json.loads((tmp_path / "out" / "study.json").read_text())["study"] == study.study_name
    assert (tmp_path / "out" / "param_importances.png").stat().st_size > 1000
