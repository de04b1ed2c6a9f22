"""What the short workflow jobs import and read: numpy calendar helpers equal to pandas, the
sealed effective config, and month jobs that start without pandas or jsonschema."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.common import times
from pipeline.common.config import SEAL_PREFIX, load_config, sealed_config_text, validate_config
from pipeline.common.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("month", ["2020-01", "2020-02", "2019-12", "2024-02", "1900-03", "2261-11"])
def test_month_calendar_equals_pandas(month):
    per = pd.Period(month, "M")
    assert times.month_start(month) == np.datetime64(per.start_time, "ns")
    assert times.month_start(month, 1) == np.datetime64((per + 1).start_time, "ns")
    assert times.month_start(month, -1) == np.datetime64((per - 1).start_time, "ns")
    assert times.month_index(month) == per.year * 12 + per.month - 1
    frames = pd.date_range(per.start_time, (per + 1).start_time - pd.Timedelta(hours=12), freq="12h")
    np.testing.assert_array_equal(times.month_frame_times(month), frames.values)
    hours = pd.date_range(per.start_time - pd.Timedelta(hours=11), (per + 1).start_time - pd.Timedelta(hours=1),
                          freq="h")
    got = times.time_range(times.month_start(month) - 11 * times.HOUR, times.month_start(month, 1) - times.HOUR)
    np.testing.assert_array_equal(got, hours.values)
    fields = times.calendar_fields(hours.values)
    for name in ("year", "month", "day", "hour"):
        np.testing.assert_array_equal(fields[name], getattr(hours, name).to_numpy())
    day0 = pd.Timestamp("1900-01-01")
    # the same float as pandas' nanosecond arithmetic; beyond 292 years from the origin,
    # where nanoseconds overflow, to the last bits
    np.testing.assert_allclose(times.hours_since(hours.values, np.datetime64(day0, "ns")),
                               ((hours - day0) / pd.Timedelta(hours=1)).to_numpy(float),
                               rtol=0 if month < "2192" else 1e-15)
    assert np.datetime_as_string(hours.values[:3], unit="m").tolist() == \
        list(hours[:3].strftime("%Y-%m-%dT%H:%M"))


@pytest.mark.parametrize("bad", ["2020-13", "2020-00", "2020", "20-01", "2020-01-01", "March 2020"])
def test_parse_month_rejects(bad):
    with pytest.raises(ValueError, match="is not a month YYYY-MM"):
        times.parse_month(bad)
    assert times.parse_month("2020-3") == "2020-03"


def _sealed(tmp_path, config=None) -> Path:
    config = load_config(REPO / "config.yaml") if config is None else config
    path = tmp_path / "config-sealed.yaml"
    path.write_text(sealed_config_text(config))
    return path


def test_sealed_config_reads_as_validated(tmp_path):
    path = _sealed(tmp_path)
    text = path.read_text()
    assert text.startswith(SEAL_PREFIX)
    body = yaml.safe_load(text.split("\n", 1)[1])
    full = validate_config(json.loads(json.dumps(body)))
    assert load_config(path) == full == body
    # an override is validated as always
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(path, {"train": {"epochs": -1}})


def test_broken_seal_is_validated(tmp_path):
    path = _sealed(tmp_path)
    text = path.read_text()
    # an edited value under an intact-looking seal: validated again, and rejected
    edited = text.replace("  epochs: ", "  epochs: -", 1)
    assert edited != text
    path.write_text(edited)
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(path)
    # a wrong seal over a valid body: validated again, and accepted
    head, body = text.split("\n", 1)
    path.write_text(SEAL_PREFIX + "0" * 64 + "\n" + body)
    assert load_config(path) == yaml.safe_load(body)


def test_sealed_config_refuses_invalid():
    config = load_config(REPO / "config.yaml")
    config["frames"]["step_hours"] = "twelve"
    with pytest.raises(ConfigError, match="frames.step_hours"):
        sealed_config_text(config)


def test_month_job_imports_neither_pandas_nor_jsonschema(tmp_path):
    """A nature-run month job on the workflow's sealed config loads neither pandas, nor
    jsonschema, nor xarray (their start-up is most of a month job's CPU)."""
    cfg = _sealed(tmp_path)
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['x', '--config', {str(cfg)!r}, '--out', {str(tmp_path / 'raw')!r}, '--month', '2020-02',"
        " '--no-progress']\n"
        "from pipeline.nature_run.generator import main\n"
        "rc = main()\n"
        "print('LOADED', 'pandas' in sys.modules, 'jsonschema' in sys.modules, 'xarray' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert "LOADED False False False" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "raw" / "gauges" / "2020-02.csv").stat().st_size > 0
    assert (tmp_path / "raw" / "truth" / "2020-02.nc").stat().st_size > 0
