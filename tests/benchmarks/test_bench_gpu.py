"""The GPU benchmark script (benchmarks/bench_gpu.py) skips cleanly without CUDA, and its
code runs end to end on the CPU on tiny shapes with consistent figures."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the script would benchmark it")
def test_skips_cleanly_without_cuda(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("skipped: no CUDA device")
    assert not out.exists()


def test_cpu_code_check_writes_consistent_figures(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["device"]["type"] == "cpu" and res["quick"] is True
    rows = res["throughput"]
    assert {(row["model"], row["channels_last"]) for row in rows} == {
        (m, cl) for m in ("ours (GN + self-attention)", "textbook ConvLSTM U-Net") for cl in (False, True)}
    for row in rows:
        assert row["samples_per_s"] == pytest.approx(row["batch"] / row["step_seconds_median"])
        lo, hi = row["ratio_ci95"]
        assert lo <= row["ratio_textbook_time_over_this"] <= hi
        if row["model"].startswith("textbook"):
            assert row["ratio_textbook_time_over_this"] == 1.0
    mem = res["peak_memory"]
    # the estimate without the CUDA allowance equals the sum of its parts minus the context
    est = mem["estimate"]
    assert est["context_bytes"] == 0
    assert mem["estimate_bytes_without_context"] == est["total_bytes"]
    from training.config import ModelConfig
    from training.memory import count_params
    assert est["parameters"] == count_params(mem["channels"], ModelConfig(hidden=tuple(mem["hidden"])))
