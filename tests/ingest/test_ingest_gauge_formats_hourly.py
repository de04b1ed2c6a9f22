"""IEM ASOS/AWOS CSV and NOAA GHCNh PSV hourly gauge readers (pipeline/readers/gauge_formats.py).

No real IEM ASOS or GHCNh file is available to the project: the two sample files in
tests/data/gauges (iem_asos_handmade.csv, ghcnh_handmade.psv) were written by hand from
the published format documentation (IEM's asos.py download service columns; NOAA's GHCNh
PSV documentation) and are NOT real observations. Expected values below are worked by
hand from their text: inches x 25.4 = mm; reports in the hour ending at their time rounded
up to the hour, the hour's value the largest valid report.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.common.errors import InvalidGaugeError
from pipeline.readers import gauge_formats as gf

DATA = Path(__file__).resolve().parents[1] / "data" / "gauges"
IEM = DATA / "iem_asos_handmade.csv"
GHCNH = DATA / "ghcnh_handmade.psv"


def _series(df, station):
    part = df[df["station"] == station]
    return dict(zip(part["time"].dt.strftime("%d %H:%M"), part["rain_mm"]))


def test_iem_asos_inches_trace_missing_and_hourly_aggregation():
    df, counts = gf.read_gauge_file(IEM, "iem-asos")
    dsm = _series(df, "DSM")
    assert dsm["01 12:00"] == 0.0  # 11:54 report, 0.00 in
    assert dsm["01 13:00"] == pytest.approx(0.05 * 25.4)  # 12:54 routine, 0.05 in = 1.27 mm
    assert dsm["01 14:00"] == pytest.approx(0.10 * 25.4)  # 13:20 special 0.02 and 13:54 routine 0.10: max
    assert dsm["01 15:00"] == 0.0  # T: trace
    assert np.isnan(dsm["01 16:00"])  # M: missing, not 0
    assert _series(df, "AMW") == {"01 13:00": pytest.approx(0.33 * 25.4)}  # 12:55 value, 13:00 M skipped
    assert counts == {"qc_malformed_records": 0, "qc_trace": 1, "qc_missing": 2}
    assert gf.FORMAT_UNITS["iem-asos"] == "inch"


def test_ghcnh_mm_quality_codes_and_trace():
    df, counts = gf.read_gauge_file(GHCNH, "ghcnh")
    s = _series(df, "USW00014933")
    assert s["01 13:00"] == pytest.approx(1.3)
    assert s["01 14:00"] == pytest.approx(2.5)  # 13:20 FM-16 0.5 and 13:54 FM-15 2.5: max
    assert s["01 15:00"] == 0.0  # measurement code T: trace
    assert np.isnan(s["01 16:00"])  # blank: missing
    assert np.isnan(s["01 17:00"])  # quality code L (failed check): 99.9 not used
    assert s["01 18:00"] == pytest.approx(0.8)  # quality code 5 passed
    assert counts == {"qc_malformed_records": 0, "qc_trace": 1, "qc_missing": 1, "qc_flagged": 1}


def test_malformed_lines_name_file_and_line(tmp_path):
    bad = tmp_path / "a.csv"
    bad.write_text("station,valid,lon,lat,p01i\nDSM,2023-07-01 12:54,-93.6,41.5,0.05\nDSM,yesterday,-93.6,41.5,0.1\n")
    with pytest.raises(InvalidGaugeError, match=r"a\.csv:3: valid must be 'YYYY-MM-DD HH:MM'"):
        gf.read_gauge_file(bad, "iem-asos")
    df, counts = gf.read_gauge_file(bad, "iem-asos", on_malformed="skip")
    assert counts["qc_malformed_records"] == 1 and len(df) == 1
    lines = GHCNH.read_text().splitlines()
    p = tmp_path / "b.psv"
    p.write_text("\n".join(lines[:2] + [lines[2].replace("|1.3|", "|1,3|")]) + "\n")
    with pytest.raises(InvalidGaugeError, match=r"b\.psv:3: precipitation must be a number of mm"):
        gf.read_gauge_file(p, "ghcnh")
    with pytest.raises(InvalidGaugeError, match=r"not a GHCNh PSV file"):
        gf.read_gauge_file(IEM, "ghcnh")


def test_plausibility_refuses_values_in_another_unit(tmp_path):
    """A month of hourly 'inches' whose wet hours have a median of 2 (50.8 mm): millimetres."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2023-07-01 00:54", periods=800, freq="h")
    mm_values = np.where(rng.random(800) < 0.2, rng.gamma(2.0, 1.0, 800) + 1.0, 0.0)
    body = "station,valid,lon,lat,p01i\n" + "".join(f"DSM,{x:%Y-%m-%d %H:%M},-93.6,41.5,{v:.2f}\n"
                                                     for x, v in zip(t, mm_values))
    p = tmp_path / "mm_as_inches.csv"
    p.write_text(body)
    with pytest.raises(InvalidGaugeError, match=r"mm_as_inches\.csv:1: values read as 'inch' look like another unit"):
        gf.read_gauge_file(p, "iem-asos")
    ok = tmp_path / "inches.csv"  # the same rain written in inches is accepted
    ok.write_text("station,valid,lon,lat,p01i\n" + "".join(f"DSM,{x:%Y-%m-%d %H:%M},-93.6,41.5,{v / 25.4:.2f}\n"
                                                          for x, v in zip(t, mm_values)))
    df, _ = gf.read_gauge_file(ok, "iem-asos")
    assert len(df) == 800
    np.testing.assert_allclose(df["rain_mm"], np.round(mm_values / 25.4, 2) * 25.4, atol=1e-9)
