"""Assemble monthly gridded fragments into the normalised training zarr of one grid.

    python -m pipeline.dataset [--config config.yaml] --grid region1|concat \
        --out processed/GRID.zarr --stats-out processed/GRID_stats.json [--threads N] [--no-progress] \
        gridded/GRID/*.nc

Output (docs/contracts.md section 4): the normalised float32 inputs with NaN -> 0, ``x``
(time, variable, pressure, lat, lon) and ``x_rain`` (time, lat, lon), laid out by
:mod:`pipeline.dataset.layout`; ``rain_mm`` target in mm, ``valid``, ``loss_mask``, ``region1_mask``.

Built lazily with dask from the fragments (one task per month for the statistics, then a
streamed write chunk by chunk), so peak memory does not grow with the period. Statistics
are fitted on the ``splits.train`` frames only, from per-fragment moments combined in
time order: adding months outside the training split leaves them, and every earlier
normalised value, bit-identical.

``loss_mask`` rule: a region-1 cell is 1 when its gridded rain is valid (finite) in at
least ``grid.loss_mask_min_valid_fraction`` of the training-split frames; every region-2
cell is 0.

Data quality (README, "Bad data that parses"): ``rain_coverage`` and ``sounding_coverage``
(time, region) say what fraction of each region's cells had a rain value and an upper-air
analysis at each frame (from the fragments; computed from ``x`` for fragments gridded
before they were recorded). Frames where a region has none are counted in the attributes
``frames_without_rain`` and ``frames_without_soundings``, listed in ``data_quality``
(JSON, with the ingest QC counts summed over the fragments) and logged as warnings: their
missing inputs are 0 like every missing value, and a frame without rain has ``valid``
false everywhere, so it never enters a loss or a score.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import threading
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.common import cf, cli
from pipeline.common.atomic import atomic_path
from pipeline.common.integrity import reading
from pipeline.common.provenance import package_versions as _package_versions
from pipeline.common.compute import dask_scheduler
from pipeline.common.config import config_hash, load_config, split_of_times, time_periods
from pipeline.common.errors import GridError, NormalisationError
from pipeline.gridding.geometry import (COVERAGE_ATTRS, Grid, channel_names, coverage_variables,
                                       frames_without, make_grid, region2_side, region_masks)
from pipeline.dataset import layout
from pipeline.dataset.normalise import Moments, NormStats, finalise, moments_of, normalise

log = logging.getLogger("pipeline.dataset")
progress_log = logging.getLogger("pipeline.dataset" + cli.PROGRESS_SUFFIX)  # silenced by --no-progress

ENGINE = "netcdf4"
_NETCDF_LOCK = threading.Lock()
VERSIONED_PACKAGES = ("numpy", "pandas", "xarray", "dask", "distributed", "zarr", "netCDF4", "metpy", "pyproj", "scipy")


class FragmentError(GridError):
    """A gridded fragment does not match the configured grid or channels."""


def _region_index(config: dict, grid_name: str, source: str = "concat") -> tuple[Grid, slice, slice]:
    """The output grid and the row/column slices that cut it out of the fragments.

    Fragments are normally gridded on the output grid itself (``source == grid_name``:
    the region1 grid from region-1 observations alone); region1 can also be cut out of
    concat fragments.
    """
    if grid_name not in ("region1", "concat"):
        raise GridError(f"--grid must be region1 or concat, got {grid_name!r}")
    if source == grid_name:
        return make_grid(config, grid_name), slice(None), slice(None)
    concat = make_grid(config, "concat")
    if grid_name == "concat":
        raise GridError("concat tensors need fragments gridded on the concat grid")
    rows, cols = concat.region1_slices()
    region1 = make_grid(config, "region1")
    if not (np.array_equal(concat.lat[rows], region1.lat) and np.array_equal(concat.lon[cols], region1.lon)):
        raise GridError("region-1 slice of the concat grid does not match the region1 grid")
    return region1, rows, cols


def _check_fragment(ds: xr.Dataset, path: str, expected: Grid, channels: list[str]) -> None:
    if "x" not in ds:
        raise FragmentError(f"{path}: no variable 'x'")
    if ds["x"].dims != ("time", "channel", "lat", "lon"):
        raise FragmentError(f"{path}: x has dims {ds['x'].dims}, expected ('time', 'channel', 'lat', 'lon')")
    got = [str(c) for c in ds["channel"].values]
    if got != channels:
        raise FragmentError(f"{path}: channels {got[:3]}... ({len(got)}) differ from the config's {channels[:3]}... ({len(channels)})")
    for name, want in (("lat", expected.lat), ("lon", expected.lon)):
        have = ds[name].values
        if have.shape != want.shape or not np.allclose(have, want, atol=1e-6):
            raise FragmentError(f"{path}: {name} axis ({have.size} cells, {have[:1]}..{have[-1:]}) differs from the "
                                f"configured {expected.name} grid ({want.size} cells, {want[:1]}..{want[-1:]})")


def fragment_grid(path: str, config: dict, grid_name: str) -> str:
    """Which configured grid a fragment is on: ``grid_name`` itself, else 'concat'."""
    want = make_grid(config, grid_name)
    with reading(path), xr.open_dataset(path, engine=ENGINE) as ds:
        if "lat" in ds and "lon" in ds and ds["lat"].shape == want.lat.shape and ds["lon"].shape == want.lon.shape \
                and np.allclose(ds["lat"].values, want.lat, atol=1e-6) and np.allclose(ds["lon"].values, want.lon, atol=1e-6):
            return grid_name
    return "concat"


def open_fragments(paths: list[str], config: dict, source: str = "concat") -> list[tuple[str, xr.Dataset]]:
    """Open every fragment lazily (one dask chunk per file), validated, sorted by time."""
    grid = make_grid(config, source)
    channels = channel_names(config)
    opened = []
    for p in paths:
        # Metadata is read here and the file closed; the data is read by one dask task per
        # fragment (:func:`_read_x`), so no file stays open while dask threads run.
        with reading(p), xr.open_dataset(p, engine=ENGINE) as src:
            _check_fragment(src, str(p), grid, channels)
            x = src["x"]
            lazy = da.from_delayed(dask.delayed(_read_x, pure=True)(str(p)), shape=x.shape, dtype=x.dtype)
            ds = src.drop_vars("x").load()
            ds["x"] = (x.dims, lazy.rechunk({0: -1}), dict(x.attrs))
        if not set(COVERAGE_ATTRS) <= set(ds.data_vars):  # gridded before coverage was recorded
            ds = ds.assign(coverage_variables(_read_x(str(p)), channels, grid)).assign_coords(
                region=np.asarray(list(region_masks(grid)), dtype=object))
        ds = ds.assign_coords(lat=grid.lat, lon=grid.lon, channel=np.asarray(channels, dtype=object),
                              region=ds["region"].values.astype(str).astype(object))
        opened.append((str(p), ds))
    opened.sort(key=lambda item: item[1]["time"].values[0] if item[1].sizes["time"] else np.datetime64("NaT"))
    times = np.concatenate([ds["time"].values for _, ds in opened]) if opened else np.array([], "datetime64[ns]")
    if len(times) and (np.diff(times.astype("datetime64[ns]").astype(np.int64)) <= 0).any():
        k = int(np.flatnonzero(np.diff(times.astype("datetime64[ns]").astype(np.int64)) <= 0)[0])
        raise FragmentError(f"fragments overlap or are unsorted in time at {pd.Timestamp(times[k + 1])}")
    return opened


def _read_x(path: str) -> np.ndarray:
    """The ``x`` array of one fragment (one dask task).

    netCDF-C and HDF5 are not thread-safe, and with netCDF4 >= 1.6 xarray's own locks do
    not cover every call (open, close and garbage collection race under dask threads and
    crash the process). Every task opens, reads and closes its fragment inside one
    process-wide lock; the arithmetic downstream runs in parallel.
    """
    with _NETCDF_LOCK, reading(path), xr.open_dataset(path, engine=ENGINE) as ds:
        return ds["x"].values


def _fragment_moments(path: str, rows: slice, cols: slice, take: np.ndarray, channels: list[str],
                      stat_window: tuple[slice, slice] = (slice(None), slice(None))):
    """Moments (over ``stat_window`` of the output grid) and valid-rain counts (every cell)
    of the training frames of one fragment (one task)."""
    # Reads are serialised (see :func:`_read_x`); the moments below run in parallel.
    with _NETCDF_LOCK, reading(path), xr.open_dataset(path, engine=ENGINE) as ds:
        x = ds["x"].isel(time=take, lat=rows, lon=cols).values  # (t, C, y, x) float32
    rain_valid = np.isfinite(x[:, channels.index("rain")]).sum(axis=0)
    return moments_of(x[..., stat_window[0], stat_window[1]], channels), rain_valid, len(take)


def fit_statistics(fragments, config: dict, grid_name: str, source: str = "concat") -> tuple[NormStats, np.ndarray, dict]:
    """Normalisation statistics and loss_mask from the training-split frames only.

    Statistics are fitted on the region-1 cells on every grid, so both grids are
    normalised with the same statistics (identical ones under
    ``gridding.concat_analysis: separate``, where the region-1 cells are identical): a
    region-2 value is scaled exactly as the same value in region 1 would be.
    """
    grid, rows, cols = _region_index(config, grid_name, source)
    stat_window = grid.region1_slices()
    channels = channel_names(config)
    tasks, used = [], []
    for path, ds in fragments:
        take = np.flatnonzero(split_of_times(ds["time"].values, config) == "train")
        if take.size:
            tasks.append(dask.delayed(_fragment_moments, pure=True)(path, rows, cols, take, channels, stat_window))
            used.append(path)
    if not tasks:
        raise NormalisationError(f"no fragment has frames in the train split {config['splits']['train']}; "
                                 "statistics cannot be fitted")
    log.info("fitting statistics on %d fragments of the train split", len(tasks))
    parts = dask.compute(*tasks)
    total = Moments.empty(len(channels))
    valid = np.zeros(grid.shape, dtype=np.int64)
    n_frames = 0
    for m, v, n in parts:  # fixed (time) order: independent of months outside the train split
        total = total.merge(m)
        valid += v
        n_frames += n
    train = config["splits"]["train"]
    fitted_on = {"split": "train", "start": train["start"], "end": train["end"], "frames": n_frames, "cells": "region1",
                 "fragments": [Path(p).name for p in used]}
    stats = finalise(total, channels, int(config["grid"]["min_norm_samples"]), fitted_on)
    frac = valid / n_frames
    threshold = float(config["grid"]["loss_mask_min_valid_fraction"])
    loss_mask = ((frac >= threshold) & grid.region1_mask).astype(np.uint8)
    info = {"rule": f"region-1 cell with valid gridded rain in >= {threshold} of the {n_frames} train-split frames; "
                    "region-2 cells 0", "min_valid_fraction": threshold, "train_frames": n_frames,
            "cells": int(loss_mask.sum())}
    return stats, loss_mask, info


def assemble(fragments, config: dict, grid_name: str, stats: NormStats, loss_mask: np.ndarray,
             source: str = "concat") -> xr.Dataset:
    """The lazy (dask-backed) output dataset of one grid."""
    grid, rows, cols = _region_index(config, grid_name, source)
    chunk = int(config["compute"]["zarr_time_chunk"])
    x = xr.concat([ds["x"].isel(lat=rows, lon=cols) for _, ds in fragments], dim="time",
                  coords="minimal", compat="override", join="override")
    x = x.chunk({"time": chunk, "channel": -1, "lat": -1, "lon": -1})
    z = normalise(x.data, stats)
    z = da.where(da.isnan(z), 0.0, z).astype(np.float32)
    if list(stats.channels) != channel_names(config):
        raise NormalisationError(f"statistics channels {list(stats.channels)[:3]}... differ from the config's")
    inputs, input_coords = layout.input_variables(z, config["variables"], config["levels_hpa"])
    rain = x.sel(channel=cf.RAIN_VARIABLE).data.astype(np.float32)
    dims3 = ("time", "lat", "lon")
    regions = list(region_masks(grid))
    coverage = {name: (("time", "region"), np.concatenate([ds[name].sel(region=regions).values for _, ds in fragments])
                       .astype(np.float32), attrs) for name, attrs in COVERAGE_ATTRS.items()}
    out = xr.Dataset(
        {
            **inputs,
            "rain_mm": (dims3, rain, {**cf.RAIN_ATTRS,
                                      "long_name": "gauge rain in the 12 h ending at time (objective analysis)"}),
            "valid": (dims3, da.isfinite(rain), {"long_name": "rain_mm exists at this cell and time"}),
            "loss_mask": (("lat", "lon"), loss_mask.astype(np.uint8),
                          {"long_name": "1 on region-1 cells with rain coverage in the train split"}),
            "region1_mask": (("lat", "lon"), grid.region1_mask.astype(bool), {"long_name": "region-1 cells"}),
            **coverage,
        },
        coords={
            "time": ("time", x["time"].values.astype("datetime64[ns]"), {"standard_name": "time"}),
            **input_coords,
            "region": ("region", np.asarray(regions, dtype=object), {"long_name": "region of the grid"}),
            "lat": ("lat", grid.lat, cf.LAT_ATTRS),
            "lon": ("lon", grid.lon, cf.LON_ATTRS),
        },
    )
    return cf.add_time_bounds(out, cf.RAIN_WINDOW_HOURS)  # rain_mm: the 12 h ending at time


def package_versions() -> dict:
    return _package_versions(VERSIONED_PACKAGES)


def _encoding(ds: xr.Dataset, chunk: int) -> dict:
    from zarr.codecs import BloscCodec

    # lz4 with byte shuffling: the normalised float32 values keep 75% of their bytes with
    # it and 68% with zstd level 3, which costs about 8x the CPU time (about 8 CPU-s of a
    # two-year run's two stores).
    comp = (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)
    enc = cf.coordinate_encoding(ds)  # no _FillValue on coordinates; time_bnds in the units of time
    enc["time"].update(cf.TIME_ENCODING)
    enc["time_bnds"]["chunks"] = (min(chunk, max(ds.sizes["time"], 1)), 2)  # written block by block with the data
    for name in (layout.UPPER_AIR, layout.RAIN_INPUT, "rain_mm", "valid", *COVERAGE_ATTRS):
        var = ds[name]
        enc[name] = {"compressors": comp, "chunks": (min(chunk, max(var.shape[0], 1)),) + var.shape[1:]}
    return enc


def data_quality(ds: xr.Dataset, fragments) -> dict:
    """What the store lacks: per region, the frames without a rain value and without an
    upper-air analysis at any cell (counts and periods), and the ingest QC counts summed
    over the fragments (their ``ingest_qc`` attribute, where they carry one)."""
    times = ds["time"].values
    out: dict = {"frames": int(len(times))}
    regions: dict = {str(r): {} for r in ds["region"].values}
    for key, name in (("frames_without_rain", "rain_coverage"), ("frames_without_soundings", "sounding_coverage")):
        out[key] = int(frames_without(ds, name).sum())  # frames where any region lacks it
        for region in regions:
            empty = np.asarray(ds[name].sel(region=region).values <= 0)
            regions[region][key] = {"count": int(empty.sum()), "periods": time_periods(times[empty])}
    out["regions"] = regions
    qc: dict = {}
    for _, frag in fragments:
        for kind, counts in cf.json_attribute(frag.attrs, "ingest_qc", {}).items():
            for k, v in counts.items():
                qc.setdefault(kind, {})[k] = qc.get(kind, {}).get(k, 0) + int(v)
    out["ingest_qc"] = qc
    return out


def warn_data_quality(quality: dict, out) -> None:
    """One warning per region and kind of frame that lacks data (README, "Bad data that
    parses")."""
    for key, what in (("frames_without_rain", "no rain value at any cell (valid false: no loss, no score; "
                                              "rain input 0)"),
                      ("frames_without_soundings", "no upper-air analysis at any cell (sounding inputs 0)")):
        for region, lacks in quality["regions"].items():
            d = lacks[key]
            if d["count"]:
                log.warning("%s: %d of %d frames have %s in %s: %s", out, d["count"], quality["frames"], what,
                            region, "; ".join(d["periods"]))


def write_zarr(ds: xr.Dataset, path: str | Path, chunk: int, chunks_per_write: int = 8) -> Path:
    """Write ``ds`` as a new zarr v3 store at ``path`` (callers write to a temporary path).

    Metadata, coordinates and the static masks first; then the time-dependent arrays block
    by block (``chunks_per_write`` zarr chunks at a time, aligned to the chunks), each block
    one dask computation, so memory is bounded by a block whatever the period.
    """
    timed = [v for v in ds.data_vars if "time" in ds[v].dims]
    n = ds.sizes["time"]
    block = chunk * max(1, int(chunks_per_write))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        ds.to_zarr(path, mode="w-", zarr_format=3, consolidated=True, encoding=_encoding(ds, chunk), compute=False)
        static = [v for v in ds.variables if "time" not in ds[v].dims]
        for start in range(0, n, block):
            stop = min(start + block, n)
            part = ds[timed].isel(time=slice(start, stop)).drop_vars(static, errors="ignore")
            part.to_zarr(path, mode="r+", region={"time": slice(start, stop)}, zarr_format=3, consolidated=False)
            progress_log.info("wrote frames %d-%d of %d", start, stop - 1, n)
    return Path(path)


def build_dataset(paths: list[str], config: dict, grid_name: str, out: str | Path, stats_out: str | Path,
                  threads: int = 1) -> NormStats:
    """Fit statistics, assemble and write ``out`` (zarr) and ``stats_out`` (JSON), both atomically."""
    if not paths:
        raise FragmentError("no gridded fragments given")
    t0 = time.perf_counter()
    fragments = []
    # Each month is read once, whole, by one task that holds the netCDF lock (_read_x); a
    # small HDF5 chunk cache per opened file keeps memory flat as the period grows.
    import netCDF4

    netCDF4.set_chunk_cache(1 << 20, 101, 0.75)
    try:
        # The scheduler block closes first (waiting for tasks in flight), then the
        # temporary store is renamed, or removed on error.
        with atomic_path(out) as tmp, dask_scheduler(config, threads):
            source = fragment_grid(str(paths[0]), config, grid_name)
            fragments = open_fragments([str(p) for p in paths], config, source)
            stats, loss_mask, mask_info = fit_statistics(fragments, config, grid_name, source)
            ds = assemble(fragments, config, grid_name, stats, loss_mask, source)
            times = pd.DatetimeIndex(ds["time"].values)
            steps = np.diff(times.values).astype("timedelta64[h]").astype(int)
            gaps = times[1:][steps != config["frames"]["step_hours"]]
            if len(gaps):
                log.warning("time axis has %d gaps (first before %s)", len(gaps), gaps[0])
            quality = data_quality(ds, fragments)
            warn_data_quality(quality, out)
            ds.attrs = processed_attrs(config, grid_name, stats, mask_info, [Path(p).name for p, _ in fragments],
                                       ds["loss_mask"].shape, int(len(gaps)), quality)
            log.info("writing %s (%d frames, %d channels, %dx%d cells)", out, ds.sizes["time"], layout.n_channels(ds),
                     ds.sizes["lat"], ds.sizes["lon"])
            write_zarr(ds, tmp, int(config["compute"]["zarr_time_chunk"]))
    finally:
        for _, f in fragments:
            f.close()
    blob = json.dumps({"grid": grid_name, "config_hash": config_hash(config), **stats.to_dict(),
                       "loss_mask_rule": mask_info}, indent=1, sort_keys=True).encode()
    with atomic_path(stats_out) as tmp:
        Path(tmp).write_bytes(blob)
    log.info("%s done in %.1f s", grid_name, time.perf_counter() - t0)
    return stats


def processed_attrs(config: dict, grid_name: str, stats: NormStats, mask_info: dict, fragments: list[str],
                    shape: tuple[int, int], time_gaps: int, quality: dict) -> dict:
    """Global attributes of a processed store: flat values, nested ones as JSON text (:mod:`pipeline.common.cf`)."""
    regions = config["regions"]
    box = ("lat_min", "lat_max", "lon_min", "lon_max")
    return cf.with_json_attrs({
        "Conventions": cf.CONVENTIONS,
        "title": f"normalised training tensors, grid {grid_name}",
        "grid": grid_name,
        "grid_resolution_deg": float(config["grid"]["resolution_deg"]),
        "grid_shape": [int(n) for n in shape],
        "region2_side": region2_side(config),
        "region1_box": [float(regions["region1"][k]) for k in box],
        "region2_box": [float(regions["region2"][k]) for k in box],
        "loss_mask_rule": mask_info["rule"],
        "loss_mask_min_valid_fraction": float(mask_info["min_valid_fraction"]),
        "loss_mask_train_frames": int(mask_info["train_frames"]),
        "loss_mask_cells": int(mask_info["cells"]),
        "data_source": config["data"]["source"],
        "fragments": list(fragments),
        "config_hash": config_hash(config),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "time_gaps": int(time_gaps),
        "frames_without_rain": int(quality["frames_without_rain"]),
        "frames_without_soundings": int(quality["frames_without_soundings"]),
    }, {"normalisation": stats.to_dict(), "gridding": dict(config["gridding"]), "versions": package_versions(),
        "data_quality": quality})


def load_stats(path_or_attrs) -> NormStats:
    """NormStats from the JSON file next to a zarr, or from its ``normalisation`` attribute (JSON text or dict)."""
    if isinstance(path_or_attrs, dict):
        return NormStats.from_dict(path_or_attrs)
    if isinstance(path_or_attrs, str) and path_or_attrs.lstrip().startswith("{"):
        return NormStats.from_dict(json.loads(path_or_attrs))
    return NormStats.from_dict(json.loads(Path(path_or_attrs).read_text()))


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("python -m pipeline.dataset", __doc__, threads=True, progress=True)
    cli.add_config(ap)
    ap.add_argument("--grid", required=True, type=cli.grid_names, metavar="GRID",
                    help="output grid: region1 or concat (one grid per store)")
    ap.add_argument("--out", required=True, help="zarr store to write (processed/GRID.zarr)")
    ap.add_argument("--stats-out", required=True, help="JSON file of the normalisation statistics")
    ap.add_argument("fragments", nargs="+", metavar="FRAGMENT",
                    help="gridded monthly fragments of that grid (gridded/GRID/YYYY-MM.nc)")

    def body(args) -> int:
        if len(args.grid) != 1:
            ap.error(f"--grid takes one grid here (one store per grid), got {','.join(args.grid)}")
        config = load_config(args.config)
        build_dataset(args.fragments, config, args.grid[0], args.out, args.stats_out,
                      args.threads or cli.usable_cores())
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
