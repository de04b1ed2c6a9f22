"""Mutated copies of real files, per reader: only the project's errors naming ``file:line``,
or counted QC drops; never another exception.

The default run mutates each real file a few dozen times from a fixed seed (the same
cases every run); the slow campaign (``-m slow``) makes 10,000 copies per reader from a
seed that changes unless ``FUZZ_SEED`` fixes it (the seed is printed on failure).
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from pipeline.common.errors import InvalidGaugeError, InvalidSoundingError
from tests.ingest.fuzz_helpers import mutate

DATA = Path(__file__).resolve().parent.parent / "data"


def _aum_head(n: int = 8) -> bytes:
    lines = gzip.decompress((DATA / "igra2" / "AUM00011035-data.txt.gz").read_bytes()).split(b"\n")
    heads = [i for i, ln in enumerate(lines) if ln.startswith(b"#")]
    return b"\n".join(lines[:heads[n]]) + b"\n"


def _igra2(path, policy):
    from pipeline.readers.igra2 import read_igra2

    return read_igra2(path, policy).counts


def _wyoming(path, policy):
    from pipeline.readers.wyoming import read_wyoming

    return read_wyoming(path, policy).counts


def _station_list(path, policy):
    from pipeline.readers.igra2 import read_station_list

    read_station_list(path)
    return {}


def _gauge_csv(path, policy):
    from pipeline.readers.gauges import read_hourly

    return read_hourly(path, policy)[1]


def _knmi(path, policy):
    from pipeline.readers.gauge_formats import read_knmi_hourly

    return read_knmi_hourly(path, policy)[1]


def _ghcn_daily(path, policy):
    from pipeline.readers.gauges import read_ghcn_daily

    return read_ghcn_daily(path)[1]


def _gauge_csv_source() -> bytes:
    """Real KNMI De Bilt hours of January 2000 in the project's station,time,rain_mm layout."""
    from pipeline.readers.gauge_formats import read_knmi_hourly

    df, _ = read_knmi_hourly(DATA / "gauges" / "uurgeg_260_2000-01.txt")
    df = df.iloc[:120]
    return ("station,time,rain_mm\n" + "".join(
        f"{s},{t:%Y-%m-%dT%H:%M},{'' if np.isnan(r) else f'{r:.1f}'}\n"
        for s, t, r in zip(df["station"], df["time"], df["rain_mm"]))).encode()


def _knmi_source() -> bytes:
    lines = (DATA / "gauges" / "uurgeg_260_2000-01.txt").read_bytes().split(b"\n")
    return b"\n".join(lines[:33 + 240]) + b"\n"  # legend, header and ten days


#: reader name -> (source bytes factory, file name, reader(path, policy) -> counts, error class)
READERS = {
    "igra2": (_aum_head, "AUM00011035-data.txt", _igra2, InvalidSoundingError),
    "igra2-derived": (lambda: (DATA / "igra2" / "USM00070026-drvd.txt").read_bytes(), "USM00070026-drvd.txt",
                      _igra2, InvalidSoundingError),
    "igra2-station-list": (lambda: (DATA / "synthetic" / "igra2-station-list-head.txt").read_bytes(),
                           "igra2-station-list.txt", _station_list, InvalidSoundingError),
    "wyoming-csv": (lambda: (DATA / "wyoming" / "wyoming_csv_BOI_2010-12-09_12Z.csv").read_bytes(), "w.csv",
                    _wyoming, InvalidSoundingError),
    "wyoming-text": (lambda: (DATA / "wyoming" / "20110522_OUN_12Z.txt").read_bytes(), "w.txt",
                     _wyoming, InvalidSoundingError),
    "wyoming-html": (lambda: (DATA / "wyoming" / "wyoming_html_OUN_1999-05-04_00Z_replot.html").read_bytes(),
                     "w.html", _wyoming, InvalidSoundingError),
    "gauge-csv": (_gauge_csv_source, "2000-01.csv", _gauge_csv, InvalidGaugeError),
    "knmi-hourly": (_knmi_source, "uurgeg_260.txt", _knmi, InvalidGaugeError),
    "ghcn-daily": (lambda: (DATA / "gauges" / "USC00411885.dly").read_bytes(), "USC00411885.dly",
                   _ghcn_daily, InvalidGaugeError),
}


def run_campaign(name: str, n: int, seed: int, tmp_path: Path) -> dict:
    """Read ``n`` mutated copies under both policies; returns how the cases ended."""
    make, fname, reader, error = READERS[name]
    source = make()
    rng = np.random.default_rng(seed)
    path = tmp_path / fname
    where = re.compile(re.escape(str(path)) + r":\d+: \S")
    ended = {"read": 0, "project_error": 0}
    for case in range(n):
        path.write_bytes(mutate(source, rng))
        for policy in ("error", "skip"):
            try:
                counts = reader(path, policy)
            except error as err:
                assert where.match(str(err)), f"{name} case {case} (seed {seed}, {policy}): {err}"
                ended["project_error"] += 1
            except Exception as err:  # anything else is a bug: show the case
                raise AssertionError(f"{name} case {case} (seed {seed}, {policy}): "
                                     f"{type(err).__name__}: {err}") from err
            else:
                assert all(isinstance(v, int) and v >= 0 for k, v in counts.items() if k.startswith("qc_"))
                ended["read"] += 1
    return ended


@pytest.mark.parametrize("name", sorted(READERS))
def test_mutated_real_files_deterministic(name, tmp_path):
    ended = run_campaign(name, 40, zlib.crc32(name.encode()), tmp_path)
    assert sum(ended.values()) == 80


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(READERS))
def test_mutated_real_files_campaign(name, tmp_path):
    seed = int(os.environ.get("FUZZ_SEED", np.random.SeedSequence().entropy % 2**32))
    ended = run_campaign(name, 10_000, seed, tmp_path)
    assert sum(ended.values()) == 20_000
