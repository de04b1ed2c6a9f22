"""Incremental reprocessing: wall time of adding 1 month to 24 against the full build.

Builds the processed tensors (raw -> interim -> gridded -> processed zarr, both grids) of
the default configuration for 24 months from scratch, then extends the period by one month
and rebuilds. Reports both wall times and their ratio (target <= 15%). Training and
evaluation re-run after any data change and are not part of this figure.

    python benchmarks/bench_incremental.py [--workdir DIR] [--cores N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["data/processed/concat.zarr", "data/processed/region1.zarr"]


def run(workdir: Path, configfile: Path, cores: int) -> float:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(configfile), "--cores", str(cores), *TARGETS, "--quiet", "all"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base["period"] = {"start": "2020-01", "end": "2021-12"}
    cfg24 = workdir / "config24.yaml"
    cfg24.write_text(yaml.safe_dump(base))
    base["period"] = {"start": "2020-01", "end": "2022-01"}
    cfg25 = workdir / "config25.yaml"
    cfg25.write_text(yaml.safe_dump(base))

    full = run(workdir, cfg24, args.cores)
    incremental = run(workdir, cfg25, args.cores)
    result = {
        "months_full": 24,
        "full_build_s": round(full, 1),
        "add_one_month_s": round(incremental, 1),
        "ratio": round(incremental / full, 3),
        "target_ratio": 0.15,
        "cores": args.cores,
    }
    print(f"{'full build (24 months)':28s} {full:8.1f} s")
    print(f"{'add 1 month':28s} {incremental:8.1f} s")
    print(f"{'ratio':28s} {incremental / full:8.3f}   (target <= 0.15)")
    out = REPO / "benchmarks" / "results" / "incremental.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
