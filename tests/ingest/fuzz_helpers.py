"""Mutations of real files for the readers' fuzz tests (tests/ingest/test_ingest_fuzz.py).

A mutation is a short list of byte-level edits of random lines: replace, truncate or
insert a character (digits, signs, separators, letters, a NUL, a byte that is not UTF-8),
duplicate or drop a line, or join it with the next one. Every edit is drawn from a
``numpy.random.Generator``, so a seed gives the same copies everywhere.
"""
from __future__ import annotations

import numpy as np

ALPHABET = list(b"0123456789 -+.,#:;ABTMXZe*\t\r\"") + [0, 0xB0, 0xE9, 0xFF]


def mutate(data: bytes, rng: np.random.Generator, max_edits: int = 6) -> bytes:
    lines = data.split(b"\n")
    for _ in range(int(rng.integers(1, max_edits + 1))):
        if not lines:
            break
        k = int(rng.integers(len(lines)))
        ln = bytearray(lines[k])
        kind = int(rng.integers(6))
        ch = ALPHABET[int(rng.integers(len(ALPHABET)))]
        j = int(rng.integers(len(ln) + 1))
        if kind == 0 and ln:
            ln[min(j, len(ln) - 1)] = ch
        elif kind == 1:
            ln = ln[:j]
        elif kind == 2:
            ln.insert(j, ch)
        elif kind == 3:
            lines.insert(k, bytes(ln))
            continue
        elif kind == 4:
            lines.pop(k)
            continue
        elif kind == 5 and k + 1 < len(lines):
            lines[k:k + 2] = [bytes(ln) + lines[k + 1]]
            continue
        lines[k] = bytes(ln)
    return b"\n".join(lines)
