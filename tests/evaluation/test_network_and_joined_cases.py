"""The observing network map (evaluation.network) and the cases on the joined grid
(evaluation.compare.joined_cases): values read back, images not blank, errors one line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from evaluation import compare, network

LAT = np.arange(30.125, 32.0, 0.25)           # 8 rows
LON = np.arange(100.125, 104.0, 0.25)         # 16 columns: region 2 (west) | region 1 (east)
TIMES = pd.date_range("2022-01-01", periods=6, freq="12h")
CONFIG = {"regions": {"region1": {"lat_min": 30.0, "lat_max": 32.0, "lon_min": 102.0, "lon_max": 104.0},
                      "region2": {"lat_min": 30.0, "lat_max": 32.0, "lon_min": 100.0, "lon_max": 102.0}}}


def _not_blank(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 10 and img.std() > 5.0


def _store(path):
    rain = np.arange(len(TIMES) * LAT.size * LON.size, dtype=np.float32).reshape(len(TIMES), LAT.size, LON.size) / 10
    valid = np.ones(rain.shape, bool)
    valid[:3, :, :4] = False                  # the first 4 columns have rain at half of the frames
    mask = np.zeros((LAT.size, LON.size), np.uint8)
    mask[:, 8:] = 1
    ds = xr.Dataset({"rain_mm": (("time", "lat", "lon"), rain), "valid": (("time", "lat", "lon"), valid),
                     "loss_mask": (("lat", "lon"), mask)}, coords={"time": TIMES, "lat": LAT, "lon": LON})
    ds.to_zarr(path, mode="w", consolidated=False)
    return ds


def _interim(tmp_path, month):
    snd = xr.Dataset({"temperature": (("profile", "level"), np.zeros((3, 2), np.float32))},
                     coords={"station": ("profile", ["S1", "S1", "S2"]), "lat": ("profile", [30.5, 30.5, 31.5]),
                             "lon": ("profile", [100.5, 100.5, 103.5]), "level": [1000.0, 850.0]})
    rain = np.array([[1.0, np.nan], [0.0, 2.0]], np.float32)
    gau = xr.Dataset({"rain_mm": (("time", "station"), rain)},
                     coords={"time": TIMES[:2], "station": ["G1", "G2"], "lat": ("station", [30.2, 31.8]),
                             "lon": ("station", [101.0, 103.0])})
    s, g = tmp_path / f"snd_{month}.nc", tmp_path / f"gau_{month}.nc"
    snd.to_netcdf(s)
    gau.to_netcdf(g)
    return s, g


def test_network_map_counts_and_image(tmp_path):
    _store(tmp_path / "concat.zarr")
    files = [_interim(tmp_path, m) for m in ("2022-01", "2022-02")]
    out = tmp_path / "net" / "observing_network.png"
    counts = network.network_map(CONFIG, [f[0] for f in files], [f[1] for f in files], tmp_path / "concat.zarr", out)
    assert counts == {"sounding_stations": 2, "gauges": 2, "scored_cells": 64}
    table = pd.read_csv(out.with_suffix(".csv")).set_index("station")
    assert table.loc["S1", "count"] == 4 and table.loc["S2", "count"] == 2       # profiles over 2 months
    assert table.loc["G1", "count"] == 4 and table.loc["G2", "count"] == 2       # valid 12 h totals
    assert table.loc["S2", "lon"] == pytest.approx(103.5)
    _, _, frac, mask = network.coverage(xr.open_zarr(tmp_path / "concat.zarr"), "x")
    assert frac[0, 0] == pytest.approx(0.5) and frac[0, 5] == pytest.approx(1.0) and mask.sum() == 64
    _not_blank(out)


def test_network_cli_missing_file_is_one_line_error(tmp_path, capsys):
    _store(tmp_path / "concat.zarr")
    rc = network.main(["--soundings", str(tmp_path / "nope.nc"), "--data", str(tmp_path / "concat.zarr"),
                       "--out", str(tmp_path / "n.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: ") and "nope.nc" in err[-1] and "Traceback" not in "\n".join(err)


def test_joined_cases_place_region1_beside_region2(tmp_path):
    ds = _store(tmp_path / "concat.zarr")
    r1 = ds.isel(lon=slice(8, None))
    pred = np.full((2, LAT.size, 8), 7.0, np.float32)
    maps = compare.Maps(r1.lat.values, r1.lon.values, ["a", "b"], {"truth": r1.rain_mm.values[[4, 5]], "exp2": pred},
                        {}, {}, None, case_times=[TIMES[4], TIMES[5]],
                        boxes=[("region1", [30.0, 32.0, 102.0, 104.0])])
    joined = compare.joined_cases(maps, tmp_path / "concat.zarr")
    assert list(joined.columns) == ["last input (t - 12 h)", "truth (t)", "exp2"]
    np.testing.assert_array_equal(joined.columns["last input (t - 12 h)"], ds.rain_mm.values[[3, 4]])
    np.testing.assert_array_equal(joined.columns["truth (t)"], ds.rain_mm.values[[4, 5]])
    assert np.isnan(joined.columns["exp2"][:, :, :8]).all() and (joined.columns["exp2"][:, :, 8:] == 7.0).all()
    # a target whose input frame lies before the store: NaN (no value), not an error
    maps.case_times = [TIMES[0], TIMES[1]]
    joined = compare.joined_cases(maps, tmp_path / "concat.zarr")
    assert np.isnan(joined.columns["last input (t - 12 h)"][0]).all()
    # invalid cells are NaN
    assert np.isnan(joined.columns["truth (t)"][0][:, :4]).all()
    from evaluation import figures
    figures.plot_cases(tmp_path / "j.png", joined.lat, joined.lon, joined.titles, joined.columns, boxes=joined.boxes)
    _not_blank(tmp_path / "j.png")
