"""Gridded upper-air source (pipeline/gridding/upper_air.py) on real pressure-level files.

The files in tests/data/gridded are lat/lon subsets of real public files (values unchanged;
tests/data/gridded/README.md gives sources and licences): a GFS analysis (MetPy's
GFS_test.nc, 2010-10-26 12 UTC, K / gpm / m s-1 / %, Pa levels, 0..360 longitudes,
descending latitudes), NCAR's uvt.nc (January 1988, temperature in degC, hPa levels,
-180..180 longitudes, non-CF time) and an ERA5 single-level file (no pressure levels).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from pipeline.common.errors import GridError
from pipeline.gridding import upper_air as ua
from pipeline.gridding.analysis import grid_month
from tests.gridding.gridding_helpers import make_interim, write_config

DATA = Path(__file__).resolve().parents[1] / "data" / "gridded"
GFS = DATA / "GFS_test_subset.nc"
UVT = DATA / "uvt_subset.nc"
ERA5 = DATA / "era5_single_level_subset.nc"
MONTH = "2010-10"

# 1-degree grid whose cell centres fall on the GFS file's 1-degree points (260..267 E)
GFS_REGIONS = {"region1": {"lat_min": 29.5, "lat_max": 33.5, "lon_min": -96.5, "lon_max": -92.5},
               "region2": {"lat_min": 29.5, "lat_max": 33.5, "lon_min": -100.5, "lon_max": -96.5}}


@pytest.fixture(scope="module")
def gfs_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ua")
    return write_config(tmp, {
        "period": {"start": "2010-10", "end": "2010-12"},
        "splits": {"train": {"start": "2010-10-01", "end": "2010-10-31"},
                   "val": {"start": "2010-11-05", "end": "2010-11-30"},
                   "test": {"start": "2010-12-05", "end": "2010-12-31"}},
        "regions": GFS_REGIONS, "grid": {"resolution_deg": 1.0}, "evaluation": {"fss_windows": [1, 3]},
        "data": {"upper_air": "gridded"}})


@pytest.fixture(scope="module")
def gfs_fields(gfs_config):
    return ua.read_fields(GFS, gfs_config[1])


@pytest.fixture(scope="module")
def raw():
    with xr.open_dataset(GFS) as ds:
        return ds.load()


def test_bilinear_matches_scipy_regular_grid_interpolator():
    rng = np.random.default_rng(3)
    lat = np.linspace(60.0, 20.0, 41)  # descending, as GFS and ERA5 files are
    lon = np.arange(200.0, 300.0, 2.5)  # 0..360 convention
    values = rng.normal(size=(3, lat.size, lon.size))
    tlat = rng.uniform(20.0, 60.0, 7)
    tlon = rng.uniform(-160.0, -60.0, 9)  # targets in -180..180
    got = ua.bilinear(values, lat, lon, np.sort(tlat), np.sort(tlon))
    pts = np.stack(np.meshgrid(np.sort(tlat), np.mod(np.sort(tlon), 360), indexing="ij"), -1)
    for k in range(3):
        ref = RegularGridInterpolator((lat[::-1], lon), values[k, ::-1], method="linear")(pts)
        np.testing.assert_allclose(got[k], ref, rtol=0, atol=1e-12)


def test_bilinear_wraps_a_global_grid_across_the_date_line():
    lon = np.arange(0.0, 360.0, 10.0)
    lat = np.array([-10.0, 0.0, 10.0])
    values = np.tile(np.cos(np.radians(lon)), (3, 1)) + lat[:, None]
    got = ua.bilinear(values, lat, lon, np.array([0.0]), np.array([355.0, -5.0, 175.0]))
    # 355 E lies between 350 and 360 (= 0): the mean of the two columns
    mid = 0.5 * (np.cos(np.radians(350.0)) + 1.0)
    np.testing.assert_allclose(got[0], [mid, mid, 0.5 * (np.cos(np.radians(170.0)) + np.cos(np.radians(180.0)))])


def test_bilinear_refuses_a_grid_that_does_not_cover_the_region():
    lat, lon = np.arange(20.0, 41.0), np.arange(250.0, 271.0)
    with pytest.raises(GridError, match=r"f\.nc: the file's grid does not cover the region: longitudes "
                                        r"-115\.5\.\.-100 needed, the file has 250\.\.270"):
        ua.bilinear(np.zeros((lat.size, lon.size)), lat, lon, np.array([30.0]), np.array([-115.5, -100.0]),
                    where="f.nc")


def test_gfs_values_and_units_against_the_raw_file(gfs_fields, raw):
    """K -> degC, gpm -> m, Pa levels -> hPa; dewpoint from RH with MetPy."""
    import metpy.calc as mc
    from metpy.units import units

    f = gfs_fields
    assert list(f.times) == [np.datetime64("2010-10-26T12:00")]
    assert f.missing_levels == {}
    pt = dict(lat=35.0, lon=262.0)
    t850 = float(raw["Temperature_isobaric"].sel(isobaric3=85000.0, **pt).item())
    j = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100].index(850)
    iy, ix = int(np.flatnonzero(f.lat == 35.0)[0]), int(np.flatnonzero(f.lon == 262.0)[0])
    assert f.values["temperature"][0, j, iy, ix] == pytest.approx(t850 - 273.15, abs=1e-4)
    z500 = float(raw["Geopotential_height_isobaric"].sel(isobaric3=50000.0, **pt).item())
    assert f.values["geopotential_height"][0, 4, iy, ix] == pytest.approx(z500, abs=1e-3)
    u300 = float(raw["u-component_of_wind_isobaric"].sel(isobaric3=30000.0, **pt).item())
    assert f.values["u"][0, 6, iy, ix] == pytest.approx(u300, abs=1e-5)
    rh = float(raw["Relative_humidity_isobaric"].sel(isobaric5=85000.0, **pt).item())
    td = mc.dewpoint_from_relative_humidity(units.Quantity(t850, "K"), units.Quantity(rh, "percent")).to("degC")
    assert f.values["dewpoint"][0, j, iy, ix] == pytest.approx(td.magnitude, abs=1e-4)
    assert -90 < np.nanmin(f.values["temperature"]) and np.nanmax(f.values["temperature"]) < 40


def test_fragment_from_gfs_equals_file_at_coinciding_points(gfs_config, raw):
    """Cell centres on file points equal them; rain is the soundings path's gauge analysis."""
    cfg = gfs_config[1]
    snd, gau = make_interim(cfg, MONTH, seed=1)
    ds = ua.grid_month_gridded([str(GFS)], gau, cfg, MONTH, "concat")
    ref = grid_month(snd, gau, cfg, MONTH, grid_name="concat")
    assert list(ds["channel"].values) == list(ref["channel"].values)
    assert ds["x"].shape == ref["x"].shape and ds["x"].dtype == np.float32
    np.testing.assert_array_equal(ds["x"].sel(channel="rain").values, ref["x"].sel(channel="rain").values)
    frame = list(ds["time"].values).index(np.datetime64("2010-10-26T12:00"))
    x = ds["x"].isel(time=frame)
    for lat in (30.0, 33.0):
        for lon in (-100.0, -93.0):
            k = float(raw["Temperature_isobaric"].sel(isobaric3=70000.0, lat=lat, lon=lon + 360).item()) - 273.15
            assert float(x.sel(channel="temperature_700hPa", lat=lat, lon=lon)) == pytest.approx(k, abs=1e-4)
            z = float(raw["Geopotential_height_isobaric"].sel(isobaric3=25000.0, lat=lat, lon=lon + 360).item())
            assert float(x.sel(channel="geopotential_height_250hPa", lat=lat, lon=lon)) == pytest.approx(z, rel=1e-6)
    # every other frame has no file time within the tolerance: NaN, counted, not zero
    others = np.delete(ds["x"].values[:, :-1], frame, axis=0)
    assert np.isnan(others).all()
    assert ds.attrs["frames_without_upper_air"] == ds.sizes["time"] - 1
    assert ds.attrs["upper_air_times_used"] == 1 and ds.attrs["upper_air_levels_missing"] == 0
    assert np.isfinite(x.values).all()
    np.testing.assert_array_equal(ds["sounding_coverage"].values[frame], [1.0, 1.0])
    assert (np.delete(ds["sounding_coverage"].values, frame, axis=0) == 0).all()


def test_midpoint_is_the_bilinear_mean(gfs_fields, raw):
    f = gfs_fields
    got = ua.bilinear(f.values["temperature"][0, 2], f.lat, f.lon, np.array([35.5]), np.array([-97.5]))
    corners = raw["Temperature_isobaric"].sel(isobaric3=85000.0, lat=[35.0, 36.0], lon=[262.0, 263.0])
    assert got[0, 0] == pytest.approx(float(corners.mean()) - 273.15, abs=1e-4)


def test_uvt_celsius_hpa_levels_and_missing_quantities(gfs_config):
    """uvt.nc: T already in degC ('C', which pint alone reads as coulomb), no humidity or
    height (NaN and counted), a non-CF time given explicitly."""
    cfg = gfs_config[1]
    with pytest.raises(GridError, match=r"uvt_subset\.nc: no decodable time coordinate"):
        ua.read_fields(UVT, cfg)
    f = ua.read_fields(UVT, cfg, valid_time="1988-01-15T00:00")
    with xr.open_dataset(UVT, decode_times=False) as raw_uvt:
        t500 = raw_uvt["T"].sel(lev=500).isel(time=0).values
        u200 = raw_uvt["U"].sel(lev=200).isel(time=0).values
    np.testing.assert_allclose(f.values["temperature"][0, 4], t500, atol=1e-5)
    np.testing.assert_allclose(f.values["u"][0, 8], u200, atol=1e-6)
    assert f.missing_levels["temperature"] == f.missing_levels["u"] == [925.0]  # the file has no 925 hPa
    assert np.isnan(f.values["temperature"][0, 1]).all()
    assert np.isnan(f.values["dewpoint"]).all() and np.isnan(f.values["geopotential_height"]).all()
    assert f.missing_levels["dewpoint"] == [float(p) for p in cfg["levels_hpa"]]


def test_units_are_checked_and_converted():
    np.testing.assert_allclose(ua.convert([273.15, 300.0], "K", "degC", "temperature", "w"), [0.0, 26.85])
    np.testing.assert_allclose(ua.convert([5.0], "C", "degC", "temperature", "w"), [5.0])
    np.testing.assert_allclose(ua.convert([5500.0], "gpm", "m", "geopotential_height", "w"), [5500.0])
    np.testing.assert_allclose(ua.convert([85000.0, 500.0], "Pa", "hPa", "level", "w"), [850.0, 5.0])
    with pytest.raises(GridError, match=r"w: units 'm/s' are not units of temperature"):
        ua.convert([1.0], "m/s", "degC", "temperature", "w")
    with pytest.raises(GridError, match=r"w: no 'units' attribute"):
        ua.convert([1.0], None, "degC", "temperature", "w")


def test_geopotential_and_level_names_and_mapping(gfs_config, tmp_path):
    """ERA5-style geopotential (m2 s-2) / g0; levels encoded in names (t850, z500); a
    config mapping for names the reader does not know."""
    cfg = gfs_config[1]
    lat, lon = np.array([40.0, 30.0]), np.array([255.0, 265.0])
    t = xr.DataArray([[[1.0, 2.0], [3.0, 4.0]]], dims=("time", "lat", "lon"))
    ds = xr.Dataset({"t850": (t + 270.0).assign_attrs(units="K"), "z500": (t * 1000.0).assign_attrs(units="m**2 s**-2"),
                     "WIND_E": xr.DataArray(np.ones((1, 1, 2, 2)), dims=("time", "plev", "lat", "lon"),
                                            attrs={"units": "knots"})},
                    coords={"time": [np.datetime64("2010-10-26T12:00", "ns")], "lat": lat, "lon": lon,
                            "plev": ("plev", [70000.0], {"units": "Pa"})})
    ds["lat"].attrs["units"], ds["lon"].attrs["units"] = "degrees_north", "degrees_east"
    path = tmp_path / "era5_like.nc"
    ds.to_netcdf(path)
    f = ua.read_fields(path, cfg, mapping={"u": "WIND_E"})
    np.testing.assert_allclose(f.values["temperature"][0, 2], [[-2.15, -1.15], [-0.15, 0.85]], atol=1e-9)
    np.testing.assert_allclose(f.values["geopotential_height"][0, 4], np.array([[1, 2], [3, 4]]) * 1000 / 9.80665)
    np.testing.assert_allclose(f.values["u"][0, 3], 0.514444, atol=1e-6)  # 1 kn in m/s at 700 hPa
    assert np.isnan(f.values["temperature"][0, 0]).all()  # 1000 hPa absent: NaN, not zero
    assert 1000.0 in f.missing_levels["temperature"]


def test_bad_inputs_are_one_line_errors(gfs_config, tmp_path):
    cfg = gfs_config[1]
    with pytest.raises(GridError, match=r"era5_single_level_subset\.nc: no upper-air variable on pressure levels"):
        ua.read_fields(ERA5, cfg)
    grib = tmp_path / "a.grib2"
    grib.write_bytes(b"GRIB")
    import importlib.util
    if importlib.util.find_spec("cfgrib") is None:
        with pytest.raises(GridError, match=r"a\.grib2: GRIB input needs the cfgrib package, which is not installed"):
            ua.read_fields(grib, cfg)
    with pytest.raises(GridError, match=r"nope\.nc: no such gridded upper-air file"):
        ua.read_fields(tmp_path / "nope.nc", cfg)


def test_command_line_writes_a_fragment_and_refuses_an_uncovered_region(gfs_config, tmp_path, capsys):
    cfg_path, cfg = gfs_config
    _, gau = make_interim(cfg, MONTH, seed=1)
    gpath = tmp_path / "g.nc"
    gau.to_netcdf(gpath)
    out = tmp_path / "{grid}.nc"
    run = ["--config", str(cfg_path), "--gauges", str(gpath), "--month", MONTH, "--grid", "region1,concat",
           "--out", str(out)]
    assert ua.main(run + ["--files", str(GFS)]) == 0
    with xr.open_dataset(tmp_path / "region1.nc") as ds:
        assert ds.sizes["lon"] == 4 and ds.attrs["upper_air_times_used"] == 1
        v = float(ds["x"].sel(channel="temperature_850hPa", lat=31.0, lon=-95.0, time="2010-10-26T12:00"))
    with xr.open_dataset(GFS) as raw_gfs:
        assert v == pytest.approx(float(raw_gfs["Temperature_isobaric"].sel(isobaric3=85000.0, lat=31.0,
                                                                             lon=265.0).item()) - 273.15, abs=1e-4)
    capsys.readouterr()
    assert ua.main(run + ["--files", str(UVT), "--time", "2010-10-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "uvt_subset.nc: the file's grid does not cover the region" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_command_line_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "pipeline.gridding.upper_air", "--files", "nope.nc", "--gauges",
                        "g.nc", "--month", "2010-10", "--grid", "region1", "--out", "o.nc"],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "error: nope.nc: no such gridded upper-air file"


def test_bilinear_on_the_real_file_matches_xarray_interp(gfs_fields, raw):
    """Every level of the GFS temperature on a 0.5-degree grid in -180..180 longitudes
    against xarray's ``Dataset.interp`` (linear) on the file's own 0..360 axes."""
    lat, lon = np.arange(26.25, 39.0, 0.5), np.arange(-104.75, -85.5, 0.5)
    got = ua.bilinear(gfs_fields.values["temperature"][0], gfs_fields.lat, gfs_fields.lon, lat, lon)
    levels = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]
    ref = (raw["Temperature_isobaric"].isel(time=0).sel(isobaric3=[p * 100.0 for p in levels])
           .astype(float).interp(lat=lat, lon=lon + 360.0).values - 273.15)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
