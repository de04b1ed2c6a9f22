"""Fixtures of the tuning tests: the tiny processed store of tests/training and a config
whose tune section searches a tiny space on it."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.common.config import validate_config
from tests.training.conftest import _one_thread, make_processed, tiny_config  # noqa: F401 - autouse fixture

#: A small search space that fits the tiny model (model.groups 4).
SPACE = {"lr": {"low": 0.001, "high": 0.01}, "hidden": [[8, 16], [4, 8]], "attention": ["none", "self"],
         "norm": ["group"], "loss": ["cross_entropy", "weighted_mse"]}


def tune_settings(**tune) -> dict:
    """The tiny training config (tests/training) with a tune section on top; ``search_space``
    replaces config.yaml's instead of merging into it."""
    space = tune.pop("search_space", SPACE)
    cfg = tiny_config(tune={"n_trials": 2, "workers": 2, "epochs": 2, **tune})
    cfg["tune"]["search_space"] = space
    return validate_config(cfg)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    return make_processed(tmp_path_factory.mktemp("tune-proc") / "region1.zarr", n_lon=5)
