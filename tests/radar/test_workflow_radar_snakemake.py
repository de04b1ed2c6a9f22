"""`snakemake results/radar` end to end on the tiny radar overlay: every rule runs and logs,
metrics.json holds the verdict line and the nowcast files have the contract's layout."""
import json

import pytest
import xarray as xr

from tests.workflow.conftest import REPO, TINY, snakemake


@pytest.mark.slow
def test_results_radar_tiny(tmp_path):
    snakemake(tmp_path, "results/radar", "--configfile", str(TINY),
              str(REPO / "tests" / "radar" / "config.radar_tiny.yaml"), configfile=TINY)
    m = json.loads((tmp_path / "results" / "radar" / "metrics.json").read_text())
    assert m["headline"].startswith("Z_DR and K_DP improve the 0-1 h nowcast: ")
    assert set(m["models"]) >= {"reflectivity", "dualpol", "persistence"}
    nc = xr.load_dataset(tmp_path / "results" / "radar_runs" / "nowcasts" / "dualpol_seed0.nc")
    assert nc["nowcast"].dims == ("sample", "lead", "y", "x") and nc.sizes["lead"] == 3
    for name in ("nature_run", "grid", "train_dualpol_seed0", "predict_dualpol_seed0", "report"):
        assert (tmp_path / "logs" / "radar" / f"{name}.log").is_file()
