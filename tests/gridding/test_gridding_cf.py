"""CF metadata of a gridded monthly fragment as written to disk: axes, channel coordinates,
coordinates without _FillValue, flat global attributes."""
from __future__ import annotations

import cf_xarray  # noqa: F401 - registers the .cf accessor
import netCDF4
import numpy as np
import xarray as xr

from pipeline.common import cf
from pipeline.gridding.analysis import grid_month
from pipeline.gridding.cli import write_fragment
from pipeline.gridding.geometry import channel_coordinates, channel_names

from gridding_helpers import analytic, make_interim, write_config


def test_fragment_on_disk_carries_cf_metadata(tmp_path):
    _, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-01", n_stations=60, p_missing=0.0)
    out = write_fragment(grid_month(snd, gau, config, "2020-01", grid_name="concat"), tmp_path / "2020-01.nc")
    ds = xr.open_dataset(out).load()

    assert ds.cf["latitude"].name == "lat" and ds.cf["longitude"].name == "lon" and ds.cf["time"].name == "time"
    assert ds.sizes == {"time": 62, "channel": 56, "lat": 8, "lon": 16, "region": 2}
    assert list(ds["region"].values) == ["region1", "region2"]
    assert ds["rain_coverage"].dims == ds["sounding_coverage"].dims == ("time", "region")
    assert list(ds["channel"].values) == channel_names(config)
    # channel coordinates: what each channel is, in physical units
    want = channel_coordinates(config)
    assert list(ds["variable"].values) == list(want["variable"][1])
    np.testing.assert_array_equal(ds["pressure"].values, want["pressure"][1])
    assert ds["units"].values[0] == "degC" and ds["units"].values[-1] == "mm"
    assert ds["variable"].values[-1] == "rain" and np.isnan(ds["pressure"].values[-1])
    x = ds["x"]
    t850 = x.set_xindex(["variable", "pressure"]).sel(variable="temperature", pressure=850)
    np.testing.assert_array_equal(t850.values, x.sel(channel="temperature_850hPa").values)
    k = channel_names(config).index("temperature_850hPa")
    lon2, lat2 = np.meshgrid(ds["lon"].values, ds["lat"].values)
    rms = [float(np.sqrt(np.nanmean((t850.values - analytic(lat2, lon2, j)) ** 2))) for j in (k - 1, k, k + 1)]
    assert rms[1] < 0.4 and rms[1] < min(rms[0], rms[2]) - 0.15  # that channel's field, not a neighbour's
    picked = x.where((x["variable"] == "u") & (x["pressure"] == 500), drop=True)
    assert list(picked["channel"].values) == ["u_500hPa"]
    # coordinates carry no _FillValue; x keeps NaN as its fill value
    with netCDF4.Dataset(out) as nc:
        for name in ("time", "channel", "variable", "pressure", "units", "region", "lat", "lon"):
            assert "_FillValue" not in nc.variables[name].ncattrs(), name
        assert np.isnan(nc.variables["x"]._FillValue)
        assert nc.variables["time"].units == "hours since 1970-01-01"
    # flat global attributes; the gridding settings as JSON text
    assert ds.attrs["json_attributes"] == "gridding ingest_qc"
    assert cf.decode_json_attrs(ds.attrs)["gridding"] == config["gridding"]
    assert set(cf.decode_json_attrs(ds.attrs)["ingest_qc"]) == {"soundings", "gauges"}
    assert ds.attrs["grid"] == "concat" and ds.attrs["month"] == "2020-01"
    assert all(isinstance(v, (str, int, float, np.integer, np.floating)) for v in ds.attrs.values())
    # and the fragment round-trips through a plain netCDF write
    ds.to_netcdf(tmp_path / "copy.nc")
    xr.testing.assert_identical(xr.open_dataset(tmp_path / "copy.nc").load(), ds)
