"""Start the workflow as the main job does, for the workflow benchmarks (bench_main_job.py,
bench_data_stages.py): this checkout's Snakefile and local profile, this interpreter's
environment first on PATH, output to WORKDIR/bench.log."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_workflow(workdir: Path, configfiles, cores: int, targets, extra=()) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configfiles), "--workflow-profile", str(REPO / "profiles" / "local"),
           "--cores", str(cores), *targets, *extra]
    log = open(workdir / "bench.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
