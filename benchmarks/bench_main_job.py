"""The main job end to end: wall time and peak memory of `snakemake --cores 8 results/exp2`.

Runs the workflow on the embedded default (or --configfile) in a fresh working directory
and samples the summed resident memory of Snakemake and all its child processes every
0.25 s (psutil). Targets of the project: <= 10 minutes and <= 4 GiB on 2 cores.

    python benchmarks/bench_main_job.py [--workdir DIR] [--configfile FILE] [--config KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
from workflow_run import start_workflow

REPO = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--config", nargs="*", default=[], help="Snakemake --config overrides")
    ap.add_argument("--name", default="main_job", help="name of the results JSON")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-main-"))
    t0 = time.perf_counter()
    proc = start_workflow(workdir, [args.configfile], 8, ["results/exp2"],
                          ["--config", *args.config] if args.config else [])
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"workflow failed ({proc.returncode}); see {workdir / 'bench.log'}")
    result = {"wall_s": round(wall, 1), "peak_rss_gib": round(peak / 2**30, 2), "cores_available": os.cpu_count(),
              "workdir": "(temporary)", "config_overrides": args.config,
              "targets": {"wall_s": 600, "peak_rss_gib": 4.0}}
    verdict_file = workdir / "results" / "exp2" / "report.md"
    if verdict_file.exists():
        result["verdict"] = [line[2:] for line in verdict_file.read_text().splitlines() if line.startswith("- ")][:2]
    print(json.dumps(result, indent=2))
    out = REPO / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
