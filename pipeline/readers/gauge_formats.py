"""Real hourly rain-gauge formats with explicit units, and the checks every record passes.

Each format declares the unit of its rain values; values are converted to millimetres
with pint (MetPy's registry), never by a bare factor:

============  =========================================================================
format        layout, unit and sentinels
============  =========================================================================
knmi-hourly   KNMI ``uurgeg_<STN>_*.txt`` (hourly station data): a legend, then a
              header ``# STN,YYYYMMDD,   HH, ...,   RH, ...`` and comma-separated rows.
              HH is 1..24, the hour *ending* at HH UT on YYYYMMDD (HH 24 ends at 00 UT
              of the next day). RH is the hourly precipitation in **0.1 mm**; ``-1``
              means under 0.05 mm (kept as 0 mm, counted as ``qc_trace``); a blank is
              missing (NaN).
iem-asos      Iowa Environmental Mesonet ASOS/AWOS download CSV (``asos.py``):
              ``station,valid,lon,lat,...,p01i`` (``#`` comment lines allowed), ``valid``
              in UTC ``YYYY-MM-DD HH:MM``. ``p01i`` is the METAR one-hour precipitation in
              **inches**, accumulated since the last routine (about :53) report; ``T`` is
              a trace (0 mm, counted ``qc_trace``), ``M`` missing (NaN).
ghcnh         NOAA GHCNh hourly PSV (pipe-separated, one station-year):
              ``Station_ID|...|Year|Month|Day|Hour|Minute|...|precipitation|
              precipitation_Measurement_Code|precipitation_Quality_Code|...``;
              ``precipitation`` is the past hour's liquid total in **mm**; a blank is
              missing; a measurement code starting ``T`` is a trace (0 mm, ``qc_trace``);
              a quality code other than blank or the passed ISD codes 0, 1, 4, 5, 9 is a
              failed check (NaN, counted ``qc_flagged``).
csv           the project's layout ``station,time,rain_mm`` in mm, or, with a unit
              argument (``mm``, ``0.1 mm``, ``cm``, ``m``, ``inch``, ``0.01 inch``),
              ``station,time,rain`` in that unit (:func:`pipeline.readers.gauges.read_hourly`).
============  =========================================================================

Several reports in one hour (IEM ASOS specials, GHCNh sub-hourly rows): each report is
put in the hour ending at its time rounded up to the hour (12:53 -> 13:00), and the hour's
value is the **largest** valid value among its reports: METAR p01i grows from one routine
report to the next, so the routine report near :53 (the largest) is the hour's total. The
hour is therefore really the hour ending at that routine report (about 7 minutes before
the hour); a missing hour is NaN, never 0. The 12 h windows ending 00/12 UTC are then
summed from these hours by :func:`pipeline.readers.gauges.gauge_month` as for every
hourly file.

Daily-only records are refused (:class:`InvalidGaugeError` with the reason): a daily
total cannot be split into the 12 h windows ending at 00 and 12 UTC that frames need
(KNMI daily totals end at 08 UTC; GHCN-Daily days end at the observer's time).

:func:`check_plausible` refuses a file whose values look like another unit: hourly
maxima far below any real shower (the values were metres or centimetres) or typical
wet hours far above any real rain rate (the values were 0.1 mm or hundredths of an inch).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common.errors import InvalidGaugeError

#: The unit each format declares for its rain values (pint expressions).
FORMAT_UNITS = {"knmi-hourly": "0.1 mm", "iem-asos": "inch", "ghcnh": "mm", "csv": "mm"}

#: Below this many valid hours (a month) a file says too little about its unit to be judged.
PLAUSIBLE_MIN_HOURS = 720
#: A month or more of hours with rain whose wettest hour is below this (mm, under any
#: gauge's resolution) is not rain in mm: metres, most likely.
PLAUSIBLE_MAX_BELOW_MM = 0.1
#: Wet hours whose median exceeds this (mm) are not hourly rain in mm.
PLAUSIBLE_WET_MEDIAN_ABOVE_MM = 25.0

DAILY_REASON = ("daily totals cannot make the 12 h windows ending at 00 and 12 UTC that frames need "
                "(give hourly records)")


def to_mm(values, unit: str) -> np.ndarray:
    """``values`` in ``unit`` (a pint expression such as ``'0.1 mm'`` or ``'inch'``) as mm."""
    from metpy.units import units

    return np.asarray((np.asarray(values, dtype=float) * units.Quantity(unit)).to("mm").magnitude, dtype=float)


def check_unit(unit: str) -> str:
    """``unit`` if it is a length pint understands; ValueError naming it otherwise."""
    from metpy.units import units

    try:
        units.Quantity(unit).to("mm")
    except Exception as err:  # pint raises several types (undefined unit, dimensionality, syntax)
        raise ValueError(f"rain unit {unit!r} is not a length pint understands ({type(err).__name__})") from None
    return unit


def check_plausible(rain_mm: np.ndarray, path, unit: str) -> None:
    """Refuse hourly values (already in mm) that look like another unit than ``unit``."""
    v = np.asarray(rain_mm, float)
    v = v[np.isfinite(v) & (v >= 0)]
    if v.size < PLAUSIBLE_MIN_HOURS:
        return
    wet = v[v > 0]
    top = float(v.max())
    if 0 < top < PLAUSIBLE_MAX_BELOW_MM:
        raise InvalidGaugeError(
            f"{path}:1: values read as {unit!r} look like another unit: the wettest of {v.size} hours is "
            f"{top:.4g} mm, far below any real shower (were they metres or centimetres?)")
    if wet.size >= 10 and float(np.median(wet)) > PLAUSIBLE_WET_MEDIAN_ABOVE_MM:
        raise InvalidGaugeError(
            f"{path}:1: values read as {unit!r} look like another unit: the median wet hour is "
            f"{float(np.median(wet)):.4g} mm, far above real hourly rain (were they 0.1 mm or 0.01 inch?)")


# --------------------------------------------------------------------------- KNMI

KNMI_HEADER = re.compile(r"^\s*#?\s*STN\s*,\s*YYYYMMDD\s*,")


def read_knmi_hourly(path: str | Path, on_malformed: str = "error") -> tuple[pd.DataFrame, dict]:
    """KNMI hourly station data: (frame with station, time (hour end), rain_mm; counts).

    Malformed rows (wrong number of fields, a field that is not an integer, an impossible
    date or hour) raise :class:`InvalidGaugeError` naming ``path:line`` and the text, or
    are dropped and counted (``qc_malformed_records``) under ``on_malformed='skip'``.
    A KNMI daily file (no ``HH`` column) is refused: :data:`DAILY_REASON`.
    """
    from pipeline.readers.gauges import decode_text

    text = decode_text(path) if not str(path).endswith(".gz") else _gunzip_text(path)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = next((i for i, ln in enumerate(lines) if KNMI_HEADER.match(ln)), None)
    if head is None:
        raise InvalidGaugeError(f"{path}:1: not a KNMI station file (no 'STN,YYYYMMDD,' header line)")
    cols = [c.strip().lstrip("#").strip() for c in lines[head].split(",")]
    if "HH" not in cols:
        kind = "24 h totals ending 08 UTC" if "RD" in cols else "daily values"
        raise InvalidGaugeError(f"{path}:{head + 1}: a KNMI daily file ({kind}): {DAILY_REASON}")
    if "RH" not in cols:
        raise InvalidGaugeError(f"{path}:{head + 1}: KNMI header has no RH (hourly precipitation) column: {cols}")
    i_stn, i_date, i_hh, i_rh = (cols.index(c) for c in ("STN", "YYYYMMDD", "HH", "RH"))
    counts = {"qc_malformed_records": 0, "qc_trace": 0}
    stn, day, hh, rh, row_lines = [], [], [], [], []

    malformed = _malformed_policy(path, lines, counts, on_malformed)

    width = len(cols) - (1 if cols[-1] == "" else 0)
    for i in range(head + 1, len(lines)):
        ln = lines[i]
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        fields = ln.split(",")
        if len(fields) not in (width, len(cols)):
            malformed(i, f"{len(fields)} fields, the header has {len(cols)}")
            continue
        try:
            s, d, h = int(fields[i_stn]), int(fields[i_date]), int(fields[i_hh])
            r = fields[i_rh].strip()
            r = int(r) if r else None
        except ValueError:
            malformed(i, "STN, YYYYMMDD, HH and RH must be integers (RH may be blank)")
            continue
        if not 1 <= h <= 24 or not 19000101 <= d <= 21991231:
            malformed(i, "HH must be 1-24 and YYYYMMDD a date")
            continue
        if r is not None and r < -1:
            malformed(i, "RH must be -1 (under 0.05 mm), 0 or more")
            continue
        stn.append(s)
        day.append(d)
        hh.append(h)
        rh.append(np.nan if r is None else r)
        row_lines.append(i)
    dates = pd.to_datetime(pd.Series(day, dtype="int64").astype(str), format="%Y%m%d", errors="coerce")
    bad_date = dates.isna().to_numpy()
    if bad_date.any():
        if on_malformed == "error":
            i = row_lines[int(np.flatnonzero(bad_date)[0])]
            raise InvalidGaugeError(f"{path}:{i + 1}: YYYYMMDD is not a date: {lines[i][:100]!r}")
        counts["qc_malformed_records"] += int(bad_date.sum())
    raw = np.asarray(rh, dtype=float)
    trace = raw == -1
    counts["qc_trace"] = int((trace & ~bad_date).sum())
    rain = to_mm(np.where(trace, 0.0, raw), FORMAT_UNITS["knmi-hourly"])
    time = dates + pd.to_timedelta(np.asarray(hh, dtype=np.int64), unit="h")
    out = pd.DataFrame({"station": pd.Series(stn, dtype="int64").astype(str), "time": time, "rain_mm": rain})
    out = out[~bad_date].reset_index(drop=True)
    check_plausible(out["rain_mm"].to_numpy(), path, FORMAT_UNITS["knmi-hourly"])
    return out, counts


def _hourly_max(station, time, rain, path) -> pd.DataFrame:
    """Reports -> hourly values: each report in the hour ending at its time rounded up to
    the hour; the hour's value the largest valid value (NaN when none is valid)."""
    df = pd.DataFrame({"station": station, "time": pd.DatetimeIndex(time).ceil("h"), "rain_mm": rain})
    out = df.groupby(["station", "time"], sort=True)["rain_mm"].max().reset_index()  # max skips NaN
    return out


def _malformed_policy(path, lines: list[str], counts: dict, on_malformed: str):
    """``malformed(i, what)``: line i is malformed. With ``on_malformed='error'`` an
    :class:`InvalidGaugeError` naming ``path:line``, what and the line; else it is counted
    (``qc_malformed_records``) and skipped by the caller."""
    def malformed(i: int, what: str) -> None:
        if on_malformed == "error":
            raise InvalidGaugeError(f"{path}:{i + 1}: {what}: {lines[i][:100]!r}")
        counts["qc_malformed_records"] += 1

    return malformed


def _amount(text: str, i: int, malformed, not_a_number: str, name: str) -> float | None:
    """A precipitation amount field: a finite number >= 0, or None after reporting line i
    as malformed."""
    try:
        v = float(text)
    except ValueError:
        malformed(i, not_a_number)
        return None
    if not np.isfinite(v) or v < 0:
        malformed(i, f"{name} must be 0 or more")
        return None
    return v


def read_iem_asos(path: str | Path, on_malformed: str = "error") -> tuple[pd.DataFrame, dict]:
    """IEM ASOS/AWOS CSV: (station, time (hour end, UTC), rain_mm; counts). See the module
    docstring for the units, sentinels and the hourly aggregation."""
    from pipeline.readers.gauges import decode_text

    lines = decode_text(path).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")), None)
    cols = [c.strip() for c in lines[head].split(",")] if head is not None else []
    if head is None or not {"station", "valid", "p01i"} <= set(cols):
        raise InvalidGaugeError(f"{path}:{(head or 0) + 1}: not an IEM ASOS CSV (header needs station, valid, p01i)")
    i_st, i_t, i_p = cols.index("station"), cols.index("valid"), cols.index("p01i")
    counts = {"qc_malformed_records": 0, "qc_trace": 0, "qc_missing": 0}
    st, tt, vals = [], [], []

    malformed = _malformed_policy(path, lines, counts, on_malformed)

    for i in range(head + 1, len(lines)):
        ln = lines[i]
        if not ln.strip() or ln.startswith("#"):
            continue
        f = ln.split(",")
        if len(f) != len(cols):
            malformed(i, f"{len(f)} fields, the header has {len(cols)}")
            continue
        t = pd.to_datetime(f[i_t].strip(), format="%Y-%m-%d %H:%M", errors="coerce")
        if pd.isna(t):
            malformed(i, "valid must be 'YYYY-MM-DD HH:MM' (UTC)")
            continue
        p = f[i_p].strip()
        if p == "M" or p == "":
            v = np.nan
            counts["qc_missing"] += 1
        elif p == "T":
            v = 0.0
            counts["qc_trace"] += 1
        else:
            v = _amount(p, i, malformed, "p01i must be a number of inches, T (trace) or M (missing)", "p01i")
            if v is None:
                continue
        st.append(f[i_st].strip())
        tt.append(t)
        vals.append(v)
    out = _hourly_max(st, tt, to_mm(vals, FORMAT_UNITS["iem-asos"]), path)
    check_plausible(out["rain_mm"].to_numpy(), path, FORMAT_UNITS["iem-asos"])
    return out, counts


GHCNH_PASSED_QC = {"", "0", "1", "4", "5", "9"}


def read_ghcnh(path: str | Path, on_malformed: str = "error") -> tuple[pd.DataFrame, dict]:
    """NOAA GHCNh hourly PSV: (station, time (hour end, UTC), rain_mm; counts). See the
    module docstring for units, codes and the hourly aggregation."""
    from pipeline.readers.gauges import decode_text

    lines = decode_text(path).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cols = [c.strip() for c in lines[0].split("|")] if lines else []
    need = ["Station_ID", "Year", "Month", "Day", "Hour", "Minute", "precipitation",
            "precipitation_Measurement_Code", "precipitation_Quality_Code"]
    missing = [c for c in need if c not in cols]
    if missing:
        raise InvalidGaugeError(f"{path}:1: not a GHCNh PSV file (header lacks {missing})")
    ix = {c: cols.index(c) for c in need}
    counts = {"qc_malformed_records": 0, "qc_trace": 0, "qc_missing": 0, "qc_flagged": 0}
    st, tt, vals = [], [], []

    malformed = _malformed_policy(path, lines, counts, on_malformed)

    for i in range(1, len(lines)):
        ln = lines[i]
        if not ln.strip():
            continue
        f = ln.split("|")
        if len(f) != len(cols):
            malformed(i, f"{len(f)} fields, the header has {len(cols)}")
            continue
        try:
            t = pd.Timestamp(*(int(f[ix[c]]) for c in ("Year", "Month", "Day", "Hour", "Minute")))
        except (ValueError, TypeError):
            malformed(i, "Year, Month, Day, Hour, Minute must make a date and time")
            continue
        p, code, qc = (f[ix[c]].strip() for c in ("precipitation", "precipitation_Measurement_Code",
                                                  "precipitation_Quality_Code"))
        if qc not in GHCNH_PASSED_QC:
            v = np.nan
            counts["qc_flagged"] += 1
        elif code.upper().startswith("T"):
            v = 0.0
            counts["qc_trace"] += 1
        elif p == "":
            v = np.nan
            counts["qc_missing"] += 1
        else:
            v = _amount(p, i, malformed, "precipitation must be a number of mm or blank", "precipitation")
            if v is None:
                continue
        st.append(f[ix["Station_ID"]].strip())
        tt.append(t)
        vals.append(v)
    out = _hourly_max(st, tt, to_mm(vals, FORMAT_UNITS["ghcnh"]), path)
    check_plausible(out["rain_mm"].to_numpy(), path, FORMAT_UNITS["ghcnh"])
    return out, counts


def _gunzip_text(path) -> str:
    import gzip

    try:
        return gzip.decompress(Path(path).read_bytes()).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InvalidGaugeError(f"{path}:1: not a readable gzip text file ({err})") from None


# --------------------------------------------------------------------------- any format

def sniff_daily(path: str | Path) -> str | None:
    """The reason a file is a daily-only record (GHCN-Daily ``.dly``, KNMI daily), else None."""
    head = Path(path).read_bytes()[:4000]
    if str(path).endswith(".gz"):
        import gzip

        try:
            with gzip.open(path, "rb") as f:
                head = f.read(4000)
        except (OSError, EOFError):
            return None
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if len(first) in (266, 269) and first[17:21] in (b"PRCP", b"TMAX", b"TMIN", b"SNOW", b"SNWD", b"TOBS", b"TAVG"):
        return f"a GHCN-Daily .dly file (days end at the observer's reading time): {DAILY_REASON}"
    text = head.decode("latin-1")
    for ln in text.splitlines():
        if KNMI_HEADER.match(ln):
            cols = [c.strip().lstrip("#").strip() for c in ln.split(",")]
            if "HH" not in cols:
                return f"a KNMI daily file (24 h totals ending 08 UTC): {DAILY_REASON}"
            break
    return None


def read_gauge_file(path: str | Path, fmt: str, on_malformed: str = "error", unit: str | None = None
                    ) -> tuple[pd.DataFrame, dict]:
    """One hourly gauge file of format ``fmt`` as (station, time, rain_mm) and its counts."""
    reason = sniff_daily(path)
    if reason is not None:
        raise InvalidGaugeError(f"{path}:1: {reason}")
    if fmt == "knmi-hourly":
        return read_knmi_hourly(path, on_malformed)
    if fmt == "iem-asos":
        return read_iem_asos(path, on_malformed)
    if fmt == "ghcnh":
        return read_ghcnh(path, on_malformed)
    if fmt == "csv":
        from pipeline.readers.gauges import read_hourly

        df, counts = read_hourly(path, on_malformed, unit=unit)
        check_plausible(df["rain_mm"].to_numpy(), path, unit or "mm")
        return df, counts
    raise ValueError(f"unknown gauge format {fmt!r} (knmi-hourly | iem-asos | ghcnh | csv)")


def to_monthly_csv(frames: list[pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """Write hourly records as the project's ``out_dir/YYYY-MM.csv`` files (station,time,rain_mm).

    A month's file holds the hours ending in that month; times are written as ISO 8601
    hour ends, rain in mm with 0.01 mm resolution (NaN = missing). Existing files with the
    same bytes are left untouched.
    """
    from pipeline.common.atomic import write_bytes_if_changed

    frames = [f for f in frames if len(f)]
    if not frames:
        return []
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["time", "station"], kind="stable").drop_duplicates(["station", "time"], keep="first")
    written = []
    for month, part in df.groupby(df["time"].dt.to_period("M")):
        body = "station,time,rain_mm\n" + "".join(
            f"{s},{t:%Y-%m-%dT%H:%M},{'' if np.isnan(r) else f'{r:.2f}'}\n"
            for s, t, r in zip(part["station"], part["time"], part["rain_mm"]))
        target = Path(out_dir) / f"{month}.csv"
        write_bytes_if_changed(target, body.encode())
        written.append(target)
    return written
