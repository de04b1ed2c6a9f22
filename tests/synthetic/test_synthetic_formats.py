"""Raw formats of the nature run: IGRA v2 layout as NCEI publishes it, gauge CSV."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.nature_run import generator as synthetic
from pipeline.nature_run import formats as fmt
from pipeline.nature_run import physics as phys
from synthetic_testutil import small_config

DATA = Path(__file__).resolve().parents[1] / "data" / "synthetic"


@given(st.lists(st.integers(-99999, 999999), min_size=1, max_size=50))
def test_put_int_matches_python_format(values):
    buf = np.full((len(values), 8), fmt.SPACE, np.uint8)
    fmt.put_int(buf, 2, 7, np.array(values))
    got = [bytes(r).decode() for r in buf]
    assert got == [" " + f"{v:6d}" + " " for v in values]


def test_put_int_rejects_overflow():
    buf = np.full((1, 5), fmt.SPACE, np.uint8)
    with pytest.raises(ValueError, match="does not fit columns 1-5"):
        fmt.put_int(buf, 1, 5, np.array([123456]))


def _blank_columns(lines):
    width = max(len(x) for x in lines)
    arr = np.array([list(x.ljust(width)) for x in lines])
    return {i + 1 for i in range(width) if (arr[:, i] == " ").all()}


def test_igra_layout_matches_real_ncei_file(full_run):
    real = gzip.open(DATA / "AUM00011035-data.txt.gz", "rt").read().splitlines()
    ours = []
    for p in sorted((full_run / "soundings" / "2020-01").glob("*-data.txt")):
        ours += p.read_text().splitlines()
    for pick in (lambda x: x.startswith("#"), lambda x: not x.startswith("#")):
        r = [x for x in real if pick(x)]
        o = [x for x in ours if pick(x)]
        assert {len(x) for x in o} == {len(x) for x in r}  # 71 and 52 columns
    # the columns between fields (NCEI's format description) are blank in both files
    header_gaps, level_gaps = {13, 18, 21, 24, 27, 32, 37, 55, 63}, {3, 9, 34, 40, 46, 52}
    r_h, o_h = [x for x in real if x[0] == "#"], [x for x in ours if x[0] == "#"]
    r_l, o_l = [x for x in real if x[0] != "#"], [x for x in ours if x[0] != "#"]
    assert header_gaps <= _blank_columns(r_h) and header_gaps <= _blank_columns(o_h)
    assert level_gaps <= _blank_columns(r_l) and level_gaps <= _blank_columns(o_l)
    assert {x[37:45] for x in o_h} == {x[37:45] for x in r_h} == {"ncdc-gts"}
    # level types and flags use NCEI's vocabulary
    lv = [x for x in ours if not x.startswith("#")]
    assert {x[:2] for x in lv} <= {"10", "20", "21", "30"}
    assert {x[15] for x in lv} | {x[21] for x in lv} | {x[27] for x in lv} <= {" ", "A", "B"}


def test_igra_records_decode_to_consistent_soundings(full_run):
    path = sorted((full_run / "soundings" / "2020-02").glob("*-data.txt"))[0]
    lines = path.read_text().splitlines()
    stations = pd.read_fwf(full_run / "soundings" / "igra2-station-list.txt", header=None,
                           colspecs=[(0, 11), (12, 20), (21, 30), (31, 37)],
                           names=["id", "lat", "lon", "elev"]).set_index("id")
    i = 0
    n_soundings = 0
    while i < len(lines):
        h = lines[i]
        sid = h[1:12]
        assert h[0] == "#" and sid == path.name[:11]
        t = pd.Timestamp(int(h[13:17]), int(h[18:20]), int(h[21:23]), int(h[24:26]))
        assert t.hour in (0, 12) and t.month == 2
        assert abs(int(h[55:62]) / 1e4 - stations.loc[sid, "lat"]) < 1e-4
        assert abs(int(h[63:71]) / 1e4 - stations.loc[sid, "lon"]) < 1e-4
        numlev = int(h[32:36])
        levels = lines[i + 1:i + 1 + numlev]
        assert all(not x.startswith("#") for x in levels)
        press = np.array([int(x[9:15]) for x in levels])
        kinds = [x[:2] for x in levels]
        assert kinds[0] == "21"  # surface first, near the station pressure
        p_sfc = press[0] / 100
        z_std = 44330.8 * (1 - (p_sfc / 1013.25) ** 0.190263)
        assert abs(z_std - stations.loc[sid, "elev"]) < 250
        valid = press[press > 0]
        assert (np.diff(valid) < 0).all()  # decreasing pressure
        temp = np.array([int(x[22:27]) for x in levels])
        dpdp = np.array([int(x[34:39]) for x in levels])
        rh = np.array([int(x[28:33]) for x in levels])
        assert ((dpdp >= 0) | (dpdp == -9999)).all()
        assert ((rh > 0) & (rh <= 1000) | (rh == -9999)).all()
        ok = (temp > -8000) & (temp < 600)
        assert (temp[ok] > -950).all()
        i += 1 + numlev
        n_soundings += 1
    assert 45 <= n_soundings <= 58  # 58 nominal in February 2020, a few percent missing


def test_igra_flaws_present(full_run):
    text = "".join(p.read_text() for p in (full_run / "soundings").rglob("*-data.txt"))
    lines = [x for x in text.splitlines() if not x.startswith("#")]
    headers = [x for x in text.splitlines() if x.startswith("#")]
    nominal = 8 * (31 + 29 + 31) * 2
    assert 0.85 * nominal < len(headers) < 0.995 * nominal  # missing soundings
    assert any(x[:2] == "30" and x[9:15] == " -9999" for x in lines)  # wind by height
    assert any(x[34:39] == "-9999" and x[28:33] != "-9999" for x in lines)  # RH-only humidity
    assert any("-8888" in x for x in lines)  # removed by NCEI QC
    tops = []
    for h_i, block in enumerate(text.split("#")[1:]):
        rows = block.splitlines()[1:]
        p = [int(r[9:15]) for r in rows if int(r[9:15]) > 0]
        tops.append(min(p) / 100)
    tops = np.array(tops)
    assert 0.02 < (tops > 140).mean() < 0.12  # profiles ending early


def test_station_list_matches_ncei_columns(full_run):
    real = (DATA / "igra2-station-list-head.txt").read_text().splitlines()
    ours = (full_run / "soundings" / "igra2-station-list.txt").read_text().splitlines()
    assert {len(x) for x in ours} == {len(x) for x in real} == {88}
    assert _blank_columns(real) <= _blank_columns(ours) | set(range(39, 72))
    lat = np.array([float(x[12:20]) for x in ours])
    lon = np.array([float(x[21:30]) for x in ours])
    box = synthetic.network_box(small_config()["regions"])
    assert ((lat > box[0]) & (lat < box[1]) & (lon > box[2]) & (lon < box[3])).all()
    assert all(x[:6] == "SYN000" and len(x[:11].strip()) == 11 for x in ours)


def test_gauge_csv_contract(full_run):
    st_ = pd.read_csv(full_run / "gauges" / "stations.csv")
    assert list(st_.columns) == ["id", "lat", "lon", "elevation_m"] and len(st_) == 24
    df = pd.read_csv(full_run / "gauges" / "2020-02.csv", dtype={"station": str}, keep_default_na=True)
    assert list(df.columns) == ["station", "time", "rain_mm"]
    t = pd.to_datetime(df.time)
    assert t.min() == pd.Timestamp("2020-02-01T00:00") and t.max() == pd.Timestamp("2020-02-29T23:00")
    assert set(df.station) <= set(st_.id)
    full = 24 * 29 * 24
    assert 0.9 * full < len(df) < full  # some hours absent
    assert df.rain_mm.isna().sum() > 0  # some present rows with an empty value
    v = df.rain_mm.dropna().to_numpy()
    np.testing.assert_allclose(v * 10, np.round(v * 10), atol=1e-6)
    assert (v == 0).mean() > 0.7


def test_gauge_bad_values_and_hour_convention():
    """One month of the default 400-gauge network: rare bad values; time = end of hour."""
    cfg = small_config()
    cfg["synthetic"]["n_gauges"] = 400
    net = synthetic.make_network(cfg, 42)
    per = pd.Period("2020-07", "M")
    ends = pd.date_range(per.start_time, (per + 1).start_time - pd.Timedelta(hours=1), freq="h")
    truth = synthetic.hourly_rain(cfg, 42, "advective", ends, net.gauge_lon, net.gauge_lat)
    data = synthetic.gauges_month("2020-07", net, truth, phys.rng_for(42, 99))
    from io import BytesIO
    df = pd.read_csv(BytesIO(data))
    v = df.rain_mm.dropna()
    assert 1 <= (v < 0).sum() <= 30 and 1 <= (v > 150).sum() <= 30
    # gauge totals follow the truth of the hour ending at `time` (noise has mean 1)
    df["time"] = pd.to_datetime(df.time)
    ok = df[(df.rain_mm >= 0) & (df.rain_mm < 150)]
    piv = ok.pivot(index="time", columns="station", values="rain_mm").reindex(index=ends, columns=net.gauge_id)
    obs, tru = piv.to_numpy(), truth
    m = np.isfinite(obs)
    assert abs(obs[m].sum() / tru[m].sum() - 1) < 0.05
    shifted = np.isfinite(obs[1:])
    assert np.corrcoef(obs[m], tru[m])[0, 1] > np.corrcoef(obs[1:][shifted], tru[:-1][shifted])[0, 1]
