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

from pipeline.readers.fixed_width import HeaderedRecords, decode_text, scaled
from pipeline.readers.igra2 import RawSoundings, check_policy

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
    check_policy(on_malformed)
    counts = {"qc_soundings_read": 0, "qc_position_sentinel": 0, "qc_malformed_soundings": 0, "qc_malformed_lines": 0,
              "qc_soundings_without_levels": 0, "qc_missing_hour_dropped": 0}
    rec = HeaderedRecords(data, path, HEADER_WIDTH + 8)
    hrows, hv = rec.records(rec.h_idx, HEADER_WIDTH, HEADER_FIELDS, "header",
                            f"derived-format header must be {HEADER_WIDTH} characters")
    _, lv = rec.records(rec.l_idx, LEVEL_WIDTH, LEVEL_FIELDS, "level",
                        f"derived-format level record must be {LEVEL_WIDTH} characters")
    hour = hv["hour"]
    rec.mark((hour != 99) & ((hour < 0) | (hour > 23)), rec.h_idx, "HOUR must be 00-23 or 99")
    dates = pd.to_datetime(pd.DataFrame({"year": hv["year"], "month": hv["month"], "day": hv["day"]}),
                           errors="coerce")
    rec.mark(np.asarray(dates.isna()), rec.h_idx, "YEAR/MONTH/DAY is not a valid date")
    bad_lines, bad_sounding, empty = rec.resolve(hv["numlev"], on_malformed, counts, text_limit=80)
    no_hour = hour == 99  # the derived format has no usable release time convention here
    counts["qc_missing_hour_dropped"] = int((no_hour & ~bad_sounding & ~empty).sum())
    keep = ~bad_sounding & ~empty & ~no_hour
    sel = np.flatnonzero(keep)
    time = (np.asarray(dates.values, dtype="datetime64[ns]")[sel]
            + (hour[sel] * 60).astype("timedelta64[m]").astype("timedelta64[ns]"))
    soundings = pd.DataFrame({"station": decode_text(hrows[sel], 2, 12).astype(object), "time": time,
                              "lat": np.nan, "lon": np.nan, "file": str(path),
                              "line": rec.line_no[rec.h_idx[sel]].astype(np.int64)})
    return RawSoundings(soundings, _levels_frame(rec, lv, rec.kept_levels(bad_lines, keep), keep), counts)


def _levels_frame(rec: HeaderedRecords, lv: dict, lkeep: np.ndarray, keep: np.ndarray) -> pd.DataFrame:
    """Kept level records as :class:`RawSoundings` levels: reported height and humidity, wind
    components as speed and direction, kelvin as degC (pint)."""
    from metpy.units import units

    def col(name: str, scale: float) -> np.ndarray:
        return scaled(lv[name][lkeep], scale, (MISSING,))

    temp_c = units.Quantity(col("temp", 10.0), "K").to("degC").magnitude
    rh = col("reprh", 10.0)
    rh = np.where(np.isfinite(rh), rh, col("calcrh", 10.0))
    u, v = col("uwnd", 10.0), col("vwnd", 10.0)
    speed = np.hypot(u, v)
    direction = np.mod(270.0 - np.rad2deg(np.arctan2(v, u)), 360.0)  # where the wind blows from
    direction[speed == 0] = 0.0
    n = int(lkeep.sum())
    return pd.DataFrame({
        "profile": (np.cumsum(keep) - 1)[rec.owner[lkeep]].astype(np.int64),
        "line": rec.line_no[rec.l_idx[lkeep]].astype(np.int64),
        "lvltyp2": np.zeros(n, np.int8),
        "pressure": col("press", 100.0),
        "geopotential_height": col("repgph", 1.0),
        "temperature": temp_c,
        "relative_humidity": rh,
        "dewpoint_depression": np.full(n, np.nan),
        "dewpoint": np.full(n, np.nan),
        "wind_direction": direction,
        "wind_speed": speed,
    })
