"""The project's real readers read the nature run's files (and NCEI's real file) alike."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_testutil import small_config, write_config

igra2 = pytest.importorskip("pipeline.readers.igra2")

DATA = Path(__file__).resolve().parents[1] / "data" / "synthetic"


def test_igra2_reader_reads_real_and_synthetic(full_run, tmp_path):
    real = igra2.read_igra2(DATA / "AUM00011035-data.txt.gz")
    assert len(real.soundings) == 321
    paths = sorted((full_run / "soundings" / "2020-01").glob("*-data.txt"))
    for path in paths:
        raw = igra2.read_igra2(path)
        headers = [x for x in path.read_text().splitlines() if x.startswith("#")]
        assert len(raw.soundings) == len(headers)
        assert raw.counts["qc_malformed_lines"] == 0
    # values at 500 hPa equal the fixed-column decoding of the same records
    path = paths[0]
    raw = igra2.read_igra2(path)
    lv = raw.levels
    at500 = lv[lv.pressure == 500.0]
    recs = [x for x in path.read_text().splitlines() if x[:2] == "10" and x[9:15] == " 50000"]
    temp = np.array([int(x[22:27]) for x in recs], float)
    temp[temp < -8000] = np.nan
    np.testing.assert_allclose(at500.temperature.to_numpy(), temp / 10, equal_nan=True)
    stations = igra2.read_station_list(full_run / "soundings" / "igra2-station-list.txt")
    assert len(stations) == 8 and stations.index[0].startswith("SYN000")


def test_ingest_commands_on_synthetic_month(full_run, tmp_path):
    """The documented ingest commands (data contracts, section 2) on a synthetic month."""
    ingest = pytest.importorskip("pipeline.ingest")
    xr = pytest.importorskip("xarray")
    cfg = write_config(tmp_path / "c.yaml", small_config())
    paths = [str(p) for p in sorted((full_run / "soundings" / "2020-02").glob("*-data.txt"))]
    out = tmp_path / "s.nc"
    ingest.main(["soundings", "--config", str(cfg), "--format", "igra2", "--station-list",
                 str(full_run / "soundings" / "igra2-station-list.txt"), "--month", "2020-02",
                 "--out", str(out), *paths])
    ds = xr.open_dataset(out)
    t500 = ds.temperature.sel(level=500.0)
    assert np.isfinite(t500).mean() > 0.9
    assert -30 < float(t500.mean()) < -5  # winter 500 hPa over central China
    out = tmp_path / "g.nc"
    ingest.main(["gauges", "--config", str(cfg), "--stations", str(full_run / "gauges" / "stations.csv"),
                 "--month", "2020-02", "--out", str(out), str(full_run / "gauges" / "2020-02.csv"),
                 str(full_run / "gauges" / "2020-01.csv")])
    g = xr.open_dataset(out)
    rain = g.rain_mm.values
    assert g.sizes["time"] == 58 and g.sizes["station"] == 24
    assert 0.6 < np.isfinite(rain).mean() < 1.0  # a few windows lack hours
    assert (rain[np.isfinite(rain)] >= 0).all()
