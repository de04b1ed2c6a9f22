"""IGRA v2 "derived parameters" files (``<ID>-drvd.txt``), read as soundings.

NCEI ``igra2-derived-format.txt``: one 157-character header per sounding, then NUMLEV
151-character level records of 19 fields, 7 characters each with one blank between::

    header  HEADREC 1 '#', ID 2-12, YEAR 14-17, MONTH 19-20, DAY 22-23, HOUR 25-26,
            RELTIME 28-31, NUMLEV 33-36, then PW, inversion, mixing-layer, LCL, LFC,
            LNB heights and stability indices (not used here)
    level   PRESS 1-7 (Pa), REPGPH 9-15 (m), CALCGPH 17-23 (m), TEMP 25-31 (0.1 K),
            TEMPGRAD, PTEMP, PTEMPGRAD, VTEMP, VPTEMP, VAPPRESS 73-79 (0.001 hPa),
            SATVAP, REPRH 89-95 (0.1 %), CALCRH 97-103 (0.1 %), RHGRAD,
            UWND 113-119 (0.1 m/s), UWDGRAD, VWND 129-135 (0.1 m/s), VWNDGRAD, N

-99999 is missing. The header carries no position: coordinates come from the IGRA2
station list (``--station-list``), like the data format's mobile platforms. Levels keep
the reported height (REPGPH; the NCEI-computed CALCGPH is not an observation) and the
reported relative humidity (REPRH, else CALCRH); the wind components become speed and
the direction the wind blows from. Temperatures are converted from kelvin with pint.
Malformed records follow the data reader's policy (:func:`pipeline.readers.igra2.parse_igra2`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.readers.igra2 import (RawSoundings, gather, parse_fields, resolve_malformed, split_lines,
                                    trim_trailing_blanks)

HEADER_WIDTH = 157
LEVEL_WIDTH = 151
MISSING = -99999
HEADER_FIELDS = {"year": (14, 17), "month": (19, 20), "day": (22, 23), "hour": (25, 26),
                 "reltime": (28, 31), "numlev": (33, 36)}
LEVEL_NAMES = ["press", "repgph", "calcgph", "temp", "tempgrad", "ptemp", "ptempgrad", "vtemp", "vptemp",
               "vappress", "satvap", "reprh", "calcrh", "rhgrad", "uwnd", "uwdgrad", "vwnd", "vwndgrad", "n"]
LEVEL_FIELDS = {name: (8 * i + 1, 8 * i + 7) for i, name in enumerate(LEVEL_NAMES)}


def is_derived(data: bytes) -> bool:
    """True when the first header of ``data`` has the derived format's 157 characters."""
    first = data.lstrip()[:400].split(b"\n", 1)[0].rstrip(b"\r \t")
    return first.startswith(b"#") and len(first) == HEADER_WIDTH


def parse_igra2_derived(data: bytes, path: str | Path = "<bytes>", on_malformed: str = "error") -> RawSoundings:
    """Parse the bytes of an IGRA v2 derived-parameter file into :class:`RawSoundings`."""
    from metpy.units import units

    counts = {"qc_soundings_read": 0, "qc_position_sentinel": 0, "qc_malformed_soundings": 0, "qc_malformed_lines": 0,
              "qc_soundings_without_levels": 0, "qc_missing_hour_dropped": 0}
    buffer, starts, lengths = split_lines(data)
    buffer = np.concatenate((buffer, np.full(HEADER_WIDTH, 32, np.uint8)))  # records are wider than the data format's
    slen = trim_trailing_blanks(buffer, starts, lengths)
    keep = slen > 0
    line_no = np.flatnonzero(keep) + 1
    starts, lengths, slen = starts[keep], lengths[keep], slen[keep]
    is_header = buffer[starts] == ord("#")
    h_idx, l_idx = np.flatnonzero(is_header), np.flatnonzero(~is_header)
    bad_reason: dict[int, str] = {}

    def mark(mask, idx, reason):
        for i in idx[np.asarray(mask, bool)]:
            bad_reason.setdefault(int(i), reason)

    hrows = gather(buffer, starts[h_idx], np.minimum(slen[h_idx], HEADER_WIDTH), HEADER_WIDTH)
    mark(slen[h_idx] != HEADER_WIDTH, h_idx, f"derived-format header must be {HEADER_WIDTH} characters")
    hv, hbad = parse_fields(hrows, HEADER_FIELDS)
    for name, (a, b) in HEADER_FIELDS.items():
        mark(hbad[name], h_idx, f"header field {name.upper()} (columns {a}-{b}) is not an integer")
    lrows = gather(buffer, starts[l_idx], np.minimum(slen[l_idx], LEVEL_WIDTH), LEVEL_WIDTH)
    mark(slen[l_idx] != LEVEL_WIDTH, l_idx, f"derived-format level record must be {LEVEL_WIDTH} characters")
    lv, lbad = parse_fields(lrows, LEVEL_FIELDS)
    for name, (a, b) in LEVEL_FIELDS.items():
        mark(lbad[name], l_idx, f"level field {name.upper()} (columns {a}-{b}) is not an integer")
    hour = hv["hour"]
    mark((hour != 99) & ((hour < 0) | (hour > 23)), h_idx, "HOUR must be 00-23 or 99")
    dates = pd.to_datetime(pd.DataFrame({"year": hv["year"], "month": hv["month"], "day": hv["day"]}),
                           errors="coerce")
    mark(np.asarray(dates.isna()), h_idx, "YEAR/MONTH/DAY is not a valid date")
    owner = np.searchsorted(h_idx, l_idx, side="right") - 1
    mark(owner < 0, l_idx, "level record before the first header")
    found = np.bincount(owner[owner >= 0], minlength=h_idx.size) if h_idx.size else np.zeros(0, np.int64)
    bad_lines, bad_sounding, empty = resolve_malformed(
        path, bad_reason, found, hv["numlev"], h_idx, l_idx, owner, is_header.size, line_no, on_malformed, counts,
        lambda i: bytes(buffer[starts[i]:starts[i] + min(int(lengths[i]), 80)]))
    no_hour = hour == 99  # the derived format has no usable release time convention here
    counts["qc_missing_hour_dropped"] = int((no_hour & ~bad_sounding & ~empty).sum())
    keep_s = ~bad_sounding & ~empty & ~no_hour
    new_id = np.cumsum(keep_s) - 1
    sel = np.flatnonzero(keep_s)
    station = (np.char.strip(np.char.decode(hrows[sel, 1:12].copy().view("S11").ravel(), "latin-1"))
               if sel.size else np.array([], str))
    time = (np.asarray(dates.values, dtype="datetime64[ns]")[sel]
            + (hour[sel] * 60).astype("timedelta64[m]").astype("timedelta64[ns]"))
    soundings = pd.DataFrame({"station": station.astype(object), "time": time, "lat": np.nan, "lon": np.nan,
                              "file": str(path), "line": line_no[h_idx[sel]].astype(np.int64)})
    lkeep = (owner >= 0) & ~bad_lines[l_idx]
    lkeep[lkeep] = keep_s[owner[lkeep]]

    def scaled(name: str, scale: float) -> np.ndarray:
        raw = lv[name][lkeep]
        out = raw.astype(np.float64) / scale
        out[raw == MISSING] = np.nan
        return out

    temp_c = units.Quantity(scaled("temp", 10.0), "K").to("degC").magnitude
    rh = scaled("reprh", 10.0)
    rh = np.where(np.isfinite(rh), rh, scaled("calcrh", 10.0))
    u, v = scaled("uwnd", 10.0), scaled("vwnd", 10.0)
    speed = np.hypot(u, v)
    direction = np.mod(270.0 - np.rad2deg(np.arctan2(v, u)), 360.0)  # where the wind blows from
    direction[speed == 0] = 0.0
    n = int(lkeep.sum())
    levels = pd.DataFrame({
        "profile": new_id[owner[lkeep]].astype(np.int64),
        "line": line_no[l_idx[lkeep]].astype(np.int64),
        "lvltyp2": np.zeros(n, np.int8),
        "pressure": scaled("press", 100.0),
        "geopotential_height": scaled("repgph", 1.0),
        "temperature": temp_c,
        "relative_humidity": rh,
        "dewpoint_depression": np.full(n, np.nan),
        "dewpoint": np.full(n, np.nan),
        "wind_direction": direction,
        "wind_speed": speed,
    })
    return RawSoundings(soundings, levels, counts)
