"""The real workflow end to end on the tiny config, then incremental reprocessing."""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.workflow.conftest import job_counts, snakemake, write_config
from pipeline.dataset import layout


def test_main_job_writes_results_reports_and_logs(tiny_run):
    workdir, proc = tiny_run
    exp2 = workdir / "results" / "exp2"
    metrics = json.loads((exp2 / "metrics.json").read_text())
    assert metrics  # parsed, non-empty
    comparison = json.loads((exp2 / "comparison.json").read_text())
    assert comparison
    report = (exp2 / "report.md").read_text()
    assert "exp2" in report and "exp1" in report and "persistence" in report.lower()
    pngs = sorted(exp2.glob("*.png"))
    assert len(pngs) >= 4 and all(p.stat().st_size > 5000 for p in pngs)
    assert (workdir / "results" / "exp1" / "metrics.json").is_file()
    # Maps a meteorologist reads: the cases with region 2 beside region 1, the observing network.
    for name in ("cases_joined.png", "observing_network.png"):
        assert (exp2 / name).stat().st_size > 5000 and f"]({name})" in report
    assert (workdir / "results" / "network" / "observing_network.csv").read_text().count("\n") > 1
    # Leave-out validation of the gridding: its table in metrics.json, the CSV and the report.
    leave = metrics["gridding_leaveout"]
    assert leave["months"] == ["2020-01"] and leave["repeats"] == 3 and leave["fields"][0]["field"] == "rain"
    assert leave["fields"][0]["n"]["mean"] > 0 and leave["fields"][0]["rmse"]["mean"] > 0
    assert "## How good is the truth? Leave-out validation of the gridding" in report
    assert (exp2 / "gridding_leaveout.csv").read_text().count("\n") == 1 + len(leave["fields"])
    # Every rule wrote a log, and the logs show progress, not just silence.
    logs = sorted((workdir / "logs").rglob("*.log"))
    rules = {p.parent.name for p in logs}
    assert {"sources", "prepare", "dataset", "train", "predict", "evaluate"} <= rules
    assert all(p.stat().st_size > 0 for p in logs)
    # a month's preparation log holds each of its three steps and its exit status
    prep = (workdir / "logs" / "prepare" / "2020-01.log").read_text()
    for i, step in enumerate(("pipeline.ingest soundings", "pipeline.ingest gauges", "pipeline.gridding"), 1):
        assert f"[step {i}/3] python -m {step} " in prep and f"[step {i}/3] exit status 0" in prep
    # Processed tensors follow the contract: 5 variables x 11 levels + rain = 56 channels,
    # region-2 cells never in the loss.
    concat = xr.open_zarr(workdir / "data" / "processed" / "concat.zarr")
    region1 = xr.open_zarr(workdir / "data" / "processed" / "region1.zarr")
    assert concat["x"].shape[1:3] == (5, 11) and region1["x"].shape[1:3] == (5, 11)
    assert len(layout.channel_names(concat)) == 56 == len(layout.channel_names(region1))
    assert concat.sizes["lon"] == 2 * region1.sizes["lon"]
    assert int(concat["loss_mask"].where(~concat["region1_mask"], 0).sum()) == 0
    # Fair comparison (gridding.concat_analysis: separate): the region-1 part of the joined
    # grid is the region-1 grid, value for value, inputs and target alike.
    part = concat.sel(lat=region1["lat"], lon=region1["lon"])
    for name in ("x", "x_rain", "rain_mm", "valid", "loss_mask"):
        np.testing.assert_array_equal(part[name].values, region1[name].values, err_msg=name)


def test_outputs_carry_cf_metadata(tiny_run, tmp_path):
    """Other tools read the real outputs: CF axes, channels by variable and pressure, rain
    time bounds, flat attributes (nested ones as JSON text), a plain netCDF copy."""
    import cf_xarray  # noqa: F401 - registers the .cf accessor

    from pipeline.common import cf

    workdir, _ = tiny_run
    data = workdir / "data"
    for grid in ("region1", "concat"):
        ds = xr.open_zarr(data / "processed" / f"{grid}.zarr")
        assert (ds.cf["latitude"].name, ds.cf["longitude"].name, ds.cf["time"].name) == ("lat", "lon", "time")
        t850 = ds.x.sel(variable="temperature", pressure=850)  # no index to set: variable and pressure are dims
        np.testing.assert_array_equal(t850.values, ds["x"].values[:, 0, 2])
        assert ds.cf["air_pressure"].name == "pressure"
        np.testing.assert_array_equal(ds["time_bnds"].values[:, 0], ds["time"].values - np.timedelta64(12, "h"))
        np.testing.assert_array_equal(ds["time_bnds"].values[:, 1], ds["time"].values)
        attrs = cf.decode_json_attrs(ds.attrs)
        stats = json.loads((data / "processed" / f"{grid}_stats.json").read_text())
        assert attrs["normalisation"]["mean"] == stats["mean"] and ds.attrs["region2_side"] == "west"
        assert ds.attrs["grid"] == grid and ds.attrs["grid_shape"] == [ds.sizes["lat"], ds.sizes["lon"]]
    fragment = xr.open_dataset(data / "gridded" / "concat" / "2020-01.nc")
    assert fragment["units"].values[-1] == "mm" and np.isnan(fragment["pressure"].values[-1])
    assert fragment.cf["latitude"].name == "lat"
    small = ds.isel(time=slice(0, 4)).load()
    small.to_netcdf(tmp_path / "copy.nc")
    xr.testing.assert_identical(xr.open_dataset(tmp_path / "copy.nc").load(), small)


def test_rerun_with_nothing_new_does_nothing(tiny_run):
    workdir, _ = tiny_run
    proc = snakemake(workdir, "-n", "results/exp2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _fingerprint(paths):
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}


def test_adding_a_month_reprocesses_only_that_month(tiny_run, tmp_path):
    src, _ = tiny_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True, copy_function=shutil.copy2)
    data = workdir / "data"
    before = _fingerprint(
        sorted((data / "raw").rglob("*.*")) + sorted((data / "interim").rglob("*.nc")) + sorted((data / "gridded").rglob("*.nc"))
    )
    old = xr.open_zarr(data / "processed" / "concat.zarr").load()
    stats_before = json.loads((data / "processed" / "concat_stats.json").read_text())

    cfg = write_config(tmp_path / "extended.yaml", period={"start": "2020-01", "end": "2020-04"})
    dry = snakemake(workdir, "-n", "results/exp2", configfile=cfg)
    assert job_counts(dry.stdout) == {
        "generate_month": 1,
        "prepare_month": 1,  # ingest soundings, ingest gauges and grid, in one process
        "build_dataset": 2,
        "train_model": 2,
        "predict_test": 2,
        "advection_baseline": 1,
        "evaluate_experiment": 1,
        "network_map": 1,  # the new month's stations and gauges
        "compare_experiment": 1,
    }
    assert "2020-04" in dry.stdout and "month=2020-03" not in dry.stdout

    time.sleep(1.1)  # make any rewrite visible in modification times
    snakemake(workdir, "results/exp2", configfile=cfg)
    after = _fingerprint(Path(p) for p in before)
    assert after == before, "earlier months' raw, interim or gridded files changed"
    assert (data / "gridded" / "concat" / "2020-04.nc").is_file()

    # Training-period statistics and earlier normalised values are bit-identical.
    stats_after = json.loads((data / "processed" / "concat_stats.json").read_text())
    assert stats_after.pop("config_hash") != stats_before.pop("config_hash")  # the period changed
    assert stats_after == stats_before  # means, stds, counts, fitted_on: identical
    new = xr.open_zarr(data / "processed" / "concat.zarr")
    assert new.sizes["time"] == old.sizes["time"] + 60
    for name in ("x", "x_rain"):
        np.testing.assert_array_equal(new[name].isel(time=slice(0, old.sizes["time"])).values, old[name].values)

    again = snakemake(workdir, "-n", "results/exp2", configfile=cfg)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_interrupted_assembly_leaves_nothing_a_rerun_trusts(tiny_run, tmp_path):
    """Kill the run during dataset assembly; the rerun redoes it and matches."""
    import signal
    import subprocess
    import sys
    import os

    src, _ = tiny_run
    workdir = tmp_path / "run"
    shutil.copytree(src, workdir, symlinks=True, copy_function=shutil.copy2)
    processed = workdir / "data" / "processed"
    reference = xr.open_zarr(processed / "region1.zarr").load()
    shutil.rmtree(processed)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    from tests.workflow.conftest import REPO, TINY

    p = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(TINY), "--cores", "1", "data/processed/region1.zarr"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(processed.glob(".tmp-*")) and p.poll() is None:
        time.sleep(0.01)
    if p.poll() is not None:
        pytest.skip("the assembly finished before it could be interrupted")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    # Killed mid-write: the final store does not exist, only a temporary sibling.
    assert not (processed / "region1.zarr").exists()
    snakemake(workdir, "--unlock")  # a killed Snakemake leaves its lock, as after a power loss
    snakemake(workdir, "data/processed/region1.zarr")
    rebuilt = xr.open_zarr(processed / "region1.zarr").load()
    xr.testing.assert_equal(rebuilt[["x", "x_rain", "rain_mm"]], reference[["x", "x_rain", "rain_mm"]])


def test_snakemake_report_holds_figures_and_tables_of_both_experiments(tiny_run):
    workdir, _ = tiny_run
    snakemake(workdir, "--report", "report.html", "results/exp2")
    html = (workdir / "report.html").read_text(errors="replace")
    for exp in ("exp1", "exp2"):
        for name in ("cases.png", "categorical_scores.png", "metrics.csv"):
            assert f"results/{exp}/{name}" in html
    assert "results/exp2/comparison.csv" in html
    assert "results/exp2/gridding_leaveout.csv" in html  # the leave-out table of the gridding
