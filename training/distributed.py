"""Data-parallel training with ``torchrun`` (PyTorch DistributedDataParallel).

    torchrun --standalone --nproc-per-node 2 -m training.train --config config.yaml ...

``training.train`` reads the ``torchrun`` environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``); without it (or with ``WORLD_SIZE=1``) it
trains as a single process exactly as before. Under ``torchrun``:

- Process group: ``train.distributed_backend`` (``auto``: NCCL when training on CUDA,
  gloo on CPU; ``nccl`` or ``gloo`` force one). On CUDA each rank trains on
  ``cuda:LOCAL_RANK``.
- Batches: ``train.batch_size`` is the *global* batch, summed over the ranks; each rank
  draws ``batch_size / world_size`` samples per step (a batch size the world size does
  not divide is refused). :class:`ShardedBatchSampler` cuts every global batch of the
  single-process order (the same seeded permutation of the training samples) into one
  disjoint shard per rank, so the ranks see exactly the samples one process would, and
  only training samples: the validation split is scored on a disjoint contiguous shard
  of the validation samples per rank. The chronological split rules (a sample belongs to a
  split only when all its frames do) are those of :func:`training.data.split_samples`;
  this module only partitions the samples it returns.
- Loss: each rank divides its masked loss sum by the mean number of masked cells per
  rank in this global batch (one all-reduce of a scalar), so DDP's gradient average equals
  the gradient of the global batch's mask-weighted mean loss, as in one process. A rank
  whose shard of the last, short batch would be empty trains on a padding sample whose
  loss mask is all zero (no contribution).
- Learning rate: linear scaling, ``lr = train.lr x global_batch / train.lr_reference_batch``
  with ``global_batch = train.batch_size x train.grad_accumulation`` samples per optimiser
  step (all ranks together); with ``lr_reference_batch`` null (the default) ``train.lr``
  is used as given. The training log states the rule and the rate.
- Rank 0 alone writes checkpoints, ``train_log.csv``, the loss curve and log messages
  (other ranks log warnings and errors only); the others wait at a barrier after each
  epoch's writes. Train and validation losses are summed over the ranks, so every rank
  takes the same early-stopping decision; rank 0's time-budget decision is broadcast.
- Resume: every rank loads the ``checkpoint_last.pt`` written by rank 0 (weights,
  optimiser, scheduler, scaler, RNG state; the epoch fixes the shuffling order), so a
  killed run continues the same curve.

Equivalence (tests/training/test_distributed.py): on the test suite's tiny configuration,
two gloo processes on CPU reach the loss curve of one process with the same global batch
and seed to 5e-8 relative, and its weights to 3e-6 after 3 epochs (float32 summation
order only); a run whose rank 1 is killed resumes onto the same curve. The per-rank
loaders share the single-process loader's seeded generator, so the permutation and every
later draw of the global random state are the single process's.

With ``model.norm: batch`` the batch statistics are per rank (per-rank batch), unless on
CUDA, where the BatchNorm layers become :class:`torch.nn.SyncBatchNorm`. With
``model.dropout`` > 0 the dropout masks differ from a single-process run's.
"""
from __future__ import annotations

import datetime
import logging
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pipeline.common.errors import ConfigError

log = logging.getLogger("training.distributed")


@dataclass(frozen=True)
class Context:
    """This process's place in the run: rank, world size and local rank (all 0/1/0 alone)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, *values: float) -> tuple[float, ...]:
        """Sums over the ranks (float64), or the values themselves alone."""
        if not self.distributed:
            return tuple(values)
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t)
        return tuple(float(v) for v in t.cpu())

    def mean_cells(self, n: float) -> float:
        """The loss divisor of one rank's batch: the global batch's masked cells / world size."""
        (total,) = self.sum(n)
        return max(total, 1.0) / self.world_size

    def agree(self, value):
        """Rank 0's value on every rank (a picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def context_from_env(env=os.environ) -> Context:
    """The ``torchrun`` environment's rank and world size (a single process without it)."""
    world = int(env.get("WORLD_SIZE", "1"))
    return Context(int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0")))


def backend_for(setting: str, device_type: str) -> str:
    """``train.distributed_backend``: ``auto`` is NCCL on CUDA and gloo elsewhere."""
    if setting == "auto":
        return "nccl" if device_type == "cuda" else "gloo"
    if setting == "nccl" and device_type != "cuda":
        raise ConfigError(f"config key 'train.distributed_backend': 'nccl' needs CUDA, but training runs on "
                          f"{device_type}; use gloo or auto")
    return setting


def setup(tc, device_type: str) -> Context:
    """Join the ``torchrun`` process group (nothing to do for a single process)."""
    ctx = context_from_env()
    if not ctx.distributed:
        return ctx
    per_rank_batch(tc.batch_size, ctx.world_size)
    backend = backend_for(tc.distributed_backend, device_type)
    if device_type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    if not ctx.is_main:  # rank 0 alone logs progress
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    log.info(f"distributed data parallel: {ctx.world_size} processes, backend {backend}, global batch "
             f"{tc.batch_size} = {per_rank_batch(tc.batch_size, ctx.world_size)} per rank")
    return ctx


def shutdown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """``train.batch_size / world_size``; a global batch the world size does not divide is refused."""
    if global_batch % world_size:
        raise ConfigError(f"config key 'train.batch_size': the global batch {global_batch} is not divisible by the "
                          f"{world_size} processes of this run; choose a multiple of {world_size}")
    return global_batch // world_size


def scaled_lr(tc) -> float:
    """The linear scaling rule: ``train.lr x global_batch / train.lr_reference_batch``, with
    ``global_batch = batch_size x grad_accumulation``; ``train.lr`` itself without a reference."""
    if tc.lr_reference_batch is None:
        return tc.lr
    return tc.lr * (tc.batch_size * tc.grad_accumulation) / tc.lr_reference_batch


def lr_rule_text(tc) -> str:
    global_batch = tc.batch_size * tc.grad_accumulation
    if tc.lr_reference_batch is None:
        return f"lr {tc.lr:g} (train.lr; global batch {global_batch}, no train.lr_reference_batch: not scaled)"
    return (f"lr {scaled_lr(tc):g} = train.lr {tc.lr:g} x global batch {global_batch} / "
            f"train.lr_reference_batch {tc.lr_reference_batch} (linear scaling)")


class ShardedBatchSampler(torch.utils.data.Sampler):
    """This rank's shard of every global batch of the single-process order.

    The order is the permutation that a shuffling :class:`torch.utils.data.DataLoader`
    with a generator seeded by ``shuffle_seed`` draws (identity without a seed): the
    generator is shared with this rank's loader (:func:`train_loader`), which, like the
    single-process loader, draws its base seed from it before the sampler draws the
    permutation, so the permutation is the single process's on every rank. Global batch
    k is ``order[k B : (k + 1) B]`` and rank r takes its r-th contiguous part (equal parts
    of ``B / world`` for full batches). An empty part of the last batch becomes one padding
    index ``-(i + 1)`` (see :class:`PaddedDataset`): every rank steps as often as the others.
    """

    def __init__(self, n: int, global_batch: int, ctx: Context, generator: torch.Generator | None):
        self.n, self.batch, self.ctx, self.generator = n, global_batch, ctx, generator

    def order(self) -> list[int]:
        if self.generator is None:
            return list(range(self.n))
        return list(torch.utils.data.RandomSampler(range(self.n), generator=self.generator))

    def __iter__(self):
        order, r, w = self.order(), self.ctx.rank, self.ctx.world_size
        for k in range(0, self.n, self.batch):
            chunk = order[k : k + self.batch]
            part = chunk[r * len(chunk) // w : (r + 1) * len(chunk) // w]
            yield part if part else [-(chunk[0] + 1)]

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch)


class PaddedDataset(torch.utils.data.Dataset):
    """A dataset whose negative index ``-(i + 1)`` is sample i with an all-zero loss mask."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        if i >= 0:
            return self.dataset[i]
        x, y, mask = self.dataset[-i - 1]
        return x, y, torch.zeros_like(mask)


def _loader(dataset, batch_sampler, num_workers: int, pin_memory: bool,
            generator: torch.Generator | None = None) -> torch.utils.data.DataLoader:
    kw = dict(persistent_workers=False, prefetch_factor=4) if num_workers > 0 else {}
    return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers,
                                       pin_memory=pin_memory, generator=generator, **kw)


def train_loader(dataset, tc, ctx: Context, shuffle_seed: int, pin_memory: bool) -> torch.utils.data.DataLoader:
    """This rank's training batches of one epoch (the epoch's seed fixes the order)."""
    gen = torch.Generator().manual_seed(int(shuffle_seed))  # as training.data.make_loader's
    sampler = ShardedBatchSampler(len(dataset), tc.batch_size, ctx, gen)
    return _loader(PaddedDataset(dataset), sampler, tc.num_workers, pin_memory, gen)


def val_loader(dataset, tc, ctx: Context, pin_memory: bool) -> torch.utils.data.DataLoader:
    """This rank's contiguous shard of the validation samples, in per-rank batches."""
    n, r, w = len(dataset), ctx.rank, ctx.world_size
    shard = torch.utils.data.Subset(dataset, range(r * n // w, (r + 1) * n // w))
    sampler = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(shard),
                                            per_rank_batch(tc.batch_size, w), drop_last=False)
    return _loader(shard, sampler, tc.num_workers, pin_memory)


def wrap_model(model: torch.nn.Module, ctx: Context, device: torch.device) -> torch.nn.Module:
    """The model to train with: DDP-wrapped under ``torchrun``, the model itself alone."""
    if not ctx.distributed:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
    return torch.nn.parallel.DistributedDataParallel(model)


def loader(dataset, tc, ctx: Context, shuffle_seed: int | None, pin_memory: bool) -> torch.utils.data.DataLoader:
    """An epoch's training batches (``shuffle_seed`` given) or the validation batches
    (None): :func:`training.data.make_loader` alone, this rank's shard under ``torchrun``."""
    from training.data import make_loader

    if not ctx.distributed:
        return make_loader(dataset, tc.batch_size, shuffle_seed, tc.num_workers, pin_memory)
    if shuffle_seed is None:
        return val_loader(dataset, tc, ctx, pin_memory)
    return train_loader(dataset, tc, ctx, shuffle_seed, pin_memory)
