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
import tempfile
from pathlib import Path

from workflow_run import run_measured

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--config", nargs="*", default=[], help="Snakemake --config overrides")
    ap.add_argument("--name", default="main_job", help="name of the results JSON")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-main-"))
    wall, peak = run_measured(workdir, [args.configfile], 8, ["results/exp2"],
                              ["--config", *args.config] if args.config else [])
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
