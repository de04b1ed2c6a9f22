"""IGRA v2 readers: station "data" files, the station list, and monthly partitioning.

The data format (NCEI ``igra2-data-format.txt``) has one header record per sounding,
starting with '#', followed by NUMLEV fixed-width level records::

    header  HEADREC 1 '#', ID 2-12, YEAR 14-17, MONTH 19-20, DAY 22-23, HOUR 25-26,
            RELTIME 28-31, NUMLEV 33-36, P_SRC 38-45, NP_SRC 47-54,
            LAT 56-62 (deg*10000), LON 64-71 (deg*10000)
    level   LVLTYP1 1, LVLTYP2 2, ETIME 4-8, PRESS 10-15 (Pa), PFLAG 16, GPH 17-21 (m),
            ZFLAG 22, TEMP 23-27 (0.1 degC), TFLAG 28, RH 29-33 (0.1 %),
            DPDP 35-39 (0.1 degC), WDIR 41-45 (deg), WSPD 47-51 (0.1 m/s)

-9999 is missing and -8888 "removed by the IGRA quality assurance". A header LAT of
-988888 or LON of -9988888 (-98.8888, -998.8888 deg) marks a mobile platform without a
fixed position: both coordinates become NaN and the sounding is counted
(``qc_position_sentinel``); every other value is a position (a LAT of -99999 is 9.9999 S),
checked for range by the ingest (:func:`pipeline.soundings.qc.coordinate_range`).

Flags after PRESS, GPH and TEMP are blank, 'A' (passed tier-1 climatological limits) or 'B' (passed tier-1
and tier-2 limits): both mean the value passed NCEI's checks, so values are kept and the
flags are only counted.

Parsing is vectorised (:mod:`pipeline.readers.fixed_width`): the file's bytes become a 2-D
uint8 array of records and every field is decoded with array arithmetic; there is no
per-line Python work in the hot path. The layout constants below are also what the nature
run writes with (:mod:`pipeline.nature_run.formats`), so reader and writer cannot drift.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.common.errors import InvalidSoundingError
from pipeline.readers.fixed_width import HeaderedRecords, decode_text, scaled

if TYPE_CHECKING:  # pandas loads on first use: the short workflow jobs skip its start-up
    import pandas as pd

MISSING = -9999
REMOVED = -8888
LAT_SENTINEL = -988888  # header LAT of a mobile platform (-98.8888 deg)
LON_SENTINEL = -9988888  # header LON of a mobile platform (-998.8888 deg)
COORD_SCALE = 10000  # LAT and LON are degrees * 10000
HEADER_WIDTH = 71  # last used column of a header record (LON ends at 71)
LEVEL_WIDTH = 51  # last used column of a level record (WSPD ends at 51; NCEI's records end in a blank)
MAX_LINE = 80  # longest line accepted after trailing blanks are removed

# The layout, used by this reader and by the nature run's writer (pipeline.nature_run.formats).
HEADER_FIELDS = {  # integer fields: name: (first column, last column), 1-based inclusive
    "year": (14, 17), "month": (19, 20), "day": (22, 23), "hour": (25, 26),
    "reltime": (28, 31), "numlev": (33, 36), "lat": (56, 62), "lon": (64, 71),
}
HEADER_TEXT = {"id": (2, 12), "p_src": (38, 45), "np_src": (47, 54)}
ZERO_PADDED = ("month", "day", "hour", "reltime")  # written with leading zeros
LEVEL_FIELDS = {
    "lvltyp1": (1, 1), "lvltyp2": (2, 2), "etime": (4, 8), "pressure": (10, 15),
    "gph": (17, 21), "temp": (23, 27), "rh": (29, 33), "dpdp": (35, 39),
    "wdir": (41, 45), "wspd": (47, 51),
}
FLAG_COLUMNS = {"pflag": 16, "zflag": 22, "tflag": 28}
VALID_FLAGS = frozenset(b" AB")


# --------------------------------------------------------------------------- bytes

def read_bytes(path: str | Path) -> bytes:
    """Bytes of a text file, a .gz, or a .zip holding one member (NCEI's downloads)."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as f:
            return f.read()
    if magic == b"PK\x03\x04":
        with zipfile.ZipFile(path) as z:
            members = [n for n in z.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise InvalidSoundingError(f"{path}: zip archive holds {len(members)} files, expected one")
            return z.read(members[0])
    return path.read_bytes()


# --------------------------------------------------------------------------- result type

@dataclass
class RawSoundings:
    """Soundings as read: one row per sounding in ``soundings``, one per level in ``levels``.

    ``soundings`` columns: station (str), time (datetime64), lat, lon (deg; NaN unknown),
    file (str), line (1-based header line). ``levels`` columns: profile (row number in
    ``soundings``), line, lvltyp2 (1 = surface), pressure (hPa), geopotential_height (m),
    temperature (degC), relative_humidity (%), dewpoint_depression (degC), dewpoint
    (degC, only where the source reports it), wind_direction (deg), wind_speed (m/s);
    NaN = missing. ``counts`` holds the reader's QC counts.
    """

    soundings: pd.DataFrame
    levels: pd.DataFrame
    counts: dict = field(default_factory=dict)


SOUNDING_COLUMNS = ["station", "time", "lat", "lon", "file", "line"]
LEVEL_COLUMNS = ["profile", "line", "lvltyp2", "pressure", "geopotential_height", "temperature",
                 "relative_humidity", "dewpoint_depression", "dewpoint", "wind_direction", "wind_speed"]


def empty_raw() -> RawSoundings:
    import pandas as pd
    s = pd.DataFrame({c: pd.Series(dtype=float) for c in SOUNDING_COLUMNS})
    s["station"] = s["station"].astype(object)
    s["file"] = s["file"].astype(object)
    s["time"] = pd.Series(dtype="datetime64[ns]")
    s["line"] = s["line"].astype(np.int64)
    lv = pd.DataFrame({c: pd.Series(dtype=float) for c in LEVEL_COLUMNS})
    lv = lv.astype({"profile": np.int64, "line": np.int64, "lvltyp2": np.int8})
    return RawSoundings(s, lv, {})


def concat_raw(parts: list[RawSoundings]) -> RawSoundings:
    """Join several readers' results, renumbering profiles and adding counts."""
    import pandas as pd
    parts = [p for p in parts if p is not None]
    if not parts:
        return empty_raw()
    soundings, levels, counts, offset = [], [], {}, 0
    for p in parts:
        soundings.append(p.soundings)
        lv = p.levels.copy()
        lv["profile"] = lv["profile"] + offset
        levels.append(lv)
        offset += len(p.soundings)
        for k, v in p.counts.items():
            counts[k] = counts.get(k, 0) + int(v)
    return RawSoundings(pd.concat(soundings, ignore_index=True), pd.concat(levels, ignore_index=True), counts)


# --------------------------------------------------------------------------- data files

COUNTS = ("qc_soundings_read", "qc_malformed_soundings", "qc_malformed_lines", "qc_soundings_without_levels",
          "qc_missing_hour_dropped", "qc_hour_from_reltime", "qc_source_removed_values", "qc_position_sentinel",
          "qc_flag_A", "qc_flag_B")


def check_policy(on_malformed: str) -> None:
    if on_malformed not in ("error", "skip"):
        raise ValueError(f"on_malformed must be 'error' or 'skip', got {on_malformed!r}")


def parse_igra2(data: bytes, path: str | Path = "<bytes>", on_malformed: str = "error") -> RawSoundings:
    """Parse the bytes of an IGRA v2 data file (LF or CRLF).

    Malformed records (wrong length, letters in a numeric field, an unknown QC flag, an
    impossible date, a header whose NUMLEV disagrees with its level records, levels
    before the first header) raise :class:`InvalidSoundingError` naming ``path:line``
    and the text under ``on_malformed='error'``; under ``'skip'`` the sounding holding
    them is dropped and counted. A header with no level records at all (a truncated
    download's last header) is dropped and counted under either policy.
    """
    check_policy(on_malformed)
    counts = dict.fromkeys(COUNTS, 0)
    rec = HeaderedRecords(data, path, MAX_LINE + 8)
    hrows, hv, dates, lv = _checked_records(rec, counts)
    bad_lines, bad_sounding, empty = rec.resolve(hv["numlev"], on_malformed, counts)
    minutes, no_hour = _minutes_of_day(hv, ~bad_sounding & ~empty, counts)
    keep = ~bad_sounding & ~empty & ~no_hour
    soundings = _soundings_frame(rec, hrows, hv, dates, minutes, keep, counts)
    levels = _levels_frame(rec, lv, rec.kept_levels(bad_lines, keep), keep, counts)
    return RawSoundings(soundings, levels, counts)


def _reltime_parts(reltime: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RELTIME is HHMM; 'HH99' = minutes missing, 9999 = release time missing. Returns
    (valid HHMM or HH99, minutes missing)."""
    minute_missing = reltime % 100 == 99
    ok = (reltime >= 0) & (reltime // 100 <= 23) & ((reltime % 100 <= 59) | minute_missing)
    return ok, minute_missing


def header_dates(year, month, day) -> pd.Series:
    """Dates of the header fields, NaT where they are not a date: the values of
    ``pd.to_datetime(DataFrame(year, month, day), errors="coerce")`` (a datetime64 Series;
    callers convert it to datetime64[ns]), computed with numpy
    calendar arithmetic when every year lies in 1678-2261 and every month and day in
    0-99 (pandas' own path, per header, for anything else)."""
    import pandas as pd
    y, m, d = (np.asarray(a, dtype=np.int64) for a in (year, month, day))
    if y.size == 0 or not (((y >= 1678) & (y <= 2261) & (m >= 0) & (m <= 99) & (d >= 0) & (d <= 99)).all()):
        return pd.to_datetime(pd.DataFrame({"year": y, "month": m, "day": d}), errors="coerce")
    months = (y - 1970) * 12 + np.clip(m, 1, 12) - 1
    first = months.astype("datetime64[M]").astype("datetime64[D]")
    days_in_month = ((months + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
    valid = (m >= 1) & (m <= 12) & (d >= 1) & (d <= days_in_month)
    out = np.where(valid, (first + (d - 1).astype("timedelta64[D]")).astype("datetime64[us]"),
                   np.datetime64("NaT", "us"))
    return pd.Series(out)


def _checked_records(rec: HeaderedRecords, counts: dict):
    """Decode headers and levels and mark every malformed line (first reason wins, in this
    order); returns (header rows, header fields, header dates, level fields)."""
    h_idx, l_idx = rec.h_idx, rec.l_idx
    hrows, hv = rec.records(h_idx, HEADER_WIDTH, HEADER_FIELDS, "header",
                            f"header record must be {HEADER_WIDTH} characters "
                            "(IGRA2 derived-parameter '-drvd' files are another format)")
    lrows, lv = rec.records(l_idx, LEVEL_WIDTH, LEVEL_FIELDS, "level", f"level record must be {LEVEL_WIDTH} characters")
    rec.mark((lv["lvltyp1"] < 1) | (lv["lvltyp1"] > 3) | (lv["lvltyp2"] < 0) | (lv["lvltyp2"] > 2),
             l_idx, "level type (columns 1-2) must be 1-3 and 0-2")
    flag_ok = np.zeros(256, bool)
    flag_ok[list(VALID_FLAGS)] = True
    for name, c in FLAG_COLUMNS.items():
        rec.mark(~flag_ok[lrows[:, c - 1]], l_idx, f"QC flag {name.upper()} (column {c}) must be blank, A or B")
        counts["qc_flag_A"] += int((lrows[:, c - 1] == ord("A")).sum())
        counts["qc_flag_B"] += int((lrows[:, c - 1] == ord("B")).sum())
    hour, reltime = hv["hour"], hv["reltime"]
    rec.mark((hour != 99) & ((hour < 0) | (hour > 23)), h_idx, "HOUR must be 00-23 or 99")
    rec.mark((reltime != 9999) & ~_reltime_parts(reltime)[0], h_idx, "RELTIME must be HHMM, HH99 or 9999")
    dates = header_dates(hv["year"], hv["month"], hv["day"])
    rec.mark(np.asarray(dates.isna()), h_idx, "YEAR/MONTH/DAY is not a valid date")
    rec.mark(hv["numlev"] < 0, h_idx, "NUMLEV is negative")
    return hrows, hv, dates, lv


def _minutes_of_day(hv: dict, live: np.ndarray, counts: dict) -> tuple[np.ndarray, np.ndarray]:
    """Minutes after midnight of each sounding: HOUR, or RELTIME (rounded to the hour) when
    HOUR is 99; and which soundings have neither (dropped, counted among ``live`` ones)."""
    hour, reltime = hv["hour"], hv["reltime"]
    rel_ok, rel_minute_missing = _reltime_parts(reltime)
    use_rel = (hour == 99) & (reltime != 9999) & rel_ok
    no_hour = (hour == 99) & ~use_rel
    counts["qc_hour_from_reltime"] = int((use_rel & live).sum())
    counts["qc_missing_hour_dropped"] = int((no_hour & live).sum())
    rel_minutes = (reltime // 100) * 60 + np.where(rel_minute_missing, 0, reltime % 100)
    return np.where(use_rel, ((rel_minutes + 30) // 60) * 60, hour * 60), no_hour


def _soundings_frame(rec: HeaderedRecords, hrows, hv: dict, dates, minutes, keep: np.ndarray,
                     counts: dict) -> pd.DataFrame:
    """One row per kept sounding; the mobile-platform position sentinels become NaN (counted)."""
    import pandas as pd
    sel = np.flatnonzero(keep)
    station = decode_text(hrows[sel], *HEADER_TEXT["id"])
    lat = hv["lat"][sel].astype(float) / COORD_SCALE
    lon = hv["lon"][sel].astype(float) / COORD_SCALE
    sentinel = (hv["lat"][sel] == LAT_SENTINEL) | (hv["lon"][sel] == LON_SENTINEL)
    counts["qc_position_sentinel"] = int(sentinel.sum())
    lat[sentinel] = np.nan
    lon[sentinel] = np.nan
    time = (np.asarray(dates.values, dtype="datetime64[ns]")[sel]
            + minutes[sel].astype("timedelta64[m]").astype("timedelta64[ns]"))
    return pd.DataFrame({"station": station.astype(object), "time": time, "lat": lat, "lon": lon,
                         "file": str(rec.path), "line": rec.line_no[rec.h_idx[sel]].astype(np.int64)})


def _levels_frame(rec: HeaderedRecords, lv: dict, lkeep: np.ndarray, keep: np.ndarray, counts: dict) -> pd.DataFrame:
    """One row per kept level record, in the units of :class:`RawSoundings`."""
    import pandas as pd
    new_id = np.cumsum(keep) - 1
    missing = (MISSING, REMOVED)
    counts["qc_source_removed_values"] = int(sum(np.count_nonzero(lv[n][lkeep] == REMOVED)
                                                 for n in ("pressure", "gph", "temp", "rh", "dpdp", "wdir", "wspd")))

    def col(name: str, scale: float) -> np.ndarray:
        return scaled(lv[name][lkeep], scale, missing)

    return pd.DataFrame({
        "profile": new_id[rec.owner[lkeep]].astype(np.int64),
        "line": rec.line_no[rec.l_idx[lkeep]].astype(np.int64),
        "lvltyp2": lv["lvltyp2"][lkeep].astype(np.int8),
        "pressure": col("pressure", 100.0),
        "geopotential_height": col("gph", 1.0),
        "temperature": col("temp", 10.0),
        "relative_humidity": col("rh", 10.0),
        "dewpoint_depression": col("dpdp", 10.0),
        "dewpoint": np.full(int(lkeep.sum()), np.nan),
        "wind_direction": col("wdir", 1.0),
        "wind_speed": col("wspd", 10.0),
    })


def read_igra2(path: str | Path, on_malformed: str = "error") -> RawSoundings:
    """Read one IGRA v2 data file (.txt, .gz or .zip); a derived-parameter ('-drvd') file too."""
    data = read_bytes(path)
    from pipeline.readers import igra2_derived

    if igra2_derived.is_derived(data):
        return igra2_derived.parse_igra2_derived(data, path, on_malformed)
    return parse_igra2(data, path, on_malformed)


# --------------------------------------------------------------------------- station list

def read_station_list(path: str | Path) -> pd.DataFrame:
    """The IGRA2 station list (NCEI fixed width) indexed by station id.

    Columns lat, lon (deg), elevation (m), state, name, first_year, last_year, n_obs.
    The mobile-platform sentinels (lat -98.8888, lon -998.8888, elevation -998.8) and
    unknown elevation (-999.9) become NaN.
    """
    import pandas as pd
    text = read_bytes(path).decode("latin-1")
    colspecs = [(0, 11), (12, 20), (21, 30), (31, 37), (38, 40), (41, 71), (72, 76), (77, 81), (82, 88)]
    names = ["id", "lat", "lon", "elevation", "state", "name", "first_year", "last_year", "n_obs"]
    df = pd.read_fwf(io.StringIO(text), colspecs=colspecs, names=names, header=None,
                     dtype={"id": str, "state": str, "name": str})
    for c in ("lat", "lon", "elevation"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
        bad = df[c].isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidSoundingError(f"{path}:{i + 1}: station list column {c} is not a number: "
                                       f"{text.splitlines()[i]!r}")
    df.loc[(df["lat"] < -90) | (df["lat"] > 90), "lat"] = np.nan
    df.loc[(df["lon"] < -180) | (df["lon"] >= 360), "lon"] = np.nan
    df.loc[df["elevation"] <= -998.8, "elevation"] = np.nan
    return df.set_index("id")


def lookup_station(stations: pd.DataFrame, station: str) -> pd.Series | None:
    """Row of ``stations`` for an IGRA id, or for a WMO number (e.g. '72357' -> 'USM00072357')."""
    if station in stations.index:
        return stations.loc[station]
    s = str(station).strip()
    if s.isdigit() and len(s) <= 5:
        suffix = "M000" + s.zfill(5)
        hits = stations.index[stations.index.str.endswith(suffix) & (stations.index.str.len() == 11)]
        if len(hits):
            return stations.loc[hits[0]]
    return None


# --------------------------------------------------------------------------- partition

def partition_records(data: bytes) -> dict[tuple[str, str], bytes]:
    """Group the records of an IGRA2 data file by (station id, 'YYYY-MM').

    Every sounding (header and its level records) is copied byte for byte, line
    terminators included, in file order.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], nl + 1))
    starts = starts[starts < raw.size]
    hstarts = starts[raw[starts] == ord("#")]
    out: dict[tuple[str, str], list[bytes]] = {}
    bounds = np.concatenate((hstarts, [raw.size]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        head = data[a:a + 20]
        key = (head[1:12].decode("ascii", "replace").strip(), f"{head[13:17].decode()}-{head[18:20].decode()}")
        out.setdefault(key, []).append(data[a:b])
    return {k: b"".join(v) for k, v in out.items()}


def partition_files(paths, out_dir: str | Path) -> list[Path]:
    """Split full-period IGRA2 station files into ``out_dir/YYYY-MM/<ID>-data.txt``.

    Files already holding exactly the same bytes are left untouched (their
    modification time too), so a rerun does not trigger downstream work.
    """
    from pipeline.common.atomic import write_bytes_if_changed

    merged: dict[tuple[str, str], list[bytes]] = {}
    for p in paths:
        data = read_bytes(p)
        first = data.lstrip()[:1]
        if data and first != b"#":
            raise InvalidSoundingError(f"{p}:1: not an IGRA2 data file (first record does not start with '#')")
        for key, chunk in partition_records(data).items():
            if not chunk.endswith(b"\n"):
                chunk += b"\r\n" if b"\r\n" in chunk else b"\n"
            merged.setdefault(key, []).append(chunk)
    written = []
    for (station, month), chunks in sorted(merged.items()):
        target = Path(out_dir) / month / f"{station}-data.txt"
        write_bytes_if_changed(target, b"".join(chunks))
        written.append(target)
    return written
