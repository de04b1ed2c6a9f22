"""Train the ConvLSTM U-Net on a processed zarr.

    python -m training.train --config config.yaml --data processed/region1.zarr \\
        --exp exp1 --seed 0 --out results/runs/exp1/seed0 [--resume] [--threads N]

Writes (atomically) into ``--out``: ``checkpoint.pt`` (best validation loss),
``checkpoint_last.pt`` (end of the latest epoch, for ``--resume``), ``train_log.csv``
(epoch, train_loss, val_loss, lr, seconds) and ``loss_curve.png``. Prints parameter and
FLOP counts at start-up and a progress bar per epoch on stderr.

Time budget: with ``train.time_budget_minutes`` > 0 the run stops before an epoch that,
at the pace of the previous one, would end past the budget (the stop is logged; the
best checkpoint so far is kept). Off by default: it makes the epoch count machine-dependent.

Resume: with ``--resume`` (the workflow always passes it) a run continues from
``checkpoint_last.pt`` when that file belongs to the same run (same model, frames, train
and splits settings, data, experiment and seed; otherwise it starts fresh and says so).
``checkpoint_last.pt`` also carries the best epoch's checkpoint, so a job killed mid-run,
whose declared outputs the workflow removed, resumes and still ends with ``checkpoint.pt``.

Exact resume: the shuffling order of epoch e is drawn from a generator seeded with
(seed, e), the model has no stochastic layers, and the checkpoint carries the optimiser,
scheduler, scaler and RNG states; with ``train.deterministic`` on CPU, a run killed after
any epoch and resumed ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from pipeline.common import cli
from pipeline.common.atomic import atomic_path, write_bytes_if_changed
from pipeline.common.config import load_config
from pipeline.common.errors import TrainingDivergedError
from pipeline.dataset import layout
from training import checkpoint as ckpt_io
from training import distributed
from training.config import as_dict, frames_config, model_config, train_config
from pipeline.common.experiments import experiment as declared_experiment
from training.data import (GroupDropout, TrainingDataError, WindowDataset, input_selection, make_loader, normalisation_of,
                           open_processed, split_samples)
from training.losses import make_loss
from training.model import ConvLSTMUNet, count_flops, count_parameters

log = logging.getLogger("training.train")

LOG_FIELDS = ("epoch", "train_loss", "val_loss", "lr", "seconds")


# ------------------------------------------------------------------ runtime set-up
def pick_device(name: str) -> torch.device:
    """``auto``: cuda if available, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'train.device': 'cuda' requested but CUDA is not available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("config key 'train.device': 'mps' requested but MPS is not available")
    return torch.device(name)


def cpu_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - older builds
        return False


def amp_settings(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler).

    auto: fp16 + GradScaler on CUDA, off elsewhere. bf16: bf16 autocast (no scaler) on
    any device; on a CPU without native bf16 support it would be slower than fp32, so
    the trainer warns and runs fp32 instead.
    """
    if amp == "off":
        return None, False
    if amp == "auto":
        return (torch.float16, True) if device.type == "cuda" else (None, False)
    if device.type == "cpu" and not cpu_bf16_supported():
        warnings.warn("train.amp=bf16 but this CPU has no native bf16 support; training in float32")
        return None, False
    return torch.bfloat16, False


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def set_determinism(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def lr_lambda(total_steps: int, schedule: str, warmup_fraction: float = 0.0):
    """Learning-rate factor per optimiser step: linear warm-up over ``warmup_fraction`` of
    the steps, then cosine decay to 0 (``cosine``) or constant (``none``)."""
    total = max(1, total_steps)
    warm = int(round(warmup_fraction * total))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if schedule == "none":
            return 1.0
        s = min(step - warm, total - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * s))

    return f


# -------------------------------------------------------------------- epoch loops
def run_epoch(model, loader, tc, device, amp_dtype, loss_fn, optimizer=None, scheduler=None, scaler=None,
              desc: str = "", progress: bool = True, dist_ctx: distributed.Context | None = None,
              augment: Callable | None = None) -> float:
    """One pass; trains when ``optimizer`` is given. Returns the mask-weighted mean loss.
    ``augment(x)``, when given, is applied to each training batch's inputs (the region-2
    group dropout).

    A batch whose loss is NaN or inf stops the run (:class:`TrainingDivergedError`, naming
    the epoch, the batch, the value and whether inputs, targets or weights are to blame)
    before the optimiser steps on it.

    ``dist_ctx`` (under ``torchrun``): each rank's batch is its shard of the global batch;
    the loss is normalised by the global batch's cells and the mean is over all ranks."""
    train = optimizer is not None
    model.train(train)
    total, cells = 0.0, 0.0
    accum = tc.grad_accumulation
    n_batches = len(loader)
    bar = tqdm(loader, desc=desc, leave=False, file=sys.stderr, disable=not progress, dynamic_ncols=True)
    ctx = torch.enable_grad() if train else torch.no_grad()
    with ctx:
        for k, (x, y, mask) in enumerate(bar):
            if train and augment is not None:
                x = augment(x)
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            mask = mask.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                pred = model(x)  # (B, 1 or n_bins, H, W)
            loss_sum = loss_fn(pred, y, mask)
            n = float(mask.sum())
            value = float(loss_sum.detach())
            if not math.isfinite(value):
                raise TrainingDivergedError(diverged_message(desc, k, n_batches, value, model, x, y, tc))
            total += value
            cells += n
            if train:
                # the mean over this batch's cells, split evenly over the accumulated batches
                loss = loss_sum / (max(n, 1.0) if dist_ctx is None else dist_ctx.mean_cells(n)) / accum
                scaler.scale(loss).backward()
                if (k + 1) % accum == 0 or k + 1 == n_batches:
                    if tc.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    scheduler.step()
            bar.set_postfix(loss=f"{total / max(cells, 1.0):.4f}")
    if dist_ctx is not None:
        total, cells = dist_ctx.sum(total, cells)
    return total / max(cells, 1.0)


def diverged_message(desc: str, k: int, n_batches: int, value: float, model, x, y, tc) -> str:
    """Why a batch's loss is not finite, as far as can be told: the inputs, the targets or the weights."""
    finite = lambda t: bool(torch.isfinite(t).all())  # noqa: E731
    if not finite(x) or not finite(y):
        cause = f"the batch's {'inputs' if not finite(x) else 'targets'} hold NaN or inf"
    else:
        weights = all(finite(p) for p in model.parameters())
        cause = (f"inputs and targets are finite and the weights {'are finite' if weights else 'hold NaN or inf'}: "
                 f"the model diverged; lower train.lr ({tc.lr:g}) or set train.grad_clip ({tc.grad_clip:g})")
    return f"{desc.strip()}: loss is {value} at batch {k + 1} of {n_batches} ({cause}); training stopped"


# --------------------------------------------------------------------- outputs
def write_log_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in LOG_FIELDS})
    write_bytes_if_changed(path, buf.getvalue().encode())


def plot_loss_curve(path: Path, rows: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ep = [r["epoch"] for r in rows]
    ax.plot(ep, [r["train_loss"] for r in rows], "o-", label="train")
    ax.plot(ep, [r["val_loss"] for r in rows], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked loss (target scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------ train
def run_key(base: dict, config: dict) -> str:
    """What a resumable state must match: model, frames, train and splits settings, the
    data (its config hash, channels, grid), experiment and seed. ``checkpoint_last.pt``
    from any other run is ignored by ``--resume``."""
    import hashlib
    import json

    key = {k: base.get(k) for k in ("model_args", "frames", "train", "model", "exp", "experiment", "seed")}
    key["splits"] = ckpt_io.plain(config.get("splits"))
    key["data"] = {k: base["data"][k] for k in ("config_hash", "channels", "grid")}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Progress:
    """Where a run stands after its latest epoch (what ``checkpoint_last.pt`` carries)."""
    epoch: int = 0
    best_val: float = math.inf
    bad_epochs: int = 0
    rows: list = field(default_factory=list)
    best_state: dict | None = None  # the best epoch's checkpoint payload, kept for checkpoint_last


@dataclass
class Trainer:
    """Everything one run trains with: data, model, optimiser and the checkpoint header."""
    sets: dict
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    loss_fn: object
    device: torch.device
    amp_dtype: torch.dtype | None
    base: dict                      # checkpoint header (model args, configs, data, run_key)
    n_params: int
    flops_forward: float
    group_dropout: GroupDropout | None = None  # train.region2_group_dropout on the joined grid


#: ``on_epoch(epoch, row, trainer)`` of :func:`train`: called after each completed epoch (1-based).
EpochCallback = Callable[[int, dict, Trainer], None]


def _checkpoint_base(config: dict, ds, data_path, model, fc, mc, tc, exp: str, seed: int) -> dict:
    """The checkpoint header: model arguments, settings, normalisation, data identity and run key."""
    import json

    base = {
        "model_args": model.args,
        "config": ckpt_io.plain(config),
        "frames": as_dict(fc), "train": as_dict(tc), "model": as_dict(mc),
        "normalisation": json.dumps(ckpt_io.plain(normalisation_of(ds))),
        "data": {
            "path": str(data_path), "config_hash": str(ds.attrs.get("config_hash", "")),
            "channels": layout.channel_names(ds), "grid": [int(ds.sizes["lat"]), int(ds.sizes["lon"])],
            "lat": [float(v) for v in ds["lat"].values], "lon": [float(v) for v in ds["lon"].values],
        },
        "exp": exp, "seed": int(seed),
    }
    base["run_key"] = run_key(base, config)
    return base


def build_trainer(config: dict, data_path, exp: str, seed: int) -> Trainer:
    """Open the data, build the model and optimiser, and log the model's size and cost."""
    fc, mc, tc = frames_config(config), model_config(config), train_config(config)
    device = pick_device(tc.device)
    amp_dtype, use_scaler = amp_settings(tc.amp, device)
    ds = open_processed(data_path)
    samples = {s: split_samples(ds, config, fc, s, drop_empty=True) for s in ("train", "val")}
    for s, smp in samples.items():
        if len(smp) == 0:
            raise TrainingDataError(f"{data_path}: split '{s}' has no samples with a valid target "
                                    f"(dates {config['splits'][s]}, {fc.input_steps} input frames)")
    entry = declared_experiment(config, exp)
    selection = input_selection(ds, entry, fc)
    sets = {s: WindowDataset(data_path, ds, smp, fc, tc.target_transform, tc.preload_max_gb, selection)
            for s, smp in samples.items()}
    n_chan, n_lat, n_lon = len(selection.channels), ds.sizes["lat"], ds.sizes["lon"]

    model = ConvLSTMUNet.from_config(n_chan, mc, ds["region1_mask"].values if mc.region_channel else None).to(device)
    n_params = count_parameters(model)
    shape1 = (1, len(selection.frames), n_chan, n_lat, n_lon)
    fwd = count_flops(model, shape1)
    step_flops = count_flops(model, shape1, backward=True)
    log.info(f"{exp} seed {seed}: {n_params:,} parameters; {fwd / 1e9:.2f} GFLOP forward and "
             f"{step_flops / 1e9:.2f} GFLOP forward+backward per sample on a {n_lat}x{n_lon} grid; "
             f"device {device}, amp {amp_dtype}, threads {torch.get_num_threads()}; samples train "
             f"{len(sets['train'])}, val {len(sets['val'])} ({'in memory' if sets['train'].in_memory else 'lazy zarr'})")

    optimizer = torch.optim.AdamW(model.parameters(), lr=distributed.scaled_lr(tc), weight_decay=tc.weight_decay)
    log.info(distributed.lr_rule_text(tc))
    n_batches = math.ceil(len(sets["train"]) / tc.batch_size)
    steps_per_epoch = math.ceil(n_batches / tc.grad_accumulation)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(tc.epochs * steps_per_epoch, tc.schedule, tc.warmup_fraction))
    loss_fn = make_loss(tc.loss, mc.head, tc.loss_alpha, tc.target_transform, mc.bin_edges_mm)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    base = _checkpoint_base(config, ds, data_path, model, fc, mc, tc, exp, seed)
    base["experiment"] = {**entry.as_dict(), **selection.as_dict()}  # prediction applies the same selection
    base["run_key"] = run_key(base, config)
    dropout = GroupDropout.for_selection(ds, selection, tc.region2_group_dropout)
    if dropout is not None:
        log.info(f"region-2 group dropout: p = {dropout.p:g} for each of {', '.join(dropout.names)} in training")
    return Trainer(sets, model, optimizer, scheduler, scaler, loss_fn, device, amp_dtype, base, n_params, fwd,
                   dropout)


def resume_progress(tr: Trainer, out_dir: Path, resume: bool, main: bool = True) -> Progress:
    """The progress of an earlier attempt of the same run (``checkpoint_last.pt``, its
    states loaded into ``tr``), or a fresh start."""
    last_path, best_path = out_dir / "checkpoint_last.pt", out_dir / "checkpoint.pt"
    if not resume:
        return Progress()
    if not last_path.is_file():
        log.info(f"--resume: no {last_path}; starting fresh")
        return Progress()
    st = ckpt_io.load(last_path)
    if st.get("run_key") != tr.base["run_key"]:
        log.warning(f"--resume: {last_path} belongs to another run (model, frames, train or splits "
                    f"settings, data or seed differ); starting fresh")
        return Progress()
    if st["model_args"] != tr.model.args:
        raise ckpt_io.CheckpointError(f"{last_path}: model {st['model_args']} differs from config {tr.model.args}")
    tr.model.load_state_dict(st["model_state"])
    tr.optimizer.load_state_dict(st["optimizer"])
    tr.scheduler.load_state_dict(st["scheduler"])
    tr.scaler.load_state_dict(st["scaler"])
    ckpt_io.set_rng_state(st["rng"])
    prog = Progress(st["epoch"], st["best_val"], st["bad_epochs"], list(st["log"]), st.get("best_checkpoint"))
    if main and prog.best_state is not None and not best_path.is_file():  # removed with a killed job's outputs
        ckpt_io.save(best_path, prog.best_state)
    log.info(f"resumed from {last_path} after epoch {prog.epoch}")
    return prog


def stop_before(epoch: int, prog: Progress, tc, start_epoch: int, t_start: float,
                stop_after_epochs: int | None) -> str | None:
    """Why the run stops before ``epoch`` (0-based), or None to train it."""
    if prog.bad_epochs >= tc.early_stopping_patience:
        return "early stopping"
    if stop_after_epochs is not None and epoch >= stop_after_epochs:
        return "interrupted"
    if tc.time_budget_minutes > 0 and prog.rows and epoch > start_epoch:
        # would the next epoch (as long as the last one) end past the budget?
        if time.perf_counter() - t_start + prog.rows[-1]["seconds"] > 60 * tc.time_budget_minutes:
            log.warning(f"stopping before epoch {epoch + 1}: train.time_budget_minutes="
                        f"{tc.time_budget_minutes} would be exceeded")
            return "time budget"
    return None


def save_epoch(tr: Trainer, prog: Progress, out_dir: Path, improved: bool, title: str) -> None:
    """Checkpoints (best when ``improved``, and always the resumable last), log and curve."""
    state = dict(tr.base, model_state=tr.model.state_dict(), epoch=prog.epoch, best_val=prog.best_val,
                 bad_epochs=prog.bad_epochs, log=prog.rows)
    if improved:  # a snapshot: state_dict() tensors alias the live weights, rows grows
        prog.best_state = dict(state, log=list(prog.rows),
                               model_state={k: v.detach().clone() for k, v in state["model_state"].items()})
        ckpt_io.save(out_dir / "checkpoint.pt", state)
    ckpt_io.save(out_dir / "checkpoint_last.pt",
                 dict(state, optimizer=tr.optimizer.state_dict(), scheduler=tr.scheduler.state_dict(),
                      scaler=tr.scaler.state_dict(), rng=ckpt_io.rng_state(), best_checkpoint=prog.best_state))
    write_log_csv(out_dir / "train_log.csv", prog.rows)
    plot_loss_curve(out_dir / "loss_curve.png", prog.rows, title)


def train(config: dict, data_path, exp: str, seed: int, out_dir, resume: bool = False,
          threads: int | None = None, stop_after_epochs: int | None = None, progress: bool = True,
          on_epoch: EpochCallback | None = None) -> dict:
    """Train one model; returns a summary dict. ``stop_after_epochs`` ends this call early
    (as if killed) after that many epochs in total — used to test resuming.

    ``on_epoch(epoch, row, trainer)`` is called after every epoch, once its checkpoints and
    log are written (``row``: the epoch's ``train_log.csv`` row; ``trainer``: the model and
    the data). It may raise to end the run there (the tuner's pruning, ``training.tune``):
    the exception propagates, and the run folder holds the complete outputs of the epochs
    so far."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tc = train_config(config)
    ctx = distributed.setup(tc, pick_device(tc.device).type)  # a single process outside torchrun
    progress, ddp = progress and ctx.is_main, ctx if ctx.distributed else None
    torch.set_num_threads(threads or default_threads())
    set_determinism(seed, tc.deterministic)
    tr = build_trainer(config, data_path, exp, seed)
    model = distributed.wrap_model(tr.model, ctx, tr.device)
    prog = resume_progress(tr, out_dir, resume, ctx.is_main)
    start_epoch, title = prog.epoch, f"{exp} seed {seed}"
    cuda = tr.device.type == "cuda"
    val_loader = distributed.loader(tr.sets["val"], tc, ctx, None, cuda)
    stopped = None
    for epoch in range(start_epoch, tc.epochs):
        stopped = ctx.agree(stop_before(epoch, prog, tc, start_epoch, t_start, stop_after_epochs))
        if stopped is not None:
            break
        t0 = time.perf_counter()
        loader = distributed.loader(tr.sets["train"], tc, ctx, seed * 100_003 + epoch, cuda)
        lr = tr.optimizer.param_groups[0]["lr"]
        augment = None
        if tr.group_dropout is not None:  # its own generator per epoch (and rank): exact resume
            gen = torch.Generator().manual_seed(seed * 100_003 + epoch + 1_000_003 * (1 + ctx.rank))
            augment = lambda x, gen=gen: tr.group_dropout(x, gen)  # noqa: E731
        tl = run_epoch(model, loader, tc, tr.device, tr.amp_dtype, tr.loss_fn, tr.optimizer, tr.scheduler,
                       tr.scaler, desc=f"{exp} s{seed} epoch {epoch + 1}/{tc.epochs}", progress=progress, dist_ctx=ddp,
                       augment=augment)
        vl = run_epoch(tr.model, val_loader, tc, tr.device, tr.amp_dtype, tr.loss_fn, desc="  val",
                       progress=progress, dist_ctx=ddp)
        if not math.isfinite(tl) or not math.isfinite(vl):  # the batches were finite: the sum overflowed
            raise TrainingDivergedError(f"epoch {epoch + 1}: non-finite mean loss (train {tl}, val {vl}); "
                                        f"lower train.lr ({tc.lr:g})")
        prog.epoch = epoch + 1
        prog.rows.append({"epoch": epoch + 1, "train_loss": tl, "val_loss": vl, "lr": lr,
                          "seconds": round(time.perf_counter() - t0, 3)})
        improved = vl < prog.best_val
        prog.best_val, prog.bad_epochs = (vl, 0) if improved else (prog.best_val, prog.bad_epochs + 1)
        if ctx.is_main:  # rank 0 alone writes; the others wait
            save_epoch(tr, prog, out_dir, improved, title)
        ctx.barrier()
        log.info(f"epoch {epoch + 1}: train {tl:.4f} val {vl:.4f} lr {lr:.2e} "
                 f"{prog.rows[-1]['seconds']:.1f} s{' *' if improved else ''}")
        if on_epoch is not None:
            on_epoch(epoch + 1, dict(prog.rows[-1]), tr)
    if stopped is None:
        stopped = "early stopping" if prog.bad_epochs >= tc.early_stopping_patience else "max epochs"
    if ctx.is_main and prog.rows and stopped != "interrupted":  # a run resumed after its last epoch still leaves its outputs
        write_log_csv(out_dir / "train_log.csv", prog.rows)
        if not (out_dir / "loss_curve.png").is_file():
            plot_loss_curve(out_dir / "loss_curve.png", prog.rows, title)
    summary = {"epochs": len(prog.rows), "best_val": prog.best_val, "stopped": stopped, "parameters": tr.n_params,
               "flops_forward": tr.flops_forward, "seconds": time.perf_counter() - t_start}
    log.info(f"done ({stopped}): {len(prog.rows)} epochs, best val {prog.best_val:.4f}, {summary['seconds']:.1f} s")
    distributed.shutdown(ctx)
    return summary


def main(argv=None) -> int:
    ap = cli.parser("python -m training.train", __doc__, progress=True,
                    threads="torch CPU threads (default: the usable cores; the rule's threads in the workflow)")
    cli.add_config(ap, required=True)
    ap.add_argument("--data", required=True, help="processed zarr (region1.zarr or concat.zarr)")
    ap.add_argument("--exp", required=True, help="experiment: a name declared in the config's experiments")
    ap.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt if present")

    def body(args) -> int:
        config = load_config(args.config)
        train(config, args.data, args.exp, args.seed, args.out, resume=args.resume, threads=args.threads,
              progress=not args.no_progress)
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
