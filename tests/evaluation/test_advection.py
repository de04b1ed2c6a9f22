"""Advection baseline: the scheme against pysteps and analytic solutions, and the command."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from evaluation import advection
from tests.evaluation.conftest import REPO
from pipeline.dataset import layout

H, W = 40, 48


def gaussian(r0, c0, sigma=3.0, h=H, w=W):
    r, c = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    return np.exp(-((r - r0) ** 2 + (c - c0) ** 2) / (2 * sigma**2))


def pysteps_extrapolate(field, u, v, duration, n_sub):
    sl = pytest.importorskip("pysteps.extrapolation.semilagrangian")
    vel = np.stack([u, v]) * duration / n_sub  # pixels per pysteps time step
    return sl.extrapolate(field, vel, n_sub, outval=np.nan)[-1]


def test_integer_translation_is_exact():
    f = gaussian(20, 15)
    u = np.full((H, W), 0.5)  # 0.5 columns/h for 12 h: 6 cells east
    v = np.full((H, W), -0.25)  # 3 cells south (towards lower row index)
    out = advection.semilagrangian(f, u, v, 12.0)
    np.testing.assert_allclose(out[:H - 3, 6:], f[3:, :W - 6], atol=1e-12)
    assert np.isnan(out[:, :6]).all() and np.isnan(out[H - 3:, :]).all()  # inflow from outside: NaN


def test_half_cell_translation_against_analytic():
    # bilinear interpolation of a smooth blob shifted by 2.5 cells: error O(h^2 f'') small
    f = gaussian(20, 15, sigma=4.0)
    out = advection.semilagrangian(f, np.full((H, W), 2.5 / 12), np.zeros((H, W)), 12.0)
    exact = gaussian(20, 17.5, sigma=4.0)
    inner = np.s_[:, 3:]
    assert np.nanmax(np.abs(out[inner] - exact[inner])) < 0.01  # 1% of the peak


def test_uniform_flow_matches_pysteps():
    f = gaussian(18, 12)
    u, v = np.full((H, W), 1.3), np.full((H, W), 0.45)  # cells per hour
    ours = advection.semilagrangian(f, u, v, 12.0)
    _, _, n_sub = advection.departure_points(u, v, 12.0)
    ref = pysteps_extrapolate(f, u, v, 12.0, n_sub)
    ok = np.isfinite(ours) & np.isfinite(ref)
    assert ok.sum() > 0.5 * f.size
    # same departure points up to round-off: identical bilinear samples
    np.testing.assert_allclose(ours[ok], ref[ok], atol=1e-9)


def test_rotating_flow_matches_pysteps():
    # solid-body rotation about the centre: 90 degrees in 12 h; blob at radius 10 cells
    rc, cc = (H - 1) / 2, (W - 1) / 2
    r, c = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing="ij")
    omega = (np.pi / 2) / 12.0
    u, v = -omega * (r - rc), omega * (c - cc)
    f = gaussian(rc, cc + 10, sigma=3.0)
    ours = advection.semilagrangian(f, u, v, 12.0)
    _, _, n_sub = advection.departure_points(u, v, 12.0)
    ref = pysteps_extrapolate(f, u, v, 12.0, n_sub)
    ok = np.isfinite(ours) & np.isfinite(ref)
    # pysteps and this scheme take the same midpoint steps with the same velocity
    # interpolation; they differ only in how the edge is treated (pysteps' map_coordinates
    # 'constant' mode vs NaN outside), which never reaches the blob: agree to round-off
    assert np.abs(ours[ok] - ref[ok]).max() < 1e-6
    # and both rotate the blob to the analytic position (rc + 10, cc), within 0.5 cell
    peak = np.unravel_index(np.nanargmax(ours), ours.shape)
    assert abs(peak[0] - (rc + 10)) <= 0.5 + 1e-9 and abs(peak[1] - cc) <= 0.5 + 1e-9
    assert np.nanmax(ours) > 0.9  # bilinear diffusion over the sub-steps stays small


def test_cells_per_hour_uses_latitude_spacing():
    lat = np.array([0.0, 60.0])
    lon = np.array([10.0, 10.25])
    u, v = advection.cells_per_hour(np.full((2, 2), 10.0), np.full((2, 2), 10.0), lat, lon)
    # 10 m/s = 36 km/h; 60 degrees of latitude between the rows: dy = 60 deg
    assert np.allclose(v, 36.0 / (advection.KM_PER_DEG * 60.0))
    assert np.allclose(u[1] / u[0], 2.0)  # cos 60 = 0.5: half the spacing, twice the cells


# --------------------------------------------------------------------------- the command
def _store(tmp_path, u_cells_per_12h=1.0):
    """A tiny concat store: 8 x 12 cells, region 1 = the eastern 6 columns, a wind of
    exactly ``u_cells_per_12h`` cells eastward in 12 h at 700 hPa everywhere, a rain
    blob in region 2."""
    lat = 30.0 + 0.25 * np.arange(8)
    lon = 110.0 + 0.25 * np.arange(12)
    times = pd.date_range("2021-01-01", "2021-03-31T12:00", freq="12h")
    channels = ["u_700hPa", "v_700hPa", "rain"]
    dx_km = advection.KM_PER_DEG * np.cos(np.deg2rad(lat))[:, None] * 0.25
    u_ms = u_cells_per_12h * dx_km / 12.0 / 3.6 * np.ones((len(times), 8, 12))
    mean, std = {"u_700hPa": 5.0, "v_700hPa": 0.0, "rain": 0.0}, {"u_700hPa": 2.0, "v_700hPa": 1.0, "rain": 1.0}
    x = np.zeros((len(times), 3, 8, 12), np.float32)
    x[:, 0] = (u_ms - mean["u_700hPa"]) / std["u_700hPa"]
    rain = np.zeros((len(times), 8, 12), np.float32)
    rain[:, 3:5, 5] = 10.0  # the last column of region 2
    rain[:, 1, 8] = 4.0
    r1 = np.zeros((8, 12), bool)
    r1[:, 6:] = True
    inputs, input_coords = layout.input_variables(x, ["u", "v"], [700.0])  # u_700hPa, v_700hPa, rain
    ds = xr.Dataset(
        {**inputs, "rain_mm": (("time", "lat", "lon"), rain),
         "valid": (("time", "lat", "lon"), np.isfinite(rain)),
         "loss_mask": (("lat", "lon"), r1.astype(np.uint8)), "region1_mask": (("lat", "lon"), r1)},
        coords={"time": times, **input_coords, "lat": lat, "lon": lon},
        attrs={"config_hash": "feedfacecafe0000", "grid": "concat"},
    )
    ds.chunk({"time": 32}).to_zarr(tmp_path / "concat.zarr", mode="w", consolidated=False)
    stats = {"channels": channels, "mean": [mean[c] for c in channels], "std": [std[c] for c in channels],
             "transform": ["zscore", "zscore", "log1p-zscore"]}
    (tmp_path / "concat_stats.json").write_text(json.dumps(stats))
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["period"] = {"start": "2021-01", "end": "2021-03"}
    config["splits"] = {"train": {"start": "2021-01-01", "end": "2021-02-10"},
                        "val": {"start": "2021-02-14", "end": "2021-02-28"},
                        "test": {"start": "2021-03-04", "end": "2021-03-31"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def _run(tmp_path, *extra):
    return advection.main(["--config", str(tmp_path / "config.yaml"), "--data", str(tmp_path / "concat.zarr"),
                           "--stats", str(tmp_path / "concat_stats.json"), "--out", str(tmp_path / "pred.zarr"),
                           *extra])


def test_cli_moves_blob_one_cell_east(tmp_path):
    _store(tmp_path, 1.0)
    assert _run(tmp_path) == 0
    pred = xr.open_zarr(tmp_path / "pred.zarr", consolidated=False)
    assert pred["rain_mm_pred"].dtype == np.float32
    assert pred.sizes["lon"] == 6 and float(pred.lon[0]) == 111.5  # region-1 columns only
    times = pd.DatetimeIndex(pred.time.values)
    assert times[0] == pd.Timestamp("2021-03-04") and times[-1] == pd.Timestamp("2021-03-31T12:00")
    p = pred["rain_mm_pred"].values
    # the region-2 blob (column 5) enters region 1's first column; the region-1 spot moves 8 -> 9
    expect = np.zeros((8, 6), np.float32)
    expect[3:5, 0] = 10.0
    expect[1, 3] = 4.0
    np.testing.assert_allclose(p, np.broadcast_to(expect, p.shape), atol=1e-4)
    assert pred.attrs["level_hpa"] == 700 and pred.attrs["config_hash"] == "feedfacecafe0000"
    assert pred.attrs["n_outside"] == 0 and "numpy" in json.loads(pred.attrs["versions"])


def test_cli_bad_level_is_one_line_error(tmp_path, capsys):
    _store(tmp_path)
    assert _run(tmp_path, "--level-hpa", "123") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "123" in err[-1]


def test_cli_level_missing_from_stats(tmp_path, capsys):
    _store(tmp_path)
    assert _run(tmp_path, "--level-hpa", "500") == 2
    assert "u_500hPa" in capsys.readouterr().err


def test_cli_region1_domain_has_no_upstream_rain(tmp_path):
    _store(tmp_path, 1.0)
    assert _run(tmp_path, "--domain", "region1") == 0
    pred = xr.open_zarr(tmp_path / "pred.zarr", consolidated=False)
    p = pred["rain_mm_pred"].values
    # region 2 is not seen: the first column departs from outside and falls back to
    # persistence (0 there); the region-1 spot still moves 8 -> 9
    expect = np.zeros((8, 6), np.float32)
    expect[1, 3] = 4.0
    np.testing.assert_allclose(p, np.broadcast_to(expect, p.shape), atol=1e-4)
    assert pred.attrs["domain"] == "region1" and pred.attrs["n_outside"] == 8 * p.shape[0]
