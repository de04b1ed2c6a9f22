"""CAPPIs of DBZH, ZDR and KDP on the radar grid, several radars merged; the store of the contract.

    python -m radar.grid --config CONFIG --raw data/radar/raw --out data/radar/processed/cappi.zarr [--log FILE]

Reads every volume under ``--raw`` (``<RADAR_ID>/<RADAR_ID>_<YYYYmmdd_HHMMSS>.*``, any
format :mod:`radar.ingest` reads; the ``gauges`` folder is skipped), in time order; QCs
each (:mod:`radar.qc`, counts per test logged and totalled in the store's attrs); groups the
volumes of all radars by their 6-minute step; and writes ``cappi.zarr`` (dims time, height,
y, x; docs/contracts.md "Radar track") atomically.

Gridding: the grid is azimuthal-equidistant, centred on ``radar.grid.origin``, ``nx`` x
``ny`` cells of ``spacing_m``, at the CAPPI heights ``heights_m`` above mean sea level.
Gate positions use the 4/3 effective earth radius (Py-ART's ``antenna_vectors_to_cartesian``)
and the radar's position in the grid's projection. A grid point takes the value of the
*nearest gate* in 3-D (Py-ART's ``Nearest`` weighting) within the radius of influence
``roi_m``; none within it: outside coverage (NaN). The gate->grid mapping depends only on the
scan geometry, so it is computed once per distinct geometry (a cKDTree query) and cached.

Merging several radars: each grid point belongs to the radar whose nearest gate is closest
(the one seeing the point with the smallest distance, i.e. mostly the lowest, finest beam);
ownership is fixed from each radar's first volume, so a radar missing at a step leaves its
cells NaN at that step (counted and logged), never filled from another radar or with zeros.

Values: a gate without echo gives DBZH = ``dbz_floor``, ZDR = 0, KDP = 0 (DBZH below the
floor is raised to it); a gate removed by QC gives NaN in all three; a field the volume
lacks altogether is NaN where the radar sees.
"""
from __future__ import annotations

import json
import logging
import time as _time
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash, load_config
from pipeline.common.errors import ConfigError
from pipeline.common.provenance import package_versions
from radar import qc
from radar.ingest import RadarFileError, Volume, read_volume

log = logging.getLogger(__name__)
progress = logging.getLogger(__name__ + ".progress")

GRID_DEFAULTS = {"origin": {"lat": 52.0, "lon": 5.0}, "nx": 64, "ny": 64, "spacing_m": 1000.0,
                 "heights_m": [1000.0, 2000.0, 3000.0], "roi_m": 1500.0, "dbz_floor": 0.0, "step_minutes": 6}
INGEST_DEFAULTS = {**qc.DEFAULTS, "kdp_window_gates": 9, "kdp_median_gates": 5}
FIELDS = ("DBZH", "ZDR", "KDP")
ATTRS = {
    "DBZH": {"units": "dBZ", "long_name": "equivalent reflectivity factor, horizontal polarisation (CAPPI)",
             "standard_name": "equivalent_reflectivity_factor"},
    "ZDR": {"units": "dB", "long_name": "differential reflectivity (CAPPI)",
            "standard_name": "log_differential_reflectivity_hv"},
    "KDP": {"units": "deg km-1", "long_name": "specific differential phase (CAPPI)",
            "standard_name": "specific_differential_phase_hv"},
}


def settings(config: dict) -> tuple[dict, dict]:
    """(ingest settings, grid settings) with the defaults filled."""
    r = config.get("radar", {}) or {}
    ing = {**INGEST_DEFAULTS, **(r.get("ingest") or {})}
    g = {**GRID_DEFAULTS, **(r.get("grid") or {})}
    g["origin"] = {**GRID_DEFAULTS["origin"], **(g.get("origin") or {})}
    if list(g["heights_m"]) != sorted(set(g["heights_m"])):
        raise ConfigError(f"config key 'radar.grid.heights_m': {g['heights_m']} is not strictly increasing")
    return ing, g


class Grid:
    """The CAPPI grid: x, y (m, AEQD about the origin), heights (m above MSL), 2-D lat/lon."""

    def __init__(self, g: dict):
        import pyart

        self.lat0, self.lon0 = float(g["origin"]["lat"]), float(g["origin"]["lon"])
        s = float(g["spacing_m"])
        self.x = (np.arange(int(g["nx"])) - (int(g["nx"]) - 1) / 2.0) * s
        self.y = (np.arange(int(g["ny"])) - (int(g["ny"]) - 1) / 2.0) * s
        self.z = np.asarray(g["heights_m"], dtype=np.float64)
        self.roi = float(g["roi_m"])
        xx, yy = np.meshgrid(self.x, self.y)
        self.lon, self.lat = pyart.core.cartesian_to_geographic_aeqd(xx, yy, self.lon0, self.lat0)
        zz, yy3, xx3 = np.meshgrid(self.z, self.y, self.x, indexing="ij")
        self.points = np.column_stack([xx3.ravel(), yy3.ravel(), zz.ravel()])
        self.shape = (self.z.size, self.y.size, self.x.size)


def geometry_key(vol: Volume) -> tuple:
    """What the gate->grid mapping depends on: radar position, gate ranges and ray angles."""
    return (round(vol.latitude, 6), round(vol.longitude, 6), round(vol.altitude, 1),
            np.round(vol.range, 1).tobytes(), np.round(vol.azimuth, 2).tobytes(), np.round(vol.elevation, 2).tobytes())


def gate_positions(vol: Volume, grid: Grid) -> np.ndarray:
    """(nrays*ngates, 3) gate x, y (m in the grid's projection) and altitude (m above MSL)."""
    import pyart

    x, y, z = pyart.core.antenna_vectors_to_cartesian(vol.range, vol.azimuth, vol.elevation)
    rx, ry = pyart.core.geographic_to_cartesian_aeqd(vol.longitude, vol.latitude, grid.lon0, grid.lat0)
    return np.column_stack([(x + float(np.ravel(rx)[0])).ravel(), (y + float(np.ravel(ry)[0])).ravel(),
                            (z + vol.altitude).ravel()])


class Mapper:
    """Gate -> grid mapping per distinct scan geometry (cached): nearest gate index and distance."""

    def __init__(self, grid: Grid):
        self.grid = grid
        self.cache: dict = {}
        self.computed = 0

    def __call__(self, vol: Volume) -> tuple[np.ndarray, np.ndarray]:
        key = geometry_key(vol)
        hit = self.cache.get(key)
        if hit is None:
            from scipy.spatial import cKDTree

            g = self.grid
            pos = gate_positions(vol, g)
            # only gates that can reach the grid (saves building a tree over a whole NEXRAD volume)
            near = ((pos[:, 0] >= g.x[0] - g.roi) & (pos[:, 0] <= g.x[-1] + g.roi)
                    & (pos[:, 1] >= g.y[0] - g.roi) & (pos[:, 1] <= g.y[-1] + g.roi)
                    & (pos[:, 2] >= g.z[0] - g.roi) & (pos[:, 2] <= g.z[-1] + g.roi))
            sel = np.flatnonzero(near)
            dist = np.full(g.points.shape[0], np.inf)
            idx = np.zeros(g.points.shape[0], np.int64)
            if sel.size:
                d, i = cKDTree(pos[sel]).query(g.points, k=1, distance_upper_bound=g.roi)
                ok = np.isfinite(d)
                dist[ok] = d[ok]
                idx[ok] = sel[i[ok]]
            hit = (idx.reshape(g.shape), dist.reshape(g.shape))
            self.cache[key] = hit
            self.computed += 1
        return hit


def cappi_values(vol: Volume, removed: np.ndarray | None, idx: np.ndarray, seen: np.ndarray,
                 dbz_floor: float = 0.0) -> dict:
    """{field: (nz, ny, nx) float32} of one volume at the grid points it sees (NaN elsewhere)."""
    removed = np.zeros(vol.fields["DBZH"].shape, bool) if removed is None else removed
    flat = idx.ravel()
    dbz = vol.fields["DBZH"]
    echo = ~np.ma.getmaskarray(dbz).ravel()[flat] & np.isfinite(np.ma.getdata(dbz).ravel()[flat])
    bad = removed.ravel()[flat]
    ok = seen.ravel()
    out = {}
    for name in FIELDS:
        f = vol.fields.get(name)
        v = np.full(flat.shape, np.nan, np.float32)
        if f is not None:
            data = np.ma.getdata(f).ravel()[flat].astype(np.float32)
            fm = np.ma.getmaskarray(f).ravel()[flat] | ~np.isfinite(data)
            if name == "DBZH":
                v = np.where(echo, np.maximum(data, dbz_floor), dbz_floor).astype(np.float32)
            else:
                v = np.where(echo & ~fm, data, 0.0).astype(np.float32)
        v[bad | ~ok] = np.nan
        out[name] = v.reshape(idx.shape)
    return out


def find_volumes(raw: Path) -> dict:
    """{radar_id: sorted list of files} under ``raw`` (one folder per radar; 'gauges' skipped)."""
    raw = Path(raw)
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: no such raw radar folder")
    out = {}
    for d in sorted(p for p in raw.iterdir() if p.is_dir() and p.name not in ("gauges", "truth")):
        files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
        if files:
            out[d.name] = files
    if not out:
        raise FileNotFoundError(f"{raw}: no radar volumes (expected <RADAR_ID>/<RADAR_ID>_<YYYYmmdd_HHMMSS>.nc)")
    return out


def _step(t: np.datetime64, minutes: int) -> np.datetime64:
    s = np.int64(minutes) * 60
    ts = t.astype("datetime64[s]").astype(np.int64)
    return np.datetime64(int((ts + s // 2) // s * s), "s")


def build(config: dict, raw: Path, show_progress: bool = True):
    """Read, QC and grid every volume under ``raw``; return the CAPPI Dataset (not written)."""
    import xarray as xr

    ing, g = settings(config)
    grid = Grid(g)
    mapper = Mapper(grid)
    files = find_volumes(raw)
    radars = sorted(files)
    by_step: dict = defaultdict(dict)
    n_files = sum(len(v) for v in files.values())
    log.info("%d volumes of %d radar(s) (%s) under %s", n_files, len(radars), ", ".join(radars), raw)

    totals = {t: 0 for t in qc.TESTS}
    n_kdp = 0
    done = 0
    t0 = _time.perf_counter()
    owner_dist = {}
    cubes: dict = {}
    step_of = {}
    # read in time order across radars
    order = sorted(((f, rid) for rid, fs in files.items() for f in fs), key=lambda p: (p[0].name.split("_", 1)[-1], p[1]))
    for path, rid in order:
        vol = read_volume(path, ing)
        step = _step(vol.time, int(g["step_minutes"]))
        if rid in by_step[step]:
            raise RadarFileError(f"{path}: a second volume of radar {rid} in the step {step} "
                                 f"(first: {by_step[step][rid]})")
        by_step[step][rid] = path.name
        removed, counts = qc.quality_control(vol.fields, vol.range, ing)
        for k, v in counts.items():
            totals[k] += v
        n_kdp += vol.kdp_derived
        log.debug("%s: QC removed %s", path.name, counts)
        idx, dist = mapper(vol)
        seen = np.isfinite(dist)
        if rid not in owner_dist:
            owner_dist[rid] = dist
        cubes[(step, rid)] = cappi_values(vol, removed, idx, seen, float(g["dbz_floor"]))
        step_of[(step, rid)] = path.name
        done += 1
        if show_progress and (done % 50 == 0 or done == n_files):
            progress.info("%d/%d volumes (%.1f s)", done, n_files, _time.perf_counter() - t0)

    # a regular axis from the first to the last step: a step without any volume is all NaN
    dt = np.timedelta64(int(g["step_minutes"]) * 60, "s")
    first, last = min(by_step), max(by_step)
    steps = list(np.arange(first, last + dt, dt))
    dists = np.stack([owner_dist[r] for r in radars])  # (R, nz, ny, nx)
    owner = np.argmin(dists, axis=0)
    seen_any = np.isfinite(dists).any(axis=0)
    coverage = seen_any.all(axis=0)
    shape = (len(steps),) + grid.shape
    out = {n: np.full(shape, np.nan, np.float32) for n in FIELDS}
    missing = []
    for i, st in enumerate(steps):
        for r, rid in enumerate(radars):
            sel = (owner == r) & seen_any
            cube = cubes.pop((st, rid), None)
            if cube is None:
                missing.append(f"{rid}@{str(st)[:16]}")
                continue
            for n in FIELDS:
                out[n][i][sel] = cube[n][sel]
    if missing:
        log.warning("%d volume(s) missing (their radar's cells are NaN at that step): %s%s", len(missing),
                    ", ".join(missing[:10]), " ..." if len(missing) > 10 else "")
    log.info("QC removed gates: %s; KDP derived from PHIDP in %d of %d volumes; %d distinct scan geometries",
             totals, n_kdp, n_files, mapper.computed)

    times = np.array(steps, dtype="datetime64[ns]")
    ds = xr.Dataset(
        {n: (("time", "height", "y", "x"), out[n], ATTRS[n]) for n in FIELDS},
        coords={
            "time": ("time", times, {"standard_name": "time", "long_name": "time of the volume scans (6-minute step)"}),
            "height": ("height", grid.z, {"standard_name": "altitude", "units": "m", "positive": "up",
                                          "long_name": "CAPPI height above mean sea level"}),
            "y": ("y", grid.y, {"standard_name": "projection_y_coordinate", "units": "m"}),
            "x": ("x", grid.x, {"standard_name": "projection_x_coordinate", "units": "m"}),
            "lat": (("y", "x"), grid.lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("y", "x"), grid.lon, {"standard_name": "longitude", "units": "degrees_east"}),
        })
    ds["coverage"] = (("y", "x"), coverage, {"long_name": "cell seen by at least one radar at every CAPPI height"})
    ds["crs"] = ((), np.int32(0), {"grid_mapping_name": "azimuthal_equidistant",
                                   "longitude_of_projection_origin": grid.lon0,
                                   "latitude_of_projection_origin": grid.lat0,
                                   "false_easting": 0.0, "false_northing": 0.0})
    for n in FIELDS:
        ds[n].attrs["grid_mapping"] = "crs"
    versions = package_versions(("numpy", "scipy", "xarray", "zarr", "arm_pyart", "xradar"))
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "title": "CAPPIs of dual-polarisation radar volumes (radar.grid)",
        "source": "radar volumes: " + ", ".join(radars),
        "sources": json.dumps({rid: len(fs) for rid, fs in files.items()}),
        "radars": radars,
        "merge": "nearest gate among the radars; ownership fixed from each radar's first volume",
        "config_hash": config_hash({"ingest": ing, "grid": g}),
        "qc_removed_gates": json.dumps(totals),
        "qc_removed_gates_rhohv": totals["rhohv"], "qc_removed_gates_snr": totals["snr"],
        "qc_removed_gates_clutter": totals["clutter"], "qc_removed_gates_speckle": totals["speckle"],
        "kdp_derived_volumes": int(n_kdp),
        "missing_volumes": len(missing),
        "missing_volume_list": json.dumps(missing),
        "versions": json.dumps(versions),
        "json_attributes": "sources qc_removed_gates missing_volume_list versions",
    })
    return ds


def write(ds, out: Path) -> None:
    enc = {n: {"chunks": (1,) + ds[n].shape[1:]} for n in FIELDS}
    enc["time"] = {"units": "minutes since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian", "dtype": "int64"}
    with atomic_path(out) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True, encoding=enc)


def main(argv=None) -> int:
    ap = cli.parser("python -m radar.grid", __doc__, progress=True)
    cli.add_config(ap)
    ap.add_argument("--raw", default="data/radar/raw", help="folder of radar volumes, one subfolder per radar")
    ap.add_argument("--out", default="data/radar/processed/cappi.zarr", help="output zarr store (written atomically)")
    ap.add_argument("--log", default=None, help="also write the log to this file")
    return cli.run(ap, _main, argv)


def _main(args) -> None:
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(args.log, mode="w")
        h.setFormatter(logging.Formatter(cli.LOG_FORMAT))
        logging.getLogger().addHandler(h)
    config = load_config(args.config)
    t0 = _time.perf_counter()
    ds = build(config, Path(args.raw), show_progress=not args.no_progress)
    write(ds, Path(args.out))
    log.info("wrote %s: %d steps x %d heights x %d x %d in %.1f s", args.out, ds.sizes["time"], ds.sizes["height"],
             ds.sizes["y"], ds.sizes["x"], _time.perf_counter() - t0)


if __name__ == "__main__":
    raise SystemExit(main())
