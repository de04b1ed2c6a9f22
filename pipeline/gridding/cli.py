"""Grid one month of interim soundings and gauge totals onto the region1 or concat grid.

    python -m pipeline.gridding [--config config.yaml] --soundings interim/soundings/2020-01.nc \
        --gauges interim/gauges/2020-01.nc --month 2020-01 --grid region1,concat \
        --out gridded/{grid}/2020-01.nc [--threads N]

``--grid`` is ``region1``, ``concat`` or a comma-separated list of them; with several
grids ``--out`` must contain ``{grid}``.

Writes ``x`` float32 (time, channel, lat, lon), docs/contracts.md section 3, atomically.
"""
from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.common import cf, cli, integrity
from pipeline.common.atomic import atomic_path
from pipeline.common.compute import dask_scheduler
from pipeline.common.config import describe_times, load_config
from pipeline.gridding.analysis import grid_month, region1_cut

log = logging.getLogger("pipeline.gridding")


def write_fragment(ds: xr.Dataset, out: str | Path) -> Path:
    """Write a gridded fragment as netCDF-4, one chunk per frame, atomically (the analysis
    values uncompressed, cf.GRIDDED_X_COMPRESSION)."""
    out = Path(out)
    n_t, n_c, n_y, n_x = ds["x"].shape
    text = {name: ds[name].values.astype(str) for name in ("channel", "variable", "units", "region")
            if name in ds.coords}
    ds = ds.assign_coords({name: (ds[name].dims, values, ds[name].attrs) for name, values in text.items()})
    encoding = cf.coordinate_encoding(ds)  # no _FillValue on coordinates
    encoding["time"] = {**encoding["time"], **cf.TIME_ENCODING}
    encoding["x"] = {**cf.GRIDDED_X_COMPRESSION, "chunksizes": (1, n_c, n_y, n_x), "dtype": "float32",
                     **integrity.NETCDF_CHECKSUM}
    with atomic_path(out) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return out


def warn_uncovered(ds: xr.Dataset, out) -> None:
    """A warning for each region with frames that have no rain value or no upper-air analysis
    at any of its cells (their values are missing, never made up; README, "Bad data that
    parses")."""
    times = ds["time"].values
    for name, what in (("rain_coverage", "no rain value (no valid gauge)"),
                       ("sounding_coverage", "no upper-air analysis (no sounding station within the analysis radii)")):
        for region in ds["region"].values:
            empty = ds[name].sel(region=region).values <= 0
            if empty.any():
                log.warning("%s: %d of %d frames have %s in %s: %s", out, int(empty.sum()), empty.size, what,
                            region, describe_times(times[empty]))


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("python -m pipeline.gridding", __doc__, threads=True)
    cli.add_config(ap)
    ap.add_argument("--soundings", required=True, help="interim soundings netCDF of the month")
    ap.add_argument("--gauges", required=True, help="interim gauge netCDF of the month")
    ap.add_argument("--month", required=True, help="YYYY-MM")
    ap.add_argument("--grid", required=True, type=cli.grid_names, metavar="GRID[,GRID]",
                    help="target grid(s): region1, concat, or region1,concat; only observations inside a "
                         "grid's region boxes are used for it")
    ap.add_argument("--out", required=True,
                    help="gridded fragment netCDF to write; with several grids it must contain '{grid}'")

    def body(args) -> int:
        if not re.fullmatch(r"\d{4}-\d{2}", args.month):
            ap.error(f"--month must be YYYY-MM, got {args.month!r}")
        grids = args.grid
        if len(grids) > 1 and "{grid}" not in args.out:
            ap.error(f"--out must contain '{{grid}}' when several grids are given, got {args.out!r}")
        threads = args.threads or cli.usable_cores()
        config = load_config(args.config)
        t0 = time.perf_counter()
        # An explicit engine keeps xarray from importing every backend plugin (MetPy's costs ~2 s).
        snd, gau = integrity.open_netcdf(args.soundings), integrity.open_netcdf(args.gauges)
        concat_x = None
        if "concat" in grids and "region1" in grids and region1_cut(config) is not None:
            # concat first: the region1 analysis is its region-1 cells (region1_cut)
            grids = ["concat"] + [g for g in grids if g != "concat"]
        for grid in grids:
            out = args.out.replace("{grid}", grid)
            with dask_scheduler(config, threads):
                ds = grid_month(snd, gau, config, args.month, where=(args.soundings, args.gauges), grid_name=grid,
                                concat_x=concat_x if grid == "region1" else None)
            if grid == "concat":
                concat_x = ds["x"].values
            write_fragment(ds, out)
            covered = np.isfinite(ds["x"].values).mean()
            log.info("grid %s %s: wrote %s (%d frames, %.1f%% of values covered) in %.1f s", args.month, grid, out,
                     ds.sizes["time"], 100 * covered, time.perf_counter() - t0)
            warn_uncovered(ds, out)
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
