"""GPU figures of the ConvLSTM U-Net (issue "Scale out"): throughput and peak memory.

    python benchmarks/bench_gpu.py [--rounds 20] [--out benchmarks/results/gpu_training.json]
    python benchmarks/bench_gpu.py --device cpu --quick --out /tmp/gpu_smoke.json   # code check only

Without a CUDA device (and without ``--device cpu``) it prints one ``skipped:`` line and
exits 0, writing nothing: CI has no GPU. On a GPU it records, naming the device:

- **Training throughput**: samples/s of full training steps (forward, backward, AdamW
  step, GradScaler under fp16) of ``training.model.ConvLSTMUNet`` (GroupNorm +
  self-attention) and of the reference textbook ConvLSTM U-Net of
  ``benchmarks/bench_training.py`` in the same process on the same inputs, for every
  combination of AMP fp16, channels-last memory format and ``torch.compile`` on and off.
  The models run interleaved, one step each per round in a rotating order, with CUDA
  synchronised around every step; the ratio textbook time / ours is paired within rounds
  (median over rounds, 95% bootstrap interval of the median).
- **Peak memory** (``torch.cuda.max_memory_allocated``) of the 12 GB case: 56 channels,
  6 frames, a 64x128 grid, batch 8, hidden [32, 64], AMP fp16; and the analytic estimator
  (``training.memory.estimate``) of the same case, without its CUDA-context allowance
  (the allocator statistic does not count the context), with their ratio.

``--device cpu --quick`` runs the same code on tiny shapes without AMP and compile (the
test suite's check that the script works); its figures say nothing about a GPU.
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import training  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench_training import TextbookUNet  # noqa: E402
from training.config import ModelConfig  # noqa: E402
from training.memory import estimate  # noqa: E402
from training.model import ConvLSTMUNet, count_parameters  # noqa: E402

MODELS = {
    "ours (GN + self-attention)": lambda c, hidden: ConvLSTMUNet(c, hidden, norm="group", attention="self"),
    "textbook ConvLSTM U-Net": lambda c, hidden: TextbookUNet(c, hidden),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, x, y, device, amp: bool):
    """One training step: forward under autocast (fp16 when ``amp``), MSE, backward via a
    GradScaler (enabled with fp16), AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    def step():
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            pred = model(x)
        loss = F.mse_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def _inputs(batch, frames, channels, grid, device, channels_last: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, channels, *grid, generator=g).to(device)
    y = torch.rand(batch, 1, *grid, generator=g).to(device)
    if channels_last:  # (B, T, C, H, W) with C innermost: each frame (B*T, C, H, W) is channels-last
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        y = y.contiguous(memory_format=torch.channels_last)
    return x, y


def throughput(device, batch, frames, channels, grid, hidden, rounds, combos) -> list[dict]:
    """Samples/s of each model under each (amp, channels_last, compile) combination."""
    rows = []
    for amp, cl, comp in combos:
        torch.manual_seed(0)
        x, y = _inputs(batch, frames, channels, grid, device, cl)
        fns, times, params = {}, {}, {}
        for label, build in MODELS.items():
            model = build(channels, hidden).to(device)
            if cl:
                model = model.to(memory_format=torch.channels_last)
            params[label] = count_parameters(model)
            model.train()
            run = torch.compile(model) if comp else model
            fns[label] = make_step(run, x, y, device, amp)
            for _ in range(3):  # warm-up: compilation, cuDNN autotuning, allocator
                fns[label]()
            _sync(device)
            times[label] = []
        labels = list(fns)
        for r in range(rounds):
            for label in labels[r % len(labels):] + labels[: r % len(labels)]:
                _sync(device)
                t0 = time.perf_counter()
                fns[label]()
                _sync(device)
                times[label].append(time.perf_counter() - t0)
        base = np.asarray(times["textbook ConvLSTM U-Net"])
        rng = np.random.default_rng(0)
        for label in labels:
            t = np.asarray(times[label])
            ratios = base / t
            boot = np.median(rng.choice(ratios, size=(2000, ratios.size)), axis=1)
            rows.append({
                "model": label, "amp_fp16": amp, "channels_last": cl, "torch_compile": comp,
                "batch": batch, "frames": frames, "channels": channels, "grid": list(grid), "hidden": list(hidden),
                "parameters": params[label], "step_seconds_median": float(np.median(t)),
                "samples_per_s": float(batch / np.median(t)),
                "ratio_textbook_time_over_this": float(np.median(ratios)),
                "ratio_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
                "rounds": int(t.size),
            })
            print(f"{label:28s} amp={amp!s:5} channels_last={cl!s:5} compile={comp!s:5} "
                  f"{rows[-1]['samples_per_s']:8.1f} samples/s", flush=True)
        del fns
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def peak_memory(device, batch, frames, channels, grid, hidden, amp: bool) -> dict:
    """Measured peak of training steps of ours, and the analytic estimate of the same case."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    torch.manual_seed(0)
    model = ConvLSTMUNet(channels, hidden, norm="group", attention="self").to(device)
    x, y = _inputs(batch, frames, channels, grid, device, False)
    step = make_step(model, x, y, device, amp)
    for _ in range(2):  # the second step holds AdamW's moments from the first
        step()
    _sync(device)
    mc = ModelConfig(hidden=tuple(hidden))
    est = estimate(channels, frames, tuple(grid), batch, mc, amp=amp, device=device.type)
    est_alloc = est.total_bytes - est.context_bytes
    out = {"batch": batch, "frames": frames, "channels": channels, "grid": list(grid), "hidden": list(hidden),
           "amp_fp16": amp, "estimate_bytes_without_context": int(est_alloc), "estimate": est.as_dict()}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
        out.update(measured_peak_bytes=int(peak), estimate_over_measured=float(est_alloc / peak))
        print(f"peak memory {peak / 2**30:.2f} GiB measured, {est_alloc / 2**30:.2f} GiB estimated "
              f"(ratio {est_alloc / peak:.2f})", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (code check with --quick)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 3 rounds (code check)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_training.json"))
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA device on this machine (the GPU figures need one)")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        combos = list(itertools.product([False, True], repeat=3))  # amp, channels_last, compile
        name = torch.cuda.get_device_name(device)
    else:  # code check: no fp16 autocast or compilation on the CPU
        combos = [(False, False, False), (False, True, False)]
        name = platform.processor() or platform.machine()
    if args.quick:
        shapes = dict(batch=2, frames=3, channels=5, grid=(16, 24), hidden=(8, 16))
        mem_case = dict(batch=2, frames=3, channels=5, grid=(16, 32), hidden=(8, 16))
        rounds = 3
    else:
        # the workflow's region-1 default and the seed size case, both hidden [32, 64]
        shapes = dict(batch=8, frames=6, channels=56, grid=(64, 64), hidden=(32, 64))
        mem_case = dict(batch=8, frames=6, channels=56, grid=(64, 128), hidden=(32, 64))
        rounds = args.rounds
    result = {
        "benchmark": "gpu_training",
        "device": {"type": device.type, "name": name,
                   "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None},
        "torch": torch.__version__, "python": platform.python_version(), "quick": bool(args.quick),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "throughput": throughput(device, rounds=rounds, combos=combos, **shapes),
        "peak_memory": peak_memory(device, amp=device.type == "cuda", **mem_case),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
