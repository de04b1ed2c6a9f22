"""IGRA v2 reader against the text of the real AUM00011035 file and its README quirks."""
import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from pipeline.readers.igra2 import parse_igra2, partition_files, read_igra2


def _line(text_lines, n):
    return text_lines[n - 1]


def test_counts_and_first_sounding(aum_raw, aum_bytes):
    lines = aum_bytes.decode().split("\n")
    assert len(aum_raw.soundings) == 321
    assert len(aum_raw.levels) == 34160
    s0 = aum_raw.soundings.iloc[0]
    assert s0.station == "AUM00011035"
    assert s0.time == pd.Timestamp("2015-01-23 12:00")
    assert s0.lat == pytest.approx(48.2333) and s0.lon == pytest.approx(16.35)
    assert aum_raw.soundings["time"].iloc[-1] == pd.Timestamp("2015-06-30 12:00")
    hours = [int(ln[24:26]) for ln in lines if ln.startswith("#")]
    assert list(aum_raw.soundings["time"].dt.hour) == hours
    # header NUMLEV = level records of each sounding (README: all match)
    numlev = [int(ln[32:36]) for ln in lines if ln.startswith("#")]
    assert np.array_equal(np.bincount(aum_raw.levels["profile"]), numlev)
    assert aum_raw.counts["qc_soundings_without_levels"] == 0


def test_500hpa_level_of_first_sounding_matches_file_text(aum_raw, aum_bytes):
    lines = aum_bytes.decode().split("\n")
    text = _line(lines, 22)
    assert text == "10 -9999  50000  5470B -265B-9999    80   140    60 "
    row = aum_raw.levels[aum_raw.levels["line"] == 22].iloc[0]
    assert row.profile == 0
    assert row.pressure == 500.0  # 50000 Pa
    assert row.geopotential_height == 5470.0
    assert row.temperature == pytest.approx(-26.5)
    assert row.dewpoint_depression == pytest.approx(8.0)
    assert row.wind_direction == 140.0 and row.wind_speed == pytest.approx(6.0)
    assert np.isnan(row.relative_humidity)  # RH -9999 everywhere in this file


def test_every_level_against_fixed_columns(aum_raw, aum_bytes):
    """All 34,160 level records agree with a plain per-line column slicing."""
    lines = [ln for ln in aum_bytes.decode().split("\n") if ln and not ln.startswith("#")]
    press = np.array([int(ln[9:15]) for ln in lines]) / 100.0
    temp = np.array([int(ln[22:27]) for ln in lines], float)
    temp = np.where(np.isin(temp, (-9999, -8888)), np.nan, temp / 10)
    wspd = np.array([int(ln[46:51]) for ln in lines], float)
    wspd = np.where(np.isin(wspd, (-9999, -8888)), np.nan, wspd / 10)
    np.testing.assert_array_equal(aum_raw.levels["pressure"].to_numpy(), press)
    np.testing.assert_array_equal(aum_raw.levels["temperature"].to_numpy(), temp)
    np.testing.assert_array_equal(aum_raw.levels["wind_speed"].to_numpy(), wspd)


def test_readme_quirks(aum_raw, aum_bytes):
    lv = aum_raw.levels
    # RH -9999 on every level; humidity only as DPDP
    assert lv["relative_humidity"].isna().all()
    assert lv["dewpoint_depression"].notna().sum() > 0
    # GPH -9999 on 29,416 of 34,160 levels
    assert lv["geopotential_height"].isna().sum() == 29416
    # wind-only levels (TEMP missing, wind present)
    assert ((lv["temperature"].isna()) & lv["wind_speed"].notna()).sum() > 1000
    # flags A and B after PRESS/GPH/TEMP: counted, values kept
    assert aum_raw.counts["qc_flag_A"] > 0 and aum_raw.counts["qc_flag_B"] > 0
    # -8888: TEMP and DPDP on line 15216, WSPD on line 27135 -> NaN, three values counted
    assert aum_raw.counts["qc_source_removed_values"] == 3
    r1 = lv[lv["line"] == 15216].iloc[0]
    assert r1.pressure == 70.0 and r1.geopotential_height == 18010.0
    assert np.isnan(r1.temperature) and np.isnan(r1.dewpoint_depression)
    assert r1.wind_direction == 305 and r1.wind_speed == pytest.approx(39.0)
    r2 = lv[lv["line"] == 27135].iloc[0]
    assert r2.pressure == 10.0 and r2.temperature == pytest.approx(-38.1) and np.isnan(r2.wind_speed)


def test_crlf_gz_zip_and_plain_read_identically(aum_bytes, tmp_path, aum_raw):
    crlf = aum_bytes.replace(b"\n", b"\r\n")
    (tmp_path / "a.txt").write_bytes(crlf)
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("AUM00011035-data.txt", aum_bytes)
    (tmp_path / "b.gz").write_bytes(gzip.compress(crlf))
    for name in ("a.txt", "a.zip", "b.gz"):
        r = read_igra2(tmp_path / name)
        pd.testing.assert_frame_equal(r.levels, aum_raw.levels)
        assert r.soundings["time"].equals(aum_raw.soundings["time"])


def test_last_header_without_levels_is_counted(aum_bytes):
    # a truncated download: the last header has no level records
    head = b"#AUM00011035 2015 07 01 00 2330   95 ncdc-gts           482333   163500\n"
    r = parse_igra2(aum_bytes + head, "t.txt")
    assert len(r.soundings) == 321
    assert r.counts["qc_soundings_without_levels"] == 1


def test_hour_99_uses_reltime_or_is_dropped():
    lvl = b"10 -9999  50000  5470B -265B-9999    80   140    60\n"
    h1 = b"#AUM00011035 2015 01 23 99 1134    1 ncdc-gts           482333   163500\n"
    h2 = b"#AUM00011035 2015 01 24 99 9999    1 ncdc-gts           482333   163500\n"
    h3 = b"#AUM00011035 2015 01 25 99 2399    1 ncdc-gts           482333   163500\n"  # minutes missing
    h4 = b"#AUM00011035 2015 01 26 12 1199    1 ncdc-gts           482333   163500\n"
    r = parse_igra2(h1 + lvl + h2 + lvl + h3 + lvl + h4 + lvl, "t.txt")
    assert list(r.soundings["time"]) == [pd.Timestamp("2015-01-23 12:00"),  # 11:34 -> 12 UTC
                                         pd.Timestamp("2015-01-25 23:00"), pd.Timestamp("2015-01-26 12:00")]
    assert r.counts["qc_hour_from_reltime"] == 2 and r.counts["qc_missing_hour_dropped"] == 1


def test_station_list(station_list):
    st = station_list
    assert len(st) == 2761
    row = st.loc["AUM00011035"]
    assert row["lat"] == pytest.approx(48.2486) and row["lon"] == pytest.approx(16.3564)
    assert row["elevation"] == 200.0 and row["name"] == "WIEN/HOHE WARTE"
    ship = st.loc["ZZV0000DBBH"]  # mobile-platform sentinels -> NaN
    assert np.isnan(ship["lat"]) and np.isnan(ship["lon"]) and np.isnan(ship["elevation"])


def test_partition_is_byte_exact(aum_bytes, tmp_path):
    src = tmp_path / "AUM00011035-data.txt"
    src.write_bytes(aum_bytes)
    written = partition_files([src], tmp_path / "raw")
    months = sorted(p.parent.name for p in written)
    assert months == ["2015-01", "2015-02", "2015-03", "2015-04", "2015-05", "2015-06"]
    assert b"".join(p.read_bytes() for p in sorted(written)) == aum_bytes
    march = read_igra2(tmp_path / "raw" / "2015-03" / "AUM00011035-data.txt")
    assert (march.soundings["time"].dt.month == 3).all() and len(march.soundings) == 62
    mtime = written[0].stat().st_mtime_ns
    partition_files([src], tmp_path / "raw")  # unchanged bytes: files untouched
    assert written[0].stat().st_mtime_ns == mtime


def test_partition_keeps_crlf_bytes(aum_bytes, tmp_path):
    crlf = aum_bytes.replace(b"\n", b"\r\n")
    src = tmp_path / "AUM00011035-data.txt.gz"
    src.write_bytes(gzip.compress(crlf))
    written = partition_files([src], tmp_path / "raw")
    assert b"".join(p.read_bytes() for p in sorted(written)) == crlf


def test_reads_files_written_by_the_nature_run_writer():
    fmt = pytest.importorskip("pipeline.nature_run.formats")
    rng = np.random.default_rng(1)
    n = 7
    press = np.array([101300, 100000, 92500, 85000, 70000, 50000, 1000])
    temp = np.array([153, 140, 96, -12, -95, -265, -9999])
    lv = fmt.level_records({
        "lvltyp1": np.full(n, 1), "lvltyp2": np.r_[1, np.zeros(n - 1, int)], "etime": np.full(n, -9999),
        "pressure": press, "pflag": np.full(n, ord("B"), np.uint8),
        "gph": np.array([12, 110, 780, 1500, 3050, 5700, 31000]), "zflag": np.full(n, ord(" "), np.uint8),
        "temp": temp, "tflag": np.full(n, ord("A"), np.uint8), "rh": np.full(n, -9999),
        "dpdp": np.array([20, 25, 30, 45, 80, 120, -9999]), "wdir": rng.integers(0, 360, n), "wspd": np.full(n, 87)})
    times = pd.DatetimeIndex(["2020-01-01 00:00", "2020-01-01 12:00"])
    hd = fmt.header_records(np.array(["CHM00057494", "CHM00057494"]), times, np.array([2315, 1115]),
                            np.array([n, n]), np.array([30.6, 30.6]), np.array([114.05, 114.05]))
    data = fmt.station_file_bytes(hd, np.concatenate([lv, lv]), np.array([n, n]))
    r = parse_igra2(data, "synthetic.txt")
    assert list(r.soundings["time"]) == list(times)
    assert r.soundings["lat"].iloc[0] == pytest.approx(30.6) and r.soundings["lon"].iloc[0] == pytest.approx(114.05)
    one = r.levels[r.levels["profile"] == 0]
    np.testing.assert_array_equal(one["pressure"], press / 100)
    np.testing.assert_array_equal(one["temperature"], np.where(temp == -9999, np.nan, temp / 10))
    assert one["wind_speed"].eq(8.7).all()
