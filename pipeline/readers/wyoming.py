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

import io
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
    bounds = header_rows + [len(lines)]
    for k, h in enumerate(header_rows):
        # data start after the units line and the dashes line
        i = h + 1
        while i < len(lines) and not lines[i].lstrip().startswith("---"):
            i += 1
        i += 1
        rows, row_lines = [], []
        while i < bounds[k + 1]:
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
                rows, row_lines = None, None
                break
            i += 1
        # metadata: the station block after this table, else the title line before it
        after = "\n".join(lines[bounds[k]:bounds[k + 1]])
        before = "\n".join(lines[max(0, h - 10):h])
        st, tm, lat, lon = station, pd.Timestamp(time) if time is not None else None, np.nan, np.nan
        number = _block_value(after, "Station number")
        obs = _block_value(after, "Observation time")
        if number and st is None:
            st = number
        if obs and tm is None:
            tm = pd.to_datetime(obs, format="%y%m%d/%H%M", errors="coerce")
            if pd.isna(tm):
                raise InvalidSoundingError(f"{path}: Observation time {obs!r} is not YYMMDD/HHMM")
        lat = _float_or_nan(_block_value(after, "Station latitude"))
        lon = _float_or_nan(_block_value(after, "Station longitude"))
        m = TITLE_RE.search(before)
        if m:
            st = st or m.group(1)
            if tm is None:
                tm = pd.to_datetime(f"{m.group(6)}-{m.group(5)}-{m.group(4)} {m.group(3)}:00", format="%Y-%b-%d %H:%M")
        if rows is None:
            continue  # malformed table skipped
        if st is None or tm is None:
            msg = f"{path}:{h + 1}: no station/time in the file (give them explicitly)"
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
    return out


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


def parse_wyoming_csv(text: str, path: str | Path = "<text>", station: str | None = None) -> RawSoundings:
    """The new server's TEXT:CSV (column names with units after '_', wind in m/s)."""
    df = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    need = ["time", "longitude", "latitude", "pressure_hPa", "geopotential height_m", "temperature_C",
            "dew point temperature_C", "wind direction_degree", "wind speed_m/s"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InvalidSoundingError(f"{path}:1: Wyoming CSV lacks columns {missing}")
    num = df[need[1:]].apply(pd.to_numeric, errors="coerce")
    launch = pd.to_datetime(df["time"].iloc[0])
    nominal = launch.round("6h")  # launches are ~1 h before the synoptic hour
    name = station or Path(path).stem
    return _raw_from_table(path, name, nominal, float(num["latitude"].iloc[0]), float(num["longitude"].iloc[0]), 1,
                           np.arange(2, len(df) + 2, dtype=np.int64), num["pressure_hPa"].to_numpy(float),
                           num["geopotential height_m"].to_numpy(float), num["temperature_C"].to_numpy(float),
                           num["dew point temperature_C"].to_numpy(float), np.full(len(df), np.nan),
                           num["wind direction_degree"].to_numpy(float), num["wind speed_m/s"].to_numpy(float))


def read_wyoming(path: str | Path, on_malformed: str = "error", station: str | None = None, time=None,
                 stations: pd.DataFrame | None = None) -> RawSoundings:
    """Read a Wyoming file: TEXT:LIST (.txt/.html, also .gz/.zip) or TEXT:CSV."""
    text = read_bytes(path).decode("latin-1")
    if NO_DATA_RE.search(text[:400]) and "PRES" not in text and "pressure_hPa" not in text:
        raise InvalidSoundingError(f"{path}:1: the server returned no sounding: {text.strip()[:120]!r}")
    if text.lstrip().startswith("time,") and "pressure_hPa" in text[:400]:
        return parse_wyoming_csv(text, path, station)
    return parse_wyoming_text(text, path, on_malformed, station, time, stations)
