"""Vectorised writers of the raw formats the nature run produces.

Fixed-width text is assembled in 2-D uint8 arrays (one row per record) with integer
fields written digit by digit for all rows at once; there is no per-line Python work.

- IGRA v2 "data" format (NCEI ``igra2-data-format.txt``): header records of 71 columns,
  level records of 52 columns (the last is a blank, as in NCEI's files). The columns are
  the reader's layout (:mod:`pipeline.readers.igra2`), written once.
- IGRA2 station list (``igra2-station-list.txt``).
- Gauge CSV ``station,time,rain_mm`` with rain in 0.1 mm and empty fields for missing.
"""
from __future__ import annotations

import numpy as np

from pipeline.common.times import calendar_fields
from pipeline.readers.igra2 import (COORD_SCALE, FLAG_COLUMNS, HEADER_FIELDS, HEADER_TEXT, HEADER_WIDTH,
                                    LEVEL_FIELDS, LEVEL_WIDTH, ZERO_PADDED)

SPACE, MINUS, DOT, ZERO, PAD = 32, 45, 46, 48, 0


def put_int(buf: np.ndarray, first: int, last: int, values: np.ndarray) -> None:
    """Write integers right-justified into 1-based inclusive columns [first, last].

    Raises ValueError when a value does not fit the field.
    """
    width = last - first + 1
    v = np.asarray(values, np.int64)
    neg = v < 0
    a = np.abs(v)
    ndig = np.maximum(1, np.floor(np.log10(np.maximum(a, 1))).astype(np.int64) + 1)
    ndig = np.where(a >= 10 ** ndig, ndig + 1, ndig)  # guard float log rounding
    need = ndig + neg
    if (need > width).any():
        bad = v[need > width][0]
        raise ValueError(f"value {bad} does not fit columns {first}-{last}")
    rest = a.copy()  # a // 10**j at the j-th digit
    # columns left of the longest number and its sign keep what the buffer holds
    for j in range(min(width, int(need.max(initial=0)))):
        col = last - 1 - j  # 0-based column of the j-th digit from the right
        digit = rest % 10
        rest //= 10
        is_digit = j < ndig
        is_sign = neg & (j == ndig)
        buf[:, col] = np.where(is_digit, ZERO + digit, np.where(is_sign, MINUS, buf[:, col]))


def put_text(buf: np.ndarray, first: int, text: np.ndarray | str) -> None:
    """Write ASCII text (one per row, or one for all) starting at 1-based column ``first``."""
    if isinstance(text, str):
        b = np.frombuffer(text.encode("ascii"), np.uint8)
        buf[:, first - 1:first - 1 + b.size] = b
        return
    arr = np.asarray(text, dtype="S")
    w = arr.dtype.itemsize
    raw = np.frombuffer(arr.tobytes(), np.uint8).reshape(arr.size, w)
    raw = np.where(raw == 0, SPACE, raw)
    buf[:, first - 1:first - 1 + w] = raw


def level_records(fields: dict[str, np.ndarray]) -> np.ndarray:
    """(N, LEVEL_WIDTH + 1) uint8 level records (the last column blank, as in NCEI's files).

    ``fields``: integers in the file's units for every field of the reader's
    ``LEVEL_FIELDS`` and the QC flag characters (uint8) of every ``FLAG_COLUMNS`` entry.
    """
    n = np.asarray(fields["pressure"]).size
    buf = np.full((n, LEVEL_WIDTH + 1), SPACE, np.uint8)
    for name, (first, last) in LEVEL_FIELDS.items():
        put_int(buf, first, last, fields[name])
    for name, col in FLAG_COLUMNS.items():
        buf[:, col - 1] = fields[name]
    return buf


def header_records(station_id, times: np.ndarray, reltime, numlev, lat, lon,
                   p_src: str = "ncdc-gts") -> np.ndarray:
    """(S, HEADER_WIDTH) uint8 header records; lat/lon in degrees, reltime HHMM."""
    t = np.asarray(times, dtype="datetime64[ns]")
    ints = {**calendar_fields(t), "reltime": reltime, "numlev": numlev,
            "lat": np.round(np.asarray(lat) * COORD_SCALE).astype(np.int64),
            "lon": np.round(np.asarray(lon) * COORD_SCALE).astype(np.int64)}
    buf = np.full((len(t), HEADER_WIDTH), SPACE, np.uint8)
    buf[:, 0] = ord("#")
    first, last = HEADER_TEXT["id"]
    put_text(buf, first, np.asarray(station_id, dtype=f"S{last - first + 1}"))
    first, last = HEADER_TEXT["p_src"]
    put_text(buf, first, p_src.ljust(last - first + 1)[:last - first + 1])
    for name, (first, last) in HEADER_FIELDS.items():
        (_zero_pad if name in ZERO_PADDED else put_int)(buf, first, last, ints[name])
    return buf


def _zero_pad(buf, first, last, values):
    v = np.asarray(values, np.int64)
    for j in range(last - first + 1):
        buf[:, last - 1 - j] = ZERO + (v // 10 ** j) % 10


def station_file_bytes(headers: np.ndarray, levels: np.ndarray, numlev: np.ndarray) -> bytes:
    """One station file: each header row followed by its ``numlev`` level rows."""
    hdr = np.concatenate([headers, np.full((len(headers), 1), 10, np.uint8)], axis=1)
    lev = np.concatenate([levels, np.full((len(levels), 1), 10, np.uint8)], axis=1)
    hb, lb = hdr.tobytes(), lev.tobytes()
    hw, lw = hdr.shape[1], lev.shape[1]
    ends = np.cumsum(numlev)
    starts = ends - numlev
    parts = []
    for s in range(len(headers)):
        parts.append(hb[s * hw:(s + 1) * hw])
        parts.append(lb[starts[s] * lw:ends[s] * lw])
    return b"".join(parts)


def station_list_bytes(ids, lat, lon, elev, names, first_year, last_year, nobs) -> bytes:
    """IGRA2 station list: ID 1-11, LAT 13-20, LON 22-30, ELEV 32-37, STATE 39-40,
    NAME 42-71, FSTYEAR 73-76, LSTYEAR 78-81, NOBS 83-88."""
    lines = []
    for i in range(len(ids)):
        lines.append(f"{ids[i]:<11s} {lat[i]:8.4f} {lon[i]:9.4f} {elev[i]:6.1f}    "
                     f"{names[i][:30]:<30s} {first_year:4d} {last_year:4d} {nobs[i]:6d}")
    return ("\n".join(lines) + "\n").encode("ascii")


def gauge_csv_bytes(station_ids: np.ndarray, times: np.ndarray, tenths: np.ndarray,
                    present: np.ndarray, empty: np.ndarray) -> bytes:
    """CSV ``station,time,rain_mm``; rows station-major, then time.

    tenths: (T, S) int rain in 0.1 mm; present: (T, S) bool (False = row absent);
    empty: (T, S) bool (row written with an empty rain_mm field).
    """
    ids = np.asarray(station_ids, dtype="S")
    wid = ids.dtype.itemsize
    tstr = np.datetime_as_string(np.asarray(times, dtype="datetime64[ns]"), unit="m").astype("S16")
    rows_s, rows_t = np.nonzero(present.T)  # station-major
    n = rows_s.size
    vw = 7  # value field width, padded on the left with PAD bytes then removed
    width = wid + 1 + 16 + 1 + vw + 1
    buf = np.full((n, width), PAD, np.uint8)
    id_raw = np.frombuffer(ids.tobytes(), np.uint8).reshape(ids.size, wid)
    buf[:, :wid] = id_raw[rows_s]
    buf[:, wid] = ord(",")
    t_raw = np.frombuffer(tstr.tobytes(), np.uint8).reshape(tstr.size, 16)
    buf[:, wid + 1:wid + 17] = t_raw[rows_t]
    buf[:, wid + 17] = ord(",")
    v = tenths[rows_t, rows_s].astype(np.int64)
    emp = empty[rows_t, rows_s]
    neg = v < 0
    a = np.abs(v)
    c0 = wid + 18  # first column of the value field (0-based)
    last = c0 + vw - 1
    buf[:, last] = ZERO + a % 10
    buf[:, last - 1] = DOT
    ip = a // 10
    ndig = np.ones(n, np.int64)
    for j in range(vw - 2):
        col = last - 2 - j
        if j == 0:
            buf[:, col] = ZERO + ip % 10
            continue
        has = ip >= 10 ** j
        buf[:, col] = np.where(has, ZERO + (ip // 10 ** j) % 10, PAD)
        ndig += has
    sign_col = last - 2 - ndig
    buf[np.flatnonzero(neg), sign_col[neg]] = MINUS
    buf[emp, c0:last + 1] = PAD
    buf[:, -1] = 10
    flat = buf.ravel()
    header = b"station,time,rain_mm\n"
    return header + flat[flat != PAD].tobytes()
