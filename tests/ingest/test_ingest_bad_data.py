"""Bad data that parses (README, "Bad data that parses"): stuck gauges, a month without any
gauge value, and sounding stations that repeat identical temperature profiles are found,
counted and removed, never passed on as observations."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from pipeline.ingest import main as ingest_main
from pipeline.ingest import soundings_to_dataset
from pipeline.readers.gauges import gauge_month, read_stations
from pipeline.readers.igra2 import LEVEL_COLUMNS, SOUNDING_COLUMNS, RawSoundings

HOURS = pd.date_range("2020-02-01T00:00", "2020-02-29T23:00", freq="1h")  # the hours ending in February


def _gauge_files(tmp_path, values: dict[str, np.ndarray]):
    (tmp_path / "stations.csv").write_text("id,lat,lon,elevation_m\n"
                                           + "".join(f"{s},30.0,{113 + i},10\n" for i, s in enumerate(values)))
    rows = ["station,time,rain_mm"]
    for s, v in values.items():
        rows += [f"{s},{t.isoformat()},{'' if np.isnan(x) else x}" for t, x in zip(HOURS, v)]
    (tmp_path / "2020-02.csv").write_text("\n".join(rows) + "\n")
    return read_stations(tmp_path / "stations.csv"), tmp_path / "2020-02.csv"


def test_stuck_gauge_run_is_removed_and_counted(tmp_path, caplog):
    rng = np.random.default_rng(3)
    wet = np.round(rng.gamma(0.8, 1.0, HOURS.size) + 0.1, 1)  # varying: runs of equal hours are short
    stuck = wet.copy()
    stuck[99:121] = [0.2] + [0.7] * 20 + [0.3]  # hours 100..119: 20 h at 0.7 mm
    limit = wet.copy()
    limit[199:213] = [0.2] + [2.5] * 12 + [0.3]  # exactly qc.max_stuck_hours = 12 equal hours: allowed
    dry = np.zeros(HOURS.size)  # a dry gauge repeats 0 all month: not stuck
    stations, path = _gauge_files(tmp_path, {"S": stuck, "L": limit, "D": dry})
    with caplog.at_level(logging.WARNING, logger="pipeline.readers.gauges"):
        ds, counts = gauge_month("2020-02", path, stations)
    assert counts["qc_stuck_hours"] == 20 and counts["qc_stuck_runs"] == 1
    assert ds.attrs["qc_stuck_hours"] == 20
    assert "gauge S: 0.7 mm repeated for 20 hours from the hour ending 2020-02-05T04:00:00" in caplog.text
    rain = ds["rain_mm"].to_series().unstack("station")
    # the windows holding any of those hours (ending 2020-02-05T12 .. 2020-02-06T00) are NaN
    touched = [t for t in rain.index if ((HOURS[100:120] > t - pd.Timedelta(hours=12)) & (HOURS[100:120] <= t)).any()]
    assert touched == list(pd.to_datetime(["2020-02-05T12:00", "2020-02-06T00:00"]))
    assert rain.loc[touched, "S"].isna().all()
    others = rain.index.difference(touched)[1:]  # the first frame needs January's file
    assert rain.loc[others, "S"].notna().all()
    assert rain["L"].iloc[1:].notna().all() and (rain["D"].iloc[1:] == 0).all()
    with caplog.at_level(logging.WARNING, logger="pipeline.readers.gauges"):
        _, counts = gauge_month("2020-02", path, stations, qc={"max_stuck_hours": 11})
    assert counts["qc_stuck_hours"] == 20 + 12 and counts["qc_stuck_runs"] == 2


def test_month_without_any_gauge_value_is_missing_and_counted(tmp_path, capsys):
    nan = np.full(HOURS.size, np.nan)
    stations, path = _gauge_files(tmp_path, {"A": nan, "B": nan})
    rc = ingest_main(["gauges", "--stations", str(tmp_path / "stations.csv"), "--month", "2020-02",
                      "--out", str(tmp_path / "g.nc"), str(path)])
    assert rc == 0
    log = capsys.readouterr().err
    summary = json.loads((tmp_path / "g.qc.json").read_text())
    assert summary["qc_frames_without_gauges"] == 58  # every frame of February 2020
    assert "WARNING" in log and "58 of 58 frames of 2020-02 have no valid 12 h total at any gauge" in log
    assert "2020-02-01T00 .. 2020-02-29T12 (58 frames)" in log
    import xarray as xr

    with xr.open_dataset(tmp_path / "g.nc") as ds:
        assert ds["rain_mm"].isnull().all() and ds.attrs["qc_frames_without_gauges"] == 58


# ----------------------------------------------------------------------------- soundings

P = np.array([1000.0, 925, 850, 700, 500, 300])


def _raw(profiles: list[tuple[str, str, np.ndarray]]) -> RawSoundings:
    """Soundings (station, time, temperatures at ``P``), 3 degC dewpoint depression."""
    soundings = pd.DataFrame([(s, pd.Timestamp(t), 30.0, 113.0, "f", i + 1) for i, (s, t, _) in enumerate(profiles)],
                             columns=SOUNDING_COLUMNS)
    n = P.size
    levels = pd.concat([pd.DataFrame({
        "profile": np.full(n, i), "line": np.arange(n), "lvltyp2": np.zeros(n, np.int8), "pressure": P,
        "geopotential_height": np.nan, "temperature": t, "relative_humidity": np.nan,
        "dewpoint_depression": np.full(n, 3.0), "dewpoint": np.nan, "wind_direction": 180.0, "wind_speed": 5.0})
        for i, (_, _, t) in enumerate(profiles)], ignore_index=True)[LEVEL_COLUMNS]
    return RawSoundings(soundings, levels)


def _profiles():
    rng = np.random.default_rng(0)
    base = np.array([15.0, 10, 6, -3, -20, -45])
    times = pd.date_range("2020-02-01", periods=6, freq="12h")
    out = []
    for k, t in enumerate(times):
        out.append(("STUCK", t, np.full(P.size, 11.3)))  # the same value at every level and time
        out.append(("GOOD", t, base + np.round(rng.normal(0, 1, P.size), 1)))
        out.append(("RESENT", t, base if k in (2, 3) else base + k))  # soundings 2 and 3 identical
    return out


def test_identical_soundings_fail_qc_and_are_counted(caplog):
    with caplog.at_level(logging.WARNING, logger="pipeline.soundings.qc"):
        ds = soundings_to_dataset(_raw(_profiles()), list(P))
    assert ds.attrs["qc_identical_soundings"] == 6 + 2
    assert ds.attrs["qc_identical_sounding_levels"] == 8 * P.size
    t = ds["temperature"].to_series().unstack("level")
    stations = ds["station"].values
    assert t[stations == "STUCK"].isna().all().all() and t[stations == "GOOD"].notna().all().all()
    resent = t[stations == "RESENT"].isna().all(axis=1).to_numpy()
    np.testing.assert_array_equal(resent, [False, False, True, True, False, False])
    assert np.isnan(ds["dewpoint"].values[stations == "STUCK"]).all()
    assert "station STUCK: 6 soundings from 2020-02-01T00:00:00 repeat identical" in caplog.text
    assert "station RESENT: 2 soundings from 2020-02-02T00:00:00" in caplog.text


@pytest.mark.parametrize("qc, flagged, kept", [
    ({"max_identical_soundings": 2}, 6, 18),  # the pair is allowed, the run of 6 is not
    ({"max_identical_soundings": 6}, 0, 18),
    ({"policy": "drop_sounding"}, 8, 10),  # failed soundings are dropped whole
])
def test_identical_soundings_threshold_and_policy(qc, flagged, kept):
    ds = soundings_to_dataset(_raw(_profiles()), list(P), qc)
    assert ds.attrs["qc_identical_soundings"] == flagged and ds.sizes["profile"] == kept
