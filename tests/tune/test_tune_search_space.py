"""The tune section: the search space parses, and a bad entry is a ConfigError naming the key and the value."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.common.config import load_config, load_schema, schema_defaults, validate_config
from pipeline.common.errors import ConfigError
from tests.tune.conftest import tune_settings
from training.config import TuneConfig, tune_config
from training.tune import main, overlay, search_space, worker_slots

ROOT = Path(__file__).resolve().parents[2]


def test_default_search_space_parses_into_the_documented_settings():
    cfg = load_config(ROOT / "config.yaml")
    assert tune_config(cfg) == TuneConfig() == tune_config(schema_defaults())  # defaults: the schema's
    assert {f.name for f in dataclasses.fields(TuneConfig)} == set(load_schema()["properties"]["tune"]["properties"])
    space = {p.name: p for p in search_space(cfg)}
    assert list(space) == ["lr", "hidden", "attention", "norm", "loss"]
    assert (space["lr"].low, space["lr"].high, space["lr"].choices) == (0.0005, 0.005, ())
    assert space["hidden"].choices == ("16,32", "32,64", "48,96")
    assert space["loss"].choices == ("cross_entropy", "weighted_mse")


def test_trial_values_become_a_config_overlay_and_the_loss_decides_the_head():
    values = {"lr": 0.001, "hidden": "32,64", "attention": "se", "norm": "layer", "loss": "weighted_mse"}
    assert overlay(values) == {"train": {"lr": 0.001, "loss": "weighted_mse"},
                               "model": {"hidden": [32, 64], "attention": "se", "norm": "layer", "head": "regression"}}
    assert overlay({"loss": "cross_entropy"}) == {"train": {"loss": "cross_entropy"}, "model": {"head": "bins"}}


def _with_space(space: dict) -> dict:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["tune"]["search_space"] = space
    return cfg


@pytest.mark.parametrize("space, key, value", [
    ({"attention": ["self", "transformer"]}, "tune.search_space.attention", "'transformer'"),
    ({"loss": ["cross_entropy", "huber"]}, "tune.search_space.loss", "'huber'"),
    ({"norm": ["group", "group"]}, "tune.search_space.norm", "non-unique"),
    ({"hidden": [[16, 0]]}, "tune.search_space.hidden", "0 is less than the minimum"),
    ({"lr": {"low": 0.001}}, "tune.search_space.lr.high", "required key is missing"),
    ({"depth": [1, 2]}, "tune.search_space.depth", "unknown key (value [1, 2])"),
])
def test_schema_rejects_a_bad_entry_naming_key_and_value(space, key, value):
    with pytest.raises(ConfigError) as err:
        validate_config(_with_space(space))
    assert f"'{key}" in str(err.value) and value in str(err.value)


@pytest.mark.parametrize("space, key, value", [
    ({"lr": {"low": 0.01, "high": 0.001}}, "tune.search_space.lr", "'low': 0.01"),
    ({"hidden": [[16, 32], [16, 32]]}, "tune.search_space.hidden", "[[16, 32], [16, 32]]"),
    # model.groups is 8: 4 * 5 is not a multiple of it under the group norm, in every trial
    ({"hidden": [[5, 10], [16, 32]], "norm": ["group"]}, "tune.search_space.hidden", "[5, 10]"),
    # ... with the layer norm it fits: only that combination is wrong
    ({"hidden": [[5, 10], [16, 32]], "norm": ["group", "layer"]}, "tune.search_space",
     "'hidden': '5,10', 'norm': 'group'"),
])
def test_search_space_rejects_choices_that_fit_no_trial_naming_key_and_value(space, key, value):
    cfg = validate_config(_with_space(space))
    with pytest.raises(ConfigError) as err:
        search_space(cfg)
    assert f"config key '{key}'" in str(err.value) and value in str(err.value)


def test_val_loss_objective_cannot_compare_different_losses():
    cfg = validate_config(_with_space({"loss": ["cross_entropy", "mse"]}))
    cfg["tune"]["objective"] = "val_loss"
    with pytest.raises(ConfigError, match="tune.objective"):
        search_space(cfg)
    cfg["tune"]["search_space"]["loss"] = ["mse"]
    assert [p.name for p in search_space(cfg)] == ["loss"]


def test_storage_must_be_a_journal_file_or_a_database_url():
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for good in ("journal:/shared/tune.journal", "sqlite:///results/tune.db", "postgresql://u@host/db"):
        validate_config(copy.deepcopy({**cfg, "tune": {**cfg["tune"], "storage": good}}))
    with pytest.raises(ConfigError, match=r"'tune.storage': 'results/tune.db'"):
        validate_config({**cfg, "tune": {**cfg["tune"], "storage": "results/tune.db"}})


def test_trial_slots_are_dealt_to_the_workers_in_turn():
    cfg = tune_settings(n_trials=5, workers=2)
    assert worker_slots(cfg, 0) == [0, 2, 4] and worker_slots(cfg, 1) == [1, 3]
    with pytest.raises(ConfigError, match="'tune.workers': 2 workers have no worker 2"):
        worker_slots(cfg, 2)


def test_command_line_reports_a_bad_search_space_in_one_line(tmp_path, capsys):
    cfg = tune_settings(search_space={"lr": {"low": 0.01, "high": 0.001}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc = main(["--config", str(path), "--data", str(tmp_path / "none.zarr"), "--worker", "0",
               "--out", str(tmp_path / "w.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: config key 'tune.search_space.lr'")
    assert not (tmp_path / "w.json").exists()
