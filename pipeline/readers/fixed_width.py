"""Vectorised reading of fixed-width text records (IGRA2 data and derived files, GHCN-Daily).

A file's bytes become a 2-D uint8 array of records and every field is decoded with array
arithmetic; there is no per-line Python work in the hot path:

- :func:`split_lines` finds the lines, :func:`gather` cuts them into an (n, width) array;
- :func:`parse_fields` decodes right-aligned signed integers in many fields at once;
- :class:`HeaderedRecords` holds a file of ``#`` header records each followed by its level
  records (the IGRA2 layouts), with the first-reason-wins register of malformed lines and
  the ``on_malformed`` policy (:meth:`HeaderedRecords.resolve`).
"""
from __future__ import annotations

import numpy as np

from pipeline.common.errors import InvalidSoundingError

SPACE = 32
MINUS = 45
ZERO = 48
TAB = 9


def split_lines(data: bytes, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``data`` into lines; returns (buffer, starts, lengths).

    ``buffer`` is ``data`` as uint8 with ``pad`` blanks appended, so fixed-width windows of
    up to ``pad`` columns past the last line stay in bounds. ``lengths`` exclude the
    terminator (LF or CRLF).
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
    buffer = np.concatenate((raw, np.full(pad, SPACE, dtype=np.uint8)))
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
        todo = todo[(last == SPACE) | (last == TAB)]
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

    ``fields``: name -> (first column, last column), 1-based inclusive. A good field is:
    blanks, an optional '-', at least one digit, nothing after the digits, i.e. its
    character classes (blank 0, minus 1, digit 2) never decrease, it holds at most one '-'
    and it ends with a digit. Returns ``(values int64, bad bool)`` per field.

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


def decode_text(rows: np.ndarray, first: int, last: int) -> np.ndarray:
    """Text in 1-based inclusive columns [first, last] of every row, stripped (latin-1: any byte decodes)."""
    if rows.shape[0] == 0:
        return np.array([], str)
    width = last - first + 1
    return np.char.strip(np.char.decode(rows[:, first - 1:last].copy().view(f"S{width}").ravel(), "latin-1"))


class HeaderedRecords:
    """The non-blank lines of a file of ``#`` header records, each followed by its level records.

    Attributes: ``line_no`` (1-based file line of each kept line), ``h_idx``/``l_idx``
    (indices of the header and level lines), ``owner`` (for each level line, the index into
    ``h_idx`` of the header above it; -1 before the first header) and ``bad_reason`` (line
    index -> first reason it is malformed).
    """

    def __init__(self, data: bytes, path, pad: int):
        self.path = path
        buffer, starts, lengths = split_lines(data, pad)
        slen = trim_trailing_blanks(buffer, starts, lengths)
        keep = slen > 0  # blank lines carry nothing and are ignored
        self.buffer = buffer
        self.line_no = np.flatnonzero(keep) + 1
        self.starts, self.lengths, self.slen = starts[keep], lengths[keep], slen[keep]
        is_header = buffer[self.starts] == ord("#")
        self.n_lines = int(is_header.size)
        self.h_idx, self.l_idx = np.flatnonzero(is_header), np.flatnonzero(~is_header)
        self.owner = np.searchsorted(self.h_idx, self.l_idx, side="right") - 1
        self.bad_reason: dict[int, str] = {}

    def mark(self, mask, idx: np.ndarray, reason: str) -> None:
        """Register ``reason`` for the lines ``idx[mask]`` (a line keeps its first reason)."""
        for i in idx[np.asarray(mask, bool)]:
            self.bad_reason.setdefault(int(i), reason)

    def text_of(self, i: int, limit: int | None = None) -> bytes:
        n = int(self.lengths[i]) if limit is None else min(int(self.lengths[i]), limit)
        return bytes(self.buffer[self.starts[i]:self.starts[i] + n])

    def records(self, idx: np.ndarray, width: int, fields: dict[str, tuple[int, int]], what: str,
                length_reason: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The lines ``idx`` as (n, width) records and their integer ``fields``; a line of
        another length than ``width`` or a field that is not an integer is marked."""
        rows = gather(self.buffer, self.starts[idx], np.minimum(self.slen[idx], width), width)
        self.mark(self.slen[idx] != width, idx, length_reason)
        values, bad = parse_fields(rows, fields)
        for name, (a, b) in fields.items():
            self.mark(bad[name], idx, f"{what} field {name.upper()} (columns {a}-{b}) is not an integer")
        return rows, values

    def resolve(self, numlev: np.ndarray, on_malformed: str, counts: dict, text_limit: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply the malformed-record policy after every check has marked its lines.

        Marks level lines before the first header and headers whose NUMLEV disagrees with
        the level records that follow; raises :class:`InvalidSoundingError` naming
        ``path:line`` and the text of the first bad line under ``on_malformed='error'``,
        else counts them. Returns (bad lines, soundings with a bad header or level line,
        soundings without levels) and fills ``counts`` (qc_malformed_lines,
        qc_malformed_soundings, qc_soundings_read, qc_soundings_without_levels).
        """
        h_idx, l_idx, owner = self.h_idx, self.l_idx, self.owner
        self.mark(owner < 0, l_idx, "level record before the first header")
        found = np.bincount(owner[owner >= 0], minlength=h_idx.size) if h_idx.size else np.zeros(0, np.int64)
        empty = found == 0
        for j in np.flatnonzero((found != numlev) & ~empty):
            self.bad_reason.setdefault(int(h_idx[j]),
                                       f"header says NUMLEV={numlev[j]} but {found[j]} level records follow")
        if self.bad_reason:
            first = min(self.bad_reason)
            if on_malformed == "error":
                shown = self.text_of(first, text_limit).decode("ascii", "replace")
                raise InvalidSoundingError(f"{self.path}:{int(self.line_no[first])}: {self.bad_reason[first]}: "
                                           f"{shown!r}")
            counts["qc_malformed_lines"] = len(self.bad_reason)
        bad_lines = np.zeros(self.n_lines, bool)
        bad_lines[list(self.bad_reason)] = True
        bad_sounding = bad_lines[h_idx].copy()
        np.logical_or.at(bad_sounding, owner[(owner >= 0) & bad_lines[l_idx]], True)
        counts["qc_malformed_soundings"] = int(bad_sounding.sum())
        counts["qc_soundings_read"] = int(h_idx.size)
        counts["qc_soundings_without_levels"] = int((empty & ~bad_sounding).sum())
        return bad_lines, bad_sounding, empty

    def kept_levels(self, bad_lines: np.ndarray, keep_sounding: np.ndarray) -> np.ndarray:
        """Level lines (a mask over ``l_idx``) that are good and belong to a kept sounding."""
        lkeep = (self.owner >= 0) & ~bad_lines[self.l_idx]
        lkeep[lkeep] = keep_sounding[self.owner[lkeep]]
        return lkeep


def scaled(raw: np.ndarray, scale: float, missing: tuple[int, ...]) -> np.ndarray:
    """Integer field values / ``scale`` as float64, NaN where the value is one of ``missing``."""
    out = raw.astype(np.float64) / scale
    out[np.isin(raw, missing)] = np.nan
    return out
