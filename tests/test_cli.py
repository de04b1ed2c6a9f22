"""The command-line convention (pipeline/common/cli.py) holds for every entry point.

Every command: ``--help`` exits 0, ``--version`` prints the version, a project error (a
malformed input file, a bad config value) is one stderr line ``error: ...`` naming the
file and line or the key, with exit status 2 and no traceback.
"""
from __future__ import annotations

import argparse
import gzip
import importlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from unittest import mock

import pytest
import yaml

from pipeline import __version__

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

COMMANDS = {  # module -> console script of [project.scripts]
    "pipeline.ingest": "upstream-rain-ingest",
    "pipeline.nature_run": "upstream-rain-nature-run",
    "pipeline.gridding": "upstream-rain-grid",
    "pipeline.dataset": "upstream-rain-dataset",
    "training.train": "upstream-rain-train",
    "training.predict": "upstream-rain-predict",
    "training.export": "upstream-rain-export",
    "training.memory": "upstream-rain-memory",
    "training.tune": "upstream-rain-tune",
    "evaluation.evaluate": "upstream-rain-evaluate",
    "evaluation.advection": "upstream-rain-advection",
    "evaluation.attribution": "upstream-rain-attribution",
}
CONVENTION = sorted(COMMANDS)
WITH_PROGRESS = ["pipeline.nature_run", "pipeline.dataset", "training.train", "training.predict", "training.tune",
                 "evaluation.evaluate", "evaluation.attribution"]
WITH_THREADS = ["pipeline.nature_run", "pipeline.gridding", "pipeline.dataset", "training.train", "training.predict",
                "training.tune", "evaluation.attribution"]


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd or ROOT, env=env,
                          timeout=300)


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.stderr[-3000:]
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


MAIN_MODULE = {"pipeline.nature_run": "pipeline.nature_run.generator", "pipeline.gridding": "pipeline.gridding.cli",
               "pipeline.dataset": "pipeline.dataset.assemble"}


def main_of(module):
    return importlib.import_module(MAIN_MODULE.get(module, module)).main


class _Parsed(Exception):
    pass


def parser_of(module) -> argparse.ArgumentParser:
    """The parser a command's main() builds (stopped at parse_args)."""
    def stop(self, *a, **k):
        raise _Parsed(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop), pytest.raises(_Parsed) as ex:
        main_of(module)([])
    return ex.value.args[0]


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_help_exits_0_and_names_the_program(module):
    r = run("-m", module, "--help")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith(f"usage: python -m {module}"), r.stdout[:200]


@pytest.mark.parametrize("module", CONVENTION)
def test_shared_flags_and_help_on_every_argument(module):
    ap = parser_of(module)
    assert ap.prog == f"python -m {module}"
    parsers = [ap]
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    for p in parsers:
        flags = {o for a in p._actions for o in a.option_strings}
        assert {"--log-level"} <= flags, p.prog
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction) or a.help == argparse.SUPPRESS:
                continue
            assert a.help, f"{p.prog}: {a.option_strings or a.dest} has no help"
    flags = {o for a in ap._actions for o in a.option_strings}
    assert "--version" in flags
    if module in WITH_PROGRESS:
        assert "--no-progress" in flags
    if module in WITH_THREADS:
        assert "--threads" in flags


@pytest.mark.parametrize("module", CONVENTION)
def test_version(module, capsys):
    with pytest.raises(SystemExit) as ex:
        main_of(module)(["--version"])
    assert ex.value.code == 0
    assert capsys.readouterr().out.strip() == f"python -m {module} {__version__}"


@pytest.mark.parametrize("sub", ["soundings", "gauges", "partition"])
def test_ingest_subcommand_help(sub):
    r = run("-m", "pipeline.ingest", sub, "--help")
    assert r.returncode == 0, r.stderr
    assert "--log-level" in r.stdout and "--out" in r.stdout
    assert ("--no-progress" in r.stdout) == (sub == "soundings")


def test_console_scripts_are_installed():
    bindir = Path(sysconfig.get_path("scripts"))
    if not (bindir / "upstream-rain-ingest").exists():
        pytest.skip("package not installed with its console scripts (make setup)")
    r = subprocess.run([str(bindir / "upstream-rain-grid"), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"upstream-rain-grid {__version__}"
    for script in COMMANDS.values():
        assert (bindir / script).exists(), script


# ----------------------------------------------------------------------------- project errors

def test_corrupted_igra2_file_is_one_line_naming_file_and_line(tmp_path):
    text = gzip.decompress((DATA / "igra2" / "AUM00011035-data.txt.gz").read_bytes()).decode("latin-1")
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if line.startswith("#")]
    lines = lines[:headers[2]]  # the first two soundings, complete
    k = headers[1] + 2  # a level record of the second sounding
    lines[k] = lines[k][:20] + "\n"  # truncated
    bad = tmp_path / "AUM00011035-data.txt"
    bad.write_text("".join(lines), encoding="latin-1")
    r = run("-m", "pipeline.ingest", "soundings", "--format", "igra2", "--no-progress",
            "--out", str(tmp_path / "out.nc"), str(bad))
    assert_one_line_error(r, f"{bad}:{k + 1}:")
    assert not (tmp_path / "out.nc").exists()


def test_gauge_csv_with_a_bad_line_is_one_line_naming_file_and_line(tmp_path):
    (tmp_path / "stations.csv").write_text("id,lat,lon,elevation_m\nA,50.0,10.0,100\n")
    month = tmp_path / "2020-02.csv"
    month.write_text("station,time,rain_mm\nA,2020-02-01T01:00,0.1\nA,2020-02-01T02:00,1.2x\n")
    r = run("-m", "pipeline.ingest", "gauges", "--stations", str(tmp_path / "stations.csv"),
            "--month", "2020-02", "--out", str(tmp_path / "g.nc"), str(month))
    assert_one_line_error(r, f"{month}:3:", "1.2x")


def test_bad_config_value_is_one_line_naming_the_key(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["qc"]["on_malformed"] = "sometimes"
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    r = run("-m", "pipeline.nature_run", "--config", str(cfg), "--out", str(tmp_path / "raw"), "--network-only")
    assert_one_line_error(r, "qc.on_malformed", "bad.yaml")
    r = run("-m", "training.memory", "--config", str(cfg), "--cells", "8", "8")
    assert_one_line_error(r, "qc.on_malformed")


def test_usage_errors_exit_2():
    r = run("-m", "pipeline.gridding", "--soundings", "s.nc", "--gauges", "g.nc", "--month", "2020-01",
            "--grid", "region3", "--out", "o.nc")
    assert r.returncode == 2 and "--grid" in r.stderr and "Traceback" not in r.stderr
    r = run("-m", "pipeline.dataset", "--grid", "region1,concat", "--out", "o.zarr", "--stats-out", "s.json", "f.nc")
    assert r.returncode == 2 and "one grid" in r.stderr and "Traceback" not in r.stderr
    r = run("-m", "pipeline.ingest", "soundings", "--levels", "500,850", "--out", "o.nc", "f.txt")
    assert r.returncode == 2 and "--levels" in r.stderr and "Traceback" not in r.stderr


def test_nature_run_workers_is_a_hidden_deprecated_alias(tmp_path):
    r = run("-m", "pipeline.nature_run", "--out", str(tmp_path / "raw"), "--network-only", "--workers", "1",
            "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "--workers is deprecated" in r.stderr
    assert (tmp_path / "raw" / "gauges" / "stations.csv").is_file()  # --config defaulted to config.yaml
    assert "--workers" not in run("-m", "pipeline.nature_run", "--help").stdout


def test_omp_wait_policy_is_set_in_one_place():
    hits = [p.relative_to(ROOT) for d in ("pipeline", "training", "evaluation") for p in (ROOT / d).rglob("*.py")
            if 'setdefault("OMP_WAIT_POLICY"' in p.read_text()]
    assert hits == [Path("training/__init__.py")]
    r = run("-c", "import os, training.train; print(os.environ['OMP_WAIT_POLICY'])")
    assert r.returncode == 0 and r.stdout.strip() == "PASSIVE", r.stderr


@pytest.mark.parametrize("overlay", sorted(p.name for p in (Path(__file__).parents[1] / "configs").glob("*.yaml")))
def test_every_shipped_config_overlay_validates_over_the_default(overlay):
    """configs/*.yaml are used as `--configfile config.yaml configs/X.yaml`: each, merged over
    the default config, passes the schema, and every key it sets arrives as given."""
    from pipeline.common.cli import DEFAULT_CONFIG
    from pipeline.common.config import load_config

    over = yaml.safe_load((Path(__file__).parents[1] / "configs" / overlay).read_text())
    cfg = load_config(DEFAULT_CONFIG, over)

    def leaves(d, prefix=()):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from leaves(v, prefix + (k,))
            else:
                yield prefix + (k,), v

    for path, value in leaves(over):
        got = cfg
        for k in path:
            got = got[k]
        assert got == value, (overlay, path)
