"""Kill the workflow anywhere, rerun it, and compare with an undisturbed run.

``run_chain`` starts the main job on the tiny configuration and kills the whole Snakemake
process group with SIGKILL after a random delay (every stage: nature run, ingest, gridding,
dataset assembly, training, prediction, the advection baseline, evaluation), then unlocks
and starts again, until a run completes; :func:`fingerprint` then compares every output with
those of an undisturbed run, by value:

- raw files: their bytes; interim and gridded netCDF and every zarr store: every variable's
  values (NaN-aware) and dtype; checkpoints: the model weights; ``metrics.json``: the scores
  and verdicts (its provenance holds a creation time); training logs: every column but the
  epoch wall time.

With ``--target tune`` the chains run ``results/tune`` instead (the tiny config with one
tuning worker, :data:`TUNE_OVERLAY`): kills land in the dataset stages, in trials and in the
summary. A killed trial is left in the study as failed (``interrupted``), so the tuning
outputs are compared by what they decide: each trial slot's settings, state and score (the
worker records and ``trials.csv`` without interrupted trials, trial numbers or times) and the
best parameters (``best_params.yaml``, parsed).

Used by ``test_kill_harness.py`` (slow) and runnable on its own::

    python -m tests.workflow.kill_harness --chains 5 --out kill_harness.json
    python -m tests.workflow.kill_harness --target tune --chains 3 --out kill_harness_tune.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "workflow" / "config.tiny.yaml"
TARGETS = {"exp2": "results/exp2", "tune": "results/tune"}
#: The tune chains: one worker (so the study is reproducible), 3 trial slots of 2 epochs in
#: a space that fits the tiny model.
TUNE_OVERLAY = {"tune": {"workers": 1, "n_trials": 3, "epochs": 2, "pruner_startup_trials": 1,
                         "search_space": {"lr": {"low": 0.001, "high": 0.01}, "hidden": [[8, 16], [4, 8]],
                                          "attention": ["none", "self"], "norm": ["group"],
                                          "loss": ["cross_entropy", "weighted_mse"]}}}
SKIP_DIRS = {".snakemake", "logs", "benchmarks"}
TIME_COLUMNS = ("seconds", "epoch_seconds", "elapsed_s", "time_s")
TARGET = TARGETS["exp2"]
EXTRA_CONFIGS: list[str] = []


def use_target(name: str, scratch: Path) -> None:
    """Point the harness at ``results/<name>`` (``exp2`` or ``tune``); the tune overlay goes to ``scratch``."""
    global TARGET, EXTRA_CONFIGS
    TARGET = TARGETS[name]
    EXTRA_CONFIGS = []
    if name == "tune":
        import yaml

        overlay = scratch / "tune_overlay.yaml"
        overlay.write_text(yaml.safe_dump(TUNE_OVERLAY))
        EXTRA_CONFIGS = [str(overlay)]


def _cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(TINY), *EXTRA_CONFIGS, "--cores", "2", *args]


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)  # this checkout's code
    return env


def run_to_end(workdir: Path, timeout: int = 1800) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(_cmd(workdir, TARGET), capture_output=True, text=True, env=_env(), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir} ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return time.perf_counter() - t0


def kill_once(workdir: Path, delay: float) -> tuple[bool, str]:
    """Start the main job and SIGKILL its process group after ``delay`` s. Returns
    (finished before the kill, the newest log file touched: where the kill landed)."""
    proc = subprocess.Popen(_cmd(workdir, TARGET), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=delay)
        return True, ""
    except subprocess.TimeoutExpired:
        pass
    logs = sorted((workdir / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime) if (workdir / "logs").exists() else []
    where = str(logs[-1].relative_to(workdir / "logs")) if logs else "(start)"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run(_cmd(workdir, "--unlock"), capture_output=True, env=_env(), check=True)
    return False, where


def run_chain(workdir: Path, rng: random.Random, max_delay: float, max_kills: int = 50) -> list[dict]:
    """Kill-and-rerun until the job completes; returns one record per kill."""
    kills = []
    while len(kills) < max_kills:
        delay = rng.uniform(1.0, max_delay)
        done, where = kill_once(workdir, delay)
        if done:
            break
        kills.append({"delay_s": round(delay, 2), "stage_log": where})
    run_to_end(workdir)
    return kills


def _hash_values(h, name: str, values: np.ndarray) -> None:
    a = np.asarray(values)
    h.update(f"{name}|{a.dtype}|{a.shape}".encode())
    if a.dtype.kind in "fc":
        h.update(np.isnan(a).tobytes())
        a = np.where(np.isnan(a), 0, a)
    h.update(a.tobytes() if a.dtype.kind != "O" else "\0".join(map(str, a.ravel())).encode())


def _dataset_digest(ds) -> str:
    h = hashlib.sha256()
    for name in sorted(map(str, ds.variables)):
        _hash_values(h, name, ds[name].values)
    return h.hexdigest()


def _tune_digest(path: Path) -> str | None:
    """What a tuning output decides (see the module docstring); None for files not compared."""
    if path.name == "best_params.yaml":
        import yaml

        decided = yaml.safe_load(path.read_text())
    elif path.name == "trials.csv":
        import pandas as pd

        df = pd.read_csv(path, dtype=str)  # as written: a column with failed trials' blanks stays text
        df = df[df["state"] != "FAIL"].drop(columns=["number", "seconds", "interrupted"])
        decided = df.sort_values("slot").to_csv(index=False)
    elif path.parent.name == "tune_study" and path.suffix == ".json":
        record = json.loads(path.read_text())
        decided = sorted((t["slot"], t["state"], t["value"], sorted(t["params"].items()))
                         for t in record["trials"] if t["state"] != "FAIL")
    else:
        return None
    return hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    import xarray as xr

    if path.suffix == ".nc":
        with xr.open_dataset(path, engine="netcdf4", decode_times=False) as ds:
            return _dataset_digest(ds.load())
    if path.name == "metrics.json":
        m = json.loads(path.read_text())
        return hashlib.sha256(json.dumps({k: m[k] for k in ("models", "verdicts")}, sort_keys=True).encode()).hexdigest()
    if path.suffix == ".pt":
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        h = hashlib.sha256()
        for k in sorted(state):
            _hash_values(h, k, state[k].float().numpy())
        return h.hexdigest()
    if path.suffix == ".csv" and path.name == "train_log.csv":
        import pandas as pd

        df = pd.read_csv(path)
        df = df.drop(columns=[c for c in df.columns if c in TIME_COLUMNS or c.endswith("_s")])
        return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


COMPARED_SUFFIXES = {".nc", ".pt", ".txt", ".csv", ".gz"}


def fingerprint(workdir: Path) -> dict[str, str]:
    """{relative path: digest} of the compared outputs of a finished run (see module docstring)."""
    import warnings

    import xarray as xr

    warnings.filterwarnings("ignore", message=".*snakemake_timestamp.*")  # Snakemake's marker in directory outputs
    out = {}
    for root in (workdir / "data", workdir / "results"):
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(workdir)
            if SKIP_DIRS & set(rel.parts) or any(part.startswith(".") for part in rel.parts):
                continue
            if rel.parts[:2] in (("results", "tune"), ("results", "tune_study")):
                digest = _tune_digest(p) if p.is_file() else None
                if digest is not None:
                    out[str(rel)] = digest
            elif p.is_dir() and p.suffix == ".zarr":
                out[str(rel)] = _dataset_digest(xr.open_zarr(p, consolidated=False, decode_times=False).load())
            elif p.is_file() and ".zarr" not in str(rel) and (p.suffix in COMPARED_SUFFIXES or p.name == "metrics.json"):
                if p.suffix == ".csv" and p.name != "train_log.csv":
                    continue
                out[str(rel)] = _file_digest(p)
    return out


def differences(a: dict, b: dict) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.workflow.kill_harness", description=__doc__.split("\n\n")[0])
    ap.add_argument("--chains", type=int, default=5, help="kill-and-rerun chains, each ending in a complete run")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the kill delays")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default=None, help="JSON record of every kill and the verdict")
    ap.add_argument("--target", choices=sorted(TARGETS), default="exp2",
                    help="the main job (results/exp2) or the hyperparameter search (results/tune)")
    args = ap.parse_args(argv)
    import tempfile

    base = Path(args.workdir or tempfile.mkdtemp(prefix="kill-harness-"))
    base.mkdir(parents=True, exist_ok=True)
    use_target(args.target, base)
    ref = base / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    t_ref = run_to_end(ref)
    want = fingerprint(ref)
    rng = random.Random(args.seed)
    record = {"target": TARGET, "reference_seconds": round(t_ref, 1), "outputs_compared": len(want),
              "outputs": sorted(want), "chains": []}
    for c in range(args.chains):
        wd = base / f"chain{c}"
        wd.mkdir(parents=True, exist_ok=True)
        kills = run_chain(wd, rng, max_delay=max(5.0, t_ref / 4))
        diff = differences(want, fingerprint(wd))
        record["chains"].append({"kills": kills, "differences": diff})
        print(f"chain {c}: {len(kills)} kills, {len(diff)} differing outputs", flush=True)
    record["kills"] = sum(len(c["kills"]) for c in record["chains"])
    record["identical"] = all(not c["differences"] for c in record["chains"])
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"{record['kills']} kills; every rerun identical: {record['identical']}")
    return 0 if record["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
