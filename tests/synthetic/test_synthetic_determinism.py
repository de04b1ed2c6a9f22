"""Reproducibility contracts: same seed -> same bytes; months independent of period end."""
from __future__ import annotations

import os

import numpy as np
import xarray as xr
from synthetic_testutil import files_of, small_config, write_config

from pipeline.nature_run import generator as synthetic


def test_full_run_layout(full_run):
    files = files_of(full_run)
    for m in ("2020-01", "2020-02", "2020-03"):
        assert f"gauges/{m}.csv" in files and f"truth/{m}.nc" in files
        sondes = [k for k in files if k.startswith(f"soundings/{m}/")]
        assert 6 <= len(sondes) <= 8 and all(k.endswith("-data.txt") for k in sondes)
    assert "soundings/igra2-station-list.txt" in files and "gauges/stations.csv" in files
    truth = xr.open_zarr(full_run / "truth.zarr")
    assert truth.sizes["time"] == (31 + 29 + 31) * 2
    month = xr.open_dataset(full_run / "truth" / "2020-02.nc")
    # the netCDF keeps 3 decimals of rain (least_significant_digit); zarr keeps float32
    np.testing.assert_allclose(truth.rain_mm.sel(time=month.time).values, month.rain_mm.values, atol=1e-3)


def test_same_seed_byte_identical_and_extension_keeps_months(full_run, tmp_path):
    # a shorter period written again: every file of its months equals the longer run's
    cfg = write_config(tmp_path / "c.yaml", small_config(end="2020-02"))
    out = tmp_path / "short"
    synthetic.main(["--config", str(cfg), "--out", str(out), "--threads", "2"])
    short, full = files_of(out), files_of(full_run, months=["2020-01", "2020-02"])
    assert set(short) == set(full)
    for rel in short:
        assert short[rel] == full[rel], rel


def test_month_job_equals_full_run_and_keeps_mtimes(full_run, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", small_config())
    out = tmp_path / "month"
    synthetic.main(["--config", str(cfg), "--out", str(out), "--month", "2020-03"])
    got = files_of(out)
    assert not any("2020-01" in k or "2020-02" in k for k in got)
    assert not (out / "truth.zarr").exists()
    full = files_of(full_run, months=["2020-03"])
    assert set(got) == set(full)
    assert all(got[k] == full[k] for k in got)
    # rewriting identical content leaves every file (network files included) untouched
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    os.utime(out / "gauges" / "stations.csv", ns=(1, 1))
    mtimes[out / "gauges" / "stations.csv"] = 1
    synthetic.main(["--config", str(cfg), "--out", str(out), "--month", "2020-03"])
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_other_seed_and_world_change_the_data():
    cfg = small_config()
    a, _ = synthetic.generate_month(cfg, "2020-01", "advective", 7)
    b, _ = synthetic.generate_month(cfg, "2020-01", "advective", 8)
    c, _ = synthetic.generate_month(cfg, "2020-01", "control", 7)
    assert a["gauges/2020-01.csv"] != b["gauges/2020-01.csv"]
    assert a["gauges/2020-01.csv"] != c["gauges/2020-01.csv"]
    # the control world replaces the weather downstream of the regions' shared edge only
    a_truth = synthetic.generate_month(cfg, "2020-01", "advective", 7)[1]
    c_truth = synthetic.generate_month(cfg, "2020-01", "control", 7)[1]
    west = a_truth.lon < 111.5
    ra, rc = a_truth.fields["rain_mm"], c_truth.fields["rain_mm"]
    np.testing.assert_allclose(ra[..., west], rc[..., west], atol=1e-3)
    east = a_truth.lon > 112.5
    assert np.abs(ra[..., east] - rc[..., east]).mean() > 0.5


def test_network_only_writes_the_same_station_files(full_run, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", small_config())
    synthetic.main(["--config", str(cfg), "--out", str(tmp_path / "net"), "--network-only"])
    got = files_of(tmp_path / "net")
    assert set(got) == {"soundings/igra2-station-list.txt", "gauges/stations.csv"}
    assert all(got[k] == (full_run / k).read_bytes() for k in got)
