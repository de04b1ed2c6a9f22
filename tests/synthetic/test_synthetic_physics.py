"""Physics of the nature run against MetPy, and the causal structure of the two worlds."""
from __future__ import annotations


import metpy.calc as mpcalc
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from metpy.units import units
from synthetic_testutil import small_config

from pipeline.nature_run import generator as synthetic
from pipeline.nature_run import physics as phys
from pipeline.gridding.geometry import make_grid

MANDATORY = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]


def test_thermodynamic_helpers_match_metpy():
    t = np.linspace(-60, 35, 40)
    td = t - np.linspace(0.2, 25, 40)
    p = np.linspace(1000, 150, 40)
    es = mpcalc.saturation_vapor_pressure(t * units.degC).to("hPa").m
    # Bolton (1980) vs MetPy's formula (Ambaum 2020 since MetPy 1.7): within 2.5 % over -60..35 C
    np.testing.assert_allclose(phys.saturation_vapor_pressure_hpa(t), es, rtol=0.025)
    np.testing.assert_allclose(phys.saturation_vapor_pressure_hpa(t[t > -20]), es[t > -20], rtol=0.005)
    w = mpcalc.mixing_ratio(mpcalc.saturation_vapor_pressure(td * units.degC), p * units.hPa)
    tv = mpcalc.virtual_temperature(t * units.degC, w).to("K").m
    np.testing.assert_allclose(phys.virtual_temperature_k(t, td, p), tv, rtol=2e-5)


def _metpy_thickness(p, t, td):
    w = mpcalc.mixing_ratio(mpcalc.saturation_vapor_pressure(td * units.degC), p * units.hPa)
    return mpcalc.thickness_hydrostatic(p * units.hPa, t * units.degC, mixing_ratio=w).to("m").m


def test_truth_heights_are_hypsometric(full_run):
    ds = xr.open_dataset(full_run / "truth" / "2020-01.nc")
    p = ds.level.values
    rng = np.random.default_rng(0)
    checked = 0
    for ti, yi, xi in zip(rng.integers(0, ds.sizes["time"], 12), rng.integers(0, 24, 12), rng.integers(0, 48, 12)):
        col = ds.isel(time=ti, lat=yi, lon=xi)
        t, td, z = col.temperature.values, col.dewpoint.values, col.geopotential_height.values
        assert (td <= t).all()
        for k in range(p.size - 1):
            th = _metpy_thickness(p[k:k + 2], t[k:k + 2], td[k:k + 2])
            # fine-grid integration vs MetPy's two-level trapezoid: < 0.5 % (tropopause kink)
            assert abs((z[k + 1] - z[k]) - th) < max(0.005 * th, 1.0), (ti, yi, xi, p[k])
            checked += 1
    assert checked == 12 * 10
    # sea-level pressure and 1000 hPa height agree with the hypsometric equation
    z1000 = ds.geopotential_height.sel(level=1000.0).values
    t1000 = ds.temperature.sel(level=1000.0).values + 273.15
    expected = phys.RD / phys.G0 * t1000 * np.log(ds.mslp.values / 1000.0)
    assert np.abs(z1000 - expected).max() < 6.0


def _parse_mandatory(path):
    """Mandatory-level records of an IGRA file, parsed by fixed columns (independent of the writer)."""
    rows = []
    sounding = -1
    for line in open(path):
        if line.startswith("#"):
            sounding += 1
            continue
        if line[0:2] != "10":
            continue
        press, gph, temp, dpdp = int(line[9:15]), int(line[16:21]), int(line[22:27]), int(line[34:39])
        rows.append((sounding, press / 100, gph, temp / 10, dpdp / 10, line[21], line[27]))
    return pd.DataFrame(rows, columns=["s", "p", "z", "t", "dpd", "zflag", "tflag"])


def test_sounding_heights_hypsometric(full_run):
    diffs = []
    for path in sorted((full_run / "soundings" / "2020-02").glob("*-data.txt")):
        df = _parse_mandatory(path)
        df = df[(df.p >= 100) & (df.z > -8000) & (df.t > -800) & (df.dpd > -800) & (df.zflag != " ")
                & (df.tflag != " ")]
        for _, g in df.groupby("s"):
            g = g.sort_values("p", ascending=False)
            for a, b in zip(g.itertuples(), list(g.itertuples())[1:]):
                if MANDATORY.index(int(b.p)) != MANDATORY.index(int(a.p)) + 1:
                    continue
                th = _metpy_thickness(np.array([a.p, b.p]), np.array([a.t, b.t]),
                                      np.array([a.t - a.dpd, b.t - b.dpd]))
                diffs.append((b.z - a.z) - th)
    diffs = np.abs(np.array(diffs))
    assert diffs.size > 1000
    # instrument noise (T 0.25-0.4 K, height 2-8 m) and rare gross errors
    assert np.median(diffs) < 6.0
    assert np.mean(diffs < 30) > 0.98


def _region_rain_series(world: str, months: list[str], seed: int = 11):
    """12 h truth rain averaged over each region, at every frame of the months."""
    cfg = small_config()
    grid = make_grid(cfg, "concat")
    glat, glon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    mask1 = grid.region1_mask.ravel()
    r1, r2, times = [], [], []
    for m in months:
        per = pd.Period(m, "M")
        ends = pd.date_range(per.start_time - pd.Timedelta(hours=11),
                             (per + 1).start_time - pd.Timedelta(hours=1), freq="h")
        hourly = synthetic.hourly_rain(cfg, seed, world, ends, glon.ravel(), glat.ravel())
        frames = synthetic.month_frames(m)
        pos = ends.get_indexer(frames)
        c = np.concatenate([np.zeros((1, hourly.shape[1])), hourly.cumsum(0)])
        r12 = c[pos + 1] - c[pos - 11]
        r1.append(r12[:, mask1].mean(1))
        r2.append(r12[:, ~mask1].mean(1))
        times.append(frames)
    return np.concatenate(r1), np.concatenate(r2), np.concatenate(times)


def _anomaly(x):
    return x - pd.Series(x).rolling(61, center=True, min_periods=1).mean().to_numpy()


MONTHS = [f"2020-{m:02d}" for m in range(4, 10)]


@pytest.mark.parametrize("world", ["advective", "control"])
def test_lagged_correlation_region2_to_region1(world):
    r1, r2, _ = _region_rain_series(world, MONTHS)
    x, y = _anomaly(r2)[:-1], _anomaly(r1)[1:]  # region 2 at t, region 1 in the next 12 h
    r = np.corrcoef(x, y)[0, 1]
    # partial correlation given region 1's own rain at t (what exp1 already sees)
    own = _anomaly(r1)[:-1]
    res_x = x - np.polyval(np.polyfit(own, x, 1), own)
    res_y = y - np.polyval(np.polyfit(own, y, 1), own)
    partial = np.corrcoef(res_x, res_y)[0, 1]
    if world == "advective":
        assert r > 0.5 and partial > 0.4, (r, partial)
    else:
        assert abs(r) < 0.15 and abs(partial) < 0.15, (r, partial)


def test_truth_file_rain_equals_truth_series(full_run):
    ds = xr.open_dataset(full_run / "truth" / "2020-03.nc")
    cfg = small_config()
    grid = make_grid(cfg, "concat")
    r1, r2, times = _region_rain_series("advective", ["2020-03"], seed=7)
    np.testing.assert_array_equal(ds.time.values, times)
    np.testing.assert_allclose(ds.rain_mm.values[:, grid.region1_mask].mean(1), r1, atol=1e-3)


def test_rain_statistics_plausible():
    """A year at 60 gauge points: mostly dry 12 h windows, heavy tail, wetter summers."""
    cfg = small_config()
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(106, 118, 60), rng.uniform(28, 34, 60)
    ends = pd.date_range("2020-01-01T01:00", "2021-01-01T00:00", freq="h")
    hourly = synthetic.hourly_rain(cfg, 42, "advective", ends, lon, lat)
    r12 = hourly.reshape(-1, 12, 60).sum(1)
    wet = r12[r12 >= 0.1]
    dry = (r12 < 0.1).mean()
    assert 0.5 <= dry <= 0.75, dry
    p95, p99 = np.percentile(wet, [95, 99])
    assert 10 < p95 < 35 and 25 < p99 < 70, (p95, p99)
    assert 0.001 < (r12 > 30).mean() < 0.02
    month = ends[11::12].month
    summer, winter = r12[np.isin(month, [6, 7, 8])].mean(), r12[np.isin(month, [12, 1, 2])].mean()
    assert summer > 2.5 * winter
    assert 700 < hourly.sum(0).mean() < 2000  # mm per year
