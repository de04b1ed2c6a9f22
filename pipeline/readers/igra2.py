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

Parsing is vectorised (see :func:`split_lines`, :func:`gather`, :func:`parse_fields`): the
file's bytes become a 2-D uint8 array of level records and every field is decoded with
array arithmetic; there is no per-line Python work in the hot path.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common.errors import InvalidSoundingError

SPACE = 32
MINUS = 45
ZERO = 48
MISSING = -9999
REMOVED = -8888
LAT_SENTINEL = -988888  # header LAT of a mobile platform (-98.8888 deg)
LON_SENTINEL = -9988888  # header LON of a mobile platform (-998.8888 deg)
HEADER_WIDTH = 71  # last used column of a header record (LON ends at 71)
LEVEL_WIDTH = 51  # last used column of a level record (WSPD ends at 51)
MAX_LINE = 80  # longest line accepted after trailing blanks are removed

HEADER_FIELDS = {  # name: (first column, last column), 1-based inclusive
    "year": (14, 17), "month": (19, 20), "day": (22, 23), "hour": (25, 26),
    "reltime": (28, 31), "numlev": (33, 36), "lat": (56, 62), "lon": (64, 71),
}
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


# --------------------------------------------------------------------------- fixed width

def split_lines(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``data`` into lines; returns (buffer, starts, lengths).

    ``buffer`` is ``data`` as uint8 with blank padding appended, so fixed-width windows
    past the last line stay in bounds. ``lengths`` exclude the terminator (LF or CRLF).
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], nl + 1)).astype(np.int64)
    ends = np.concatenate((nl, [raw.size])).astype(np.int64)
    if starts[-1] >= raw.size:  # data ends with a newline (or is empty)
        starts, ends = starts[:-1], ends[:-1]
    lengths = ends - starts
    if raw.size:
        lengths = lengths - ((lengths > 0) & (raw[np.maximum(ends - 1, 0)] == 13))
    buffer = np.concatenate((raw, np.full(MAX_LINE + 8, SPACE, dtype=np.uint8)))
    return buffer, starts, lengths


def gather(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """The lines at ``starts`` as an (n, width) uint8 array, blank past each line's end."""
    if starts.size == 0:
        return np.zeros((0, width), dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(buffer, width)
    out = windows[starts]  # fancy indexing copies only n * width bytes
    short = np.flatnonzero(lengths < width)  # blank what lies past the end of short lines
    if short.size:
        sub = out[short]
        sub[np.arange(width, dtype=np.int64)[None, :] >= lengths[short, None]] = SPACE
        out[short] = sub
    return out


def trim_trailing_blanks(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Line lengths without trailing blanks/tabs (a few vectorised passes: lines end in 0-1 blanks)."""
    out = lengths.copy()
    todo = np.flatnonzero(out > 0)
    while todo.size:
        last = buffer[starts[todo] + out[todo] - 1]
        todo = todo[(last == SPACE) | (last == 9)]
        out[todo] -= 1
        todo = todo[out[todo] > 0]
    return out


def _classify(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Character classes (0 blank, 1 '-', 2 digit, 9 other) and digit values (float32).

    Plain element-wise arithmetic on uint8: much faster than a lookup-table gather.
    """
    d = rows - np.uint8(ZERO)  # wraps around for characters below '0'
    isdig = d < 10
    minus = rows == MINUS
    other = ~(isdig | minus | (rows == SPACE))
    cls = (isdig.view(np.int8) * 2 + minus.view(np.int8) + other.view(np.int8) * 9).astype(np.int8)
    # float32 is exact here: every partial sum of a field is an integer below 2**24
    digits = np.where(isdig, d, np.uint8(0)).astype(np.float32)
    return cls, digits


def parse_fields(rows: np.ndarray, fields: dict[str, tuple[int, int]], chunk: int = 65536
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Decode right-aligned signed integers in many fixed-width fields of the same rows.

    A good field is: blanks, an optional '-', at least one digit, nothing after the digits,
    i.e. its character classes (blank 0, minus 1, digit 2) never decrease, it holds at most
    one '-' and it ends with a digit. Returns ``(values int64, bad bool)`` per field.

    Character classes and digit values are looked up once for the whole (n, width)
    array; the per-field sums (value, number of '-', class decreases) are three matrix
    products with a (width, n_fields) column-to-field matrix. Rows are processed in
    chunks to bound memory.
    """
    n, width = rows.shape
    names = list(fields)
    k = len(names)
    place = np.zeros((width, k), np.float32)  # digit weight of each column in its field
    member = np.zeros((width, k), np.float32)  # column belongs to the field
    inner = np.zeros((width - 1, k), np.float32)  # class step j -> j+1 lies inside the field
    last_col = np.zeros(k, dtype=np.int64)
    for j, name in enumerate(names):
        a, b = fields[name]
        place[a - 1:b, j] = 10.0 ** np.arange(b - a, -1, -1)
        member[a - 1:b, j] = 1
        inner[a - 1:b - 1, j] = 1
        last_col[j] = b - 1
    values = np.empty((k, n), dtype=np.int64)  # field-major: each field contiguous
    bad = np.empty((k, n), dtype=bool)
    for s in range(0, n, chunk):
        r = rows[s:s + chunk]
        cls, digits = _classify(r)
        minus = (cls == 1).astype(np.float32)
        drop = (cls[:, 1:] < cls[:, :-1]).astype(np.float32)
        v = digits @ place
        m = minus @ member
        bad[:, s:s + chunk] = ((cls[:, last_col] != 2) | (m > 1) | ((drop @ inner) > 0)).T
        values[:, s:s + chunk] = np.where(m > 0, -v, v).T  # exact integers in float32
    return ({name: values[j] for j, name in enumerate(names)},
            {name: bad[j] for j, name in enumerate(names)})


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

def _malformed(path, line_no: int, what: str, text: bytes) -> InvalidSoundingError:
    shown = text.decode("ascii", "replace")
    return InvalidSoundingError(f"{path}:{line_no}: {what}: {shown!r}")


def resolve_malformed(path, bad_reason: dict[int, str], found, numlev, h_idx, l_idx, owner, n_lines: int,
                      line_no, on_malformed: str, counts: dict, text_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared by the IGRA2 readers: add NUMLEV mismatches to ``bad_reason`` (line index ->
    first reason), raise for the first bad line under ``on_malformed='error'``, else count
    them; returns (bad lines, soundings with a bad header or level line, soundings without
    levels)."""
    empty = found == 0
    for j in np.flatnonzero((found != numlev) & ~empty):
        bad_reason.setdefault(int(h_idx[j]), f"header says NUMLEV={numlev[j]} but {found[j]} level records follow")
    if bad_reason:
        first = min(bad_reason)
        if on_malformed == "error":
            raise _malformed(path, int(line_no[first]), bad_reason[first], text_of(first))
        counts["qc_malformed_lines"] = len(bad_reason)
    bad_lines = np.zeros(n_lines, bool)
    bad_lines[list(bad_reason)] = True
    bad_sounding = bad_lines[h_idx].copy()
    np.logical_or.at(bad_sounding, owner[(owner >= 0) & bad_lines[l_idx]], True)
    counts["qc_malformed_soundings"] = int(bad_sounding.sum())
    counts["qc_soundings_read"] = int(h_idx.size)
    counts["qc_soundings_without_levels"] = int((empty & ~bad_sounding).sum())
    return bad_lines, bad_sounding, empty


def parse_igra2(data: bytes, path: str | Path = "<bytes>", on_malformed: str = "error") -> RawSoundings:
    """Parse the bytes of an IGRA v2 data file (LF or CRLF).

    Malformed records (wrong length, letters in a numeric field, an unknown QC flag, an
    impossible date, a header whose NUMLEV disagrees with its level records, levels
    before the first header) raise :class:`InvalidSoundingError` naming ``path:line``
    and the text under ``on_malformed='error'``; under ``'skip'`` the sounding holding
    them is dropped and counted. A header with no level records at all (a truncated
    download's last header) is dropped and counted under either policy.
    """
    if on_malformed not in ("error", "skip"):
        raise ValueError(f"on_malformed must be 'error' or 'skip', got {on_malformed!r}")
    counts = {"qc_soundings_read": 0, "qc_malformed_soundings": 0, "qc_malformed_lines": 0,
              "qc_soundings_without_levels": 0, "qc_missing_hour_dropped": 0,
              "qc_hour_from_reltime": 0, "qc_source_removed_values": 0, "qc_position_sentinel": 0,
              "qc_flag_A": 0, "qc_flag_B": 0}
    buffer, starts, lengths = split_lines(data)
    slen = trim_trailing_blanks(buffer, starts, lengths)
    keep = slen > 0  # blank lines carry nothing and are ignored
    line_no = np.flatnonzero(keep) + 1
    starts, lengths, slen = starts[keep], lengths[keep], slen[keep]
    first_char = buffer[starts]
    is_header = first_char == ord("#")

    def text_of(i: int) -> bytes:
        return bytes(buffer[starts[i]:starts[i] + lengths[i]])

    bad_reason: dict[int, str] = {}  # index into kept lines -> reason (first reason wins)

    def mark(mask: np.ndarray, idx: np.ndarray, reason: str) -> None:
        for i in idx[mask]:
            bad_reason.setdefault(int(i), reason)

    h_idx = np.flatnonzero(is_header)
    l_idx = np.flatnonzero(~is_header)
    # ---- headers
    hrows = gather(buffer, starts[h_idx], np.minimum(slen[h_idx], HEADER_WIDTH), HEADER_WIDTH)
    mark(slen[h_idx] != HEADER_WIDTH, h_idx, f"header record must be {HEADER_WIDTH} characters "
         "(IGRA2 derived-parameter '-drvd' files are another format)")
    hv, hbad = parse_fields(hrows, HEADER_FIELDS)
    for name, (a, b) in HEADER_FIELDS.items():
        mark(hbad[name], h_idx, f"header field {name.upper()} (columns {a}-{b}) is not an integer")
    stations = hrows[:, 1:12]
    # ---- levels
    lrows = gather(buffer, starts[l_idx], np.minimum(slen[l_idx], LEVEL_WIDTH), LEVEL_WIDTH)
    mark(slen[l_idx] != LEVEL_WIDTH, l_idx, f"level record must be {LEVEL_WIDTH} characters")
    lv, lbad = parse_fields(lrows, LEVEL_FIELDS)
    for name, (a, b) in LEVEL_FIELDS.items():
        mark(lbad[name], l_idx, f"level field {name.upper()} (columns {a}-{b}) is not an integer")
    mark((lv["lvltyp1"] < 1) | (lv["lvltyp1"] > 3) | (lv["lvltyp2"] < 0) | (lv["lvltyp2"] > 2),
         l_idx, "level type (columns 1-2) must be 1-3 and 0-2")
    flag_ok = np.zeros(256, bool)
    flag_ok[list(VALID_FLAGS)] = True
    for name, c in FLAG_COLUMNS.items():
        mark(~flag_ok[lrows[:, c - 1]], l_idx, f"QC flag {name.upper()} (column {c}) must be blank, A or B")
        counts["qc_flag_A"] += int((lrows[:, c - 1] == ord("A")).sum())
        counts["qc_flag_B"] += int((lrows[:, c - 1] == ord("B")).sum())
    # ---- header dates and hours
    hour = hv["hour"]
    reltime = hv["reltime"]
    mark((hour != 99) & ((hour < 0) | (hour > 23)), h_idx, "HOUR must be 00-23 or 99")
    # RELTIME is HHMM; 'HH99' = minutes missing, 9999 = release time missing
    rel_minute_missing = reltime % 100 == 99
    rel_ok = (reltime >= 0) & (reltime // 100 <= 23) & ((reltime % 100 <= 59) | rel_minute_missing)
    mark((reltime != 9999) & ~rel_ok, h_idx, "RELTIME must be HHMM, HH99 or 9999")
    dates = pd.to_datetime(
        pd.DataFrame({"year": hv["year"], "month": hv["month"], "day": hv["day"]}), errors="coerce")
    mark(np.asarray(dates.isna()), h_idx, "YEAR/MONTH/DAY is not a valid date")
    mark(hv["numlev"] < 0, h_idx, "NUMLEV is negative")
    # ---- structure: each header owns the level records up to the next header
    owner = np.searchsorted(h_idx, l_idx, side="right") - 1
    mark(owner < 0, l_idx, "level record before the first header")
    found = np.bincount(owner[owner >= 0], minlength=h_idx.size) if h_idx.size else np.zeros(0, np.int64)
    # ---- malformed handling
    bad_lines, bad_sounding, empty = resolve_malformed(path, bad_reason, found, hv["numlev"], h_idx, l_idx, owner,
                                            is_header.size, line_no, on_malformed, counts, text_of)
    # ---- times: HOUR, or RELTIME (rounded to the hour) when HOUR is 99
    use_rel = (hour == 99) & (reltime != 9999) & rel_ok
    no_hour = (hour == 99) & ~use_rel
    counts["qc_hour_from_reltime"] = int((use_rel & ~bad_sounding & ~empty).sum())
    counts["qc_missing_hour_dropped"] = int((no_hour & ~bad_sounding & ~empty).sum())
    rel_minutes = (reltime // 100) * 60 + np.where(rel_minute_missing, 0, reltime % 100)
    minutes = np.where(use_rel, ((rel_minutes + 30) // 60) * 60, hour * 60)
    keep_s = ~bad_sounding & ~empty & ~no_hour
    # ---- assemble
    new_id = np.cumsum(keep_s) - 1
    sel = keep_s.nonzero()[0]
    station = np.char.strip(np.char.decode(stations[sel].copy().view("S11").ravel(), "latin-1")) if sel.size else np.array([], str)
    lat = hv["lat"][sel].astype(float) / 1e4
    lon = hv["lon"][sel].astype(float) / 1e4
    sentinel = (hv["lat"][sel] == LAT_SENTINEL) | (hv["lon"][sel] == LON_SENTINEL)
    counts["qc_position_sentinel"] = int(sentinel.sum())
    lat[sentinel] = np.nan
    lon[sentinel] = np.nan
    time = (np.asarray(dates.values, dtype="datetime64[ns]")[sel]
            + minutes[sel].astype("timedelta64[m]").astype("timedelta64[ns]"))
    soundings = pd.DataFrame({"station": station.astype(object), "time": time, "lat": lat, "lon": lon,
                              "file": str(path), "line": line_no[h_idx[sel]].astype(np.int64)})
    lkeep = (owner >= 0) & ~bad_lines[l_idx]
    lkeep[lkeep] = keep_s[owner[lkeep]]

    def scaled(name: str, scale: float) -> np.ndarray:
        raw = lv[name][lkeep]
        out = raw.astype(np.float64) / scale
        out[(raw == MISSING) | (raw == REMOVED)] = np.nan
        return out

    counts["qc_source_removed_values"] = int(sum(np.count_nonzero(lv[n][lkeep] == REMOVED)
                                                 for n in ("pressure", "gph", "temp", "rh", "dpdp", "wdir", "wspd")))
    levels = pd.DataFrame({
        "profile": new_id[owner[lkeep]].astype(np.int64),
        "line": line_no[l_idx[lkeep]].astype(np.int64),
        "lvltyp2": lv["lvltyp2"][lkeep].astype(np.int8),
        "pressure": scaled("pressure", 100.0),
        "geopotential_height": scaled("gph", 1.0),
        "temperature": scaled("temp", 10.0),
        "relative_humidity": scaled("rh", 10.0),
        "dewpoint_depression": scaled("dpdp", 10.0),
        "dewpoint": np.full(int(lkeep.sum()), np.nan),
        "wind_direction": scaled("wdir", 1.0),
        "wind_speed": scaled("wspd", 10.0),
    })
    return RawSoundings(soundings, levels, counts)


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
