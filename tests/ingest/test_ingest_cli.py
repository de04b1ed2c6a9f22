"""The command-line entry points write the contracted datasets and QC logs."""
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.ingest import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "config.yaml")


def test_soundings_cli_month(tmp_path, data_dir):
    out = tmp_path / "interim" / "2015-03.nc"
    main(["soundings", "--config", CONFIG, "--format", "igra2", "--station-list",
          str(data_dir / "igra2" / "igra2-station-list.txt"), "--month", "2015-03", "--out", str(out),
          str(data_dir / "igra2" / "AUM00011035-data.txt.gz")])
    ds = xr.open_dataset(out)
    assert ds.sizes == {"profile": 62, "level": 11}
    assert list(ds["level"].values) == [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]
    assert ds.attrs["qc_outside_month"] == 321 - 62 and ds.attrs["Conventions"] == "CF-1.8"
    assert ds["temperature"].dtype == np.float32 and ds["temperature"].attrs["units"] == "degC"
    assert ds["u"].attrs["units"] == "m s-1" and ds["level"].attrs["units"] == "hPa"
    assert (ds["station"].values == "AUM00011035").all()
    assert (ds["time"].dt.month == 3).all()
    qc = json.loads(out.with_suffix(".qc.json").read_text())
    assert qc["qc_soundings_kept"] == 62 and qc["qc_outside_month"] == 259
    # mandatory levels are reported exactly: interpolation returns the reported values
    first = ds.isel(profile=0)
    assert first["time"].values == np.datetime64("2015-03-01T00:00")
    t500 = float(first["temperature"].sel(level=500))
    assert np.isfinite(t500)


def test_soundings_cli_levels_option(tmp_path, data_dir):
    out = tmp_path / "s.nc"
    main(["soundings", "--config", CONFIG, "--format", "igra2", "--levels", "850,500", "--out", str(out),
          str(data_dir / "igra2" / "AUM00011035-data.txt.gz")])
    ds = xr.open_dataset(out)
    # first sounding, 500 hPa record: GPH 5470, TEMP -265, DPDP 80, WDIR 140, WSPD 60
    p0 = ds.isel(profile=0)
    assert float(p0["geopotential_height"].sel(level=500)) == 5470
    assert float(p0["temperature"].sel(level=500)) == pytest.approx(-26.5)
    assert float(p0["dewpoint"].sel(level=500)) == pytest.approx(-34.5)
    assert float(p0["u"].sel(level=500)) == pytest.approx(-6 * np.sin(np.deg2rad(140)), abs=1e-5)
    assert float(p0["lat"]) == pytest.approx(48.2333)  # header coordinates


def test_gauges_and_partition_cli(tmp_path, data_dir, one_gauge_month):
    out = one_gauge_month
    ds = xr.open_dataset(out)
    assert ds.sizes == {"time": 62, "station": 1, "nv": 2}  # nv: the two time bounds
    assert float(ds["rain_mm"].sel(time="2020-01-01T12:00", station="G1")) == pytest.approx(6.0)
    assert np.isnan(float(ds["rain_mm"].sel(time="2020-01-01T00:00", station="G1")))
    assert json.loads(out.with_suffix(".qc.json").read_text())["qc_windows_incomplete"] == 61
    dly = tmp_path / "d.nc"
    main(["gauges", "--config", CONFIG, "--format", "ghcn-daily", "--month", "1962-11", "--out", str(dly),
          str(data_dir / "gauges" / "USW00003870.dly.gz")])
    d = xr.open_dataset(dly)
    assert float(d["prcp_mm"].sel(time="1962-11-09", station="USW00003870")) == pytest.approx(71.1)
    main(["partition", "--format", "igra2", "--out", str(tmp_path / "raw"),
          str(data_dir / "igra2" / "AUM00011035-data.txt.gz")])
    assert (tmp_path / "raw" / "2015-06" / "AUM00011035-data.txt").exists()


def test_soundings_cli_folder_input_and_empty_month(tmp_path, data_dir, capsys):
    raw = tmp_path / "raw"
    main(["partition", "--out", str(raw), str(data_dir / "igra2" / "AUM00011035-data.txt.gz")])
    out = tmp_path / "2015-02.nc"
    main(["soundings", "--config", CONFIG, "--month", "2015-02", "--out", str(out), str(raw / "2015-02")])
    ds = xr.open_dataset(out)
    assert (ds["time"].dt.month == 2).all() and ds.attrs["qc_outside_month"] == 0
    (raw / "2015-07").mkdir()
    main(["soundings", "--config", CONFIG, "--month", "2015-07", "--out", str(tmp_path / "e.nc"), str(raw / "2015-07")])
    assert xr.open_dataset(tmp_path / "e.nc").sizes["profile"] == 0
    # a missing input is a bad input: one line naming the path, exit status 2
    assert main(["soundings", "--config", CONFIG, "--out", str(tmp_path / "x.nc"), str(tmp_path / "nothere.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "nothere.txt" in err


def test_soundings_cli_without_config_uses_schema_defaults(tmp_path, data_dir, capsys):
    out = tmp_path / "x.nc"
    assert main(["soundings", "--out", str(out), str(data_dir / "igra2" / "AUM00011035-data.txt.gz")]) == 0
    ds = xr.open_dataset(out)
    from pipeline.common.config import load_schema

    assert list(ds["level"].values) == load_schema()["properties"]["levels_hpa"]["default"]
    assert ds.sizes["profile"] == 321


def test_wyoming_cli_station_and_time_for_a_table_without_header(tmp_path, data_dir, capsys):
    src = str(data_dir / "wyoming" / "nov11_sounding.txt")
    lst = str(data_dir / "igra2" / "igra2-station-list.txt")
    out = tmp_path / "w.nc"
    assert main(["soundings", "--format", "wyoming", "--out", str(out), src]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nov11_sounding.txt:2: no station/time" in err[0]
    assert main(["soundings", "--format", "wyoming", "--station", "72327", "--time", "2002-11-11T00:00",
                 "--station-list", lst, "--out", str(out), src]) == 0
    ds = xr.open_dataset(out)
    assert ds.sizes["profile"] == 1 and str(ds["station"].values[0]) == "72327"
    assert ds["time"].values[0] == np.datetime64("2002-11-11T00:00")
    # '  850.0   1396   16.2   11.2     72 ...' (Nashville, position from the station list)
    assert float(ds["temperature"].sel(level=850)[0]) == pytest.approx(16.2)
    assert float(ds["geopotential_height"].sel(level=850)[0]) == 1396
    assert float(ds["lat"][0]) == pytest.approx(36.2472)
    with pytest.raises(SystemExit) as e:
        main(["soundings", "--format", "wyoming", "--time", "2002-13-11", "--out", str(out), src])
    assert e.value.code == 2
