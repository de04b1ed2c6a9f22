"""Shared small nature run for the synthetic tests (few stations, three months)."""
from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_testutil import small_config, write_config

from pipeline.nature_run import generator as synthetic


@pytest.fixture(scope="session")
def full_run(tmp_path_factory) -> Path:
    """Full run 2020-01..2020-03 (advective) through the command line, one worker."""
    out = tmp_path_factory.mktemp("full")
    cfg = write_config(out.parent / "full.yaml", small_config())
    assert synthetic.main(["--config", str(cfg), "--out", str(out), "--threads", "1"]) == 0
    return out
