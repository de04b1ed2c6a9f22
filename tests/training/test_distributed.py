"""Data-parallel training under ``torchrun`` (training/distributed.py): two gloo processes
on CPU train the tiny configuration to the same loss curve and weights as one process with
the same global batch and seed, and a killed DDP run resumes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from training import distributed
from training.data import make_loader

from conftest import make_processed, tiny_config

DRIVER = Path(__file__).with_name("ddp_driver.py")
ROOT = Path(__file__).resolve().parents[2]
#: Two processes sum their gradients in another order than one process: float32 rounding
#: differences only. Measured on the tiny configuration: losses agree to 5e-8 relative,
#: weights to 3e-6 absolute after 3 epochs.
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-4


class _Index(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor(i), torch.zeros(1), torch.ones(1)


@pytest.mark.parametrize("n,batch,world", [(21, 8, 2), (16, 8, 2), (23, 6, 3), (5, 8, 2)])
def test_shards_of_every_global_batch_are_the_single_process_batch(n, batch, world):
    """Rank by rank, the shards of each global batch put together are exactly the batch one
    process's shuffled loader draws for the same seed (and a rank with nothing left in the
    last batch gets a padding sample with an all-zero loss mask)."""
    class TC:
        batch_size, num_workers = batch, 0

    seed = 1234
    one = [b[0].tolist() for b in make_loader(_Index(n), batch, seed, 0)]
    shards = [list(distributed.train_loader(_Index(n), TC, distributed.Context(r, world, r), seed, False))
              for r in range(world)]
    assert all(len(s) == len(one) for s in shards)
    for k, expected in enumerate(one):
        got, padding = [], 0
        for s in shards:
            idx, _, mask = s[k]
            real = mask.reshape(len(idx), -1).sum(1) > 0
            got += idx[real].tolist()
            padding += int((~real).sum())
        assert got == expected
        assert padding == (world - len(expected) if len(expected) < world else 0)


def _torchrun(store, out, *extra, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(DRIVER), str(store), str(out), *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def _weights(out: Path) -> dict:
    return torch.load(out / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model_state"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process, and two gloo processes, on the same store, seed and global batch (8)."""
    from training.train import train

    tmp = tmp_path_factory.mktemp("ddp")
    store = make_processed(tmp / "concat.zarr", region1_cols=5)
    train(tiny_config(train={"epochs": 3}), store, "exp2", 0, tmp / "one", threads=1, progress=False)
    _torchrun(store, tmp / "two", "--epochs", "3")
    return store, tmp


def test_two_gloo_processes_match_one_process(runs):
    store, tmp = runs
    one = pd.read_csv(tmp / "one" / "train_log.csv")
    two = pd.read_csv(tmp / "two" / "train_log.csv")
    assert len(one) == len(two) == 3
    assert one["train_loss"].iloc[-1] < 0.8 * one["train_loss"].iloc[0]  # it learns
    np.testing.assert_allclose(two["train_loss"], one["train_loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(two["lr"], one["lr"], rtol=1e-12)
    a, b = _weights(tmp / "one"), _weights(tmp / "two")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), atol=WEIGHT_ATOL, err_msg=k)
    # rank 0 alone wrote: one log, checkpoints, curve (no per-rank files)
    assert sorted(p.name for p in (tmp / "two").iterdir()) == sorted(p.name for p in (tmp / "one").iterdir())


def test_killed_ddp_run_resumes(runs):
    """Rank 1 is killed (SIGKILL) after epoch 1; torchrun stops the run; a rerun with
    --resume continues from rank 0's checkpoint and ends on the uninterrupted curve."""
    store, tmp = runs
    out = tmp / "killed"
    r = _torchrun(store, out, "--epochs", "3", "--kill-rank", "1", "--kill-after-epoch", "1", check=False)
    assert r.returncode != 0
    assert len(pd.read_csv(out / "train_log.csv")) == 1
    _torchrun(store, out, "--epochs", "3", "--resume")
    resumed, whole = pd.read_csv(out / "train_log.csv"), pd.read_csv(tmp / "two" / "train_log.csv")
    assert list(resumed["epoch"]) == [1, 2, 3]
    np.testing.assert_allclose(resumed["train_loss"], whole["train_loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(resumed["val_loss"], whole["val_loss"], rtol=LOSS_RTOL)
    a, b = _weights(tmp / "two"), _weights(out)
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), atol=WEIGHT_ATOL, err_msg=k)
