"""The radar track end to end: wall time and peak memory of `snakemake --cores 2 results/radar`.

Runs the workflow on the default config (or --configfile) in a fresh working directory,
sampling the summed resident memory of Snakemake and its child processes every 0.25 s.
Targets: <= 10 minutes and <= 4 GiB on 2 cores. Writes benchmarks/results/NAME.json: wall
time, peak memory, each job's time and peak memory, the headline and CSI at 30 dBZ per model
and training seed.

    python benchmarks/bench_radar.py [--workdir DIR] [--configfile FILE ...] [--name radar]
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
    ap.add_argument("--configfile", type=Path, nargs="+", default=[REPO / "config.yaml"])
    ap.add_argument("--name", default="radar", help="name of the results JSON")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-radar-"))
    workdir.mkdir(parents=True, exist_ok=True)
    wall, peak = run_measured(workdir, args.configfile, 2, ["results/radar"])
    result = {"wall_s": round(wall, 1), "peak_rss_gib": round(peak / 2**30, 2), "cores_available": os.cpu_count(),
              "workdir": "(temporary)", "configfiles": [p.name for p in args.configfile],
              "targets": {"wall_s": 600, "peak_rss_gib": 4.0}}
    # wall seconds and peak RSS (MB) of every job, from the rules' benchmark files
    result["jobs"] = {}
    for tsv in sorted((workdir / "logs" / "benchmarks" / "radar").glob("*.tsv")):
        head, row = tsv.read_text().splitlines()[:2]
        rec = dict(zip(head.split("\t"), row.split("\t")))
        result["jobs"][tsv.stem] = {"s": float(rec["s"]), "max_rss_mb": float(rec["max_rss"])}
    m = workdir / "results" / "radar" / "metrics.json"
    if m.exists():
        metrics = json.loads(m.read_text())
        result["headline"] = metrics.get("headline")
        # CSI at 30 dBZ (6-60 min) of every model, and of each experiment's training seeds
        result["csi@30dBZ"] = {k: {"mean": v["scores"]["csi@30dBZ"]["all"],
                                   "by_seed": {s: x["csi@30dBZ"]["all"] for s, x in v.get("by_seed", {}).items()}}
                               for k, v in metrics["models"].items()}
    print(json.dumps(result, indent=2))
    out = REPO / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
