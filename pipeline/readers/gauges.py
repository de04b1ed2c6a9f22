"""Rain gauges: the project's hourly CSV layout -> 12 h totals at frame times; GHCN-Daily PRCP.

Hourly CSV (``raw/gauges/YYYY-MM.csv``): columns ``station,time,rain_mm``; ``time`` is the
END of the hour (UTC, ISO 8601), ``rain_mm`` the rain of that hour in millimetres (the
column name carries the unit: any other rain column name is rejected). A month's file
holds the hours ending in ``[YYYY-MM-01T00:00, next month 01T00:00)``. Stations file:
``id,lat,lon,elevation_m``.

The rain of frame ``t`` is the total of the 12 hours ending at ``t`` (hour-end times
``t-11h .. t``). A window counts only when at least ``qc.min_hours_present`` of its
hours have a valid value; the total is then the sum of the valid hours (not rescaled)
and otherwise NaN, never zero. Hourly values below zero or above
``qc.max_hourly_rain_mm`` are removed and counted.

Stuck gauges: a run of more than ``qc.max_stuck_hours`` consecutive hours in which one
gauge reports the same non-zero value is removed (its windows then lack those hours) and
counted (``qc_stuck_hours``, ``qc_stuck_runs``; each run is logged with the gauge, the
value and its first hour). A frame at which no gauge has a valid total (the network
silent, or the first frame of a month read without the previous month's file) is counted
(``qc_frames_without_gauges``) and logged as a warning; it stays NaN, never zero.
"""
from __future__ import annotations

import codecs
import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common import cf
from pipeline.common.config import describe_times, in_month, month_frame_times, qc_settings
from pipeline.common.errors import InvalidGaugeError

WINDOW_HOURS = cf.RAIN_WINDOW_HOURS  # 12: the rain of frame t is the total of the hours t-11h .. t

log = logging.getLogger("pipeline.readers.gauges")


def _first_bad(mask, path, what, frame: pd.DataFrame, column: str) -> InvalidGaugeError:
    i = int(np.flatnonzero(np.asarray(mask))[0])
    return InvalidGaugeError(f"{path}:{i + 2}: {what}: {frame[column].iloc[i]!r}")


def read_stations(path: str | Path) -> pd.DataFrame:
    """Gauge stations (``id,lat,lon,elevation_m``) indexed by id (str)."""
    df = pd.read_csv(path, dtype={"id": str})
    need = {"id", "lat", "lon", "elevation_m"}
    if not need <= set(df.columns):
        raise InvalidGaugeError(f"{path}:1: stations file needs columns {sorted(need)}, has {list(df.columns)}")
    for c in ("lat", "lon", "elevation_m"):
        num = pd.to_numeric(df[c], errors="coerce")
        if num.isna().any():
            raise _first_bad(num.isna(), path, f"column {c} is not a number", df, c)
        df[c] = num
    bad = (df["lat"].abs() > 90) | (df["lon"] < -180) | (df["lon"] >= 360)
    if bad.any():
        raise _first_bad(bad, path, "latitude/longitude out of range", df, "id")
    if df["id"].duplicated().any():
        raise _first_bad(df["id"].duplicated(), path, "duplicate station id", df, "id")
    return df.set_index("id")


def decode_text(path: str | Path, data: bytes | None = None) -> str:
    """The file's text (UTF-8, a BOM allowed); bytes that are not UTF-8 raise naming the line.
    ``data``: the file's bytes when already read."""
    data = Path(path).read_bytes() if data is None else data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise InvalidGaugeError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x})") from None


def read_hourly(path: str | Path, on_malformed: str = "error", unit: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Read an hourly gauge CSV; returns (frame with station, time, rain_mm; counts).

    Unparseable times or rain values raise :class:`InvalidGaugeError` naming
    ``path:line`` and the value, or are dropped and counted under ``'skip'``. With a
    ``unit`` (a pint length such as ``'inch'``) the rain column is ``rain`` in that unit,
    converted to mm (:func:`pipeline.readers.gauge_formats.to_mm`).
    """
    counts = {"qc_malformed_records": 0}
    skipped = []

    def bad_line(fields):
        skipped.append(fields)
        return None

    data = Path(path).read_bytes()
    decode_text(path, data)  # raises naming the line of a byte that is not UTF-8
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        # the checked bytes, not the decoded text: the C parser reads bytes twice as fast
        df = pd.read_csv(io.BytesIO(data), encoding="utf-8", dtype={"station": str, "time": str}, skipinitialspace=True,
                         na_values=["", "NA", "NaN", "nan"], keep_default_na=False,
                         on_bad_lines="error" if on_malformed == "error" else bad_line,
                         engine="c" if on_malformed == "error" else "python")
    except pd.errors.ParserError as err:
        m = re.search(r"line (\d+)", str(err)) or re.search(r"row (\d+)", str(err))
        line = int(m.group(1)) + (0 if m.group(0).startswith("line") else 1) if m else 1  # "row" counts from 0
        raise InvalidGaugeError(f"{path}:{line}: wrong number of fields or quoting ({' '.join(str(err).split())})") from None
    except pd.errors.EmptyDataError:
        raise InvalidGaugeError(f"{path}:1: empty file (expected the header station,time,rain_mm)") from None
    cols = [str(c).strip() for c in df.columns]
    if unit is not None:  # a plain CSV with a declared unit: 'rain' in that unit
        cols = ["rain_mm" if c == "rain" else ("rain_in_file" if c == "rain_mm" else c) for c in cols]
    df.columns = cols
    if "station" not in cols or "time" not in cols:
        raise InvalidGaugeError(f"{path}:1: gauge file needs columns station,time,rain_mm; header is {cols}")
    if "rain_mm" not in cols:
        rain_like = [c for c in cols if c.lower().startswith(("rain", "prcp", "precip"))]
        raise InvalidGaugeError(f"{path}:1: rain column must be 'rain_mm' (millimetres); found {rain_like or cols}: "
                                "convert the unit and rename the column")
    time = pd.to_datetime(df["time"], format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None)
    if pd.api.types.is_numeric_dtype(df["rain_mm"]):
        rain = df["rain_mm"].astype(float)
        bad_rain = np.zeros(len(df), bool)
    else:  # some field is not a number: find which
        rain = pd.to_numeric(df["rain_mm"], errors="coerce")
        bad_rain = (rain.isna() & df["rain_mm"].notna()).to_numpy()
    bad_time = time.isna().to_numpy()
    off_hour = ~bad_time & ((time.dt.minute != 0) | (time.dt.second != 0)).to_numpy()
    bad = bad_time | bad_rain | off_hour
    if bad.any():
        if on_malformed == "error":
            if bad_time.any():
                raise _first_bad(bad_time, path, "time is not ISO 8601", df, "time")
            if off_hour.any():
                raise _first_bad(off_hour, path, "time is not on the hour", df, "time")
            raise _first_bad(bad_rain, path, "rain_mm is not a number", df, "rain_mm")
        counts["qc_malformed_records"] = int(bad.sum())
    counts["qc_malformed_records"] += len(skipped)
    if unit is not None:
        from pipeline.readers.gauge_formats import to_mm

        rain = pd.Series(to_mm(rain, unit), index=rain.index)
    out = pd.DataFrame({"station": df["station"], "time": time, "rain_mm": rain.astype(float)})[~bad]
    return out.reset_index(drop=True), counts


def stuck_values(grid: np.ndarray, max_hours: int) -> tuple[np.ndarray, np.ndarray]:
    """Hours of ``grid`` (hour, station) in a run of more than ``max_hours`` consecutive hours
    with one and the same non-zero value at a gauge (a stuck gauge; NaN ends a run).

    Returns (mask (hour, station), runs (R, 3): station index, first hour index, length).
    """
    g = np.asarray(grid, float).T  # (station, hour): runs along the rows
    wet = np.isfinite(g) & (g > 0)
    same = np.zeros_like(wet)
    same[:, 1:] = wet[:, 1:] & (g[:, 1:] == g[:, :-1])
    start = (wet & ~same).ravel()  # a run starts at a station's first hour at the latest
    run_id = np.where(wet.ravel(), np.cumsum(start) - 1, -1)
    length = np.bincount(run_id[run_id >= 0], minlength=int(start.sum()) + 1)  # one spare: no run at all
    stuck = (run_id >= 0) & (length[np.maximum(run_id, 0)] > max_hours)
    first = np.flatnonzero(start & stuck)
    runs = np.column_stack([first // g.shape[1], first % g.shape[1], length[run_id[first]]]).astype(np.int64)
    return stuck.reshape(g.shape).T, runs


def twelve_hour_totals(hourly: pd.DataFrame, stations: pd.Index, frame_times: pd.DatetimeIndex,
                       min_hours_present: int = 12, max_hourly_rain_mm: float = 150.0,
                       max_stuck_hours: int | None = None) -> tuple[np.ndarray, dict]:
    """Rain (mm) in the 12 h ending at each frame time, array (time, station).

    ``hourly`` has columns station, time (end of hour), rain_mm (NaN = missing).
    Returns (totals, counts); a window with fewer than ``min_hours_present`` valid hours
    is NaN. Stuck runs (:func:`stuck_values`, ``max_stuck_hours``: default
    ``qc.max_stuck_hours`` of the schema) are removed before the sums.
    """
    if max_stuck_hours is None:
        max_stuck_hours = int(qc_settings()["max_stuck_hours"])
    counts = {}
    h = hourly
    unknown = ~h["station"].isin(stations)
    counts["qc_unknown_station_records"] = int(unknown.sum())
    h = h[~unknown]
    # duplicates on (station index, time as integers): the same rows as on the strings
    # (station ids are unique), without hashing the id strings
    hour_ns = 3_600_000_000_000
    t_ns = h["time"].to_numpy().view(np.int64) if h["time"].dtype == "datetime64[ns]" else None
    if stations.is_unique and t_ns is not None and len(t_ns) and not (t_ns % hour_ns).any() \
            and not h["time"].isna().any():
        # one integer key per record: station index and hour (times are whole hours)
        hour = t_ns // hour_ns
        key = stations.get_indexer(h["station"]).astype(np.int64) * (int(hour.max() - hour.min()) + 1) \
            + (hour - hour.min())
        dup = pd.Series(key, index=h.index).duplicated(keep="first")
    elif stations.is_unique and t_ns is not None:
        codes = pd.DataFrame({"station": stations.get_indexer(h["station"]), "time": t_ns}, index=h.index)
        dup = codes.duplicated(keep="first")
    else:
        dup = h.duplicated(["station", "time"], keep="first")
    counts["qc_duplicate_hours"] = int(dup.sum())
    h = h[~dup]
    rain = h["rain_mm"].to_numpy(float)
    neg = rain < 0
    absurd = rain > max_hourly_rain_mm
    counts["qc_negative_rain"] = int(neg.sum())
    counts["qc_absurd_rain"] = int(absurd.sum())
    counts["qc_missing_hours"] = int(np.isnan(rain).sum())
    rain = np.where(neg | absurd, np.nan, rain)
    if len(frame_times) == 0:
        return np.zeros((0, len(stations))), counts
    first_hour = frame_times[0] - pd.Timedelta(hours=WINDOW_HOURS - 1)
    hours = pd.date_range(first_hour, frame_times[-1], freq="1h")
    ti = ((h["time"] - first_hour) // pd.Timedelta(hours=1)).to_numpy()
    inside = (h["time"] >= first_hour).to_numpy() & (h["time"] <= frame_times[-1]).to_numpy()
    si = stations.get_indexer(h["station"])
    grid = np.full((len(hours), len(stations)), np.nan)
    grid[ti[inside].astype(np.int64), si[inside]] = rain[inside]
    stuck, runs = stuck_values(grid, max_stuck_hours)
    for s_i, h_i, n in runs:
        log.warning("gauge %s: %.6g mm repeated for %d hours from the hour ending %s (more than "
                    "qc.max_stuck_hours=%d): stuck, removed", stations[s_i], grid[h_i, s_i], n,
                    hours[h_i].isoformat(), max_stuck_hours)
    counts["qc_stuck_hours"], counts["qc_stuck_runs"] = int(stuck.sum()), len(runs)
    grid[stuck] = np.nan
    valid = np.isfinite(grid)
    csum = np.concatenate((np.zeros((1, len(stations))), np.cumsum(np.where(valid, grid, 0.0), axis=0)))
    cnum = np.concatenate((np.zeros((1, len(stations)), np.int64), np.cumsum(valid, axis=0)))
    end = ((frame_times - first_hour) // pd.Timedelta(hours=1)).to_numpy().astype(np.int64) + 1
    start = end - WINDOW_HOURS
    total = csum[end] - csum[start]
    n = cnum[end] - cnum[start]
    totals = np.where(n >= min_hours_present, total, np.nan)
    counts["qc_windows_incomplete"] = int((n < min_hours_present).sum())
    return totals, counts


def gauge_month(month: str, month_csv: str | Path, stations: pd.DataFrame, previous_csv: str | Path | None = None,
                qc: dict | None = None):
    """The interim gauge dataset of ``month`` (xarray.Dataset, dims time, station)."""
    import xarray as xr

    qc = qc_settings(qc)
    on_malformed = qc["on_malformed"]
    per = pd.Period(month, "M")
    counts: dict[str, int] = {}
    parts = []
    for path, period in ((month_csv, per), (previous_csv, per - 1)):
        if path is None:
            continue
        df, c = read_hourly(path, on_malformed)
        # a month's file holds the hours ending in [month start, next month start)
        outside = ~in_month(df["time"], period)
        counts["qc_outside_file_month"] = counts.get("qc_outside_file_month", 0) + int(outside.sum())
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        counts["qc_records_read"] = counts.get("qc_records_read", 0) + len(df)
        parts.append(df[~outside])
    hourly = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["station", "time", "rain_mm"])
    times = month_frame_times(month)
    totals, c = twelve_hour_totals(hourly, stations.index, times, int(qc["min_hours_present"]),
                                   float(qc["max_hourly_rain_mm"]), int(qc["max_stuck_hours"]))
    counts.update(c)
    silent = ~np.isfinite(totals).any(axis=1) if totals.size else np.ones(len(times), bool)
    counts["qc_frames_without_gauges"] = int(silent.sum())
    if silent.any():
        log.warning("%s: %d of %d frames of %s have no valid 12 h total at any gauge (rain missing there, "
                    "not zero): %s", month_csv, int(silent.sum()), len(times), month,
                    describe_times(times[silent]))
    ds = xr.Dataset(
        {"rain_mm": (("time", "station"), totals.astype(np.float32),
                     {**cf.RAIN_ATTRS, "long_name": "rain in the 12 h ending at time"})},
        coords={"time": ("time", times.values, {"standard_name": "time"}),
                "station": ("station", stations.index.astype(str).to_numpy(dtype=object),
                            {"cf_role": "timeseries_id", "long_name": "gauge id"}),
                "lat": ("station", stations["lat"].to_numpy(float), cf.LAT_ATTRS),
                "lon": ("station", stations["lon"].to_numpy(float), cf.LON_ATTRS),
                "elevation": ("station", stations["elevation_m"].to_numpy(float), {"units": "m", "standard_name": "height_above_mean_sea_level"})},
        attrs={"Conventions": cf.CONVENTIONS, "featureType": "timeSeries", "title": f"rain-gauge 12 h totals {month}",
               "min_hours_present": int(qc["min_hours_present"]),
               "source_files": " ".join(str(p) for p in (month_csv, previous_csv) if p is not None),
               **{k: int(v) for k, v in counts.items()}})
    ds = cf.add_time_bounds(ds, WINDOW_HOURS)
    return ds, counts


# --------------------------------------------------------------------------- GHCN-Daily

def read_ghcn_daily(path: str | Path, element: str = "PRCP") -> tuple[pd.DataFrame, dict]:
    """Daily PRCP (mm) from a GHCN-Daily ``.dly`` file (plain or .gz).

    Layout: ID 1-11, YEAR 12-15, MONTH 16-17, ELEMENT 18-21, then 31 x (VALUE 5 chars,
    MFLAG, QFLAG, SFLAG). PRCP is in tenths of mm; -9999 is missing (also non-existent
    days such as Feb 30, which are dropped). Flags: a non-blank QFLAG (failed NCEI
    quality check) -> NaN, counted; MFLAG 'T' (trace) keeps the value 0; MFLAG 'P'
    ("missing, presumed zero") -> NaN, counted, since presumed zeros are not
    observations. Returns (frame with station, time, prcp_mm, mflag, qflag, sflag; counts).
    """
    from pipeline.readers.fixed_width import gather, parse_fields, split_lines
    from pipeline.readers.igra2 import read_bytes

    data = read_bytes(path)
    width = 269
    buffer, starts, lengths = split_lines(data, width + 8)  # blank padding for the last record
    rows = gather(buffer, starts, np.minimum(lengths, width), width)
    elem = rows[:, 17:21].copy().view("S4").ravel()
    sel = np.flatnonzero(elem == element.encode())
    rows = rows[sel]
    short = lengths[sel] < width - 3  # the last day's flags may be absent
    if short.any():
        i = int(sel[np.flatnonzero(short)[0]])
        raise InvalidGaugeError(f"{path}:{i + 1}: GHCN-Daily record shorter than {width} characters")
    fields = {"year": (12, 15), "month": (16, 17)}
    for d in range(31):
        a = 22 + 8 * d
        fields[f"v{d}"] = (a, a + 4)
    vals, bad = parse_fields(rows, fields)
    for name, b in bad.items():
        if b.any():
            i = int(sel[np.flatnonzero(b)[0]])
            raise InvalidGaugeError(f"{path}:{i + 1}: GHCN-Daily field {name} is not an integer: "
                                    f"{bytes(rows[np.flatnonzero(b)[0]]).decode('ascii', 'replace')!r}")
    station = np.char.decode(rows[:, :11].copy().view("S11").ravel(), "latin-1")
    n = rows.shape[0]
    value = np.stack([vals[f"v{d}"] for d in range(31)], axis=1)  # (n, 31)
    flag = lambda off: np.stack([rows[:, 21 + 8 * d + off] for d in range(31)], axis=1)  # noqa: E731
    mflag, qflag, sflag = flag(5), flag(6), flag(7)
    day = np.broadcast_to(np.arange(1, 32), (n, 31))
    dates = pd.to_datetime(pd.DataFrame({"year": np.repeat(vals["year"], 31), "month": np.repeat(vals["month"], 31),
                                         "day": day.ravel()}), errors="coerce")
    exists = ~dates.isna().to_numpy()
    v = value.ravel()
    m, q, s = mflag.ravel(), qflag.ravel(), sflag.ravel()
    missing = v == -9999
    counts = {"qc_days_read": int((exists & ~missing).sum()), "qc_missing_days": int((exists & missing).sum())}
    prcp = np.where(missing, np.nan, v / 10.0)
    failed_q = exists & ~missing & (q != ord(" "))
    presumed = exists & ~missing & (m == ord("P"))
    counts["qc_failed_quality_flag"] = int(failed_q.sum())
    counts["qc_presumed_zero"] = int(presumed.sum())
    counts["qc_trace"] = int((exists & ~missing & (m == ord("T"))).sum())
    prcp[failed_q | presumed] = np.nan
    out = pd.DataFrame({"station": np.repeat(station, 31), "time": dates.to_numpy(), "prcp_mm": prcp,
                        "mflag": np.char.decode(m.view("S1"), "latin-1"), "qflag": np.char.decode(q.view("S1"), "latin-1"),
                        "sflag": np.char.decode(s.view("S1"), "latin-1")})[exists]
    return out.reset_index(drop=True), counts


def daily_dataset(frames: list[pd.DataFrame], counts: dict, month: str | None = None, stations: pd.DataFrame | None = None):
    """(time, station) daily totals of GHCN-Daily frames (optionally one month)."""
    import xarray as xr

    df = pd.concat(frames, ignore_index=True)
    if month is not None:
        df = df[in_month(df["time"], month)]
    table = df.pivot_table(index="time", columns="station", values="prcp_mm", aggfunc="first", dropna=False)
    if month is not None:
        table = table.reindex(pd.date_range(pd.Period(month, "M").start_time, (pd.Period(month, "M") + 1).start_time,
                                            freq="D", inclusive="left"))
    ds = xr.Dataset({"prcp_mm": (("time", "station"), table.to_numpy(np.float32),
                                 {**cf.RAIN_ATTRS, "long_name": "daily precipitation (GHCN-Daily day)"})},
                    coords={"time": table.index.values,
                            "station": ("station", table.columns.astype(str).to_numpy(dtype=object),
                                        {"cf_role": "timeseries_id"})},
                    attrs={"Conventions": cf.CONVENTIONS, "featureType": "timeSeries",
                           **{k: int(v) for k, v in counts.items()}})
    if stations is not None:
        st = stations.reindex(ds["station"].values)
        ds = ds.assign_coords(lat=("station", st["lat"].to_numpy(float), cf.LAT_ATTRS),
                              lon=("station", st["lon"].to_numpy(float), cf.LON_ATTRS))
    return ds
