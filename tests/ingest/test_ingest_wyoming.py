"""University of Wyoming TEXT:LIST (HTML and plain) and CSV readers against the file text."""
import numpy as np
import pandas as pd
import pytest

from pipeline.common.errors import InvalidSoundingError
from pipeline.readers.wyoming import KNOT_TO_MS, read_wyoming


def test_html_replot_values(data_dir):
    r = read_wyoming(data_dir / "wyoming" / "wyoming_html_OUN_1999-05-04_00Z_replot.html")
    s = r.soundings.iloc[0]
    assert s.station == "72357" and s.time == pd.Timestamp("1999-05-04 00:00")
    assert (s.lat, s.lon) == (35.18, -97.44)
    lv = r.levels
    assert len(lv) == 32
    # '  500.0   5670  -14.9  -18.9     72   1.73    225     36  314.8  320.7  315.1'
    row = lv[lv["pressure"] == 500.0].iloc[0]
    assert row.geopotential_height == 5670 and row.temperature == -14.9 and row.dewpoint == -18.9
    assert row.wind_direction == 225 and row.wind_speed == pytest.approx(36 * 0.514444, rel=1e-5)  # knots
    # first row ' 1000.0     -7' is the below-ground line: height only
    first = lv.iloc[0]
    assert first.pressure == 1000.0 and first.geopotential_height == -7 and np.isnan(first.temperature)
    # last row: blank wind fields
    last = lv.iloc[-1]
    assert last.pressure == 251.0 and np.isnan(last.wind_speed) and last.temperature == -52.5


def test_missing_station_info_uses_station_list(data_dir, station_list):
    path = data_dir / "wyoming" / "wyoming_html_82244_2012-01-01_00Z.html"
    r = read_wyoming(path)  # 'Station latitude: ******', no longitude line
    assert np.isnan(r.soundings["lat"].iloc[0]) and np.isnan(r.soundings["lon"].iloc[0])
    r = read_wyoming(path, stations=station_list)
    assert r.soundings["lat"].iloc[0] == pytest.approx(-2.4333)
    first = r.levels.iloc[0]  # ' 1002.0          29.0   24.1     75 ...': no height
    assert first.pressure == 1002.0 and np.isnan(first.geopotential_height) and first.temperature == 29.0


def test_title_line_and_plain_text(data_dir):
    r = read_wyoming(data_dir / "wyoming" / "20110522_OUN_12Z.txt")
    assert r.soundings["station"].iloc[0] == "72357"
    assert r.soundings["time"].iloc[0] == pd.Timestamp("2011-05-22 12:00")
    row = r.levels[r.levels["pressure"] == 925.0].iloc[0]  # '  925.0    720   20.4   20.4    100 ...  200     33'
    assert row.geopotential_height == 720 and row.temperature == 20.4 and row.wind_speed == pytest.approx(33 * KNOT_TO_MS)


def test_no_metadata_needs_station_and_time(data_dir):
    path = data_dir / "wyoming" / "nov11_sounding.txt"
    with pytest.raises(InvalidSoundingError, match="nov11_sounding.txt:2: no station/time"):
        read_wyoming(path)
    r = read_wyoming(path, station="72327", time="2002-11-11 00:00")
    first = r.levels.iloc[0]  # short line ' 1000.0    -12'
    assert first.pressure == 1000.0 and first.geopotential_height == -12 and np.isnan(first.temperature)
    assert r.levels["pressure"].iloc[1] == 978.0 and r.levels["temperature"].iloc[1] == 20.4


def test_no_data_page_is_an_error(data_dir):
    with pytest.raises(InvalidSoundingError, match="no sounding"):
        read_wyoming(data_dir / "wyoming" / "wyoming_csv_BOI_2010-12-09_01Z_nodata.txt")


def test_csv_layout(data_dir):
    r = read_wyoming(data_dir / "wyoming" / "wyoming_csv_OUN_1999-05-04_00Z.csv")
    assert r.soundings["time"].iloc[0] == pd.Timestamp("1999-05-04 00:00")  # launch 23:02
    lv = r.levels
    assert len(lv) == 31 and 1000.0 not in lv["pressure"].to_numpy()
    first = lv.iloc[0]  # 959.0, 345, 22.2, 19.0, ... 160, 9.3 (m/s already)
    assert (first.pressure, first.geopotential_height, first.temperature, first.dewpoint) == (959.0, 345, 22.2, 19.0)
    assert first.wind_speed == 9.3
    assert np.isnan(lv["wind_speed"].iloc[-1]) and lv["pressure"].iloc[-1] == 251.0


def test_wyoming_to_interim(data_dir):
    from pipeline.ingest import read_soundings, soundings_to_dataset

    raw = read_soundings([data_dir / "wyoming" / "wyoming_html_OUN_1999-05-04_00Z_replot.html"], "wyoming")
    ds = soundings_to_dataset(raw, [1000, 925, 850, 700, 500, 400, 300, 250, 200])
    t = ds["temperature"].isel(profile=0).to_numpy()
    assert np.isnan(t[0])  # 1000 hPa is below ground (only the extrapolated height)
    assert np.isnan(float(ds["geopotential_height"].isel(profile=0, level=0)))  # not kept either
    assert ds.attrs["qc_below_ground_levels"] == 1
    assert float(ds["geopotential_height"].isel(profile=0, level=1)) == 671  # 925 hPa row
    assert t[1] == pytest.approx(19.8) and t[4] == pytest.approx(-14.9)
    assert np.isnan(t[-1]) and np.isnan(t[-2])  # the profile ends at 251 hPa
