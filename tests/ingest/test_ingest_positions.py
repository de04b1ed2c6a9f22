"""Station positions worldwide: IGRA2 header LAT/LON (both hemispheres), the derived format,
the Wyoming CSV sentinel and the shared coordinate QC."""
import numpy as np
import pandas as pd
import pytest

from pipeline.readers.igra2 import parse_igra2, read_igra2

LEVELS = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]


def _first_soundings(aum_bytes: bytes, n: int) -> bytes:
    """The first ``n`` soundings of the real AUM00011035 file, bytes unchanged."""
    lines = aum_bytes.split(b"\n")
    heads = [i for i, ln in enumerate(lines) if ln.startswith(b"#")]
    return b"\n".join(lines[:heads[n]]) + b"\n"


def _with_position(data: bytes, station: str, lat: float | int, lon: float | int) -> bytes:
    """Header ID, LAT (columns 56-62) and LON (64-71) replaced; LAT/LON in deg * 10000 when int."""
    out = []
    for ln in data.split(b"\n"):
        if ln.startswith(b"#"):
            la = lat if isinstance(lat, int) else round(lat * 10000)
            lo = lon if isinstance(lon, int) else round(lon * 10000)
            ln = b"#" + station.encode() + ln[12:55] + f"{la:7d} {lo:8d}".encode() + ln[71:]
        out.append(ln)
    return b"\n".join(out)


@pytest.mark.parametrize("station, lat, lon", [
    ("USM00070026", 71.2889, -156.7833),  # Barrow: west of 100 W
    ("ARM00087576", -34.8167, -58.5333),  # Ezeiza: south of 10 S
    ("CIM00085469", -27.1606, -109.4267),  # Isla de Pascua: south and west
    ("ASM00094610", -31.9275, 115.9764),  # Perth: south, east
])
def test_igra2_header_positions_in_every_quadrant_are_kept(aum_bytes, station, lat, lon):
    # real AUM00011035 soundings, headers given the station list's position of a station
    # in each quadrant (no real data file of these stations is in tests/data)
    data = _with_position(_first_soundings(aum_bytes, 3), station, lat, lon)
    r = parse_igra2(data, "x-data.txt")
    assert len(r.soundings) == 3 and r.counts["qc_position_sentinel"] == 0
    assert r.soundings["lat"].to_numpy() == pytest.approx([lat] * 3)
    assert r.soundings["lon"].to_numpy() == pytest.approx([lon] * 3)
    from pipeline.ingest import soundings_to_dataset

    ds = soundings_to_dataset(r, LEVELS)
    assert ds.sizes["profile"] == 3 and ds.attrs["qc_no_coordinates"] == 0
    # mandatory level of the first sounding as written:
    # '10 -9999  50000  5470B -265B-9999    80   140    60 '
    assert float(ds["temperature"].isel(profile=0).sel(level=500)) == pytest.approx(-26.5)
    assert float(ds["geopotential_height"].isel(profile=0).sel(level=500)) == 5470


def test_igra2_mobile_platform_sentinels_are_missing_and_counted(aum_bytes):
    data = _with_position(_first_soundings(aum_bytes, 2), "ZZXUAICE013", -988888, -9988888)
    r = parse_igra2(data, "x-data.txt")
    assert r.counts["qc_position_sentinel"] == 2
    assert r.soundings["lat"].isna().all() and r.soundings["lon"].isna().all()
    from pipeline.ingest import soundings_to_dataset

    ds = soundings_to_dataset(r, LEVELS)  # no position: dropped and counted, never placed
    assert ds.sizes["profile"] == 0 and ds.attrs["qc_no_coordinates"] == 2
    assert ds.attrs["qc_position_sentinel"] == 2


def test_igra2_lat_minus_99999_is_a_position(aum_bytes):
    # LAT -99999 is 9.9999 S, a real position (it was once taken for a missing value)
    r = parse_igra2(_with_position(_first_soundings(aum_bytes, 1), "XXM00000001", -99999, -999999),
                    "x-data.txt")
    assert (r.soundings["lat"].iloc[0], r.soundings["lon"].iloc[0]) == pytest.approx((-9.9999, -99.9999))


def test_barrow_derived_file_keeps_its_soundings(data_dir, station_list):
    """The real NCEI derived-parameter file of Barrow (USM00070026): position from the station list."""
    path = data_dir / "igra2" / "USM00070026-drvd.txt"
    r = read_igra2(path)
    assert r.counts["qc_soundings_read"] == 3
    assert r.counts["qc_soundings_without_levels"] == 1  # the truncated last header
    assert list(r.soundings["time"]) == [pd.Timestamp("2014-09-10 00:00"), pd.Timestamp("2014-09-10 12:00")]
    from pipeline.ingest import soundings_to_dataset

    ds = soundings_to_dataset(r, LEVELS, stations=station_list)
    assert ds.sizes["profile"] == 2 and ds.attrs["qc_no_coordinates"] == 0
    assert float(ds["lat"][0]) == pytest.approx(71.2889) and float(ds["lon"][0]) == pytest.approx(-156.7833)
    # the 1000 hPa record of the first sounding, field by field (7 characters, 1 blank):
    text = path.read_text().splitlines()[4]
    assert text.startswith(" 100000     182     182    2729")
    f = [int(text[8 * i:8 * i + 7]) for i in range(19)]
    p0 = ds.isel(profile=0).sel(level=1000)
    assert float(p0["geopotential_height"]) == f[1]  # REPGPH, m
    assert float(p0["temperature"]) == pytest.approx(f[3] / 10 - 273.15, abs=1e-4)  # 0.1 K
    assert float(p0["u"]) == pytest.approx(f[14] / 10, abs=1e-4)  # UWND, 0.1 m/s
    assert float(p0["v"]) == pytest.approx(f[16] / 10, abs=1e-4)
    assert np.isfinite(float(p0["dewpoint"]))  # from REPRH (82.8 %)


def test_derived_file_malformed_record_names_line(data_dir, tmp_path):
    lines = (data_dir / "igra2" / "USM00070026-drvd.txt").read_bytes().split(b"\n")
    lines[5] = lines[5][:40] + b"X" + lines[5][41:]
    p = tmp_path / "b-drvd.txt"
    p.write_bytes(b"\n".join(lines))
    from pipeline.common.errors import InvalidSoundingError

    with pytest.raises(InvalidSoundingError, match=r"b-drvd.txt:6: level field"):
        read_igra2(p)
    r = read_igra2(p, on_malformed="skip")
    assert len(r.soundings) == 1 and r.counts["qc_malformed_soundings"] == 1


def test_aum_header_position_unchanged(aum_raw):
    assert (aum_raw.soundings["lat"] == 48.2333).all() and (aum_raw.soundings["lon"] == 16.35).all()
    assert aum_raw.counts["qc_position_sentinel"] == 0


# --------------------------------------------------------------------------- Wyoming

def test_wyoming_csv_west_of_100w_keeps_its_position(data_dir):
    from pipeline.readers.wyoming import read_wyoming

    # real file: '2010-12-09 11:06:00,-116.2100,43.5600, 919.0,  874, -0.1, ...'
    r = read_wyoming(data_dir / "wyoming" / "wyoming_csv_BOI_2010-12-09_12Z.csv")
    s = r.soundings.iloc[0]
    assert (s.lat, s.lon) == (43.56, -116.21) and s.time == pd.Timestamp("2010-12-09 12:00")
    assert len(r.levels) == 132 and r.counts["qc_position_sentinel"] == 0
    first = r.levels.iloc[0]
    assert (first.pressure, first.geopotential_height, first.temperature, first.dewpoint) == (919.0, 874, -0.1, -0.2)


def test_wyoming_csv_missing_position_sentinel(data_dir, tmp_path):
    from pipeline.ingest import soundings_to_dataset
    from pipeline.readers.wyoming import read_wyoming

    # the real file with the server's missing-position value in both columns
    text = (data_dir / "wyoming" / "wyoming_csv_BOI_2010-12-09_12Z.csv").read_text()
    p = tmp_path / "nopos.csv"
    p.write_text(text.replace("-116.2100,43.5600,", "-99.99,-99.99,"))
    r = read_wyoming(p)
    assert np.isnan(r.soundings["lat"].iloc[0]) and np.isnan(r.soundings["lon"].iloc[0])
    assert r.counts["qc_position_sentinel"] == 1
    ds = soundings_to_dataset(r, LEVELS)
    assert ds.sizes["profile"] == 0 and ds.attrs["qc_no_coordinates"] == 1  # never placed at -99.99


@pytest.mark.parametrize("edit, line, words", [
    (lambda t: t.replace(" 909.0,  962,", " 909.0,  9x2,"), 3, "not a number"),
    (lambda t: t.replace("2010-12-09 11:06:00,-116.2100,43.5600, 909.0", "2010-13-09 11:06:00,-116.2100,43.5600, 909.0"),
     3, "time is not"),
    (lambda t: t.replace(" 909.0,  962,", " 909.0,  962,,"), 3, "14 fields"),
])
def test_wyoming_csv_malformed_rows_name_file_and_line(data_dir, tmp_path, edit, line, words):
    from pipeline.common.errors import InvalidSoundingError
    from pipeline.readers.wyoming import read_wyoming

    p = tmp_path / "bad.csv"
    p.write_text(edit((data_dir / "wyoming" / "wyoming_csv_BOI_2010-12-09_12Z.csv").read_text()))
    with pytest.raises(InvalidSoundingError, match=rf"bad.csv:{line}: .*{words}"):
        read_wyoming(p)
    r = read_wyoming(p, on_malformed="skip")
    assert len(r.levels) == 131 and r.counts["qc_malformed_lines"] == 1


# --------------------------------------------------------------------------- coordinate QC

def test_coordinate_range_bounds():
    from pipeline.soundings.qc import coordinate_range

    lat = np.array([-90, 90, 90.0001, -90.5, 10, 10, 10, np.nan, 10])
    lon = np.array([-180, 359.99, 0, 0, 360, -180.01, -156.78, np.nan, np.inf])
    bad, n = coordinate_range(lat, lon)
    assert bad.tolist() == [False, False, True, True, True, True, False, False, True] and n == 5


def test_out_of_range_position_is_missing_counted_and_filled_from_station_list(data_dir, tmp_path, station_list):
    from pipeline.ingest import read_soundings, soundings_to_dataset

    text = (data_dir / "wyoming" / "wyoming_csv_BOI_2010-12-09_12Z.csv").read_text()
    p = tmp_path / "72681.csv"  # the station id defaults to the file name
    p.write_text(text.replace("-116.2100,43.5600,", "-116.2100,143.5600,"))
    raw = read_soundings([p], "wyoming")
    ds = soundings_to_dataset(raw, LEVELS)
    assert ds.attrs["qc_position_out_of_range"] == 1 and ds.attrs["qc_no_coordinates"] == 1
    assert ds.sizes["profile"] == 0
    ds = soundings_to_dataset(raw, LEVELS, stations=station_list)  # WMO 72681 = USM00072681 (Boise)
    assert ds.attrs["qc_position_out_of_range"] == 1 and ds.sizes["profile"] == 1
    assert float(ds["lat"][0]) == pytest.approx(float(station_list.loc["USM00072681", "lat"]))


def test_every_reader_reports_position_counts(data_dir, aum_raw):
    from pipeline.readers.igra2 import read_igra2
    from pipeline.readers.wyoming import read_wyoming

    assert "qc_position_sentinel" in aum_raw.counts
    for f in ("wyoming_csv_OUN_1999-05-04_00Z.csv", "20110522_OUN_12Z.txt", "wyoming_html_82244_2012-01-01_00Z.html"):
        assert "qc_position_sentinel" in read_wyoming(data_dir / "wyoming" / f).counts
    # 'Station latitude: ******': the server's missing position, counted
    assert read_wyoming(data_dir / "wyoming" / "wyoming_html_82244_2012-01-01_00Z.html").counts["qc_position_sentinel"] == 1
    assert "qc_position_sentinel" in read_igra2(data_dir / "igra2" / "USM00070026-drvd.txt").counts
