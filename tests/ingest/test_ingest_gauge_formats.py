"""Real hourly gauge formats with explicit units (KNMI uurgeg, CSV with a unit), the
plausibility check and the refusal of daily-only records."""
import numpy as np
import pandas as pd
import pytest

from pipeline.common.errors import InvalidGaugeError
from pipeline.readers.gauge_formats import read_gauge_file, read_knmi_hourly, to_monthly_csv

KNMI = "uurgeg_260_2000-01.txt"


def _raw_rh(path) -> dict:
    """RH of every row straight from the text: (YYYYMMDD, HH) -> field text."""
    out = {}
    lines = path.read_text().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("# STN,YYYYMMDD"))
    cols = [c.strip().lstrip("#").strip() for c in lines[head].split(",")]
    for ln in lines[head + 1:]:
        if ln.strip():
            f = ln.split(",")
            out[(f[cols.index("YYYYMMDD")].strip(), int(f[cols.index("HH")]))] = f[cols.index("RH")].strip()
    return out


def test_knmi_hourly_values_against_the_text(data_dir):
    path = data_dir / "gauges" / KNMI
    df, counts = read_knmi_hourly(path)
    raw = _raw_rh(path)
    assert len(df) == len(raw) == 744 and (df["station"] == "260").all()
    s = df.set_index("time")["rain_mm"]
    # '  260,20000101,    5, ... ,   10,    4,10207, ...': RH 4 = 0.4 mm in the hour ending 05 UT
    assert raw[("20000101", 5)] == "4" and s[pd.Timestamp("2000-01-01 05:00")] == pytest.approx(0.4)
    # RH -1 (under 0.05 mm) in the hour ending 04 UT: 0 mm, counted
    assert raw[("20000101", 4)] == "-1" and s[pd.Timestamp("2000-01-01 04:00")] == 0.0
    assert counts["qc_trace"] == sum(v == "-1" for v in raw.values())
    # HH 24 ends at 00 UT of the next day
    assert s.index.max() == pd.Timestamp("2000-02-01 00:00") and s.index.min() == pd.Timestamp("2000-01-01 01:00")
    for (day, hh), text in raw.items():  # every value, 0.1 mm
        t = pd.Timestamp(day) + pd.Timedelta(hours=hh)
        expect = np.nan if text == "" else (0.0 if text == "-1" else int(text) / 10)
        assert s[t] == pytest.approx(expect, nan_ok=True), (day, hh)


def test_knmi_to_twelve_hour_totals(data_dir, tmp_path):
    from pipeline.readers.gauges import gauge_month, read_stations

    path = data_dir / "gauges" / KNMI
    df, _ = read_knmi_hourly(path)
    written = to_monthly_csv([df], tmp_path / "gauges")
    assert [p.name for p in written] == ["2000-01.csv", "2000-02.csv"]
    assert to_monthly_csv([df.iloc[:0]], tmp_path / "none") == []  # nothing read, nothing written
    # De Bilt, position from KNMI's station metadata
    (tmp_path / "stations.csv").write_text("id,lat,lon,elevation_m\n260,52.0992,5.1765,1.9\n")
    ds, _ = gauge_month("2000-01", written[0], read_stations(tmp_path / "stations.csv"))
    raw = _raw_rh(path)
    total = sum(0.0 if raw[("20000101", h)] == "-1" else int(raw[("20000101", h)]) / 10 for h in range(1, 13))
    assert float(ds["rain_mm"].sel(time="2000-01-01T12:00", station="260")) == pytest.approx(total)
    assert np.isnan(float(ds["rain_mm"].sel(time="2000-01-01T00:00", station="260")))  # no December file


def test_knmi_malformed_row_names_file_and_line(data_dir, tmp_path):
    lines = (data_dir / "gauges" / KNMI).read_bytes().split(b"\n")
    i = next(k for k, ln in enumerate(lines) if ln.startswith(b"  260,20000102,    3,"))
    lines[i] = lines[i].replace(b"  260,20000102,    3,", b"  260,20000102,   3x,")
    p = tmp_path / "uurgeg_260.txt"
    p.write_bytes(b"\n".join(lines))
    with pytest.raises(InvalidGaugeError, match=rf"uurgeg_260.txt:{i + 1}: .*integers"):
        read_knmi_hourly(p)
    df, counts = read_knmi_hourly(p, "skip")
    assert len(df) == 743 and counts["qc_malformed_records"] == 1


@pytest.mark.parametrize("unit, factor", [("mm", 1.0), ("0.1 mm", 10.0), ("inch", 1 / 25.4), ("m", 1e-3)])
def test_csv_with_declared_unit(data_dir, tmp_path, unit, factor):
    df, _ = read_knmi_hourly(data_dir / "gauges" / KNMI)
    p = tmp_path / "any.csv"
    body = "station,time,rain\n" + "".join(f"{s},{t:%Y-%m-%dT%H:%M},{'' if np.isnan(r) else repr(r * factor)}\n"
                                           for s, t, r in zip(df["station"], df["time"], df["rain_mm"]))
    p.write_text(body)
    got, _ = read_gauge_file(p, "csv", unit=unit)
    np.testing.assert_allclose(got["rain_mm"], df["rain_mm"], rtol=1e-9, atol=1e-12)


def test_values_in_another_unit_are_refused(data_dir, tmp_path):
    df, _ = read_knmi_hourly(data_dir / "gauges" / KNMI)
    p = tmp_path / "metres.csv"  # the real values written in metres, declared as mm
    p.write_text("station,time,rain_mm\n" + "".join(f"{s},{t:%Y-%m-%dT%H:%M},{'' if np.isnan(r) else r / 1000}\n"
                                                    for s, t, r in zip(df["station"], df["time"], df["rain_mm"])))
    with pytest.raises(InvalidGaugeError, match=r"metres.csv:1: values read as 'mm' look like another unit.*metres"):
        read_gauge_file(p, "csv")
    p = tmp_path / "tenths.csv"  # 0.1 mm declared as inches: wet hours of several cm
    p.write_text("station,time,rain\n" + "".join(f"{s},{t:%Y-%m-%dT%H:%M},{'' if np.isnan(r) else r * 10}\n"
                                                 for s, t, r in zip(df["station"], df["time"], df["rain_mm"])))
    with pytest.raises(InvalidGaugeError, match=r"values read as 'inch' look like another unit"):
        read_gauge_file(p, "csv", unit="inch")


@pytest.mark.parametrize("name, words", [
    ("neerslaggeg_DE-BILT_550.txt", "KNMI daily file"),
    ("USW00003870.dly.gz", "GHCN-Daily"),
    ("USC00411885.dly", "GHCN-Daily"),
])
@pytest.mark.parametrize("fmt", ["knmi-hourly", "csv"])
def test_daily_records_are_refused_with_the_reason(data_dir, name, words, fmt):
    with pytest.raises(InvalidGaugeError, match=rf"{name}:1: .*{words}.*cannot make the 12 h windows ending at 00 and 12"):
        read_gauge_file(data_dir / "gauges" / name, fmt)


def test_convert_gauges_command(data_dir, tmp_path, capsys):
    from pipeline.ingest import main

    out = tmp_path / "raw" / "gauges"
    assert main(["convert-gauges", "--format", "knmi-hourly", "--out", str(out), str(data_dir / "gauges" / KNMI)]) == 0
    text = (out / "2000-01.csv").read_text().splitlines()
    assert text[0] == "station,time,rain_mm" and "260,2000-01-01T05:00,0.40" in text
    assert (out / "2000-02.csv").read_text().splitlines()[1:] == ["260,2000-02-01T00:00,0.00"]
    assert main(["convert-gauges", "--format", "knmi-hourly", "--out", str(out),
                 str(data_dir / "gauges" / "neerslaggeg_DE-BILT_550.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [e for e in err if "error" in e] == err[-1:]  # one line, no traceback
    assert err[-1].startswith("error: ") and "KNMI daily file" in err[-1]
