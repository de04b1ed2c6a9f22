"""Ingest raw soundings and gauge rain into the interim per-month datasets.

Command line (each a thin wrapper over the pure functions below; without ``--config`` the
documented defaults of schemas/config.schema.yaml apply)::

    python -m pipeline.ingest soundings [--config C] [--format igra2|wyoming] [--station-list L]
        [--station ID --time YYYY-MM-DDTHH:MM] [--month YYYY-MM] [--levels 1000,925,...]
        [--no-progress] --out OUT.nc FILE...
    python -m pipeline.ingest gauges [--config C] --stations stations.csv --month YYYY-MM
        --out OUT.nc MONTH.csv [PREVIOUS_MONTH.csv]
    python -m pipeline.ingest gauges [--config C] --format ghcn-daily [--stations S]
        [--month YYYY-MM] --out OUT.nc FILE.dly...
    python -m pipeline.ingest partition --format igra2 --out DIR FILE...
    python -m pipeline.ingest convert-gauges --format knmi-hourly|iem-asos|ghcnh|csv [--unit U] --out DIR FILE...

Every run writes ``OUT`` atomically plus its QC summary as JSON next to it
(``OUT`` with suffix ``.qc.json``) and logs that summary to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time as _time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.readers import igra2
from pipeline.soundings import vertical
from pipeline.common import cf, cli, integrity
from pipeline.common.atomic import atomic_path
from pipeline.common.config import in_month, load_config, qc_settings, schema_defaults

log = logging.getLogger("pipeline.ingest")

# --------------------------------------------------------------------------- soundings

def expand_inputs(paths) -> list[Path]:
    """Files named on the command line; a folder stands for the (non-hidden) files in it.

    A missing path raises FileNotFoundError naming it; an empty folder gives no files
    (an empty month is a valid, empty dataset).
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")))
        elif p.exists():
            out.append(p)
        elif "*" in p.name:  # an unexpanded shell glob over an empty folder
            continue
        else:
            raise FileNotFoundError(f"input file not found: {p}")
    return out


def read_soundings(paths, fmt: str, on_malformed: str = "error", stations: pd.DataFrame | None = None,
                   progress: bool = True, station: str | None = None, time=None) -> igra2.RawSoundings:
    """Read sounding files of one format into one :class:`igra2.RawSoundings`.

    ``station``/``time``: for Wyoming TEXT:LIST tables without a station/time header.
    """
    parts = []
    for i, p in enumerate(paths):
        if fmt == "igra2":
            parts.append(igra2.read_igra2(p, on_malformed))
        elif fmt == "wyoming":
            from pipeline.readers import wyoming  # MetPy units: imported only when needed

            parts.append(wyoming.read_wyoming(p, on_malformed, station=station, time=time, stations=stations))
        else:
            raise ValueError(f"unknown sounding format {fmt!r} (igra2 | wyoming)")
        if progress and (i + 1) % 20 == 0:
            log.info("read %d/%d files", i + 1, len(paths))
    return igra2.concat_raw(parts)


def soundings_to_dataset(raw: igra2.RawSoundings, levels_hpa, qc_config: dict | None = None,
                         month: str | None = None, stations: pd.DataFrame | None = None,
                         source_files=()) -> xr.Dataset:
    """Filter, QC, derive and interpolate soundings; the interim dataset (profile, level)."""
    from pipeline.soundings import qc  # only the soundings path needs it

    counts = dict(raw.counts)
    soundings, levels = raw.soundings, raw.levels
    # ---- month
    if month is not None:
        inside = in_month(soundings["time"], month)
        counts["qc_outside_month"] = int((~inside).sum())
        soundings, levels = qc.select_soundings(soundings, levels, inside)
    # ---- coordinates: the header's when possible, else the station list's
    bad_pos, counts["qc_position_out_of_range"] = qc.coordinate_range(soundings["lat"], soundings["lon"])
    if bad_pos.any():
        soundings = soundings.assign(lat=soundings["lat"].where(~bad_pos), lon=soundings["lon"].where(~bad_pos))
    elevation = np.full(len(soundings), np.nan)
    if stations is not None and len(soundings):
        lat = soundings["lat"].to_numpy(float).copy()
        lon = soundings["lon"].to_numpy(float).copy()
        for sid in pd.unique(soundings["station"]):
            row = igra2.lookup_station(stations, sid)
            if row is None:
                continue
            m = (soundings["station"] == sid).to_numpy()
            lat[m & np.isnan(lat)] = row["lat"]
            lon[m & np.isnan(lon)] = row["lon"]
            elevation[m] = row["elevation"]
        soundings = soundings.assign(lat=lat, lon=lon)
    no_coords = (soundings["lat"].isna() | soundings["lon"].isna()).to_numpy()
    counts["qc_no_coordinates"] = int(no_coords.sum())
    soundings, levels = qc.select_soundings(soundings, levels, ~no_coords)
    elevation = elevation[~no_coords]
    # ---- duplicates
    n_before = len(soundings)
    keep_elev = pd.Series(elevation, index=pd.MultiIndex.from_frame(soundings[["station", "time"]].astype(object)))
    soundings, levels, counts["qc_duplicate_soundings"] = qc.drop_duplicate_soundings(soundings, levels)
    if len(soundings) != n_before:
        elevation = keep_elev.groupby(level=[0, 1]).first().reindex(
            pd.MultiIndex.from_frame(soundings[["station", "time"]].astype(object))).to_numpy(float)
    # ---- derive, QC, heights
    levels = qc.derive_variables(levels)
    soundings, levels, c = qc.quality_control(soundings, levels, qc_config, surface_elevation=elevation)
    counts.update(c)
    # ---- vertical interpolation
    n = len(soundings)
    levels_hpa = [float(x) for x in levels_hpa]
    data_vars = {}
    prof = levels["profile"].to_numpy()
    p = levels["pressure"].to_numpy(float)
    for name in qc.VARIABLES:
        values = vertical.interpolate_to_levels(prof, p, levels[name].to_numpy(float), n, levels_hpa)
        data_vars[name] = (("profile", "level"), values.astype(np.float32), cf.VARIABLE_ATTRS[name])
    counts["qc_soundings_kept"] = n
    counts["qc_levels_kept"] = int(len(levels))
    times = soundings["time"].to_numpy(dtype="datetime64[ns]")
    station = soundings["station"].astype(str).to_numpy(dtype=object)
    ds = xr.Dataset(
        data_vars,
        coords={
            "profile_id": ("profile", profile_ids(station, times),
                           {"cf_role": "profile_id", "long_name": "station id and nominal launch time"}),
            "time": ("profile", times, {"standard_name": "time", "long_name": "nominal launch time (UTC)"}),
            "station": ("profile", station, {"long_name": "station id"}),
            "lat": ("profile", soundings["lat"].to_numpy(np.float64), cf.LAT_ATTRS),
            "lon": ("profile", soundings["lon"].to_numpy(np.float64), cf.LON_ATTRS),
            "level": ("level", np.asarray(levels_hpa, dtype=np.float64), cf.PRESSURE_ATTRS),
        },
        attrs={"Conventions": cf.CONVENTIONS, "featureType": "profile",
               "title": "QC'd radiosonde profiles on pressure levels",
               "interpolation": "linear in log-pressure, no extrapolation",
               "quality_control_policy": qc_settings(qc_config)["policy"],
               "source_files": " ".join(str(s) for s in source_files),
               **{k: int(v) for k, v in sorted(counts.items())}},
    )
    return ds


def profile_ids(station, times) -> np.ndarray:
    """CF ``profile_id`` of each sounding: ``<station>_<YYYYMMDDTHHMM>Z`` (unique after de-duplication)."""
    stamp = pd.DatetimeIndex(times).strftime("%Y%m%dT%H%MZ")
    return np.asarray([f"{s}_{t}" for s, t in zip(station, stamp)], dtype=object)


def write_dataset(ds: xr.Dataset, out: str | Path) -> None:
    """Write netCDF (or zarr for a ``.zarr`` path) atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        if out.suffix == ".zarr":
            ds.to_zarr(tmp, mode="w")
        else:
            dtypes = {v: ds.variables[v].dtype for v in ds.data_vars}  # no DataArray built per variable
            enc = {v: {**integrity.NETCDF_CHECKSUM, **({**cf.INTERMEDIATE_COMPRESSION, "_FillValue": np.float32(np.nan)}
                                                       if dt == np.float32 else {})}
                   for v, dt in dtypes.items() if dt.kind in "fiub"}
            enc.update(cf.coordinate_encoding(ds))
            ds.to_netcdf(tmp, engine="netcdf4", encoding=enc)


def write_qc_summary(ds: xr.Dataset, out: str | Path, extra: dict | None = None) -> Path:
    """``OUT.qc.json`` next to the output: the qc_* counts and what was read; also logged."""
    summary = {k: int(v) for k, v in ds.attrs.items() if k.startswith("qc_")}
    summary.update(extra or {})
    path = Path(out).with_suffix(".qc.json")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info("QC summary for %s: %s", out, json.dumps(summary, sort_keys=True))
    return path


# --------------------------------------------------------------------------- CLI

def _levels_arg(text: str) -> list[float]:
    """``--levels`` value (argparse type): strictly decreasing hPa values, comma-separated."""
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        vals = []
    if not vals or any(b >= a for a, b in zip(vals, vals[1:])):
        raise argparse.ArgumentTypeError(f"must be strictly decreasing hPa values, comma-separated, got {text!r}")
    return vals


def _config(args) -> dict:
    """The validated ``--config``, or the schema's documented defaults without one."""
    return load_config(args.config) if args.config else schema_defaults()


def _time_arg(text: str) -> pd.Timestamp:
    """``--time`` value (argparse type): an ISO 8601 UTC time such as 2002-11-11T00:00."""
    t = pd.to_datetime(text, errors="coerce")
    if pd.isna(t) or t.tzinfo is not None:
        raise argparse.ArgumentTypeError(f"must be a UTC time YYYY-MM-DDTHH:MM without a zone, got {text!r}")
    return t


def cmd_soundings(args) -> None:
    config = _config(args)
    qcfg = config["qc"]
    stations = igra2.read_station_list(args.station_list) if args.station_list else None
    t0 = _time.perf_counter()
    files = expand_inputs(args.files)
    raw = read_soundings(files, args.format, qcfg["on_malformed"], stations, progress=not args.no_progress,
                         station=args.station, time=args.time)
    levels = args.levels or [float(x) for x in config["levels_hpa"]]
    ds = soundings_to_dataset(raw, levels, qcfg, args.month, stations,
                              [f.name for f in files])
    write_dataset(ds, args.out)
    write_qc_summary(ds, args.out, {"files": len(files), "seconds": round(_time.perf_counter() - t0, 3)})
    log.info("wrote %s: %d soundings x %d levels", args.out, ds.sizes["profile"], ds.sizes["level"])


def cmd_gauges(args) -> None:
    from pipeline.readers import gauges

    config = _config(args)
    qcfg = config["qc"]
    if args.format == "ghcn-daily":
        frames, counts = [], {}
        for f in expand_inputs(args.files):
            df, c = gauges.read_ghcn_daily(f)
            frames.append(df)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
        st = gauges.read_stations(args.stations) if args.stations else None
        ds = gauges.daily_dataset(frames, counts, args.month, st)
    else:
        if not args.stations or not args.month:
            args.parser.error("--stations and --month are required for the hourly CSV format")
        if not 1 <= len(args.files) <= 2:
            args.parser.error("give MONTH.csv and optionally PREVIOUS_MONTH.csv")
        st = gauges.read_stations(args.stations)
        ds, _ = gauges.gauge_month(args.month, args.files[0], st, args.files[1] if len(args.files) > 1 else None, qcfg)
    write_dataset(ds, args.out)
    write_qc_summary(ds, args.out, {"files": len(args.files)})
    log.info("wrote %s: %s", args.out, dict(ds.sizes))


def _unit_arg(text: str) -> str:
    """``--unit`` value (argparse type): a length pint understands, e.g. mm, '0.1 mm', inch."""
    from pipeline.readers.gauge_formats import check_unit

    try:
        return check_unit(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_convert_gauges(args) -> None:
    from pipeline.readers import gauge_formats

    on_malformed = _config(args)["qc"]["on_malformed"]
    frames, counts = [], {}
    for f in expand_inputs(args.files):
        df, c = gauge_formats.read_gauge_file(f, args.format, on_malformed, args.unit)
        frames.append(df)
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + int(v)
    written = gauge_formats.to_monthly_csv(frames, args.out)
    log.info("converted %d files into %d monthly files under %s; QC: %s", len(args.files), len(written), args.out,
             json.dumps(counts, sort_keys=True))


def cmd_partition(args) -> None:
    written = igra2.partition_files(expand_inputs(args.files), args.out)
    log.info("partitioned %d files into %d station-months under %s", len(args.files), len(written), args.out)


def _subparser(sub, name: str, help: str, progress: bool = False) -> argparse.ArgumentParser:
    """A subcommand with the shared flags (``--log-level`` and, where it applies, ``--no-progress``)."""
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="logging level on stderr (default INFO)")
    if progress:
        p.add_argument("--no-progress", action="store_true",
                       help="no progress messages (the workflow's rules pass it)")
    p.set_defaults(parser=p)
    return p


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("python -m pipeline.ingest", __doc__)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = _subparser(sub, "soundings", "sounding files -> interim (profile, level) dataset", progress=True)
    cli.add_config(s, schema_defaults=True)
    s.add_argument("--format", choices=["igra2", "wyoming"], default="igra2", help="sounding file format (default igra2)")
    s.add_argument("--station", help="wyoming: station id of TEXT:LIST tables whose file names none")
    s.add_argument("--time", type=_time_arg, help="wyoming: launch time (UTC, YYYY-MM-DDTHH:MM) of tables whose file gives none")
    s.add_argument("--station-list", help="IGRA2 station list (coordinates where headers lack them)")
    s.add_argument("--month", help="YYYY-MM: keep soundings of this month only (others counted)")
    s.add_argument("--levels", type=_levels_arg, help="comma-separated hPa levels, decreasing (default: config levels_hpa)")
    s.add_argument("--out", required=True, help="interim netCDF to write (OUT.qc.json beside it)")
    s.add_argument("files", nargs="+", metavar="FILE", help="sounding files, or folders of them")
    s.set_defaults(func=cmd_soundings)
    g = _subparser(sub, "gauges", "hourly gauge CSV -> 12 h totals at frame times (or GHCN-Daily daily totals)")
    cli.add_config(g, schema_defaults=True)
    g.add_argument("--format", choices=["csv", "ghcn-daily"], default="csv", help="gauge file format (default csv)")
    g.add_argument("--stations", help="stations.csv (id,lat,lon,elevation_m); required for csv")
    g.add_argument("--month", help="YYYY-MM; required for csv")
    g.add_argument("--out", required=True, help="interim netCDF to write (OUT.qc.json beside it)")
    g.add_argument("files", nargs="+", metavar="FILE",
                   help="csv: MONTH.csv [PREVIOUS_MONTH.csv]; ghcn-daily: .dly files")
    g.set_defaults(func=cmd_gauges)
    c = _subparser(sub, "convert-gauges", "hourly gauge records (KNMI uurgeg, CSV in any length unit) -> "
                   "DIR/YYYY-MM.csv in the project's layout (station,time,rain_mm)")
    cli.add_config(c, schema_defaults=True)
    c.add_argument("--format", choices=["knmi-hourly", "iem-asos", "ghcnh", "csv"], required=True,
                   help="knmi-hourly: KNMI uurgeg files (RH in 0.1 mm, -1 = under 0.05 mm); "
                        "iem-asos: IEM ASOS/AWOS CSV (p01i in inches, T trace, M missing); "
                        "ghcnh: NOAA GHCNh hourly PSV (precipitation in mm, quality codes); "
                        "csv: station,time,rain (with --unit) or station,time,rain_mm")
    c.add_argument("--unit", type=_unit_arg, help="csv: unit of the 'rain' column (mm, '0.1 mm', cm, m, inch, '0.01 inch')")
    c.add_argument("--out", required=True, help="output folder DIR (the workflow's raw/gauges)")
    c.add_argument("files", nargs="+", metavar="FILE", help="hourly gauge files, or folders of them")
    c.set_defaults(func=cmd_convert_gauges)
    p = _subparser(sub, "partition", "split full-period IGRA2 files into DIR/YYYY-MM/<ID>-data.txt")
    p.add_argument("--format", choices=["igra2"], default="igra2", help="input format (igra2 only)")
    p.add_argument("--out", required=True, help="output folder DIR")
    p.add_argument("files", nargs="+", metavar="FILE", help="IGRA2 station files (.txt, .gz, .zip)")
    p.set_defaults(func=cmd_partition)
    return ap


def main(argv=None) -> int:
    return cli.run(build_parser(), lambda args: args.func(args), argv)


if __name__ == "__main__":
    sys.exit(main())
