"""Start the workflow as the main job does, for the workflow benchmarks (bench_main_job.py,
bench_data_stages.py, bench_radar.py): this checkout's Snakefile and local profile, this interpreter's
environment first on PATH, output to WORKDIR/bench.log."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_workflow(workdir: Path, configfiles, cores: int, targets, extra=()) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configfiles), "--workflow-profile", str(REPO / "profiles" / "local"),
           "--cores", str(cores), *targets, *extra]
    Path(workdir).mkdir(parents=True, exist_ok=True)
    log = open(Path(workdir) / "bench.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def tree_rss(proc) -> int:
    """Resident memory of a process and all its descendants (bytes)."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_measured(workdir: Path, configfiles, cores: int, targets, extra=()) -> tuple[float, int]:
    """Run the workflow to ``targets``; its wall time (s) and the peak resident memory of the
    whole process tree (bytes), sampled every 0.25 s. A failed run exits naming its log."""
    import psutil

    t0 = time.perf_counter()
    proc = start_workflow(workdir, configfiles, cores, targets, extra)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"workflow failed ({proc.returncode}); see {workdir / 'bench.log'}")
    return wall, peak
