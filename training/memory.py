"""Estimate the peak memory of one training step of the ConvLSTM U-Net.

    python -m training.memory [--config config.yaml] --cells 64 128 [--batch 8] [--channels 56] \\
        [--amp] [--budget-gb 12] [--json]

Prints the estimate on stdout (the command's result; ``--json`` for JSON) and exits 1
when it exceeds ``--budget-gb``. ``--grid H W`` is a deprecated alias of ``--cells``.

The estimate counts, analytically, what autograd keeps for the backward pass (from the
tensor shapes of :mod:`training.model`, per time step and level), plus the parameters,
their gradients, AdamW's two moments, the input batch and the largest transient
(a level's batched input-gate tensor and its gradient). With ``--amp`` the convolution
inputs and outputs are counted at 2 bytes and everything else at 4 (GroupNorm and the
gate nonlinearities run in float32 under autocast), which errs high. A CUDA context
(about 0.5 GB) is added when ``--device cuda``, and 20 % allocator slack on top of the
activations and transients. The tests compare this estimate with the
measured peak of a CPU training step.

Element counts per pixel and per time step of a ConvLSTM level of width h (fp32 unless
noted): gate pre-activations 4h (saved by the norm; 2 bytes under AMP), sigmoid outputs
3h, tanh(g) h, c h, tanh(c) h, h h, the stacked output h; plus the level's input
sequence (C_in per frame) and, under AMP, bf16/fp16 copies of the conv inputs.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace

from training.config import ModelConfig, frames_config, model_config


# Caching allocators (CUDA's, glibc's arenas on CPU) hold freed blocks: add this fraction of
# the activation and transient bytes. Calibrated against measured CPU peaks (tests).
SLACK = 0.2


@dataclass
class MemoryEstimate:
    parameters: int
    weights_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    input_bytes: int
    activation_bytes: int
    transient_bytes: int
    slack_bytes: int  # allocator slack: SLACK x (activations + transient)
    context_bytes: int

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.grads_bytes + self.optimizer_bytes + self.input_bytes
                + self.activation_bytes + self.transient_bytes + self.slack_bytes + self.context_bytes)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["total_bytes"] = self.total_bytes
        return d


def count_params(in_channels: int, mc: ModelConfig) -> int:
    from training.model import ConvLSTMUNet, count_parameters

    if mc.region_channel:  # one more input channel; the same parameters as one more data channel
        in_channels, mc = in_channels + 1, replace(mc, region_channel=False)
    return count_parameters(ConvLSTMUNet.from_config(in_channels, mc))


def estimate(in_channels: int, steps: int, grid: tuple[int, int], batch: int, mc: ModelConfig,
             amp: bool = False, device: str = "cpu") -> MemoryEstimate:
    """Peak bytes of one training step (forward, backward, AdamW step)."""
    hidden = list(mc.hidden)
    depth = len(hidden) - 1
    m = 2**depth
    hp, wp = math.ceil(grid[0] / m) * m, math.ceil(grid[1] / m) * m
    f32 = 4
    low = 2 if amp else 4  # conv outputs / cast copies under autocast
    cast = 2 if amp else 0  # extra low-precision copy of each conv input under autocast
    b, t = batch, steps
    act = 0
    padded = (hp, wp) != tuple(grid)
    if padded:
        act += b * t * in_channels * hp * wp * f32
    cin = in_channels
    transient = 0
    for lvl, h in enumerate(hidden):
        p = (hp // 2**lvl) * (wp // 2**lvl)
        per_step = 4 * h * low + (3 * h + h + h + h + h + h) * f32  # gates, sig, tanh g, c, tanh c, h, stack
        per_step += h * cast  # cast copy of h for the recurrent conv
        act += b * t * p * per_step
        if lvl > 0:  # the level's input sequence is the pooled previous level (saved by its conv)
            act += b * t * p * cin * f32
        act += b * t * p * cin * cast  # cast copy of the conv input
        if lvl < depth:  # max-pool indices (int64) of the downsampling
            act += b * t * (p // 4) * h * 8
        # backward at this level: batched input gates and their gradient, the gradient of the
        # output sequence, and a (blocked-layout) copy of the conv input for the weight gradient
        transient = max(transient, b * t * p * (2 * 4 * h + h + cin) * f32)
        cin = h
    # attention at the bottleneck
    hb = hidden[-1]
    pb = (hp // m) * (wp // m)
    n_att = t if mc.attention_mode == "every_step" else 1
    if mc.attention == "self":
        r = max(1, hb // 8)
        att = (2 * r + 2 * hb) * pb * f32 + 2 * pb * pb * f32  # q, k, v, out; scores + softmax
    elif mc.attention in ("se", "eca"):
        att = 2 * hb * pb * f32
    elif mc.attention == "cbam":
        att = (3 * hb + 4) * pb * f32
    else:
        att = 0
    act += b * n_att * att
    # decoder: one ConvLSTMCell step per level, fed by a transposed conv
    for lvl in reversed(range(depth)):
        h = hidden[lvl]
        p = (hp // 2**lvl) * (wp // 2**lvl)
        act += b * p * 2 * h * f32  # up output, gate-conv input [up, h_skip]
        act += b * p * (4 * h * low + 6 * h * f32)
        act += b * (p // 4) * hidden[lvl + 1] * (f32 + cast)  # transposed-conv input
    act += b * hp * wp * (hidden[0] + 2) * f32  # head input, softplus input, output
    n_par = count_params(in_channels, mc)
    return MemoryEstimate(
        parameters=n_par,
        weights_bytes=n_par * f32 + (n_par * 2 if amp else 0),
        grads_bytes=n_par * f32,
        optimizer_bytes=2 * n_par * f32,
        input_bytes=b * t * in_channels * grid[0] * grid[1] * f32 + 2 * b * grid[0] * grid[1] * f32,
        activation_bytes=int(act),
        transient_bytes=int(transient),
        slack_bytes=int(SLACK * (act + transient)),
        context_bytes=int(0.5e9) if device == "cuda" else 0,
    )


def main(argv=None) -> int:
    from pipeline.common import cli

    ap = cli.parser("python -m training.memory", __doc__)
    cli.add_config(ap)
    ap.add_argument("--cells", type=int, nargs=2, metavar=("H", "W"), help="grid cells (lat, lon); required")
    ap.add_argument("--grid", type=int, nargs=2, dest="cells", help=argparse.SUPPRESS)  # deprecated alias
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: train.batch_size)")
    ap.add_argument("--channels", type=int, default=56, help="input channels (default 56)")
    ap.add_argument("--amp", action="store_true", help="mixed precision (fp16/bf16 autocast)")
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"],
                    help="device (default cuda: adds a CUDA context)")
    ap.add_argument("--budget-gb", type=float, default=12.0, help="fail (exit 1) above this many GB (default 12)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    return cli.run(ap, lambda args: _main(ap, args), argv)


def _main(ap, args) -> int:
    from pipeline.common.config import load_config

    if args.cells is None:
        ap.error("the following arguments are required: --cells")
    args.grid = args.cells
    config = load_config(args.config)
    mc, fc = model_config(config), frames_config(config)
    batch = args.batch or config["train"]["batch_size"]
    est = estimate(args.channels, fc.input_steps, tuple(args.grid), batch, mc, args.amp, args.device)
    gb = est.total_bytes / 1e9
    fits = gb <= args.budget_gb
    if args.json:
        print(json.dumps(dict(est.as_dict(), budget_gb=args.budget_gb, fits=fits), indent=1))
    else:
        print(f"ConvLSTM U-Net hidden {list(mc.hidden)}, {args.channels} channels x {fc.input_steps} frames, "
              f"grid {args.grid[0]}x{args.grid[1]}, batch {batch}, amp {'on' if args.amp else 'off'}, {args.device}")
        for k, v in est.as_dict().items():
            if k.endswith("_bytes"):
                print(f"  {k[:-6]:<12} {v / 1e9:8.3f} GB")
            else:
                print(f"  {k:<12} {v:,}")
        print(f"  estimated peak {gb:.2f} GB: {'fits' if fits else 'EXCEEDS'} the {args.budget_gb:g} GB budget")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
