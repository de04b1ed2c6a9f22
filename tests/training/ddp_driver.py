"""Trains the tiny configuration of tests/training/conftest.py, alone or under ``torchrun``.

    torchrun --standalone --nproc-per-node 2 tests/training/ddp_driver.py STORE OUT [--epochs N]
        [--resume] [--kill-rank R --kill-after-epoch E]

``--kill-rank R --kill-after-epoch E``: rank R kills itself with SIGKILL once epoch E's
checkpoints are written (a node lost mid-run); the run must then resume with ``--resume``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_tiny_conftest", Path(__file__).with_name("conftest.py"))
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--kill-rank", type=int)
    ap.add_argument("--kill-after-epoch", type=int)
    args = ap.parse_args()

    from training.train import train

    def on_epoch(epoch, row, trainer):
        if args.kill_rank == int(os.environ.get("RANK", "0")) and epoch == args.kill_after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    cfg = _conftest.tiny_config(train={"epochs": args.epochs})
    train(cfg, args.store, "exp2", 0, args.out, resume=args.resume, threads=1, progress=False, on_epoch=on_epoch)


if __name__ == "__main__":
    main()
