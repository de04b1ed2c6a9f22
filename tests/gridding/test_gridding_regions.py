"""Which observations each grid sees: region1 only region-1 ones; rain per region."""
from __future__ import annotations

import numpy as np

from pipeline.gridding.analysis import grid_month, region_of_points

from gridding_helpers import make_interim, write_config


def test_region_of_points_by_grid(tmp_path):
    _, config = write_config(tmp_path)  # region1 30-34N 114-118E, region2 30-34N 110-114E
    lat = np.array([32.0, 32.0, 32.0, 29.0])
    lon = np.array([116.0, 112.0, 119.0, 116.0])
    np.testing.assert_array_equal(region_of_points(config, lat, lon, "region1"), [1, 0, 0, 0])
    np.testing.assert_array_equal(region_of_points(config, lat, lon, "concat"), [1, 2, 0, 0])


def test_region1_grid_ignores_upstream_observations(tmp_path):
    """Changing every observation outside region 1 leaves the region1 analysis unchanged,
    but changes the concat analysis (which is meant to see upstream)."""
    _, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-01", n_stations=40, n_gauges=300, p_missing=0.0)
    snd, gau = snd.isel(profile=slice(0, 160)), gau.isel(time=slice(0, 4))
    outside_s = region_of_points(config, snd["lat"].values, snd["lon"].values, "region1") == 0
    outside_g = region_of_points(config, gau["lat"].values, gau["lon"].values, "region1") == 0
    assert outside_s.any() and outside_g.any()
    snd2, gau2 = snd.copy(deep=True), gau.copy(deep=True)
    for v in config["variables"]:
        snd2[v].values[outside_s] += 25.0
    gau2["rain_mm"].values[:, outside_g] += 40.0

    r1_a = grid_month(snd, gau, config, "2020-01", grid_name="region1")["x"].values[:4]
    r1_b = grid_month(snd2, gau2, config, "2020-01", grid_name="region1")["x"].values[:4]
    np.testing.assert_array_equal(r1_a, r1_b)
    assert np.isfinite(r1_a).mean() > 0.5

    c_a = grid_month(snd, gau, config, "2020-01", grid_name="concat")["x"].values[:4]
    c_b = grid_month(snd2, gau2, config, "2020-01", grid_name="concat")["x"].values[:4]
    assert np.nanmax(np.abs(c_a - c_b)) > 1.0


def test_region1_rain_is_identical_on_both_grids(tmp_path):
    """Rain is analysed per region, so the target over region 1 does not depend on the grid."""
    _, config = write_config(tmp_path)
    snd, gau = make_interim(config, "2020-01", n_stations=30, n_gauges=300, p_missing=0.1)
    r1 = grid_month(snd, gau, config, "2020-01", grid_name="region1")
    cc = grid_month(snd, gau, config, "2020-01", grid_name="concat")
    cols = np.isin(cc["lon"].values, r1["lon"].values)
    rain_r1 = r1["x"].sel(channel="rain").values
    rain_cc = cc["x"].sel(channel="rain").values[:, :, cols]
    np.testing.assert_array_equal(rain_r1, rain_cc)
    assert np.isfinite(rain_r1).mean() > 0.5


def test_separate_analysis_makes_region1_of_concat_equal_region1(tmp_path):
    """gridding.concat_analysis: separate (default): every channel of the concat grid's
    region-1 cells equals the region1 grid, value for value; region 2 is still analysed
    (from region-2 stations); joint differs in region 1 near the boundary."""
    _, config = write_config(tmp_path)
    assert config["gridding"]["concat_analysis"] == "separate"
    snd, gau = make_interim(config, "2020-01", n_stations=40, n_gauges=300, p_missing=0.1)
    snd, gau = snd.isel(profile=slice(0, 200)), gau.isel(time=slice(0, 6))
    r1 = grid_month(snd, gau, config, "2020-01", grid_name="region1")["x"].values[:6]
    cc = grid_month(snd, gau, config, "2020-01", grid_name="concat")
    cols = np.isin(cc["lon"].values, grid_month(snd, gau, config, "2020-01", grid_name="region1")["lon"].values)
    np.testing.assert_array_equal(cc["x"].values[:6][..., cols], r1)
    assert np.isfinite(r1).mean() > 0.5
    assert np.isfinite(cc["x"].values[:6][..., ~cols]).mean() > 0.5  # region 2 analysed too
    joint = dict(config, gridding=dict(config["gridding"], concat_analysis="joint"))
    cj = grid_month(snd, gau, joint, "2020-01", grid_name="concat")["x"].values[:6]
    n_sc = len(cc["channel"]) - 1
    assert np.nanmax(np.abs(cj[:, :n_sc][..., cols] - r1[:, :n_sc])) > 0.01
