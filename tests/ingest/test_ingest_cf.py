"""CF metadata of the interim files: soundings as CF profiles, gauge rain with 12 h time bounds."""
from __future__ import annotations

from pathlib import Path

import cf_xarray  # noqa: F401 - registers the .cf accessor
import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.ingest import main

CONFIG = str(Path(__file__).resolve().parents[2] / "config.yaml")


def test_soundings_are_cf_profiles(tmp_path, data_dir):
    out = tmp_path / "2015-03.nc"
    main(["soundings", "--config", CONFIG, "--format", "igra2", "--station-list",
          str(data_dir / "igra2" / "igra2-station-list.txt"), "--month", "2015-03", "--out", str(out),
          str(data_dir / "igra2" / "AUM00011035-data.txt.gz")])
    ds = xr.open_dataset(out)
    assert ds.attrs["featureType"] == "profile"
    assert ds.cf["profile_id"].name == "profile_id" and ds["profile_id"].dims == ("profile",)
    ids = [str(v) for v in ds["profile_id"].values]
    assert ids[0] == "AUM00011035_20150301T0000Z" and len(set(ids)) == len(ids) == 62
    assert ds.cf["latitude"].name == "lat" and ds.cf["longitude"].name == "lon" and ds.cf["time"].name == "time"
    assert ds.cf["vertical"].name == "level" and ds["level"].attrs["positive"] == "down"
    assert float(ds.cf["latitude"][0]) == 48.2333
    assert ds.cf["air_temperature"].name == "temperature" and ds["temperature"].attrs["units"] == "degC"
    with netCDF4.Dataset(out) as nc:
        for name in ("profile_id", "time", "station", "lat", "lon", "level"):
            assert "_FillValue" not in nc.variables[name].ncattrs(), name
        assert np.isnan(nc.variables["temperature"]._FillValue)


def test_gauge_rain_has_12_hour_time_bounds(one_gauge_month):
    out = one_gauge_month
    ds = xr.open_dataset(out)
    rain = ds["rain_mm"]
    assert rain.attrs["units"] == "mm" and rain.attrs["standard_name"] == "lwe_thickness_of_precipitation_amount"
    assert rain.attrs["cell_methods"] == "time: sum"
    assert ds.attrs["featureType"] == "timeSeries" and ds["station"].attrs["cf_role"] == "timeseries_id"
    assert ds["time"].attrs["bounds"] == "time_bnds" and ds.cf.bounds["time"] == ["time_bnds"]
    t = ds["time"].values
    np.testing.assert_array_equal(ds["time_bnds"].values[:, 1], t)
    np.testing.assert_array_equal(ds["time_bnds"].values[:, 0], t - np.timedelta64(12, "h"))
    # the 12 hours ending at 2020-01-01T12:00 hold the six millimetres
    at = pd.Timestamp("2020-01-01T12:00")
    assert list(ds["time_bnds"].sel(time=at).values) == [np.datetime64("2020-01-01T00:00"), at.to_datetime64()]
    assert float(rain.sel(time=at, station="G1")) == 6.0
    with netCDF4.Dataset(out) as nc:
        for name in ("time", "time_bnds", "station", "lat", "lon", "elevation"):
            assert "_FillValue" not in nc.variables[name].ncattrs(), name
        assert nc.variables["time"].units == "hours since 1970-01-01"
        assert getattr(nc.variables["time_bnds"], "units", nc.variables["time"].units) == nc.variables["time"].units
