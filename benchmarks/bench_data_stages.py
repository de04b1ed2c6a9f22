"""Data stages of the main job: wall time per month of data, and start-up vs work per rule.

Runs the workflow on the embedded default (or --configfile) in a fresh working directory,
up to the two processed stores (everything before `build_dataset` finishes), with the same
`--cores` as the main job. Target of the project: at most 2.5 s of wall time per month of
data on 2 cores.

Per rule it reads the Snakemake `benchmark:` files (wall time and CPU time of each job) and
times the rule's entry point doing nothing but start up (importing its modules, in a
fresh interpreter, median of 5), so the JSON splits each rule's cost into start-up and work.

Per month of data it records the wall time (the whole run / months) and the CPU time
(user + system of every job, from the benchmark files, plus Snakemake's own process, /
months), and per month the CPU and wall time of that month's own jobs (`per_month`). On a
shared machine the wall time is noisy; the CPU time is not, and CPU time / usable cores
(`cpu_bound_wall_s_per_month`) is the wall time the same work takes on idle cores. The
machine's load averages at the start and end of the run are recorded with them.

    python benchmarks/bench_data_stages.py [--workdir DIR] [--configfile FILE] [--repeats N] [--name NAME]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil
from workflow_run import start_workflow

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["data/processed/region1.zarr", "data/processed/concat.zarr"]
# The modules each data rule imports before its work (the start-up a job pays).
RULE_MODULES = {
    "generate_network": ["pipeline.nature_run.generator"],
    "generate_month": ["pipeline.nature_run.generator"],
    # ingest soundings, ingest gauges and grid in one process (python -m pipeline.steps)
    "prepare_month": ["pipeline.steps", "pipeline.ingest", "pipeline.soundings.qc", "pipeline.gridding.cli"],
    "build_dataset": ["pipeline.dataset.assemble"],
}


def startup_seconds(modules: list[str], repeats: int = 5) -> float:
    """Median wall time of a fresh interpreter importing `modules` (the start-up of a job)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import " + ", ".join(modules)],
                       check=True, cwd=REPO)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rule_benchmarks(workdir: Path) -> dict[str, dict]:
    """Sum the Snakemake benchmark files under logs/benchmarks/<rule>/ per rule."""
    out: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
    for tsv in sorted((workdir / "logs" / "benchmarks").glob("*/*.tsv")):
        rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
        if not rows:
            continue
        entry = out[tsv.parent.name]
        entry["jobs"] += 1
        entry["wall_s"] += float(rows[-1]["s"])
        entry["cpu_s"] += float(rows[-1]["cpu_time"])
    return dict(out)


def month_benchmarks(workdir: Path) -> dict[str, dict]:
    """Wall and CPU seconds of each month's own jobs (benchmark files named <month>.tsv)."""
    out: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
    for tsv in sorted((workdir / "logs" / "benchmarks").glob("*/????-??.tsv")):
        rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
        if rows:
            entry = out[tsv.stem]
            entry["jobs"] += 1
            entry["wall_s"] += float(rows[-1]["s"])
            entry["cpu_s"] += float(rows[-1]["cpu_time"])
    return {m: {k: round(v, 2) if isinstance(v, float) else v for k, v in e.items()} for m, e in sorted(out.items())}


def run_once(workdir: Path, configfiles: list[Path], cores: int) -> dict:
    """One run of the data stages in a fresh `workdir`; the JSON record of that run."""
    workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    proc = start_workflow(workdir, configfiles, cores, TARGETS)
    ps = psutil.Process(proc.pid)
    own_cpu = 0.0
    while proc.poll() is None:
        try:
            t = ps.cpu_times()
            own_cpu = t.user + t.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    load_end = os.getloadavg()
    if proc.returncode:
        sys.exit(f"workflow failed ({proc.returncode}); see {workdir / 'bench.log'}")
    months = len(list((workdir / "data" / "gridded" / "region1").glob("*.nc")))
    rules = rule_benchmarks(workdir)
    jobs_cpu = sum(entry["cpu_s"] for entry in rules.values())
    per_month = month_benchmarks(workdir)
    for entry in rules.values():
        entry["wall_s"] = round(entry["wall_s"], 1)
        entry["cpu_s"] = round(entry["cpu_s"], 1)
    return {
        "started_utc": started,
        "wall_s": round(wall, 1),
        "months": months,
        "wall_s_per_month": round(wall / months, 2),
        "cpu_s": round(jobs_cpu + own_cpu, 1),
        "cpu_s_per_month": round((jobs_cpu + own_cpu) / months, 2),
        "cpu_bound_wall_s_per_month": round((jobs_cpu + own_cpu) / months / len(os.sched_getaffinity(0)), 2),
        "jobs_cpu_s": round(jobs_cpu, 1),
        "snakemake_own_cpu_s": round(own_cpu, 1),
        # the machine's 1/5/15-minute load averages when the run started and ended: a
        # load above cores_usable means other work shared the cores (wall time inflated)
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "rules": rules,
        "per_month": per_month,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None, help="working directory (created; default: temporary)")
    ap.add_argument("--configfile", type=Path, nargs="*", default=[REPO / "config.yaml"])
    ap.add_argument("--cores", type=int, default=8, help="Snakemake --cores (the main job uses 8)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs one after the other, each in a fresh directory under --workdir; the "
                         "record is the median run's, with every run's figures under 'runs'")
    ap.add_argument("--name", default="data_stages", help="name of the results JSON")
    args = ap.parse_args()
    if args.repeats < 1:
        print(f"error: --repeats must be at least 1, got {args.repeats}", file=sys.stderr)
        sys.exit(2)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    runs = []
    for i in range(args.repeats):
        run_dir = workdir if args.repeats == 1 else workdir / f"run{i + 1}"
        runs.append(run_once(run_dir, args.configfile, args.cores))
        print(f"run {i + 1}/{args.repeats}: {runs[-1]['wall_s']} s, "
              f"{runs[-1]['wall_s_per_month']} s per month", file=sys.stderr, flush=True)
    median = sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]
    # start-up vs work of the recorded (median) run; start-up is timed once, after the runs
    for rule, entry in median["rules"].items():
        modules = RULE_MODULES.get(rule)
        if modules:
            entry["startup_s_per_job"] = round(startup_seconds(modules), 3)
            entry["work_s_per_job"] = round(entry["wall_s"] / entry["jobs"] - entry["startup_s_per_job"], 3)
    result = {
        **{k: v for k, v in median.items() if k not in ("rules", "per_month")},
        "cores_available": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "snakemake_cores": args.cores,
        "targets": {"wall_s_per_month": 2.5},
        "rules": median["rules"],
        "per_month": median["per_month"],
        "configfiles": [str(Path(p).resolve().relative_to(REPO)) if Path(p).resolve().is_relative_to(REPO) else str(p)
                        for p in args.configfile],
    }
    if len(runs) > 1:
        # every run, in the order they ran; the fields above are the median run's (by wall time)
        result["runs"] = [{k: v for k, v in r.items() if k not in ("rules", "per_month")} for r in runs]
    print(json.dumps(result, indent=2))
    out = REPO / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
