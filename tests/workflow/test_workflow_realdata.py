"""Real data in, correctly: the workflow with ``data.source: raw`` on real files, checked
value by value against the raw text.

Inputs (tests/data, credits in the READMEs there):

- soundings: NCEI IGRA v2 ``AUM00011035-data.txt.gz`` (Wien/Hohe Warte, 2015-01-23 ..
  2015-06-30), put into ``raw/soundings/YYYY-MM/`` by ``pipeline.ingest partition``;
- rain: KNMI hourly record ``uurgeg_260_2000-01.txt`` (De Bilt, January 2000), converted by
  ``pipeline.ingest convert-gauges --format knmi-hourly``. The repository holds no real
  sounding and gauge records of a common period, so the test writes a copy of the KNMI
  file whose dates read January 2015 (the year of each data row changed, nothing else:
  same days, hours and values). The expected rain below is computed from the original
  file's rows, day for day;
- De Bilt's position: the IGRA v2 station list (NLM00006260, DE BILT AWS, the same site as
  KNMI station 260), since KNMI files carry none.

The workflow (tests/workflow/config.realdata.yaml: one region holding both stations, a
0.5-degree grid, neighbour limits of one station and one gauge) runs prepare_month and
build_dataset for 2015-01. The expected values come from parsing the raw text here,
independently of the project's readers:

- IGRA v2 level records: PRESS (Pa) columns 10-15, GPH (m) 17-21, TEMP (0.1 degC) 23-27,
  DPDP (0.1 degC) 35-39, WDIR (deg) 41-45, WSPD (0.1 m/s) 47-51; -9999 missing, -8888
  removed by NCEI; u = -WSPD sin(WDIR), v = -WSPD cos(WDIR);
- KNMI rows ``STN,YYYYMMDD,HH,...``: RH (column 14) hourly rain in 0.1 mm for the hour
  ending at HH UT (HH 24 = 00 UT next day); -1 (under 0.05 mm) is 0 mm (the documented
  trace rule); a 12 h total needs all 12 hours (qc.min_hours_present default 12).

What the gridding does with one station: the Barnes weights are normalised, so every cell
that has the station within the search radius (and coverage radius) gets exactly the
station's value, and cells beyond are missing (NaN, never 0). The cell nearest De Bilt
therefore reproduces the gauge's 12 h total; the cell nearest Vienna reproduces the
sounding's mandatory-level values.
"""
from __future__ import annotations

import gzip
import json
import math
import re
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pytest
import xarray as xr
import yaml

from tests.workflow.conftest import REPO, snakemake

CONFIG = REPO / "tests" / "workflow" / "config.realdata.yaml"
IGRA = REPO / "tests" / "data" / "igra2" / "AUM00011035-data.txt.gz"
STATION_LIST = REPO / "tests" / "data" / "igra2" / "igra2-station-list.txt"
KNMI = REPO / "tests" / "data" / "gauges" / "uurgeg_260_2000-01.txt"
MONTH = "2015-01"
YEAR_SHIFT = 15  # KNMI January 2000 -> January 2015
VARIABLES = ("temperature", "dewpoint", "u", "v", "geopotential_height")


# ----------------------------------------------------------------- independent raw parsing

def _num(text: str) -> float | None:
    value = int(text)
    return None if value in (-9999, -8888) else value


def raw_soundings() -> dict[datetime, dict[float, dict[str, float]]]:
    """{nominal time: {pressure hPa: {variable: value}}} of every IGRA v2 sounding of MONTH."""
    out: dict[datetime, dict[float, dict[str, float]]] = {}
    current = None
    with gzip.open(IGRA, "rt") as f:
        for line in f:
            if line.startswith("#"):
                _, year, month, day, hour = line.split()[:5]
                t = datetime(int(year), int(month), int(day), int(hour))
                current = out.setdefault(t, {}) if t.strftime("%Y-%m") == MONTH else None
                continue
            if current is None:
                continue
            press, gph, temp = _num(line[9:15]), _num(line[16:21]), _num(line[22:27])
            dpdp, wdir, wspd = _num(line[34:39]), _num(line[40:45]), _num(line[46:51])
            if press is None:
                continue
            values = {} if gph is None else {"geopotential_height": float(gph)}
            if temp is not None:
                values["temperature"] = temp / 10
                if dpdp is not None:
                    values["dewpoint"] = (temp - dpdp) / 10
            if wdir is not None and wspd is not None:
                speed, rad = wspd / 10, math.radians(wdir)
                values["u"], values["v"] = -speed * math.sin(rad), -speed * math.cos(rad)
            current[press / 100] = values
    return out


def raw_hourly_rain() -> dict[datetime, float | None]:
    """{end of hour (UTC), dates moved to 2015: rain mm or None} from the KNMI RH column."""
    rows = [line.split(",") for line in KNMI.read_text().splitlines() if re.match(r"^\s*260,\d{8},", line)]
    out: dict[datetime, float | None] = {}
    for row in rows:
        day = datetime.strptime(row[1].strip(), "%Y%m%d")
        end = day.replace(year=day.year + YEAR_SHIFT) + timedelta(hours=int(row[2]))
        rh = row[13].strip()
        out[end] = None if rh == "" else (0.0 if int(rh) == -1 else int(rh) / 10)
    return out


def expected_12h_totals(hourly) -> dict[datetime, float]:
    """12 h totals ending at each 00/12 UTC frame of MONTH (NaN unless all 12 hours exist)."""
    first = datetime.strptime(MONTH, "%Y-%m")
    out = {}
    for k in range(62):
        end = first + timedelta(hours=12 * k)
        hours = [hourly.get(end - timedelta(hours=h)) for h in range(12)]
        out[end] = math.nan if any(v is None for v in hours) else sum(hours)
    return out


def station_position(name: str) -> tuple[float, float, float]:
    for line in STATION_LIST.read_text().splitlines():
        if line.startswith(name):
            lat, lon, elev = line[12:20], line[21:30], line[31:37]
            return float(lat), float(lon), float(elev)
    raise LookupError(name)


def nearest(values, target: float) -> float:
    values = np.asarray(values)
    return float(values[np.argmin(np.abs(values - target))])


# ------------------------------------------------------------------------ the workflow run

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.ingest", *args], check=True, capture_output=True,
                          text=True, cwd=REPO)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("realdata")
    raw = tmp / "raw"
    _cli("partition", "--format", "igra2", "--out", str(raw / "soundings"), str(IGRA))
    (raw / "soundings" / "igra2-station-list.txt").write_bytes(STATION_LIST.read_bytes())
    moved = tmp / "uurgeg_260_2015-01.txt"
    text = KNMI.read_bytes().decode("ascii")
    moved.write_bytes(re.sub(r"(?m)^(\s*260,)2000(\d{4},)", r"\g<1>2015\2", text).encode("ascii"))
    convert = _cli("convert-gauges", "--format", "knmi-hourly", "--out", str(raw / "gauges"), str(moved))
    lat, lon, elev = station_position("NLM00006260")
    (raw / "gauges" / "stations.csv").write_text(f"id,lat,lon,elevation_m\n260,{lat},{lon},{elev}\n")
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["data"]["raw_dir"] = str(raw)
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(tmp, "data/processed/region1.zarr", "data/processed/concat.zarr", configfile=config)
    return tmp, cfg, convert.stderr


def test_only_the_month_with_both_records_is_processed(run):
    tmp, _, _ = run
    assert sorted(p.name for p in (tmp / "data" / "gridded" / "region1").glob("*.nc")) == [f"{MONTH}.nc"]
    months = sorted(p.name for p in (tmp / "raw" / "soundings").iterdir() if p.is_dir())
    assert months == ["2015-01", "2015-02", "2015-03", "2015-04", "2015-05", "2015-06"]


def test_interim_soundings_equal_the_igra2_text(run):
    tmp, cfg, _ = run
    raw = raw_soundings()
    ds = xr.open_dataset(tmp / "data" / "interim" / "soundings" / f"{MONTH}.nc")
    times = [datetime.fromisoformat(str(t)[:19]) for t in ds["time"].values]
    assert sorted(times) == sorted(raw) and len(times) == 19
    assert set(ds["station"].values) == {"AUM00011035"}
    compared = 0
    for i, t in enumerate(times):
        for level in cfg["levels_hpa"]:
            want = raw[t].get(float(level), {})
            for var in VARIABLES:
                got = float(ds[var].isel(profile=i).sel(level=level))
                if var in want:
                    assert got == pytest.approx(want[var], abs=1e-3), (t, level, var)
                    compared += 1
                elif var != "geopotential_height":  # not reported: missing, never filled in
                    assert math.isnan(got), (t, level, var)  # (missing heights are computed)
    assert compared > 500
    # One value by hand: 2015-01-24 00 UTC, 500 hPa, TEMP -259 (0.1 degC)
    one = ds["temperature"].isel(profile=times.index(datetime(2015, 1, 24, 0))).sel(level=500.0)
    assert float(one) == pytest.approx(-25.9, abs=1e-4)


def test_gridded_upper_air_at_vienna_reproduces_the_sounding(run):
    tmp, cfg, _ = run
    raw = raw_soundings()
    frag = xr.open_dataset(tmp / "data" / "gridded" / "region1" / f"{MONTH}.nc")
    vlat, vlon, _ = station_position("AUM00011035")
    cell = dict(lat=nearest(frag["lat"], vlat), lon=nearest(frag["lon"], vlon))
    tol = cfg["gridding"].get("time_tolerance_hours", 3.0)
    checked = 0
    for t in frag["time"].values:
        frame = datetime.fromisoformat(str(t)[:19])
        near = [s for s in raw if abs((s - frame).total_seconds()) <= tol * 3600]
        for level in cfg["levels_hpa"]:
            for var in VARIABLES:
                got = float(frag["x"].sel(channel=f"{var}_{level}hPa", time=t, **cell))
                want = raw[near[0]].get(float(level), {}).get(var) if near else None
                if want is None:
                    if var != "geopotential_height":  # missing heights are computed
                        assert math.isnan(got), (frame, level, var)
                else:
                    assert got == pytest.approx(want, abs=1e-3), (frame, level, var)
                    checked += 1
    assert checked > 400
    # 2015-01-29 12 UTC comes from the 13 UTC launch; the 06 UTC launches belong to no frame
    assert float(frag["x"].sel(channel="temperature_500hPa", time="2015-01-29T12:00", **cell)) == pytest.approx(
        raw[datetime(2015, 1, 29, 13)][500.0]["temperature"], abs=1e-3)
    # De Bilt is ~850 km from Vienna: beyond the search radius, upper air missing there
    blat, blon, _ = station_position("NLM00006260")
    far = frag["x"].sel(channel="temperature_500hPa", lat=nearest(frag["lat"], blat), lon=nearest(frag["lon"], blon))
    assert np.isnan(far.values).all()


def test_interim_and_gridded_rain_equal_the_knmi_sums(run):
    tmp, _, convert_log = run
    hourly = raw_hourly_rain()
    expected = expected_12h_totals(hourly)
    assert math.isnan(expected[datetime(2015, 1, 1)])  # needs 31 Dec, not in the record
    wet = [v for v in expected.values() if v > 0]
    assert len(wet) > 10 and max(wet) > 5
    # the converter counted the -1 (trace) hours of the raw file
    traces = sum(1 for line in KNMI.read_text().splitlines()
                 if re.match(r"^\s*260,", line) and line.split(",")[13].strip() == "-1")
    assert f'"qc_trace": {traces}' in convert_log and traces > 100

    gauges = xr.open_dataset(tmp / "data" / "interim" / "gauges" / f"{MONTH}.nc")
    got = gauges["rain_mm"].sel(station="260")
    want = np.array([expected[datetime.fromisoformat(str(t)[:19])] for t in got["time"].values])
    assert got.size == 62
    np.testing.assert_allclose(got.values, want, atol=1e-4, equal_nan=True)
    # by hand, the wettest window ending 12 UTC: hours HH 1..12 of that day, RH -1 -> 0
    rows = [line.split(",") for line in KNMI.read_text().splitlines() if re.match(r"^\s*260,", line)]
    morning: dict[str, int] = {}
    for r in rows:
        if 1 <= int(r[2]) <= 12:
            morning[r[1].strip()] = morning.get(r[1].strip(), 0) + max(int(r[13]), 0)
    day = max(morning, key=morning.get)
    assert morning[day] > 50  # more than 5 mm
    assert float(got.sel(time=f"2015-01-{day[6:]}T12:00")) == pytest.approx(morning[day] / 10, abs=1e-4)

    lat, lon, _ = station_position("NLM00006260")
    for grid in ("region1", "concat"):
        frag = xr.open_dataset(tmp / "data" / "gridded" / grid / f"{MONTH}.nc")
        rain = frag["x"].sel(channel="rain")
        at = rain.sel(lat=nearest(frag["lat"], lat), lon=nearest(frag["lon"], lon))
        np.testing.assert_allclose(at.values, want, atol=1e-4, equal_nan=True)
        # far from the only gauge (Vienna's cell) rain is missing, not zero
        vlat, vlon, _ = station_position("AUM00011035")
        assert np.isnan(rain.sel(lat=nearest(frag["lat"], vlat), lon=nearest(frag["lon"], vlon)).values).all()


def test_processed_store_holds_the_raw_values(run):
    tmp, cfg, _ = run
    store = xr.open_zarr(tmp / "data" / "processed" / "region1.zarr")
    stats = json.loads((tmp / "data" / "processed" / "region1_stats.json").read_text())
    assert store.sizes["time"] == 62
    # rain target in mm at De Bilt's cell; the frame without a 12 h total is not valid
    expected = expected_12h_totals(raw_hourly_rain())
    lat, lon, _ = station_position("NLM00006260")
    cell = dict(lat=nearest(store["lat"], lat), lon=nearest(store["lon"], lon))
    want = np.array([expected[datetime.fromisoformat(str(t)[:19])] for t in store["time"].values])
    np.testing.assert_allclose(store["rain_mm"].sel(**cell).values, want, atol=1e-4, equal_nan=True)
    assert not bool(store["valid"].sel(time="2015-01-01T00:00", **cell))
    assert bool(store["loss_mask"].sel(**cell))
    # normalised 500 hPa temperature at Vienna's cell, scaled back with the fitted statistics
    raw = raw_soundings()
    vlat, vlon, _ = station_position("AUM00011035")
    k = stats["channels"].index("temperature_500hPa")
    x = store["x"].sel(variable="temperature", pressure=500.0, lat=nearest(store["lat"], vlat),
                       lon=nearest(store["lon"], vlon))
    for t in ("2015-01-24T00:00", "2015-01-28T12:00", "2015-01-31T12:00"):
        frame = datetime.fromisoformat(t)
        back = float(x.sel(time=t)) * stats["std"][k] + stats["mean"][k]
        assert back == pytest.approx(raw[frame][500.0]["temperature"], abs=1e-3)
    # the statistics were fitted on the training split only (soundings from 23 January)
    assert stats["fitted_on"]["split"] == "train" and stats["fitted_on"]["end"] == cfg["splits"]["train"]["end"]
