"""Gauge 12 h windows on a worked example; GHCN-Daily PRCP values and flags."""
import numpy as np
import pandas as pd
import pytest

from pipeline.common.errors import InvalidGaugeError
from pipeline.readers.gauges import gauge_month, read_ghcn_daily, read_stations


def _write(tmp_path, name, rows, header="station,time,rain_mm"):
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(f"{s},{t},{v}" for s, t, v in rows) + "\n")
    return p


@pytest.fixture
def example(tmp_path):
    (tmp_path / "stations.csv").write_text("id,lat,lon,elevation_m\nA,30.0,113.0,20\nB,31.0,114.0,35\nC,32,115,5\n")
    prev = []  # hours ending 2020-01-31 13:00 .. 23:00: A 1.0 mm each; B misses 18:00
    for h in range(13, 24):
        prev.append(("A", f"2020-01-31T{h:02d}:00", 1.0))
        if h != 18:
            prev.append(("B", f"2020-01-31T{h:02d}:00", 0.2))
    cur = [("A", "2020-02-01T00:00", 0.5), ("B", "2020-02-01T00:00", 0.2)]
    for h in range(1, 13):  # window ending 2020-02-01 12:00
        cur.append(("A", f"2020-02-01T{h:02d}:00", 0.1 * (h - 1)))
        cur.append(("B", f"2020-02-01T{h:02d}:00", -0.3 if h == 5 else 0.0))  # negative: QC'd
    for h in range(13, 24):
        cur.append(("A", f"2020-02-01T{h:02d}:00", 999.0 if h == 20 else 2.0))  # absurd: QC'd
        cur.append(("B", f"2020-02-01T{h:02d}:00", ""))  # empty field = missing hour
    cur.append(("A", "2020-02-02T00:00", 2.0))
    cur.append(("A", "2020-03-01T00:00", 5.0))  # belongs to the March file: counted, not used
    return (read_stations(tmp_path / "stations.csv"), _write(tmp_path, "2020-02.csv", cur),
            _write(tmp_path, "2020-01.csv", prev))


def test_twelve_hour_windows_worked_example(example):
    stations, cur, prev = example
    ds, counts = gauge_month("2020-02", cur, stations, prev, {"min_hours_present": 12, "max_hourly_rain_mm": 150})
    assert ds.sizes == {"time": 58, "station": 3, "nv": 2}  # nv: the two time bounds
    r = ds["rain_mm"].sel
    assert float(r(time="2020-02-01T00:00", station="A")) == pytest.approx(11.5)  # 11 x 1.0 + 0.5
    assert np.isnan(float(r(time="2020-02-01T00:00", station="B")))  # 11 of 12 hours
    assert float(r(time="2020-02-01T12:00", station="A")) == pytest.approx(6.6)  # 0.0 + 0.1 + ... + 1.1
    assert np.isnan(float(r(time="2020-02-01T12:00", station="B")))  # negative hour removed
    assert np.isnan(float(r(time="2020-02-02T00:00", station="A")))  # absurd hour removed
    assert np.isnan(float(r(time="2020-02-02T00:00", station="B")))  # empty hours: missing, never zero
    assert ds["rain_mm"].sel(station="C").isnull().all()  # no records at all
    assert counts["qc_negative_rain"] == 1 and counts["qc_absurd_rain"] == 1
    assert counts["qc_outside_file_month"] == 1 and counts["qc_missing_hours"] == 11
    assert ds.attrs["qc_negative_rain"] == 1
    assert float(ds["lat"].sel(station="B")) == 31.0 and float(ds["elevation"].sel(station="A")) == 20


def test_min_hours_present_and_previous_month(example):
    stations, cur, prev = example
    ds, _ = gauge_month("2020-02", cur, stations, prev, {"min_hours_present": 11})
    assert float(ds["rain_mm"].sel(time="2020-02-01T00:00", station="B")) == pytest.approx(11 * 0.2)
    assert float(ds["rain_mm"].sel(time="2020-02-02T00:00", station="A")) == pytest.approx(2.0 * 11)
    ds, _ = gauge_month("2020-02", cur, stations, None, {"min_hours_present": 12})
    assert np.isnan(float(ds["rain_mm"].sel(time="2020-02-01T00:00", station="A")))  # no previous file


def test_unit_and_malformed_errors(tmp_path, example):
    stations, _, _ = example
    p = _write(tmp_path, "inch.csv", [("A", "2020-02-01T01:00", 0.1)], header="station,time,rain_in")
    with pytest.raises(InvalidGaugeError, match=r"inch.csv:1: rain column must be 'rain_mm'"):
        gauge_month("2020-02", p, stations)
    p = _write(tmp_path, "bad.csv", [("A", "2020-02-01T01:00", 0.1), ("A", "2020-02-01T02:00", "1.2x")])
    with pytest.raises(InvalidGaugeError, match=r"bad.csv:3: rain_mm is not a number: '1.2x'"):
        gauge_month("2020-02", p, stations)
    p = _write(tmp_path, "extra.csv", [("A", "2020-02-01T01:00", 0.1), ("A", "2020-02-01T02:00", "1,2")])
    with pytest.raises(InvalidGaugeError, match=r"extra.csv:3: wrong number of fields"):
        gauge_month("2020-02", p, stations)
    ds, counts = gauge_month("2020-02", p, stations, qc={"on_malformed": "skip"})
    assert counts["qc_malformed_records"] == 1
    p = _write(tmp_path, "badt.csv", [("A", "2020-02-31T01:00", 0.1)])
    with pytest.raises(InvalidGaugeError, match=r"badt.csv:2: time is not ISO 8601: '2020-02-31T01:00'"):
        gauge_month("2020-02", p, stations)
    ds, counts = gauge_month("2020-02", p, stations, qc={"on_malformed": "skip"})
    assert counts["qc_malformed_records"] == 1


def test_ghcn_daily_values_and_flags(data_dir):
    df, counts = read_ghcn_daily(data_dir / "gauges" / "USW00003870.dly.gz")
    assert counts["qc_days_read"] == 18318  # README: 18,318 daily values
    assert df["prcp_mm"].max() == pytest.approx(236.7)  # 2367 tenths of mm
    nov = df[(df["time"] >= "1962-11-01") & (df["time"] < "1962-12-01")].set_index("time")["prcp_mm"]
    # 'USW00003870196211PRCP    0  0    0  0    0T 0 ...': day 3 is a trace, day 9 = 711
    assert nov.loc["1962-11-09"] == pytest.approx(71.1) and nov.loc["1962-11-03"] == 0.0
    assert len(nov) == 30  # day 31 of November (-9999) does not exist
    t = df[df["time"] == "1962-11-03"].iloc[0]
    assert t.mflag == "T" and t.sflag == "0"
    s = df[df["qflag"] == "S"]  # the one failed quality check -> NaN, counted
    assert len(s) == 1 and np.isnan(s["prcp_mm"].iloc[0]) and counts["qc_failed_quality_flag"] == 1
    assert str(s["time"].iloc[0].date()) == "1976-07-29"
    assert counts["qc_trace"] > 0


def test_ghcn_presumed_zero_is_missing(data_dir):
    df, counts = read_ghcn_daily(data_dir / "gauges" / "USC00411885.dly")
    assert len(df) == 30 and (df["time"].dt.strftime("%Y-%m") == "1912-09").all()
    assert (df["mflag"] == "P").all() and df["prcp_mm"].isna().all() and counts["qc_presumed_zero"] == 30


@pytest.mark.parametrize("body, line, words", [
    (b"station,time,rain_mm\nA,2020-02-01T01:00,0.1\nA,2020-02-01T02:00,\xe9\n", 3, "not UTF-8"),
    (b"station,time,rain_mm\nA,2020-02-01T01:00,0.1\nA,\"2020-02-01T02:00,0.2\nA,2020-02-01T03:00,0.2\n", 3,
     "wrong number of fields or quoting"),
    (b"", 1, "empty file"),
])
def test_raw_parser_errors_become_gauge_errors(tmp_path, example, body, line, words):
    stations, _, _ = example
    p = tmp_path / "g.csv"
    p.write_bytes(body)
    with pytest.raises(InvalidGaugeError, match=rf"g.csv:{line}: {words}"):
        gauge_month("2020-02", p, stations)
