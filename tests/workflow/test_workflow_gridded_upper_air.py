"""The workflow with data.upper_air: gridded (rules/upper_air.smk): the gridded source
replaces the sounding ingest in prepare_month, the rest of the DAG is unchanged.

The gridded file is tests/data/gridded/GFS_test_subset.nc (a real GFS analysis, 2010-10-26
12 UTC); the gauges come from the nature run written for the same regions."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from tests.workflow.conftest import REPO, job_counts, snakemake, write_config

GFS = REPO / "tests" / "data" / "gridded" / "GFS_test_subset.nc"
OVERRIDES = dict(
    period={"start": "2010-10", "end": "2010-12"},
    splits={"train": {"start": "2010-10-01", "end": "2010-10-31"}, "val": {"start": "2010-11-05", "end": "2010-11-30"},
            "test": {"start": "2010-12-05", "end": "2010-12-31"}},
    regions={"region1": {"lat_min": 29.5, "lat_max": 33.5, "lon_min": -96.5, "lon_max": -92.5},
             "region2": {"lat_min": 29.5, "lat_max": 33.5, "lon_min": -100.5, "lon_max": -96.5},
             "region2_side": "west"},
)


def _raw(tmp_path, gauges: bool):
    raw = tmp_path / "raw"
    (raw / "gridded").mkdir(parents=True)
    shutil.copy(GFS, raw / "gridded")
    if gauges:  # the nature run's gauge files for the same regions
        syn = write_config(tmp_path / "syn.yaml", data={"source": "synthetic", "raw_dir": str(tmp_path / "syn")},
                           **OVERRIDES)
        subprocess.run([sys.executable, "-m", "pipeline.nature_run", "--config", str(syn), "--out",
                        str(tmp_path / "syn"), "--no-progress"], check=True, capture_output=True, cwd=REPO)
        shutil.copytree(tmp_path / "syn" / "gauges", raw / "gauges")
    else:
        (raw / "gauges").mkdir()
        for name in ("2010-10.csv", "2010-11.csv", "2010-12.csv", "stations.csv"):
            (raw / "gauges" / name).write_text("")
    return write_config(tmp_path / "c.yaml", data={"source": "raw", "raw_dir": str(raw), "work_dir": "data",
                                                   "upper_air": "gridded"}, **OVERRIDES)


def test_dry_run_prepares_months_from_the_gridded_files(tmp_path):
    cfg = _raw(tmp_path, gauges=False)
    proc = snakemake(tmp_path, "-n", "-p", "results/exp2", configfile=cfg)
    counts = job_counts(proc.stdout)
    assert counts["prepare_month"] == 3 and counts["build_dataset"] == 2 and counts["compare_experiment"] == 1
    assert "generate_month" not in counts
    assert proc.stdout.count("pipeline.gridding.upper_air") == 3 and "pipeline.ingest soundings" not in proc.stdout
    assert "GFS_test_subset.nc" in proc.stdout


@pytest.mark.slow
def test_gridded_source_builds_the_datasets(tmp_path):
    """prepare_month and build_dataset on the real GFS file (about 2 minutes on 2 cores)."""
    cfg = _raw(tmp_path, gauges=True)
    snakemake(tmp_path, "data/processed/concat.zarr", "data/processed/region1.zarr", configfile=cfg)
    frag = xr.open_dataset(tmp_path / "data" / "gridded" / "concat" / "2010-10.nc")
    lat, lon = float(frag["lat"][1]), float(frag["lon"][-2])
    with xr.open_dataset(GFS) as raw:
        t = float(raw["Temperature_isobaric"].sel(isobaric3=70000.0).isel(time=0)
                  .interp(lat=lat, lon=360 + lon).item()) - 273.15
    got = float(frag["x"].sel(channel="temperature_700hPa", lat=lat, lon=lon, time="2010-10-26T12:00"))
    assert got == pytest.approx(t, abs=1e-4)
    assert frag.attrs["frames_without_upper_air"] == 61
    store = xr.open_zarr(tmp_path / "data" / "processed" / "concat.zarr")
    assert store.sizes["time"] == 184 and np.isfinite(store["x_rain"].values).any()
