"""One month of interim files -> gridded fragment: accuracy, frames, coverage, CLI."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Geod

from pipeline.common.config import month_frame_times
from pipeline.gridding.cli import main
from pipeline.gridding.analysis import grid_month
from pipeline.gridding.geometry import channel_names, make_grid

from gridding_helpers import analytic, make_interim, write_config


def _errors(ds):
    lon2, lat2 = np.meshgrid(ds["lon"].values, ds["lat"].values)
    x = ds["x"].values
    return np.stack([x[:, k] - analytic(lat2, lon2, k) for k in range(55)])


def test_analytic_field_recovered(tmp_path):
    """Barnes (defaults) from 300 scattered stations: RMS error < 0.15 and max < 0.6 on a
    field of range 6 (2.5 % and 10 %); Cressman with a 150 km radius: RMS < 0.3."""
    _, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-01", n_stations=300, p_missing=0.0)
    snd = snd.isel(profile=slice(0, 600))  # the first two frames
    err = _errors(grid_month(snd, gau, config, "2020-01"))[:, :2]
    assert np.isfinite(err).all()
    assert np.sqrt(np.mean(err**2)) < 0.15 and np.abs(err).max() < 0.6
    _, cress = write_config(tmp_path, {"gridding": {"method": "cressman", "search_radius_km": 150.0,
                                                    "coverage_radius_km": 150.0}}, name="c.yaml")
    err = _errors(grid_month(snd, gau, cress, "2020-01"))[:, :2]
    assert np.isfinite(err).mean() > 0.99
    assert np.sqrt(np.nanmean(err**2)) < 0.3


def test_frames_launch_times_and_missing_frame(tmp_path):
    _, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-02", n_stations=20, skip_frames=(3,))
    # one launch 5 h off any frame time: dropped and counted
    times = snd["time"].values.copy()
    times[0] = np.datetime64("2020-02-01T05:00")
    snd = snd.assign_coords(time=("profile", times))
    ds = grid_month(snd, gau, config, "2020-02")
    frames = month_frame_times("2020-02")
    np.testing.assert_array_equal(ds["time"].values, frames.values)
    assert ds.sizes["time"] == 58 and ds["x"].dtype == np.float32
    assert list(ds["channel"].values) == channel_names(config)
    x = ds["x"].values
    assert np.isnan(x[3, :55]).all()  # no soundings at frame 3: all-NaN, not dropped
    assert np.isfinite(x[3, 55]).any()  # the gauges still reported
    assert np.isfinite(x[2, :55]).mean() > 0.8  # launches up to 59 min early count for the frame
    assert ds.attrs["profiles_not_on_a_frame"] == 1
    # stations in the 1-degree margin around the boxes do not contribute (counted)
    assert ds.attrs["profiles_outside_grid"] > 0
    assert ds.attrs["profiles_used"] == snd.sizes["profile"] - 1 - ds.attrs["profiles_outside_grid"]


def test_rain_coverage_mask(tmp_path):
    _, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-01", n_stations=10, n_gauges=60, p_missing=0.0)
    ds = grid_month(snd.isel(profile=slice(0, 10)), gau, config, "2020-01")
    grid = make_grid(config, "concat")
    lon2, lat2 = np.meshgrid(grid.lon, grid.lat)
    geod = Geod(ellps="WGS84")
    glat, glon = gau["lat"].values, gau["lon"].values
    _, _, d = geod.inv(np.repeat(lon2.ravel(), glon.size), np.repeat(lat2.ravel(), glat.size),
                       np.tile(glon, lon2.size), np.tile(glat, lat2.size))
    nearest = d.reshape(lon2.size, glon.size).min(axis=1).reshape(grid.shape) / 1e3
    rain = ds["x"].sel(channel="rain").values
    radius = config["gridding"]["rain_coverage_radius_km"]
    far, near = nearest > radius * 1.01, nearest < radius * 0.99
    assert far.any() and near.any()
    assert np.isnan(rain[:, far]).all()
    assert np.isfinite(rain[:, near]).all()
    assert np.nanmin(rain) >= 0.0


def test_cli_writes_the_contract_fragment(tmp_path, capsys):
    cfg_path, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-03", n_stations=15, n_gauges=100)
    s, g, out = tmp_path / "s.nc", tmp_path / "g.nc", tmp_path / "gridded" / "2020-03.nc"
    snd.to_netcdf(s)
    gau.to_netcdf(g)
    assert main(["--config", str(cfg_path), "--soundings", str(s), "--gauges", str(g), "--month", "2020-03",
                 "--grid", "concat", "--out", str(out), "--threads", "2"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds["x"].dims == ("time", "channel", "lat", "lon") and ds["x"].dtype == np.float32
        grid = make_grid(config, "concat")
        np.testing.assert_allclose(ds["lat"].values, grid.lat)
        np.testing.assert_allclose(ds["lon"].values, grid.lon)
        np.testing.assert_array_equal(pd.DatetimeIndex(ds["time"].values), month_frame_times("2020-03"))
        assert [str(c) for c in ds["channel"].values] == channel_names(config)
        assert np.isfinite(ds["x"].values).mean() > 0.5
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp")]
    # levels that differ from the config: an error naming the file and both level lists
    snd.assign_coords(level=snd["level"].values * 0 + np.arange(11) + 10.0).to_netcdf(tmp_path / "bad.nc")
    # (the command prints it as one line, "error: ...", and exits 2)
    capsys.readouterr()
    assert main(["--config", str(cfg_path), "--soundings", str(tmp_path / "bad.nc"), "--gauges", str(g),
                 "--month", "2020-03", "--grid", "concat", "--out", str(tmp_path / "o.nc")]) == 2
    assert re.search(r"^error: .*bad\.nc: sounding levels .* differ from config levels_hpa", capsys.readouterr().err, re.M)
