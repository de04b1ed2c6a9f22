"""Calendar arithmetic on numpy ``datetime64[ns]`` (UTC, tz-naive), without pandas.

The nature run's month jobs use these instead of pandas, so a job does not pay pandas'
start-up (about 0.4 s of CPU, for about 1.5 s of work; README "Performance"). The results
equal pandas' (``tests/test_startup.py``).
"""
from __future__ import annotations

import re

import numpy as np

HOUR = np.timedelta64(1, "h").astype("timedelta64[ns]")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def parse_month(month) -> str:
    """``'YYYY-MM'`` (also ``'YYYY-M'``) as the canonical ``'YYYY-MM'``; a ValueError naming
    the value otherwise."""
    m = _MONTH.match(str(month).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{month!r} is not a month YYYY-MM")
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"


def month_start(month: str, offset: int = 0) -> np.datetime64:
    """00 UTC on day 1 of ``month`` (plus ``offset`` months), as datetime64[ns]."""
    return (np.datetime64(parse_month(month), "M") + offset).astype("datetime64[ns]")


def month_index(month: str) -> int:
    """Months since 0000-01 (year * 12 + month - 1)."""
    year, mon = map(int, parse_month(month).split("-"))
    return year * 12 + mon - 1


def time_range(start, stop, step_hours: int = 1) -> np.ndarray:
    """datetime64[ns] times from ``start`` up to and including ``stop``, ``step_hours`` apart
    (like ``pandas.date_range(start, stop, freq=f"{step_hours}h")``)."""
    start = np.datetime64(start, "ns")
    stop = np.datetime64(stop, "ns")
    return np.arange(start, stop + np.timedelta64(1, "ns"), HOUR * int(step_hours))


def month_frame_times(month: str, step_hours: int = 12) -> np.ndarray:
    """Frame times inside a month, ``step_hours`` apart from 00 UTC on day 1 (as
    :func:`pipeline.common.config.month_frame_times`, as a datetime64[ns] array)."""
    return time_range(month_start(month), month_start(month, 1) - HOUR * int(step_hours), step_hours)


def calendar_fields(times) -> dict[str, np.ndarray]:
    """Year, month, day and hour (int64 arrays) of datetime64 ``times``."""
    t = np.asarray(times, dtype="datetime64[ns]")
    months = t.astype("datetime64[M]")
    days = t.astype("datetime64[D]")
    return {"year": months.astype("datetime64[Y]").astype(np.int64) + 1970,
            "month": months.astype(np.int64) % 12 + 1,
            "day": (days - months.astype("datetime64[D]")).astype(np.int64) + 1,
            "hour": (t.astype("datetime64[h]") - days.astype("datetime64[h]")).astype(np.int64)}


def hours_since(times, origin) -> np.ndarray:
    """Float hours from ``origin`` to each of ``times`` (nanosecond arithmetic, as pandas'
    ``(DatetimeIndex - Timestamp) / Timedelta(hours=1)``)."""
    t = np.asarray(times, dtype="datetime64[ns]")
    us = (t.astype("datetime64[us]") - np.datetime64(origin, "us")).astype(np.int64)
    if us.size and np.abs(us).max() >= 2 ** 63 // 1000:  # nanoseconds would overflow (292 years)
        return us / 3.6e9
    return (t - np.datetime64(origin, "ns")).astype(np.int64) / float(HOUR.astype(np.int64))
