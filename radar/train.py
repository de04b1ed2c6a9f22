"""Train the radar nowcast model: 10 frames of an experiment's channels in, 10 frames of
DBZH out (``python -m radar.train --config C --cappi STORE --experiment E --seed S --out DIR``).

The model is the main track's ConvLSTM U-Net as an encoder-forecaster
(:class:`training.model.ConvLSTMUNet` with ``n_frames = radar.frames.output_steps``:
a ConvLSTM forecaster unrolled over the output frames from the decoder's state, the
regression head applied to each). Settings: ``radar.model`` / ``radar.train``; their
defaults are written once, in schemas/config.schema.yaml (:func:`schema_section`), and
were chosen on the validation split to fit the default run on 2 CPU cores
(docs/model_selection.md, "Radar"). Losses: the regression losses of
:mod:`training.losses` (``mse``, ``weighted_mse``, ``logcosh``) on the target scale (dBZ
above the floor / 10), masked by coverage and finite target; ``balanced`` (thresholds in
mm / 12 h) and the bins head are refused. AdamW with the main track's warm-up + cosine
schedule (:func:`training.train.lr_lambda`), gradient clipping, early stopping on the
validation split (patience), an optional wall-clock budget (``time_budget_minutes``; 0 =
off, the default, so that results do not depend on the machine's load). Outputs in
``--out``: ``model.pt`` (best validation epoch: model args and state, normalisation,
channels, frames), ``log.csv``, ``loss_curve.png``.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.common import cli
from pipeline.common.errors import ConfigError, TrainingDivergedError

log = logging.getLogger("radar.train")

LOSSES = ("mse", "weighted_mse", "logcosh")


@functools.lru_cache(maxsize=None)
def _schema_defaults_json(section: str) -> str:
    from pipeline.common.config import schema_defaults

    return json.dumps(schema_defaults()["radar"][section])


def schema_section(section: str) -> dict:
    """The defaults of ``radar.model`` or ``radar.train``: those of schemas/config.schema.yaml,
    the one place they are written (a fresh copy per call)."""
    return json.loads(_schema_defaults_json(section))


def model_settings(config: dict) -> dict:
    out = schema_section("model")
    out.update(((config.get("radar") or {}).get("model")) or {})
    return out


def train_settings(config: dict) -> dict:
    out = schema_section("train")
    out.update(((config.get("radar") or {}).get("train")) or {})
    if out["loss"] not in LOSSES:
        raise ConfigError(f"config key 'radar.train.loss': the radar track supports {list(LOSSES)}, "
                          f"got {out['loss']!r}")
    return out


def build_model(in_channels: int, config: dict, arrays=None):
    """The encoder-forecaster; with ``radar.model.base: persistence`` (``arrays`` needed)
    it forecasts changes to the last input frame of the target (``ConvLSTMUNet(base_channel=...)``)."""
    from radar.dataset import frames_settings, persistence_base
    from training.model import ConvLSTMUNet

    m = model_settings(config)
    base = {}
    if m["base"] == "persistence":
        if arrays is None:
            raise ValueError("radar.model.base: persistence needs the experiment's arrays")
        channel, affine = persistence_base(arrays)
        base = {"base_channel": channel, "base_affine": affine}
    elif m["base"] != "none":
        raise ConfigError(f"config key 'radar.model.base': none or persistence, got {m['base']!r}")
    return ConvLSTMUNet(in_channels, tuple(m["hidden"]), m["kernel_size"], m["attention"], m["attention_mode"],
                        m["norm"], m["groups"], "regression", dropout=m["dropout"],
                        n_frames=int(frames_settings(config)["output_steps"]), **base)


def run_epoch(model, loader, loss_kind, alpha, device, optimizer=None, scheduler=None, grad_clip=0.0,
              max_batches=0) -> float:
    """Masked mean loss over the epoch's cells (sum of losses / number of masked-in cells)."""
    import torch

    from training.losses import masked_loss

    train = optimizer is not None
    model.train(train)
    total, cells = 0.0, 0
    with torch.set_grad_enabled(train):
        for k, (x, y, m) in enumerate(loader):
            if max_batches and k >= max_batches:
                break
            x, y, m = x.to(device), y.to(device), m.to(device)
            out = model(x)  # (B, T_out, H, W)
            loss = masked_loss(out, y, m, loss_kind, alpha, reduction="sum", transform="mm")
            n = int((m > 0).sum())
            if train:
                optimizer.zero_grad(set_to_none=True)
                (loss / max(n, 1)).backward()
                if grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                scheduler.step()
            total += float(loss.detach())
            cells += n
    return total / max(cells, 1)


def train(config: dict, cappi, experiment: str, seed: int, out_dir, show_progress: bool = True) -> dict:
    import torch
    import xarray as xr

    from radar.dataset import SequenceDataset, load
    from training.checkpoint import plain, save
    from training.train import lr_lambda, plot_loss_curve, set_determinism, write_log_csv

    tc = train_settings(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_determinism(int(seed), True)
    with xr.open_zarr(cappi) as ds:
        arrays = load(ds.load(), config, experiment)
    tr, va = SequenceDataset(arrays, "train", config), SequenceDataset(arrays, "validation", config)
    if len(tr) == 0 or len(va) == 0:
        raise ConfigError(f"radar.splits: {len(tr)} training and {len(va)} validation samples in {cappi} "
                          f"({len(arrays.times)} frames); need at least one each")
    g = torch.Generator().manual_seed(int(seed))
    tl = torch.utils.data.DataLoader(tr, batch_size=int(tc["batch_size"]), shuffle=True, generator=g)
    vl = torch.utils.data.DataLoader(va, batch_size=int(tc["batch_size"]), shuffle=False)
    device = torch.device(tc["device"] if tc["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(len(arrays.channels), config, arrays).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=float(tc["lr"]), weight_decay=float(tc["weight_decay"]))
    steps = len(tl) if not tc["max_batches_per_epoch"] else min(len(tl), int(tc["max_batches_per_epoch"]))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(int(tc["epochs"]) * steps, tc["schedule"],
                                                             float(tc["warmup_fraction"])))
    log.info("experiment %s seed %d: %d channels %s, %d train / %d validation samples, %d parameters",
             experiment, seed, len(arrays.channels), arrays.channels, len(tr), len(va),
             sum(p.numel() for p in model.parameters()))
    rows, best, best_epoch, t0 = [], float("inf"), 0, time.monotonic()
    budget = float(tc["time_budget_minutes"]) * 60.0
    for epoch in range(1, int(tc["epochs"]) + 1):
        te = time.monotonic()
        trl = run_epoch(model, tl, tc["loss"], float(tc["loss_alpha"]), device, opt, sched,
                        float(tc["grad_clip"]), int(tc["max_batches_per_epoch"]))
        val = run_epoch(model, vl, tc["loss"], float(tc["loss_alpha"]), device)
        if not (np.isfinite(trl) and np.isfinite(val)):
            raise TrainingDivergedError(f"radar experiment {experiment} seed {seed}: epoch {epoch} loss "
                                        f"train {trl!r} validation {val!r}")
        rows.append({"epoch": epoch, "train_loss": trl, "val_loss": val, "lr": opt.param_groups[0]["lr"],
                     "seconds": time.monotonic() - te})
        improved = val < best
        if improved:
            best, best_epoch = val, epoch
            save(out_dir / "model.pt", {
                "model_args": model.args, "model_state": model.state_dict(), "norm": arrays.norm,
                "channels": arrays.channels, "frames": plain(arrays.frames), "experiment": experiment,
                "seed": int(seed), "epoch": epoch, "val_loss": val})
        log.info("epoch %d/%d: train %.4f validation %.4f%s (%.1f s)", epoch, tc["epochs"], trl, val,
                 " *" if improved else "", rows[-1]["seconds"])
        if epoch - best_epoch >= int(tc["early_stopping_patience"]):
            log.info("early stopping: no validation gain for %d epochs", epoch - best_epoch)
            break
        if budget > 0 and time.monotonic() - t0 > budget:
            log.info("time budget of %.1f min spent after epoch %d", budget / 60, epoch)
            break
    write_log_csv(out_dir / "log.csv", rows)
    plot_loss_curve(out_dir / "loss_curve.png", rows, f"radar {experiment} seed {seed}")
    summary = {"experiment": experiment, "seed": int(seed), "best_epoch": best_epoch, "best_val_loss": best,
               "epochs_run": len(rows), "channels": arrays.channels, "n_train": len(tr), "n_validation": len(va)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> int:
    ap = cli.parser("python -m radar.train", __doc__, progress=True)
    cli.add_config(ap)
    ap.add_argument("--cappi", required=True, help="data/radar/processed/cappi.zarr")
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    return cli.run(ap, _main, argv)


def _main(args) -> None:
    from pipeline.common.config import load_config

    train(load_config(args.config), args.cappi, args.experiment, args.seed, args.out,
          show_progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(main())
