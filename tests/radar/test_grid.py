"""CAPPI gridding (radar.grid): against Py-ART's gridding on a real sample file, and the store of
the contract from the command line on look-alike CfRadial volumes of two radars."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from radar import grid as rg
from radar.ingest import read_volume

ROOT = Path(__file__).resolve().parents[2]
CFRADIAL = ROOT / "tests" / "data" / "radar" / "example_cfradial_ppi.nc"
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_nearest_gate_grid_equals_pyart_grid_from_radars():
    """Same grid, nearest-gate weighting, constant radius of influence: equal values and coverage."""
    import pyart

    vol = read_volume(CFRADIAL)
    g = {**rg.GRID_DEFAULTS, "origin": {"lat": vol.latitude + 0.05, "lon": vol.longitude - 0.05},
         "nx": 40, "ny": 30, "spacing_m": 1000.0, "heights_m": [300.0, 450.0], "roi_m": 1500.0}
    grid = rg.Grid(g)
    idx, dist = rg.Mapper(grid)(vol)
    seen = np.isfinite(dist)
    ours = rg.cappi_values(vol, None, idx, seen, dbz_floor=-99.0)["DBZH"]

    radar = pyart.io.read_cfradial(str(CFRADIAL))
    f = radar.fields["reflectivity_horizontal"]
    f["data"] = np.ma.masked_array(np.ma.filled(f["data"], -99.0))  # no echo -> the floor, as ours
    pg = pyart.map.grid_from_radars(
        radar, grid_shape=grid.shape, grid_origin=(grid.lat0, grid.lon0), grid_origin_alt=0.0,
        grid_limits=((grid.z[0], grid.z[-1]), (grid.y[0], grid.y[-1]), (grid.x[0], grid.x[-1])),
        fields=["reflectivity_horizontal"], weighting_function="Nearest", roi_func="constant", constant_roi=1500.0,
        gridding_algo="map_gates_to_grid")
    theirs = pg.fields["reflectivity_horizontal"]["data"]
    cov_theirs = ~np.ma.getmaskarray(theirs)
    assert seen.sum() > 300  # the sample sees a good part of this grid
    # same coverage except possibly ties at the radius of influence
    assert (seen != cov_theirs).sum() <= 0.01 * seen.size
    both = seen & cov_theirs
    diff = np.abs(ours[both] - np.ma.getdata(theirs)[both])
    # nearest gate chosen alike: equal values but for equidistant gates (< 1 % of cells)
    assert np.mean(diff < 1e-3) > 0.99
    np.testing.assert_allclose(grid.lat[15, 20], pg.point_latitude["data"][0, 15, 20], atol=1e-6)
    np.testing.assert_allclose(grid.lon[15, 20], pg.point_longitude["data"][0, 15, 20], atol=1e-6)


def test_geometry_cache_reused():
    vol = read_volume(CFRADIAL)
    m = rg.Mapper(rg.Grid(rg.GRID_DEFAULTS | {"origin": {"lat": vol.latitude, "lon": vol.longitude}}))
    a = m(vol)
    b = m(read_volume(CFRADIAL))
    assert m.computed == 1 and a[0] is b[0]


@pytest.fixture(scope="module")
def raw_two_radars(tmp_path_factory):
    from bench_radar_grid import lookalike_volume

    raw = tmp_path_factory.mktemp("radar") / "raw"
    times = ["2024-06-01T00:00:00", "2024-06-01T00:06:00", "2024-06-01T00:12:00", "2024-06-01T00:24:00"]
    sites = [("RAD1", 49.9, 7.85), ("RAD2", 50.1, 8.15)]
    for i, t in enumerate(times):
        for j, (rid, lat, lon) in enumerate(sites):
            if rid == "RAD2" and i == 1:
                continue  # a missing volume
            stamp = t.replace("-", "").replace(":", "").replace("T", "_")
            lookalike_volume(raw / rid / f"{rid}_{stamp}.nc", rid, lat, lon, t, seed=10 * i + j, kdp=(i < 2),
                             ngates=60, nrays=180)
    return raw


def test_cli_writes_contract_store(raw_two_radars, tmp_path):
    out = tmp_path / "cappi.zarr"
    logf = tmp_path / "grid.log"
    cfg = tmp_path / "config.yaml"
    import yaml

    c = yaml.safe_load((ROOT / "config.yaml").read_text())
    c["radar"]["grid"] = {**(c["radar"].get("grid") or {}), "origin": {"lat": 50.0, "lon": 8.0},
                          "heights_m": [1000.0, 2000.0, 3000.0], "nx": 64, "ny": 64}
    cfg.write_text(yaml.safe_dump(c))
    rc = rg.main(["--config", str(cfg), "--raw", str(raw_two_radars), "--out", str(out), "--log", str(logf),
                  "--no-progress"])
    assert rc == 0
    ds = xr.open_zarr(out)
    assert dict(ds.sizes) == {"time": 5, "height": 3, "y": 64, "x": 64}  # 00:18 has no volume at all
    assert ds.DBZH.dtype == np.float32 and ds.DBZH.dims == ("time", "height", "y", "x")
    assert ds.DBZH.attrs["units"] == "dBZ" and ds.KDP.attrs["units"] == "deg km-1"
    assert ds.x.attrs["standard_name"] == "projection_x_coordinate"
    np.testing.assert_array_equal(np.diff(ds.time.values), np.timedelta64(6, "m"))
    np.testing.assert_allclose(float(ds.lat.sel(x=0.5e3, y=0.5e3, method="nearest")), 50.0, atol=0.01)
    cov = ds.coverage.values
    assert 0.1 < cov.mean() < 0.9  # the 3 km CAPPI needs the 3 deg sweep, which tops out near it
    d0 = ds.DBZH.isel(time=0).values
    # inside coverage: a value (echo or the floor) unless QC removed it; outside: NaN
    assert np.isnan(d0[:, ~cov & ~np.isfinite(d0).any(axis=0)]).all()
    assert (d0[np.isfinite(d0)] >= 0.0).all() and (d0 == 0.0).any() and (d0 > 30).any()
    dry = d0 == 0.0
    assert (ds.ZDR.isel(time=0).values[dry] == 0).all() and (ds.KDP.isel(time=0).values[dry] == 0).all()
    # the step without RAD2: its cells (the east half holds most of them) are NaN, RAD1's are not
    d1 = ds.DBZH.isel(time=1, height=0).values
    assert np.isnan(d1[:, 50:]).mean() > 0.9 and np.isfinite(d1[:, :10]).mean() > 0.5
    assert ds.attrs["missing_volumes"] == 3  # RAD2 at 00:06, both radars at 00:18
    assert np.isnan(ds.DBZH.isel(time=3).values).all() and np.isfinite(ds.DBZH.isel(time=4).values).any()
    totals = json.loads(ds.attrs["qc_removed_gates"])
    assert set(totals) == {"rhohv", "snr", "clutter", "speckle"}
    assert ds.attrs["qc_removed_gates_speckle"] == totals["speckle"] > 0
    assert ds.attrs["kdp_derived_volumes"] == 4 and ds.attrs["config_hash"]
    text = logf.read_text()
    assert "3 volume(s) missing" in text and "RAD2@2024-06-01T00:06" in text and "QC removed gates" in text
