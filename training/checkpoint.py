"""Checkpoints: everything to resume training or to reload the model without a config file.

A checkpoint is a dict of tensors and plain Python values only (no pickled classes), so
it loads with ``torch.load(weights_only=True)``. Contents:

- ``format``, ``model_args`` (ConvLSTMUNet kwargs), ``model_state``
- ``config`` (the full validated config), ``frames``, ``train`` (typed sections as dicts)
- ``normalisation`` (JSON string of the zarr's statistics), ``data`` (path, config_hash,
  channels, grid shape, lat/lon), ``exp``, ``seed``
- ``epoch`` (epochs completed), ``best_val``, ``bad_epochs``, ``log`` (per-epoch rows)
- ``optimizer``, ``scheduler``, ``scaler`` state dicts and ``rng`` (torch, numpy,
  python, cuda generator states)
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.cli import one_line
from pipeline.common.integrity import rebuild_hint
from training.model import ConvLSTMUNet

FORMAT = "st-rainnet-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not of this format."""


cli.register_error(CheckpointError)  # command lines print it as one line, exit 2


def plain(obj):
    """JSON round trip: numpy scalars, tuples and dates become plain values."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path, payload: dict) -> None:
    """Atomic ``torch.save``."""
    payload = dict(payload, format=FORMAT)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path, map_location="cpu") -> dict:
    """Safe load (``weights_only=True``) with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty checkpoint (0 bytes); {rebuild_hint(path)}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise CheckpointError(f"{path}: cannot load checkpoint safely (damaged, truncated or foreign: "
                              f"{one_line(err)}); {rebuild_hint(path)}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (format={getattr(ckpt, 'get', lambda k: None)('format')!r})")
    return ckpt


def model_from_checkpoint(ckpt: dict, device="cpu") -> ConvLSTMUNet:
    """Rebuild the model from the checkpoint alone, in eval mode."""
    model = ConvLSTMUNet(**ckpt["model_args"])
    model.load_state_dict(ckpt["model_state"])
    return model.to(device).eval()


def sha256_of(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
