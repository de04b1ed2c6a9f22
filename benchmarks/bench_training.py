"""Training throughput of the ConvLSTM U-Net on CPU, next to a textbook ConvLSTM U-Net.

    python benchmarks/bench_training.py [--rounds 24] [--threads N] [--quick]

For two configurations — the workflow default (batch train.batch_size, 6 frames, 56
channels, 24x24 region-1 grid) and the seed-size case (B4, T6, C56, 64x64) — both with
hidden [32, 64], it times full training steps (forward, backward, AdamW) of

- ours: ``training.model.ConvLSTMUNet`` with GroupNorm and self-attention on (default);
- textbook: the plain formulation written below — per-step convolution over the
  concatenation [x_t, h_{t-1}] with zero initial state, no normalisation, no attention,
  a conv decoder;

in the same process on the same inputs. Shared or virtual machines change speed by
10-20% within minutes, so the models are interleaved one step at a time (a round is one
step of each, in an order that rotates every round) and the ratio is taken *within* a
round: ratio = textbook step time / model step time, reported as the median over rounds
with a 95% bootstrap interval of that median. Also reported: samples/s and achieved
GFLOP/s (each model's own forward + backward FLOPs counted by torch's FlopCounterMode,
over its median step time). Where the CPU has native bf16, ours with bf16 autocast is
added as an extra row. Writes benchmarks/results/training.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from training.model import ConvLSTMUNet, count_flops, count_parameters  # noqa: E402
from training.train import cpu_bf16_supported, default_threads  # noqa: E402


# --------------------------------------------------------------- textbook model
class TextbookConvLSTMCell(nn.Module):
    def __init__(self, cin, hid, k=3):
        super().__init__()
        self.hid = hid
        self.conv = nn.Conv2d(cin + hid, 4 * hid, k, padding=k // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hid, dim=1)
        i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c


class TextbookConvLSTM(nn.Module):
    def __init__(self, cin, hid, k=3):
        super().__init__()
        self.cell = TextbookConvLSTMCell(cin, hid, k)

    def forward(self, x):  # (B, T, C, H, W)
        b, t, _, hh, ww = x.shape
        h = torch.zeros(b, self.cell.hid, hh, ww, device=x.device, dtype=x.dtype)
        c = torch.zeros_like(h)
        outs = []
        for k in range(t):
            h, c = self.cell(x[:, k], (h, c))
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)


class TextbookUNet(nn.Module):
    """Encoder ConvLSTM -> pool -> bottleneck ConvLSTM -> up + skip -> conv -> 1x1 head."""

    def __init__(self, cin, hidden=(32, 64), k=3):
        super().__init__()
        h0, h1 = hidden
        self.enc = TextbookConvLSTM(cin, h0, k)
        self.bott = TextbookConvLSTM(h0, h1, k)
        self.up = nn.ConvTranspose2d(h1, h0, 2, stride=2)
        self.dec = nn.Conv2d(2 * h0, h0, k, padding=k // 2)
        self.head = nn.Conv2d(h0, 1, 1)

    def forward(self, x):
        b, t, c, h, w = x.shape
        x = F.pad(x, (0, w % 2, 0, h % 2))
        seq, (h0, _) = self.enc(x)
        pooled = torch.stack([F.max_pool2d(seq[:, k], 2) for k in range(t)], dim=1)
        _, (h1, _) = self.bott(pooled)
        y = F.relu(self.dec(torch.cat([self.up(h1), h0], dim=1)))
        return F.relu(self.head(y))[..., :h, :w]


# -------------------------------------------------------------------- timing
def step_fn(model, x, y, amp_dtype=None):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            pred = model(x)
        loss = F.mse_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_config(name, batch, steps, channels, grid, hidden, rounds):
    torch.manual_seed(0)
    x = torch.randn(batch, steps, channels, *grid)
    y = torch.rand(batch, 1, *grid)
    models = {
        "ours (GN + self-attention)": (ConvLSTMUNet(channels, hidden, norm="group", attention="self"), None),
        "textbook ConvLSTM U-Net": (TextbookUNet(channels, hidden), None),
    }
    if cpu_bf16_supported():
        models["ours, bf16 autocast"] = (ConvLSTMUNet(channels, hidden, norm="group", attention="self"), torch.bfloat16)
    shape1 = (1, steps, channels, *grid)
    rows = {}
    fns = {}
    for label, (model, amp) in models.items():
        model.train()
        flops = count_flops(model, shape1, backward=True) * batch  # per training step
        fns[label] = step_fn(model, x, y, amp)
        for _ in range(2):  # warm-up (allocator, oneDNN primitive cache)
            fns[label]()
        rows[label] = {"parameters": count_parameters(model), "flops_per_step": flops, "times": []}
    labels = list(fns)
    for r in range(rounds):  # one step of each model per round, order rotated
        for label in labels[r % len(labels):] + labels[: r % len(labels)]:
            t0 = time.perf_counter()
            fns[label]()
            rows[label]["times"].append(time.perf_counter() - t0)
    base_times = np.asarray(next(r for k, r in rows.items() if k.startswith("textbook"))["times"])
    rng = np.random.default_rng(0)
    out = []
    for label, r in rows.items():
        times = np.asarray(r["times"])
        med = float(np.median(times))
        ratios = base_times / times  # paired within rounds
        boot = np.median(rng.choice(ratios, size=(2000, ratios.size)), axis=1)
        out.append({
            "config": name, "model": label, "batch": batch, "frames": steps, "channels": channels,
            "grid": list(grid), "hidden": list(hidden), "parameters": r["parameters"],
            "step_seconds_median": med, "samples_per_s": batch / med,
            "gflop_per_step": r["flops_per_step"] / 1e9, "achieved_gflop_per_s": r["flops_per_step"] / med / 1e9,
            "ratio_vs_textbook": float(np.median(ratios)),
            "ratio_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "rounds": int(ratios.size),
        })
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=24, help="rounds of one interleaved step per model")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: usable cores)")
    ap.add_argument("--batch", type=int, default=16, help="batch of the default config (train.batch_size)")
    ap.add_argument("--quick", action="store_true", help="3 rounds (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds = 3
    torch.set_num_threads(args.threads or default_threads())
    configs = [
        ("default (region 1, 24x24)", args.batch, 6, 56, (24, 24), (32, 64)),
        ("seed size (B4, 64x64)", 4, 6, 56, (64, 64), (32, 64)),
    ]
    results = []
    for cfg in configs:
        print(f"[bench] {cfg[0]} ...", file=sys.stderr, flush=True)
        results.extend(bench_config(*cfg, args.rounds))
    hdr = f"{'config':<26} {'model':<28} {'params':>8} {'GFLOP/step':>10} {'s/step':>7} {'samples/s':>9} {'GFLOP/s':>8} {'ratio [95% CI]':>20}"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(f"{r['config']:<26} {r['model']:<28} {r['parameters']:>8,} {r['gflop_per_step']:>10.1f} "
              f"{r['step_seconds_median']:>7.3f} {r['samples_per_s']:>9.1f} {r['achieved_gflop_per_s']:>8.1f} "
              f"{r['ratio_vs_textbook']:>6.2f} [{r['ratio_ci95'][0]:.2f}, {r['ratio_ci95'][1]:.2f}]")
    meta = {"threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
            "cpu_bf16": cpu_bf16_supported(), "rounds": args.rounds,
            "note": ("ratio = textbook step time / model step time within each round of interleaved single steps "
                     "(same process, same inputs); median over rounds, 95% bootstrap interval of the median; "
                     "FLOPs = forward + backward")}
    out = ROOT / "benchmarks" / "results" / "training.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    from pipeline.common.atomic import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"[bench] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
