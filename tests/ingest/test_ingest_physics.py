"""Derived variables, hypsometric heights, QC checks and interpolation against MetPy."""
import numpy as np
import pandas as pd
import pytest
from metpy.calc import thickness_hydrostatic, mixing_ratio_from_relative_humidity, relative_humidity_from_dewpoint
from metpy.interpolate import log_interpolate_1d
from metpy.units import units

from pipeline.readers.igra2 import LEVEL_COLUMNS
from pipeline.soundings.qc import derive_variables, hypsometric_heights, quality_control
from pipeline.soundings.vertical import interpolate_to_levels


def _levels(p, t=None, dpd=None, z=None, wdir=None, wspd=None, rh=None, profile=0):
    n = len(p)
    nan = np.full(n, np.nan)
    d = {"profile": np.full(n, profile, np.int64), "line": np.arange(1, n + 1), "lvltyp2": np.zeros(n, np.int8),
         "pressure": np.asarray(p, float), "geopotential_height": nan if z is None else np.asarray(z, float),
         "temperature": nan if t is None else np.asarray(t, float),
         "relative_humidity": nan if rh is None else np.asarray(rh, float),
         "dewpoint_depression": nan if dpd is None else np.asarray(dpd, float), "dewpoint": nan,
         "wind_direction": nan if wdir is None else np.asarray(wdir, float),
         "wind_speed": nan if wspd is None else np.asarray(wspd, float)}
    return pd.DataFrame(d)[LEVEL_COLUMNS]


def _soundings(n=1):
    return pd.DataFrame({"station": ["X"] * n, "time": pd.to_datetime(["2020-01-01"] * n), "lat": [30.0] * n,
                         "lon": [110.0] * n, "file": ["f"] * n, "line": np.arange(n)})


def test_derived_dewpoint_and_wind_match_metpy(aum_raw):
    lv = derive_variables(aum_raw.levels)
    row = lv[lv["line"] == 22].iloc[0]  # 500 hPa: T -26.5, DPDP 8.0, 140 deg at 6.0 m/s
    assert row.dewpoint == pytest.approx(-34.5)
    # wind from 140 deg (south-east): u = -6 sin(140), v = -6 cos(140)
    assert row.u == pytest.approx(-6 * np.sin(np.deg2rad(140)))
    assert row.v == pytest.approx(-6 * np.cos(np.deg2rad(140)))
    # RH path uses metpy.calc.dewpoint_from_relative_humidity
    lv2 = derive_variables(_levels([900.0], t=[20.0], rh=[50.0]))
    assert lv2["dewpoint"].iloc[0] == pytest.approx(9.26, abs=0.02)


def test_hypsometric_heights_match_metpy_thickness():
    p = np.array([1000, 950, 900, 850, 700, 600, 500, 400, 300.0])
    t = np.array([25, 22, 19, 16, 8, 0, -8, -20, -35.0])
    td = t - np.array([2, 3, 3, 5, 8, 10, 15, 15, 20.0])
    z = hypsometric_heights(np.zeros(p.size, np.int64), p, t, td)
    mr = mixing_ratio_from_relative_humidity(p * units.hPa, t * units.degC,
                                             relative_humidity_from_dewpoint(t * units.degC, td * units.degC))
    ref = thickness_hydrostatic(p * units.hPa, t * units.degC, mixing_ratio=mr).to("m").magnitude
    assert z[-1] == pytest.approx(ref, rel=2e-4)
    dry = hypsometric_heights(np.zeros(p.size, np.int64), p, t)
    assert dry[-1] == pytest.approx(thickness_hydrostatic(p * units.hPa, t * units.degC).to("m").magnitude, rel=1e-6)


def test_missing_heights_filled_from_reported_height(aum_raw):
    s, lv, counts = quality_control(aum_raw.soundings, derive_variables(aum_raw.levels))
    assert counts["qc_heights_computed"] > 9000
    # 850 hPa of sounding 0 is reported as 1441 m; recompute it from 925 hPa (763 m) only
    one = lv[lv["profile"] == 0]
    assert one.loc[one["pressure"] == 850.0, "geopotential_height"].iloc[0] == 1441.0
    filled = one[(one["pressure"] < 925) & (one["pressure"] > 850) & one["temperature"].notna()]
    assert filled["geopotential_height"].between(763, 1441).all()


def test_qc_checks_remove_and_count():
    p = [1000, 950, 900, 920, 850, 700, 500, 400]  # 920 breaks monotonic pressure
    t = [20, 17, 70, 14, 12, 2, -15, -24]  # 70 degC out of range
    dpd = [2, 2, 2, 2, -3, 5, 5, 5]  # negative depression -> dewpoint above temperature
    z = [100, 540, 990, 800, 1500, 3100, 5800, 7400]
    wspd = [5, 5, 5, 5, 5, 200, 5, 5]  # 200 m/s above the wind limit
    wdir = [0, 90, 180, 270, 360, 90, 400, 10]  # 400 deg invalid
    lv = derive_variables(_levels(p, t, dpd, z, wdir, wspd))
    s, out, c = quality_control(_soundings(), lv, {"policy": "drop_value"})
    assert c["qc_pressure_not_decreasing"] == 1 and 920.0 not in out["pressure"].to_numpy()
    assert c["qc_temperature_range"] == 1
    assert c["qc_dewpoint_above_temperature"] == 1
    assert c["qc_wind_range"] == 2
    assert np.isnan(out.loc[out["pressure"] == 700, "u"].iloc[0])
    assert np.isnan(out.loc[out["pressure"] == 900, "temperature"].iloc[0])
    assert len(s) == 1
    s2, out2, c2 = quality_control(_soundings(), lv, {"policy": "drop_sounding"})
    assert len(s2) == 0 and len(out2) == 0 and c2["qc_soundings_dropped_by_policy"] == 1


def test_superadiabatic_and_height_checks():
    p = np.array([1000, 980, 850, 800, 700, 500, 400.0])
    t = np.array([30, 24, 15, 25, 5, -12, -22.0])  # 800 hPa: +10 K spike -> theta falls above it
    z = np.array([110, 290, 1500, 1400, 3150, 5850, 7500.0])  # 800 hPa height not increasing
    lv = derive_variables(_levels(p, t, np.full(7, 3.0), z))
    s, out, c = quality_control(_soundings(), lv, {"superadiabatic_tolerance_k": 1.0})
    assert c["qc_superadiabatic"] == 2  # both ends of the 800 -> 700 hPa layer
    assert c["qc_height_not_increasing"] == 1
    # surface layer (1000 -> 980 hPa, 6 K drop in 20 hPa) is not checked
    assert out.loc[out["pressure"] == 980, "temperature"].iloc[0] == 24


def test_hypsometric_inconsistent_height_removed():
    p = np.array([1000, 925, 850, 700, 500, 400, 300.0])
    t = np.array([15, 10, 6, -3, -20, -30, -45.0])
    z_true = hypsometric_heights(np.zeros(7, np.int64), p, t) + 100
    z = np.round(z_true)
    z[3] += 300  # 700 hPa height wrong by 300 m
    lv = derive_variables(_levels(p, t, None, z))
    s, out, c = quality_control(_soundings(), lv)
    assert c["qc_height_hypsometric"] == 1
    # refilled hypsometrically from its neighbours
    assert out["geopotential_height"].iloc[3] == pytest.approx(z_true[3], abs=2)


def test_duplicate_soundings_dropped(aum_bytes):
    from pipeline.readers.igra2 import parse_igra2
    from pipeline.ingest import soundings_to_dataset

    raw = parse_igra2(aum_bytes + aum_bytes[: aum_bytes.index(b"#", 10)], "dup.txt")  # first sounding twice
    ds = soundings_to_dataset(raw, [1000, 850, 500])
    assert ds.attrs["qc_duplicate_soundings"] == 1 and ds.sizes["profile"] == 321


@pytest.mark.filterwarnings("ignore:Interpolation point out of data bounds")
def test_interpolation_matches_metpy_log_interpolate():
    rng = np.random.default_rng(0)
    levels = np.array([1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100.0])
    profs, ps, vs, refs = [], [], [], []
    for k in range(40):
        n = rng.integers(3, 30)
        p = np.sort(rng.uniform(80, 1020, n))[::-1]
        p = p[:: int(rng.integers(1, 3))]
        v = rng.normal(size=p.size).cumsum()
        profs.append(np.full(p.size, k))
        ps.append(p)
        vs.append(v)
        refs.append(log_interpolate_1d(levels, p[::-1], v[::-1], fill_value=np.nan))
    out = interpolate_to_levels(np.concatenate(profs), np.concatenate(ps), np.concatenate(vs), 40, levels)
    np.testing.assert_allclose(out, np.array(refs), rtol=1e-10, atol=1e-10, equal_nan=True)


def test_no_extrapolation_below_ground_or_above_top():
    out = interpolate_to_levels(np.zeros(3, int), np.array([950.0, 700.0, 400.0]), np.array([10.0, 0.0, -30.0]), 1,
                                [1000, 950, 850, 300])
    assert np.isnan(out[0, 0]) and out[0, 1] == 10.0 and np.isnan(out[0, 3])
    w = np.log(950 / 850) / np.log(950 / 700)
    assert out[0, 2] == pytest.approx(10 + w * (0 - 10))
