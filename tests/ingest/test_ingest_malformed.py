"""Malformed IGRA2 input: errors naming file:line and value, counted drops under skip, fuzzing."""
import re

import numpy as np

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.common.errors import InvalidSoundingError
from pipeline.readers.igra2 import parse_igra2

H1 = b"#AUM00011035 2015 01 23 12 1134    3 ncdc-gts           482333   163500\n"
L1 = b"21 -9999  99200B-9999    38B-9999    22   300    50 \n"
L2 = b"10 -9999  92500   763B    6B-9999     2   340   120 \n"
L3 = b"10 -9999  50000  5470B -265B-9999    80   140    60 \n"
H2 = b"#AUM00011035 2015 01 24 00 2330    1 ncdc-gts           482333   163500\n"
GOOD = H1 + L1 + L2 + L3 + H2 + L3


def test_good_block_parses():
    r = parse_igra2(GOOD, "f.txt")
    assert len(r.soundings) == 2 and len(r.levels) == 4


@pytest.mark.parametrize("bad, line, words", [
    (H1 + L1 + L2[:30] + b"\n" + L3 + H2 + L3, 3, "must be 51 characters"),  # truncated line
    (H1 + L1 + L2.replace(b"  763B", b"  7X3B") + L3 + H2 + L3, 3, "GPH"),  # letters in a number
    (H1.replace(b"    3 ncdc", b"    4 ncdc") + L1 + L2 + L3 + H2 + L3, 1, "NUMLEV=4 but 3"),  # wrong count
    (H1 + L1 + L2 + L3 + H2.replace(b"2015 01 24", b"2015 02 30") + L3, 5, "not a valid date"),
    (H1 + L1 + L2.replace(b"763B", b"763Z") + L3 + H2 + L3, 3, "QC flag ZFLAG"),
    (L3 + GOOD, 1, "before the first header"),
])
def test_malformed_error_names_file_line_and_text(bad, line, words):
    with pytest.raises(InvalidSoundingError) as err:
        parse_igra2(bad, "raw/x-data.txt", on_malformed="error")
    msg = str(err.value)
    assert msg.startswith(f"raw/x-data.txt:{line}: "), msg
    assert words in msg
    assert re.search(r": '.*'$", msg)  # the offending record text is quoted


def test_skip_policy_drops_and_counts():
    bad = H1 + L1 + L2.replace(b"  763B", b"  7X3B") + L3 + H2 + L3
    r = parse_igra2(bad, "f.txt", on_malformed="skip")
    assert len(r.soundings) == 1 and str(r.soundings["time"].iloc[0]) == "2015-01-24 00:00:00"
    assert r.counts["qc_malformed_soundings"] == 1 and r.counts["qc_malformed_lines"] == 1


def _mutate(data: bytes, ops) -> bytes:
    lines = data.split(b"\n")
    for kind, i, j, ch in ops:
        k = i % len(lines)
        ln = bytearray(lines[k])
        if kind == 0 and ln:  # replace a character
            ln[j % len(ln)] = ch
        elif kind == 1:  # truncate
            ln = ln[: j % (len(ln) + 1)]
        elif kind == 2:  # insert
            ln.insert(j % (len(ln) + 1), ch)
        elif kind == 3:  # duplicate or drop a line
            lines.insert(k, bytes(ln)) if ch % 2 else lines.pop(k)
            continue
        lines[k] = bytes(ln)
    return b"\n".join(lines)


OPS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 200),
                         st.sampled_from(list(b"0123456789 -#ABXZ.\r\t") + [0, 255])), min_size=1, max_size=10)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_fuzzed_records_raise_only_documented_errors(ops):
    data = _mutate(GOOD * 3, ops)  # 18 lines, up to 10 mutations: 500 examples -> thousands of bad lines
    try:
        r = parse_igra2(data, "fuzz.txt", on_malformed="error")
    except InvalidSoundingError as err:
        assert str(err).startswith("fuzz.txt:")
    else:
        assert len(r.levels) == int(r.levels["profile"].size)
    r = parse_igra2(data, "fuzz.txt", on_malformed="skip")  # skip never raises
    assert len(r.soundings) <= 6 + r.counts["qc_soundings_read"]
    # every kept sounding still has level records and a valid time
    assert (np.bincount(r.levels["profile"], minlength=len(r.soundings)) > 0).all()
    assert r.soundings["time"].notna().all()
