"""GRIB input of the gridded upper-air source (pipeline/gridding/upper_air.py, cfgrib engine).

The GRIB files are written here with ecCodes from the real GFS analysis in
tests/data/gridded/GFS_test_subset.nc (2010-10-26 12 UTC; source and licence in the README
there): temperature, geopotential height (or geopotential), u, v and relative humidity on
isobaric levels, GRIB2 simple packing with 24 bits per value. That packing stores every
value to within one packing step, 2 * range / (2**24 - 1) of its field, and cfgrib decodes
to float32 (relative rounding 2**-24): together below 1e-4 K for temperature and 0.01 m for
geopotential height, so the values read back through the GRIB path must equal the netCDF
path's to that precision, after unit conversion and regridding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.common.errors import GridError
from pipeline.gridding import upper_air as ua
from tests.gridding.gridding_helpers import make_interim, write_config

pytest.importorskip("cfgrib", reason="GRIB input needs cfgrib (requirements.lock)")
eccodes = pytest.importorskip("eccodes")

GFS = Path(__file__).resolve().parents[1] / "data" / "gridded" / "GFS_test_subset.nc"
MONTH = "2010-10"
BITS = 24
# 1-degree grid whose cell centres fall on the GFS file's points, and the same shifted by half a
# degree (every cell centre then between four file points: the bilinear weights are used)
REGIONS = {"region1": {"lat_min": 29.5, "lat_max": 33.5, "lon_min": -96.5, "lon_max": -92.5},
           "region2": {"lat_min": 29.5, "lat_max": 33.5, "lon_min": -100.5, "lon_max": -96.5}}
SHIFTED = {"region1": {"lat_min": 30.0, "lat_max": 34.0, "lon_min": -96.0, "lon_max": -92.0},
           "region2": {"lat_min": 30.0, "lat_max": 34.0, "lon_min": -100.0, "lon_max": -96.0}}
# GFS netCDF variable -> (GRIB shortName, level coordinate)
NAMES = {"Temperature_isobaric": ("t", "isobaric3"), "Geopotential_height_isobaric": ("gh", "isobaric3"),
         "u-component_of_wind_isobaric": ("u", "isobaric3"), "v-component_of_wind_isobaric": ("v", "isobaric3"),
         "Relative_humidity_isobaric": ("r", "isobaric5")}


def _config(tmp_path, regions):
    return write_config(tmp_path, {
        "period": {"start": "2010-10", "end": "2010-12"},
        "splits": {"train": {"start": "2010-10-01", "end": "2010-10-31"},
                   "val": {"start": "2010-11-05", "end": "2010-11-30"},
                   "test": {"start": "2010-12-05", "end": "2010-12-31"}},
        "regions": regions, "grid": {"resolution_deg": 1.0}, "evaluation": {"fss_windows": [1, 3]},
        "data": {"upper_air": "gridded"}})


@pytest.fixture(scope="module")
def raw():
    with xr.open_dataset(GFS) as ds:
        return ds.load()


def write_grib(path, messages, lat, lon, bits=BITS):
    """GRIB2 messages on the regular lat/lon grid ``lat`` x ``lon`` (1-degree, first row
    north): ``messages`` = [(shortName, level hPa, values (lat, lon), reference time, step h)]."""
    sample = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
    with open(path, "wb") as out:
        for short, level, values, ref, step in messages:
            ref = pd.Timestamp(ref)
            h = eccodes.codes_clone(sample)
            eccodes.codes_set_key_vals(h, {
                "Ni": lon.size, "Nj": lat.size, "jScansPositively": 0,
                "latitudeOfFirstGridPointInDegrees": float(lat[0]), "latitudeOfLastGridPointInDegrees": float(lat[-1]),
                "longitudeOfFirstGridPointInDegrees": float(lon[0]),
                "longitudeOfLastGridPointInDegrees": float(lon[-1]),
                "iDirectionIncrementInDegrees": 1.0, "jDirectionIncrementInDegrees": 1.0,
                "dataDate": int(ref.strftime("%Y%m%d")), "dataTime": int(ref.strftime("%H%M")),
                "typeOfLevel": "isobaricInhPa", "level": int(level), "shortName": short, "step": int(step),
                "bitsPerValue": bits})
            eccodes.codes_set_values(h, np.asarray(values, float).ravel())
            eccodes.codes_write(h, out)
            eccodes.codes_release(h)
    eccodes.codes_release(sample)
    return path


def gfs_messages(raw, variables=tuple(NAMES), levels=None, ref="2010-10-26T12", step=0, z=False):
    """The GFS fields as GRIB messages (every level of ``levels`` hPa, default: the levels the
    variable has in the file); ``z``: geopotential (m2 s-2) instead of geopotential height."""
    out = []
    for name in variables:
        short, lev = NAMES[name]
        for p in raw[lev].values:
            if levels is not None and p / 100 not in levels:
                continue
            values = raw[name].sel({lev: p}).values[0]
            if z and short == "gh":
                out.append(("z", p / 100, values.astype(float) * ua.G0, ref, step))
            else:
                out.append((short, p / 100, values, ref, step))
    return out


def packing_step(values, bits=BITS):
    """One packing step of a field, plus the float32 rounding of cfgrib's decoded values."""
    return 2 * float(np.ptp(values)) / (2**bits - 1) + float(np.abs(values).max()) * 2.0**-23


LEVELS = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]  # the config's levels_hpa


@pytest.fixture(scope="module")
def grib(raw, tmp_path_factory):
    """Every variable on every level the GFS file has: 26 levels, 25 for relative humidity
    (no 20 hPa), as in the GFS GRIB the netCDF was made from."""
    path = tmp_path_factory.mktemp("grib") / "gfs.grib2"
    return write_grib(path, gfs_messages(raw), raw["lat"].values, raw["lon"].values)


def without_rh_850(raw):
    return [m for m in gfs_messages(raw) if not (m[0] == "r" and m[1] == 850)]


def test_cfgrib_and_eccodes_from_the_lock_without_a_system_library():
    import cfgrib

    def version(text):
        return tuple(int(n) for n in text.split(".")[:3])

    assert version(eccodes.codes_get_api_version()) >= (2, 30, 0)
    assert version(cfgrib.__version__) >= (0, 9, 15)
    import importlib.metadata as metadata

    # the ecCodes library shipped inside the eccodes wheel, not a system one: the wheel carries
    # the shared library, and the library answering the calls is the wheel's own release
    shipped = [f.name for f in metadata.files("eccodes") if f.name.startswith("libeccodes") and ".so" in f.name]
    assert shipped, "the eccodes wheel ships no ecCodes library"
    assert version(eccodes.codes_get_api_version()) == version(metadata.version("eccodes"))


def test_levels_units_and_values_as_cfgrib_gives_them(grib, raw):
    """cfgrib's names and GRIB units; the stored values equal the netCDF's to one packing step.
    Only the configured levels are read (filter_by_keys level), so relative humidity's missing
    20 hPa does not split the file."""
    ds = ua.open_source(grib, levels=LEVELS)
    assert ds["isobaricInhPa"].attrs["units"] == "hPa"
    assert sorted(ds["isobaricInhPa"].values) == sorted(map(float, LEVELS))
    assert ds["latitude"].values[0] > ds["latitude"].values[-1]  # north first, as written
    assert {v: ds[v].attrs["units"] for v in ds.data_vars} == {"t": "K", "gh": "gpm", "u": "m s**-1",
                                                                 "v": "m s**-1", "r": "%"}
    assert ds["time"].ndim == 0 and ds["time"].values == np.datetime64("2010-10-26T12:00")
    for name, (short, lev) in NAMES.items():
        for p in (85000.0, 50000.0, 10000.0):
            want = raw[name].sel({lev: p}).values[0]
            got = ds[short].sel(isobaricInhPa=p / 100).values
            assert np.abs(got - want).max() <= packing_step(want)
    assert packing_step(raw["Temperature_isobaric"].values) < 1e-4
    ds.close()


@pytest.mark.parametrize("regions", [REGIONS, SHIFTED], ids=["on-points", "between-points"])
def test_grib_fragment_equals_the_netcdf_fragment(grib, regions, tmp_path):
    """The month fragment from the GRIB file equals the one from the netCDF file: every channel
    (degC, m, m/s; dewpoint from RH with MetPy) within the packing precision, rain identical."""
    _, cfg = _config(tmp_path, regions)
    _, gau = make_interim(cfg, MONTH, seed=1)
    a = ua.grid_month_gridded([str(grib)], gau, cfg, MONTH, "concat")
    b = ua.grid_month_gridded([str(GFS)], gau, cfg, MONTH, "concat")
    assert list(a["channel"].values) == list(b["channel"].values)
    xa, xb = a["x"].values, b["x"].values
    assert np.array_equal(np.isnan(xa), np.isnan(xb))
    frame = list(a["time"].values).index(np.datetime64("2010-10-26T12:00"))
    assert np.isfinite(xa[frame]).all()
    tol = {"temperature": 1e-4, "dewpoint": 1e-3, "u": 1e-4, "v": 1e-4, "geopotential_height": 0.01, "rain": 0.0}
    for k, ch in enumerate(a["channel"].values):
        var = "rain" if ch == "rain" else str(ch).rsplit("_", 1)[0]
        np.testing.assert_allclose(xa[:, k], xb[:, k], rtol=0, atol=tol[var], err_msg=str(ch))
    for key in ("upper_air_times_used", "upper_air_levels_missing", "frames_without_upper_air"):
        assert a.attrs[key] == b.attrs[key]
    assert a.attrs["upper_air_times_used"] == 1 and a.attrs["upper_air_levels_missing"] == 0


def test_geopotential_forecast_step_and_one_level(raw, tmp_path):
    """z (m2 s-2) / g0 gives the height; a forecast's time is its valid time (reference + step);
    a file with one level has a level axis of one."""
    _, cfg = _config(tmp_path, REGIONS)
    lat, lon = raw["lat"].values, raw["lon"].values
    msgs = gfs_messages(raw, ["Geopotential_height_isobaric", "Temperature_isobaric"], levels=[500.0],
                        ref="2010-10-26T06", step=6, z=True)
    path = write_grib(tmp_path / "z500.grb2", msgs, lat, lon)
    f = ua.read_fields(path, cfg)
    assert list(f.times) == [pd.Timestamp("2010-10-26T12:00")]
    j = cfg["levels_hpa"].index(500)
    want = raw["Geopotential_height_isobaric"].sel(isobaric3=50000.0).values[0]
    np.testing.assert_allclose(f.values["geopotential_height"][0, j], want, rtol=0,
                               atol=packing_step(want * ua.G0) / ua.G0)
    np.testing.assert_allclose(f.values["temperature"][0, j],
                               raw["Temperature_isobaric"].sel(isobaric3=50000.0).values[0] - 273.15, atol=1e-4)
    assert f.missing_levels["temperature"] == [p for p in map(float, cfg["levels_hpa"]) if p != 500.0]
    assert np.isnan(f.values["u"]).all()  # absent from the file: NaN, never 0


def test_several_reference_times_and_steps_are_one_time_axis(raw, tmp_path):
    """Two analyses x two steps: four valid times, each field where its valid time says."""
    _, cfg = _config(tmp_path, REGIONS)
    lat, lon = raw["lat"].values, raw["lon"].values
    t850 = raw["Temperature_isobaric"].sel(isobaric3=85000.0).values[0]
    msgs = [("t", 850, t850 + 10 * i + s, ref, s)
            for i, ref in enumerate(["2010-10-26T00", "2010-10-26T12"]) for s in (0, 12)]
    f = ua.read_fields(write_grib(tmp_path / "steps.grib", msgs, lat, lon), cfg)
    assert list(f.times) == list(pd.to_datetime(["2010-10-26T00", "2010-10-26T12", "2010-10-26T12",
                                                 "2010-10-27T00"]))
    j = cfg["levels_hpa"].index(850)
    for k, off in enumerate([0, 12, 10, 22]):
        np.testing.assert_allclose(f.values["temperature"][k, j], t850 + off - 273.15, atol=1e-4)


def test_several_hypercubes_are_a_one_line_error_and_a_filter_reads_one(raw, tmp_path):
    """Relative humidity lacks a configured level (850 hPa) the other variables have: cfgrib
    cannot make one dataset; the error names the file and the ways out, never a variable
    silently left out."""
    _, cfg = _config(tmp_path, REGIONS)
    path = write_grib(tmp_path / "no_rh850.grib2", without_rh_850(raw), raw["lat"].values, raw["lon"].values)
    with pytest.raises(GridError) as err:
        ua.read_fields(path, cfg)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 500
    assert msg.startswith(f"{path}: the GRIB messages on the configured pressure levels do not form one "
                          f"hypercube (variables differ in 'isobaricInhPa')")
    assert "filter_by_keys" in msg and "data.gridded.variables" in msg
    f = ua.read_fields(path, cfg, grib_filter={"shortName": "t"})
    assert np.isfinite(f.values["temperature"]).all() and np.isnan(f.values["u"]).all()


def test_a_grib_file_without_pressure_levels_is_refused(tmp_path):
    """Surface fields only (2 m temperature), like the ERA5 single-level netCDF: refused."""
    _, cfg = _config(tmp_path, REGIONS)
    h = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    eccodes.codes_set(h, "shortName", "2t")
    eccodes.codes_set_values(h, np.full(eccodes.codes_get(h, "numberOfValues"), 280.0))
    with open(tmp_path / "sfc.grib2", "wb") as out:
        eccodes.codes_write(h, out)
    eccodes.codes_release(h)
    with pytest.raises(GridError, match=r"sfc\.grib2: no GRIB message on pressure levels \(cfgrib filter_by_keys "
                                        r"\{'typeOfLevel': 'isobaricInhPa', 'level': \[1000, 925, "):
        ua.read_fields(tmp_path / "sfc.grib2", cfg)


def test_command_line_reads_grib_and_refuses_bad_grib_in_one_line(grib, raw, tmp_path, capsys):
    cfg_path, cfg = _config(tmp_path, REGIONS)
    _, gau = make_interim(cfg, MONTH, seed=1)
    gpath = tmp_path / "g.nc"
    gau.to_netcdf(gpath)
    run = ["--config", str(cfg_path), "--gauges", str(gpath), "--month", MONTH, "--grid", "region1",
           "--out", str(tmp_path / "{grid}.nc")]
    assert ua.main(run + ["--files", str(grib)]) == 0
    with xr.open_dataset(tmp_path / "region1.nc") as ds:
        v = float(ds["x"].sel(channel="temperature_850hPa", lat=31.0, lon=-95.0, time="2010-10-26T12:00"))
    t850 = float(raw["Temperature_isobaric"].sel(isobaric3=85000.0, lat=31.0, lon=265.0).item())
    assert v == pytest.approx(t850 - 273.15, abs=1e-4)
    bad = write_grib(tmp_path / "two.grib2", without_rh_850(raw), raw["lat"].values, raw["lon"].values)
    junk = tmp_path / "junk.grib"
    junk.write_bytes(b"GRIB not really")
    for path, why in ((bad, "do not form one hypercube"), (junk, "not a readable GRIB file")):
        capsys.readouterr()
        assert ua.main(run + ["--files", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert "Traceback" not in "\n".join(err)
        assert err[-1].startswith(f"error: {path}: ") and why in err[-1]
    assert ua.main(run + ["--files", str(bad), "--grib-filter", "shortName=u"]) == 0
    assert not list(tmp_path.glob("*.idx"))  # cfgrib writes no index file beside the input
