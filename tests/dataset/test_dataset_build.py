"""The processed zarr: layout by coordinates, masks, statistics, incremental stability, atomicity."""
from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

from pipeline.dataset import layout
from pipeline.dataset import assemble as dataset_mod
from pipeline.dataset.assemble import FragmentError, build_dataset, load_stats, main
from pipeline.common.config import deep_update
from pipeline.common.errors import ConfigError, GridError
from pipeline.gridding.geometry import make_grid
from pipeline.dataset.normalise import invert

from dataset_helpers import BOXES, REGION1, dataset_config, random_fragment, write_fragments

MONTHS = ["2020-01", "2020-02", "2020-03"]


def build(tmp_path, config, months, grid="concat", tag="a"):
    paths = write_fragments(config, tmp_path / "gridded", months)
    out, stats = tmp_path / f"{grid}_{tag}.zarr", tmp_path / f"{grid}_{tag}_stats.json"
    build_dataset(paths, config, grid, out, stats, threads=2)
    return xr.open_zarr(out), json.loads(stats.read_text()), paths


@pytest.mark.parametrize("side", ["west", "east", "north", "south"])
def test_concat_side_masks_and_region1(tmp_path, side):
    _, config = dataset_config(tmp_path, side)
    ds, stats, _ = build(tmp_path, config, MONTHS[:2])
    lat2d, lon2d = xr.broadcast(ds["lat"], ds["lon"])
    r1 = ds["region1_mask"].values
    in_box1 = ((lat2d > REGION1["lat_min"]) & (lat2d < REGION1["lat_max"])
               & (lon2d > REGION1["lon_min"]) & (lon2d < REGION1["lon_max"])).values
    np.testing.assert_array_equal(r1, in_box1)
    outside = {"west": lon2d < REGION1["lon_min"], "east": lon2d > REGION1["lon_max"],
               "north": lat2d > REGION1["lat_max"], "south": lat2d < REGION1["lat_min"]}[side].values
    np.testing.assert_array_equal(~r1, outside)  # every region-2 cell lies on the named side
    b2 = BOXES[side]
    assert ((lat2d.values[~r1] > b2["lat_min"]) & (lat2d.values[~r1] < b2["lat_max"])
            & (lon2d.values[~r1] > b2["lon_min"]) & (lon2d.values[~r1] < b2["lon_max"])).all()
    lm = ds["loss_mask"].values
    assert lm.dtype == np.uint8
    assert (lm[~r1] == 0).all()
    no_gauge = np.isclose(lon2d.values, REGION1["lon_min"] + 0.25)
    assert (lm[no_gauge] == 0).all() and (lm[r1 & ~no_gauge] == 1).all()
    assert np.diff(ds["lat"].values).min() > 0 and np.diff(ds["lon"].values).min() > 0
    # region1 grid = the region-1 cut of the concat tensors
    reg, _, _ = build(tmp_path, config, MONTHS[:2], grid="region1")
    rows, cols = make_grid(config, "concat").region1_slices()
    np.testing.assert_array_equal(reg["rain_mm"].values, ds["rain_mm"].values[:, rows, cols])
    np.testing.assert_array_equal(reg["lon"].values, ds["lon"].values[cols])
    assert reg["loss_mask"].values.sum() == lm.sum()


def test_mismatched_axes_error(tmp_path):
    # boxes that cannot be joined are a config error at load time, and a GridError where
    # the joined grid is made from an unchecked config
    _, valid = dataset_config(tmp_path, "west")
    bad = dict(BOXES["west"], lat_min=29.0)
    with pytest.raises(ConfigError, match=r"regions\.region2.*share latitudes"):
        dataset_config(tmp_path, "west", {"regions": {"region2": bad}})
    with pytest.raises(GridError, match="share latitudes"):
        make_grid(deep_update(valid, {"regions": {"region2": bad}}), "concat")
    gap = dict(BOXES["north"], lat_min=32.5, lat_max=34.5)
    with pytest.raises(ConfigError, match=r"regions\.region2.*adjoin"):
        dataset_config(tmp_path, "north", {"regions": {"region2": gap}})
    with pytest.raises(GridError, match="adjoin"):
        make_grid(deep_update(valid, {"regions": {"region2": gap}}), "concat")
    # a fragment on another grid is named in the error
    _, config = dataset_config(tmp_path, "west")
    _, other = dataset_config(tmp_path, "east", name="other.yaml")
    p = write_fragments(other, tmp_path / "other", ["2020-01"])
    with pytest.raises(FragmentError, match="2020-01.nc.*lon axis"):
        build_dataset(p, config, "concat", tmp_path / "x.zarr", tmp_path / "x.json")


def _inputs(ds) -> np.ndarray:
    """Every input channel of a store as (time, channel, lat, lon), in tensor order."""
    return layout.read_inputs(ds, 0, ds.sizes["time"])


def test_values_statistics_and_inverse(tmp_path):
    _, config = dataset_config(tmp_path)
    ds, stats_json, paths = build(tmp_path, config, MONTHS)
    phys = xr.concat([xr.open_dataset(p)["x"] for p in paths], dim="time").values.astype(np.float64)
    # statistics = numpy on the train frames (Jan + Feb) of the region-1 cells (the same
    # statistics on both grids), rain on log1p
    train = ds["time"].values < np.datetime64("2020-03-01")
    r1 = ds["region1_mask"].values.astype(bool)
    rows, cols = np.flatnonzero(r1.any(1)), np.flatnonzero(r1.any(0))
    t = phys[train][..., rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
    t[:, -1] = np.log1p(t[:, -1])
    np.testing.assert_allclose(stats_json["mean"], np.nanmean(t, axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(stats_json["std"], np.nanstd(t, axis=(0, 2, 3)), rtol=1e-8)
    assert stats_json["fitted_on"]["fragments"] == ["2020-01.nc", "2020-02.nc"]
    assert json.loads(ds.attrs["normalisation"])["mean"] == stats_json["mean"]
    # target in mm, valid mask, NaN -> 0 in x, inverse transform recovers physical values
    np.testing.assert_array_equal(ds["rain_mm"].values, phys[:, -1].astype(np.float32))
    np.testing.assert_array_equal(ds["valid"].values, np.isfinite(phys[:, -1]))
    x = _inputs(ds)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert (x[~np.isfinite(phys)] == 0).all()
    back = invert(x.astype(np.float64), load_stats(ds.attrs["normalisation"]))
    ok = np.isfinite(phys)
    np.testing.assert_allclose(back[ok], phys[ok], rtol=1e-5, atol=1e-3)
    # train-split normalised sounding channels are ~N(0, 1) on region 1
    z = np.where(ok, x, np.nan)[train][:, :-1][..., rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    assert np.abs(np.nanmean(z, axis=(0, 2, 3))).max() < 1e-4
    np.testing.assert_allclose(np.nanstd(z, axis=(0, 2, 3)), 1.0, rtol=1e-4)
    # zarr v3, chunked along time, compressed
    g = zarr.open_group(str(tmp_path / "concat_a.zarr"), mode="r")
    assert g.metadata.zarr_format == 3
    assert g["x"].chunks == (16, 5, 11, 4, 12) and g["x"].compressors
    assert g["x_rain"].chunks == (16, 4, 12) and g["x_rain"].compressors
    for key in ("region1_box", "region2_box", "grid", "data_source", "fragments", "config_hash", "versions",
                "created", "normalisation", "gridding"):
        assert key in ds.attrs


def test_statistics_unchanged_when_test_months_added(tmp_path):
    _, config = dataset_config(tmp_path)
    a, sa, _ = build(tmp_path, config, MONTHS, tag="three")
    b, sb, _ = build(tmp_path, config, MONTHS + ["2020-04"], tag="four")
    assert b.sizes["time"] == a.sizes["time"] + 60
    assert sa["mean"] == sb["mean"] and sa["std"] == sb["std"] and sa["count"] == sb["count"]
    n = a.sizes["time"]
    np.testing.assert_array_equal(_inputs(a), _inputs(b)[:n])  # bit-identical
    np.testing.assert_array_equal(a["loss_mask"].values, b["loss_mask"].values)
    np.testing.assert_array_equal(a["rain_mm"].values, b["rain_mm"].values[:n])


def test_cli_and_atomic_write(tmp_path, monkeypatch):
    cfg_path, config = dataset_config(tmp_path)
    paths = write_fragments(config, tmp_path / "gridded", MONTHS[:2])
    out, stats = tmp_path / "processed" / "concat.zarr", tmp_path / "processed" / "concat_stats.json"
    assert main(["--config", str(cfg_path), "--grid", "concat", "--out", str(out), "--stats-out", str(stats),
                 "--threads", "2", *paths]) == 0
    first = _inputs(xr.open_zarr(out))

    def failing(x, s):  # a chunk fails half-way through the write
        def boom(block, block_info=None):
            if block_info[0]["chunk-location"][0] == 3:
                raise RuntimeError("disk full")
            return block
        return da.map_blocks(boom, x.astype(np.float64), dtype=np.float64)

    monkeypatch.setattr(dataset_mod, "normalise", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        build_dataset(paths, config, "concat", out, stats)
    # the previous complete store is untouched and no temporary is left behind
    np.testing.assert_array_equal(_inputs(xr.open_zarr(out)), first)
    assert sorted(p.name for p in out.parent.iterdir()) == ["concat.zarr", "concat_stats.json"]
    fresh = tmp_path / "processed" / "fresh.zarr"
    with pytest.raises(RuntimeError):
        build_dataset(paths, config, "concat", fresh, tmp_path / "processed" / "fresh.json")
    assert not fresh.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp")]


def test_too_few_train_frames_is_an_error(tmp_path):
    from pipeline.common.errors import NormalisationError

    _, config = dataset_config(tmp_path)
    paths = write_fragments(config, tmp_path / "gridded", ["2020-03"])  # validation month only
    with pytest.raises(NormalisationError, match="train split"):
        build_dataset(paths, config, "concat", tmp_path / "o.zarr", tmp_path / "o.json")


def test_distributed_scheduler_builds_the_same_store(tmp_path):
    distributed = pytest.importorskip("distributed")
    _, config = dataset_config(tmp_path)
    local, _, paths = build(tmp_path, config, MONTHS[:2])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        _, remote = dataset_config(tmp_path, overrides={"compute": {"dask_scheduler": cluster.scheduler_address}},
                                   name="remote.yaml")
        build_dataset(paths, remote, "concat", tmp_path / "remote.zarr", tmp_path / "remote.json")
    got = xr.open_zarr(tmp_path / "remote.zarr")
    np.testing.assert_array_equal(_inputs(got), _inputs(local))
    np.testing.assert_array_equal(got["loss_mask"].values, local["loss_mask"].values)
    assert got.attrs["normalisation"] == local.attrs["normalisation"]
