"""CF metadata of the processed stores: other tools find the axes, select channels by
variable and pressure, read the rain's time bounds and the flat global attributes, and
can write the store to netCDF."""
from __future__ import annotations

import json

import cf_xarray  # noqa: F401 - registers the .cf accessor
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from pipeline.common import cf
from pipeline.common.config import load_config
from pipeline.common.errors import ConfigError
from pipeline.dataset import layout
from pipeline.dataset.assemble import build_dataset
from pipeline.gridding.geometry import channel_names, region2_side

from dataset_helpers import BOXES, REGION1, dataset_config, write_fragments

MONTHS = ["2020-01", "2020-02"]
LEVELS = [1000, 925, 850, 700, 500, 400, 300, 250, 200, 150, 100]  # the schema default
VARIABLES = ["temperature", "dewpoint", "u", "v", "geopotential_height"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Processed concat and region1 stores (region 2 east of region 1), their stats files and config."""
    tmp = tmp_path_factory.mktemp("cf")
    _, config = dataset_config(tmp, "east")
    paths = write_fragments(config, tmp / "gridded", MONTHS)
    out = {}
    for grid in ("concat", "region1"):
        build_dataset(paths, config, grid, tmp / f"{grid}.zarr", tmp / f"{grid}_stats.json", threads=2)
        out[grid] = tmp / f"{grid}.zarr"
    return out, config, paths


def test_axes_resolve_by_cf_attributes(built):
    stores, _, _ = built
    for store in stores.values():
        ds = xr.open_zarr(store)
        assert ds.cf["latitude"].name == "lat" and ds.cf["longitude"].name == "lon"
        assert ds.cf["time"].name == "time"
        np.testing.assert_array_equal(ds.cf["time"].values, ds["time"].values)
        assert ds.cf["latitude"].attrs["units"] == "degrees_north"
        assert ds.cf["longitude"].attrs["units"] == "degrees_east"
        assert ds.cf.bounds["time"] == ["time_bnds"]
        assert ds.cf["lwe_thickness_of_precipitation_amount"].name == "rain_mm"


def test_inputs_select_by_variable_and_pressure(built):
    """``xr.open_zarr(store).x.sel(variable=..., pressure=...)`` works on the stored
    inputs, and gives the fragment's physical values normalised with the store's statistics."""
    stores, config, paths = built
    ds = xr.open_zarr(stores["concat"])
    assert ds["x"].dims == ("time", "variable", "pressure", "lat", "lon")
    assert ds["x_rain"].dims == ("time", "lat", "lon")
    assert list(ds["variable"].values) == VARIABLES
    assert list(ds["pressure"].values) == [float(p) for p in LEVELS] and ds["pressure"].attrs["units"] == "hPa"
    assert dict(zip(ds["variable"].values, ds["units"].values)) == {
        "temperature": "degC", "dewpoint": "degC", "u": "m s-1", "v": "m s-1", "geopotential_height": "m"}
    assert ds.cf["air_pressure"].name == "pressure"
    t850 = ds.x.sel(variable="temperature", pressure=850)
    assert t850.dims == ("time", "lat", "lon")
    stats = json.loads(stores["concat"].with_name("concat_stats.json").read_text())
    phys = xr.concat([xr.open_dataset(p)["x"] for p in paths], dim="time")
    for name, got in (("temperature_850hPa", t850), ("rain", ds["x_rain"])):
        k = stats["channels"].index(name)
        raw = phys.sel(channel=name).values.astype(np.float64)
        raw = np.log1p(raw) if stats["transform"][k] == "log1p_zscore" else raw
        want = np.nan_to_num((raw - stats["mean"][k]) / stats["std"][k], nan=0.0)
        np.testing.assert_allclose(got.values, want, rtol=1e-5, atol=1e-5)
    u = ds.x.sel(variable="u")  # every level of one variable, bottom up
    assert u.dims == ("time", "pressure", "lat", "lon") and list(u["pressure"].values) == [float(p) for p in LEVELS]


def test_model_channel_order_is_the_statistics_order(built):
    """The (time, channel) tensor the model reads: upper-air channels variable-major, then rain,
    in the order of the normalisation statistics, each one the stored variable."""
    stores, config, _ = built
    ds = xr.open_zarr(stores["concat"])
    names = layout.channel_names(ds)
    assert names == channel_names(config) == json.loads(ds.attrs["normalisation"])["channels"]
    var, pressure = layout.channel_coordinates(ds)
    assert list(var) == [v for v in VARIABLES for _ in LEVELS] + ["rain"] and np.isnan(pressure[-1])
    frames = layout.read_inputs(ds, 3, 9)
    assert frames.shape == (6, 56, ds.sizes["lat"], ds.sizes["lon"]) and frames.flags["C_CONTIGUOUS"]
    for k in (0, 13, 38, 54, 55):
        v, p = var[k], pressure[k]
        want = ds["x_rain"] if v == "rain" else ds.x.sel(variable=v, pressure=p)
        np.testing.assert_array_equal(frames[:, k], want.values[3:9], err_msg=names[k])
    np.testing.assert_array_equal(layout.channel(ds, "dewpoint_925hPa").values,
                                  ds.x.sel(variable="dewpoint", pressure=925).values)


def test_rain_time_bounds_are_the_12_hours_ending_at_time(built):
    stores, _, _ = built
    ds = xr.open_zarr(stores["concat"])
    assert ds["time"].attrs["bounds"] == "time_bnds"
    assert ds["time_bnds"].dims == ("time", "nv") and ds["time_bnds"].dtype == np.dtype("datetime64[ns]")
    t = ds["time"].values
    bnds = ds["time_bnds"].values
    np.testing.assert_array_equal(bnds[:, 1], t)
    np.testing.assert_array_equal(bnds[:, 0], t - np.timedelta64(12, "h"))
    assert pd.Timestamp(bnds[0, 0]) == pd.Timestamp("2019-12-31T12:00")
    assert pd.Timestamp(bnds[-1, 1]) == pd.Timestamp("2020-02-29T12:00")
    rain = ds["rain_mm"].attrs
    assert rain["units"] == "mm" and rain["standard_name"] == "lwe_thickness_of_precipitation_amount"
    assert rain["cell_methods"] == "time: sum"
    # stored as in the time coordinate: int64 hours since 1970, no fill value
    g = zarr.open_group(str(stores["concat"]), mode="r")
    for name in ("time", "time_bnds"):
        assert g[name].dtype == np.int64
        assert dict(g[name].attrs)["units"] == "hours since 1970-01-01"
        assert "_FillValue" not in g[name].attrs
    assert int(g["time_bnds"][0, 1]) - int(g["time_bnds"][0, 0]) == 12


def test_coordinates_have_no_fill_value(built):
    stores, _, paths = built
    for store in stores.values():
        ds = xr.open_zarr(store)
        g = zarr.open_group(str(store), mode="r")
        for name in ("time", "variable", "pressure", "units", "region", "lat", "lon", "time_bnds"):
            assert "_FillValue" not in g[name].attrs, name
            assert "_FillValue" not in ds[name].attrs and ds[name].encoding.get("_FillValue") is None, name
        assert "_FillValue" in g["rain_mm"].attrs  # data keep theirs: NaN marks missing rain
    # the gridded fragments the stores are built from
    import netCDF4

    with netCDF4.Dataset(paths[0]) as nc:
        for name in ("time", "channel", "variable", "pressure", "units", "lat", "lon"):
            assert "_FillValue" not in nc.variables[name].ncattrs(), name
        assert list(nc.variables["pressure"][:3]) == [1000.0, 925.0, 850.0]


def test_global_attributes_are_flat_with_json_text_for_nested_ones(built):
    stores, config, paths = built
    ds = xr.open_zarr(stores["concat"])
    for key, value in ds.attrs.items():
        flat = isinstance(value, (str, int, float)) or (
            isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value))
        assert flat, (key, value)
    assert ds.attrs["json_attributes"].split() == ["normalisation", "gridding", "versions", "data_quality"]
    attrs = cf.decode_json_attrs(ds.attrs)
    stats = json.loads(stores["concat"].with_name("concat_stats.json").read_text())
    for key in ("method", "channels", "transform", "mean", "std", "count", "fitted_on"):
        assert attrs["normalisation"][key] == stats[key], key
    assert attrs["gridding"] == config["gridding"]
    assert attrs["versions"]["numpy"] == np.__version__
    assert cf.json_attribute(ds.attrs, "normalisation") == attrs["normalisation"]
    assert ds.attrs["grid"] == "concat" and ds.attrs["grid_resolution_deg"] == 0.5
    assert ds.attrs["grid_shape"] == [ds.sizes["lat"], ds.sizes["lon"]] == [4, 12]
    assert ds.attrs["region2_side"] == "east"
    assert ds.attrs["region1_box"] == [REGION1[k] for k in ("lat_min", "lat_max", "lon_min", "lon_max")]
    assert ds.attrs["region2_box"] == [BOXES["east"][k] for k in ("lat_min", "lat_max", "lon_min", "lon_max")]
    assert ds.attrs["loss_mask_cells"] == int(ds["loss_mask"].sum()) == stats["loss_mask_rule"]["cells"]
    assert ds.attrs["loss_mask_train_frames"] == stats["loss_mask_rule"]["train_frames"] == 120
    assert ds.attrs["loss_mask_rule"] == stats["loss_mask_rule"]["rule"]
    assert ds.attrs["loss_mask_min_valid_fraction"] == 0.5
    assert ds.attrs["fragments"] == ["2020-01.nc", "2020-02.nc"] and ds.attrs["data_source"] == "synthetic"
    assert ds.attrs["time_gaps"] == 0 and ds.attrs["Conventions"] == "CF-1.8"
    region1 = xr.open_zarr(stores["region1"])
    assert region1.attrs["grid"] == "region1" and region1.attrs["grid_shape"] == [4, 6]
    assert cf.json_attribute(region1.attrs, "normalisation") == attrs["normalisation"]


def test_json_attribute_reads_both_layouts():
    nested = {"mean": [1.0, 2.5], "channels": ["a", "rain"]}
    assert cf.json_attribute(cf.with_json_attrs({}, {"normalisation": nested}), "normalisation") == nested
    assert cf.json_attribute({"normalisation": nested}, "normalisation") == nested  # a store written before
    assert cf.json_attribute({}, "normalisation", {}) == {}
    assert cf.json_attribute({"grid": "concat"}, "grid") == "concat"  # plain text stays text


def test_processed_store_round_trips_through_netcdf(built, tmp_path):
    stores, _, _ = built
    ds = xr.open_zarr(stores["concat"])
    ds.to_netcdf(tmp_path / "plain.nc")
    back = xr.open_dataset(tmp_path / "plain.nc").load()
    xr.testing.assert_identical(back, ds.load())
    assert cf.decode_json_attrs(back.attrs)["normalisation"] == cf.decode_json_attrs(ds.attrs)["normalisation"]
    assert [float(v) for v in back.attrs["region2_box"]] == ds.attrs["region2_box"]
    np.testing.assert_array_equal(back["time_bnds"].values[:, 0], back["time"].values - np.timedelta64(12, "h"))
    t850 = back.x.sel(variable="temperature", pressure=850)
    np.testing.assert_array_equal(t850.values, ds.x.isel(variable=0, pressure=2).values)
    # with the project's coordinate encoding, the copy keeps coordinates free of _FillValue too
    ds.to_netcdf(tmp_path / "cf.nc", encoding=cf.coordinate_encoding(ds))
    import netCDF4

    with netCDF4.Dataset(tmp_path / "cf.nc") as nc:
        for name in ("time", "time_bnds", "lat", "lon", "pressure"):
            assert "_FillValue" not in nc.variables[name].ncattrs(), name
        assert nc.variables["time"].units == "hours since 1970-01-01"
        # bounds carry no units of their own or the same ones (CF: they inherit the coordinate's)
        assert getattr(nc.variables["time_bnds"], "units", nc.variables["time"].units) == nc.variables["time"].units
    xr.testing.assert_identical(xr.open_dataset(tmp_path / "cf.nc").load(), ds.load())


@pytest.mark.parametrize("side", ["west", "east", "north", "south"])
def test_region2_side_follows_from_the_boxes(tmp_path, side):
    _, config = dataset_config(tmp_path, side)
    assert "region2_side" not in config["regions"]  # optional key, no default
    assert region2_side(config) == side
    # the key, when given, is checked against the boxes
    _, agreeing = dataset_config(tmp_path, side, {"regions": {"region2_side": side}}, name="ok.yaml")
    assert region2_side(agreeing) == side


def test_contradicting_region2_side_is_a_config_error_naming_the_key(tmp_path):
    path, _ = dataset_config(tmp_path, "east")
    text = path.read_text().replace("regions:\n", "regions:\n  region2_side: west\n", 1)
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"regions\.region2_side.*'west'.*east of region 1"):
        load_config(path)
    # the geometry makes the same check for a config that was not loaded from a file
    _, config = dataset_config(tmp_path, "north", name="n.yaml")
    config["regions"]["region2_side"] = "south"
    with pytest.raises(ConfigError, match=r"regions\.region2_side.*'south'.*north of region 1"):
        region2_side(config)
