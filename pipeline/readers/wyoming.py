"""University of Wyoming soundings: the TEXT:LIST table (plain or inside the HTML <PRE>)
and the newer TEXT:CSV output.

TEXT:LIST columns are 7 characters wide: PRES hPa, HGHT m, TEMP C, DWPT C, RELH %,
MIXR g/kg, DRCT deg, SKNT knot, THTA, THTE, THTV K; blanks are missing and lines may be
short (trailing fields absent). Wind speed is in knots and is converted to m/s with
pint. Station and time come from the 'Station information' block (``Station number``,
``Observation time: YYMMDD/HHMM``, latitude, longitude) or the title line
('72357 OUN Norman Observations at 12Z 22 May 2011'); files with neither (MetPy's
stored tables) need ``station``/``time`` given by the caller. Latitude/longitude
missing from the file ('******', absent line) come from the IGRA2 station list by WMO
number, else stay NaN. The server's "Unable to retrieve the data" page is an error,
never an empty profile.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
from metpy.units import units

from pipeline.common.errors import InvalidSoundingError
from pipeline.readers.igra2 import RawSoundings, concat_raw, lookup_station, read_bytes

LIST_COLUMNS = ["PRES", "HGHT", "TEMP", "DWPT", "RELH", "MIXR", "DRCT", "SKNT", "THTA", "THTE", "THTV"]
COL_WIDTH = 7
KNOT_TO_MS = float(units.Quantity(1.0, "knot").to("m/s").magnitude)
TITLE_RE = re.compile(r"(\d{5})\s+(?:([A-Z0-9]{3,4})\s+)?.*?Observations at (\d{2})Z (\d{1,2}) (\w{3}) (\d{4})")
NO_DATA_RE = re.compile(r"Unable to retrieve|Can't get|No data", re.IGNORECASE)


def _block_value(text: str, key: str) -> str | None:
    m = re.search(rf"^\s*{re.escape(key)}:\s*(\S+)\s*$", text, re.MULTILINE)
    return m.group(1) if m else None


def _float_or_nan(s: str | None) -> float:
    try:
        value = float(s)
    except (TypeError, ValueError):
        return np.nan
    return np.nan if value <= -9999 else value


def parse_wyoming_text(text: str, path: str | Path = "<text>", on_malformed: str = "error",
                       station: str | None = None, time=None, stations: pd.DataFrame | None = None) -> RawSoundings:
    """Parse every TEXT:LIST table in ``text`` (HTML pages may hold several soundings)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if NO_DATA_RE.search(text[:400]) and "PRES" not in text:
        raise InvalidSoundingError(f"{path}:1: the server returned no sounding: {text.strip()[:120]!r}")
    lines = text.split("\n")
    header_rows = [i for i, ln in enumerate(lines) if ln.split()[:3] == ["PRES", "HGHT", "TEMP"]]
    if not header_rows:
        raise InvalidSoundingError(f"{path}:1: no TEXT:LIST table (no 'PRES HGHT TEMP' header line)")
    parts = []
    sentinels = 0
    bounds = header_rows + [len(lines)]
    for k, h in enumerate(header_rows):
        rows, row_lines = _table_rows(lines, h, bounds[k + 1], path, on_malformed)
        st, tm, lat, lon, sentinel = _table_metadata(lines, h, bounds[k + 1], path, station, time)
        sentinels += sentinel
        if rows is None:
            continue  # malformed table skipped
        if st is None or tm is None:
            msg = (f"{path}:{h + 1}: no station/time in the file (give them: --station ID --time YYYY-MM-DDTHH:MM "
                   "on the command line)")
            if on_malformed == "error":
                raise InvalidSoundingError(msg)
            continue
        if stations is not None and (np.isnan(lat) or np.isnan(lon)):
            row = lookup_station(stations, st)
            if row is not None:
                lat = lat if np.isfinite(lat) else float(row["lat"])
                lon = lon if np.isfinite(lon) else float(row["lon"])
        a = np.array(rows, dtype=float).reshape(-1, len(LIST_COLUMNS))
        parts.append(_raw_from_table(path, st, tm, lat, lon, h + 1, np.array(row_lines, dtype=np.int64),
                                     a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 6], a[:, 7] * KNOT_TO_MS))
    out = concat_raw(parts)
    out.counts.setdefault("qc_soundings_read", len(header_rows))
    out.counts["qc_malformed_soundings"] = len(header_rows) - len(parts)
    out.counts["qc_position_sentinel"] = sentinels
    return out


def _table_rows(lines: list[str], h: int, end: int, path, on_malformed: str):
    """Numeric rows of the table whose header is line ``h`` (0-based) and their 1-based line
    numbers; (None, None) for a malformed table under ``on_malformed='skip'``."""
    i = h + 1  # data start after the units line and the dashes line
    while i < len(lines) and not lines[i].lstrip().startswith("---"):
        i += 1
    i += 1
    rows, row_lines = [], []
    while i < end:
        ln = re.sub(r"<[^>]*>.*$", "", lines[i]) if "<" in lines[i] else lines[i]
        if not ln.strip():
            if "<" in lines[i] or rows:
                break
            i += 1
            continue
        fields = [ln[j * COL_WIDTH:(j + 1) * COL_WIDTH].strip() for j in range(len(LIST_COLUMNS))]
        if len(ln.rstrip()) > COL_WIDTH * len(LIST_COLUMNS) + 2:
            fields = ["__bad__"]
        try:
            rows.append([float(f) if f else np.nan for f in fields])
            row_lines.append(i + 1)
        except ValueError:
            if on_malformed == "error":
                raise InvalidSoundingError(f"{path}:{i + 1}: TEXT:LIST row is not numeric: {lines[i]!r}") from None
            return None, None
        i += 1
    return rows, row_lines


def _table_metadata(lines: list[str], h: int, end: int, path, station, time):
    """(station, time, lat, lon, 1 if the position is the server's missing sentinel) of the
    table at line ``h``: given values first, then the station block after the table, then
    the title line before it."""
    after = "\n".join(lines[h:end])
    before = "\n".join(lines[max(0, h - 10):h])
    st, tm = station, pd.Timestamp(time) if time is not None else None
    number = _block_value(after, "Station number")
    obs = _block_value(after, "Observation time")
    if number and st is None:
        st = number
    if obs and tm is None:
        tm = pd.to_datetime(obs, format="%y%m%d/%H%M", errors="coerce")
        if pd.isna(tm):
            at = next((j + 1 for j in range(h, end) if "Observation time" in lines[j]), h + 1)
            raise InvalidSoundingError(f"{path}:{at}: Observation time {obs!r} is not YYMMDD/HHMM")
    lat_text, lon_text = _block_value(after, "Station latitude"), _block_value(after, "Station longitude")
    lat, lon = _float_or_nan(lat_text), _float_or_nan(lon_text)
    # '******' or -9999 in the block: the server's missing position
    sentinel = int((lat_text is not None and np.isnan(lat)) or (lon_text is not None and np.isnan(lon)))
    m = TITLE_RE.search(before)
    if m:
        st = st or m.group(1)
        if tm is None:
            tm = pd.to_datetime(f"{m.group(6)}-{m.group(5)}-{m.group(4)} {m.group(3)}:00", format="%Y-%b-%d %H:%M",
                                errors="coerce")
            if pd.isna(tm):
                title_line = max(0, h - 10) + before.count("\n", 0, m.start()) + 1
                raise InvalidSoundingError(f"{path}:{title_line}: title time is not a date: {m.group(0)!r}")
    if tm is not None and not pd.Timestamp("1900-01-01") <= tm < pd.Timestamp("2200-01-01"):
        raise InvalidSoundingError(f"{path}:{h + 1}: sounding time {tm} is not in the years 1900-2199")
    return st, tm, lat, lon, sentinel


def _raw_from_table(path, station, time, lat, lon, line, row_lines, p, z, t, td, rh, wdir, wspd_ms) -> RawSoundings:
    n = p.size
    soundings = pd.DataFrame({"station": [str(station)], "time": [pd.Timestamp(time)], "lat": [lat], "lon": [lon],
                              "file": [str(path)], "line": [int(line)]})
    soundings["time"] = soundings["time"].astype("datetime64[ns]")
    levels = pd.DataFrame({
        "profile": np.zeros(n, np.int64), "line": row_lines, "lvltyp2": np.zeros(n, np.int8),
        "pressure": p, "geopotential_height": z, "temperature": t, "relative_humidity": rh,
        "dewpoint_depression": np.full(n, np.nan), "dewpoint": td, "wind_direction": wdir, "wind_speed": wspd_ms})
    # the surface is the first row with a temperature; rows before it with only pressure
    # and height are the server's below-ground extrapolation (e.g. '1000.0    -12')
    with_t = np.flatnonzero(np.isfinite(t))
    if with_t.size:
        levels.loc[int(with_t[0]), "lvltyp2"] = 1
    return RawSoundings(soundings, levels, {"qc_soundings_read": 1})


CSV_NEED = ["time", "longitude", "latitude", "pressure_hPa", "geopotential height_m", "temperature_C",
            "dew point temperature_C", "wind direction_degree", "wind speed_m/s"]
CSV_POSITION_SENTINEL = -99.99  # the server's latitude/longitude when the position is unknown


def parse_wyoming_csv(text: str, path: str | Path = "<text>", station: str | None = None,
                      on_malformed: str = "error") -> RawSoundings:
    """The new server's TEXT:CSV (column names with units after '_', wind in m/s).

    Every row must have the header's number of fields, a ``YYYY-MM-DD HH:MM:SS`` time
    and numbers (or blanks) in the used columns; otherwise :class:`InvalidSoundingError`
    names ``path:line`` and the text, or (``on_malformed='skip'``) the row is dropped and
    counted (``qc_malformed_lines``). Latitude/longitude -99.99 is the server's missing
    position: NaN, counted as ``qc_position_sentinel``.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = [h.strip() for h in next(csv.reader([lines[0]]))] if lines else []
    missing = [c for c in CSV_NEED if c not in header]
    if missing:
        raise InvalidSoundingError(f"{path}:1: Wyoming CSV lacks columns {missing}")
    col = [header.index(c) for c in CSV_NEED]
    rows, row_lines, bad = [], [], 0

    def malformed(i: int, what: str) -> None:
        nonlocal bad
        if on_malformed == "error":
            raise InvalidSoundingError(f"{path}:{i + 1}: {what}: {lines[i][:120]!r}")
        bad += 1

    for i in range(1, len(lines)):
        if not lines[i].strip():
            continue
        try:
            fields = next(csv.reader([lines[i]]))
        except csv.Error as err:
            malformed(i, f"not a CSV record ({err})")
            continue
        if len(fields) != len(header):
            malformed(i, f"{len(fields)} fields, the header has {len(header)}")
            continue
        values = []
        for j in col[1:]:
            f = fields[j].strip()
            try:
                values.append(float(f) if f else np.nan)
            except ValueError:
                values = None
                break
        if values is None or not all(np.isfinite(v) or np.isnan(v) for v in values):
            malformed(i, "a value is not a number")
            continue
        t = pd.to_datetime(fields[col[0]].strip(), format="%Y-%m-%d %H:%M:%S", errors="coerce")
        if pd.isna(t) or not pd.Timestamp("1900-01-01") <= t < pd.Timestamp("2200-01-01"):
            malformed(i, "time is not YYYY-MM-DD HH:MM:SS (years 1900-2199)")
            continue
        rows.append([t.as_unit("ns").value] + values)
        row_lines.append(i + 1)
    if not rows:
        raise InvalidSoundingError(f"{path}:2: Wyoming CSV holds no valid data row")
    a = np.array(rows, dtype=float)
    launch = pd.Timestamp(int(rows[0][0]))
    nominal = launch.round("6h")  # launches are ~1 h before the synoptic hour
    lon, lat = a[0, 1], a[0, 2]
    sentinel = lat == CSV_POSITION_SENTINEL or lon == CSV_POSITION_SENTINEL
    if sentinel:
        lat = lon = np.nan
    name = station or Path(path).stem
    out = _raw_from_table(path, name, nominal, lat, lon, 1, np.array(row_lines, dtype=np.int64), a[:, 3], a[:, 4],
                          a[:, 5], a[:, 6], np.full(len(a), np.nan), a[:, 7], a[:, 8])
    out.counts.update({"qc_position_sentinel": int(sentinel), "qc_malformed_lines": bad})
    return out


def read_wyoming(path: str | Path, on_malformed: str = "error", station: str | None = None, time=None,
                 stations: pd.DataFrame | None = None) -> RawSoundings:
    """Read a Wyoming file: TEXT:LIST (.txt/.html, also .gz/.zip) or TEXT:CSV."""
    text = read_bytes(path).decode("latin-1")
    if NO_DATA_RE.search(text[:400]) and "PRES" not in text and "pressure_hPa" not in text:
        raise InvalidSoundingError(f"{path}:1: the server returned no sounding: {text.strip()[:120]!r}")
    if text.lstrip().startswith("time,") and "pressure_hPa" in text[:400]:
        return parse_wyoming_csv(text, path, station, on_malformed)
    return parse_wyoming_text(text, path, on_malformed, station, time, stations)
