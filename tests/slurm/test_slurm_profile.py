"""profiles/slurm tested for real: a single-node SLURM on loopback runs the tiny workflow.

Starts the cluster with tests/slurm/slurm_cluster.sh (Debian packages; root), submits the
workflow through `--workflow-profile profiles/slurm`, checks that every job went through
sbatch and completed, and stops only the daemons the script started. Skipped, with the
reason, where the machine cannot host the cluster (not root, not Debian, no packages).
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.workflow.conftest import REPO, job_counts, snakemake

SCRIPT = REPO / "tests" / "slurm" / "slurm_cluster.sh"

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.environ.get("UPSTREAM_RAIN_SKIP_SLURM") == "1":
        pytest.skip("UPSTREAM_RAIN_SKIP_SLURM=1")
    check = subprocess.run(["bash", str(SCRIPT), "check"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"this machine cannot host a test SLURM cluster: {check.stdout.strip()}")
    start = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    if start.returncode == 3:
        pytest.skip(f"SLURM packages cannot be installed here: {start.stderr.strip()[-500:]}")
    try:
        assert start.returncode == 0, f"cluster failed to start:\n{start.stdout}\n{start.stderr}"
        yield start.stdout
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)


def test_tiny_workflow_runs_through_sbatch(slurm_cluster, tmp_path):
    profile = [
        "--workflow-profile", str(REPO / "profiles" / "slurm"),
        # The test node has no GPU; a real cluster keeps the profile's gpu request.
        "--set-resources", "train_model:gpu=0", "predict_test:gpu=0",
        "train_model:mem_mb=3000", "predict_test:mem_mb=2000", "build_dataset:mem_mb=2000",
        "--set-threads", "train_model=2", "build_dataset=2", "predict_test=2",
        "--slurm-init-seconds-before-status-checks", "5",
    ]
    dry = snakemake(tmp_path, *profile, "-n", "results/exp2", timeout=300)
    n_jobs = sum(job_counts(dry.stdout).values())
    proc = snakemake(tmp_path, *profile, "--verbose", "results/exp2", check=False, timeout=1500)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log)
    sbatch_calls = re.findall(r"sbatch call: .*", log)
    # A month's generation and preparation jobs are grouped into one submission; every other job is its own.
    assert len(submitted) == len(sbatch_calls) >= 10
    assert len(submitted) < n_jobs  # grouping reduced the submissions
    assert "(100%) done" in log
    # The scheduler saw every submitted job complete.
    squeue = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i %T"], capture_output=True, text=True)
    states = dict(line.split() for line in squeue.stdout.splitlines())
    for job_id in submitted:
        assert states.get(job_id) == "COMPLETED", (job_id, states.get(job_id))
    assert (tmp_path / "results" / "exp2" / "metrics.json").is_file()
