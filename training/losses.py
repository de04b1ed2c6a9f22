"""Masked losses on the configured target scale.

``y`` and ``pred`` are on the target scale (``log1p``: log(1 + mm); ``mm``). Cells where
``mask`` is 0 (region 2, no coverage, no rain data at the target time) contribute
nothing — they are removed with ``where`` so even a NaN there cannot leak in — and the
loss is the mean over the masked-in cells of the batch.

- ``mse``:          (pred - y)^2
- ``weighted_mse``: (1 + alpha * y) (pred - y)^2  (heavier rain weighs more; y >= 0)
- ``logcosh``:      log(cosh(pred - y)), computed stably as |d| + softplus(-2|d|) - log 2
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to_target(rain_mm: torch.Tensor, transform: str) -> torch.Tensor:
    if transform == "log1p":
        return torch.log1p(rain_mm)
    if transform == "mm":
        return rain_mm
    raise ValueError(f"unknown target_transform {transform!r}; allowed: log1p, mm")


def to_mm(pred: torch.Tensor, transform: str) -> torch.Tensor:
    """Inverse of :func:`to_target` (non-negative in, non-negative out)."""
    if transform == "log1p":
        return torch.expm1(pred)
    if transform == "mm":
        return pred
    raise ValueError(f"unknown target_transform {transform!r}; allowed: log1p, mm")


def elementwise_loss(pred: torch.Tensor, y: torch.Tensor, kind: str, alpha: float = 1.0) -> torch.Tensor:
    d = pred - y
    if kind == "mse":
        return d * d
    if kind == "weighted_mse":
        return (1.0 + alpha * y) * d * d
    if kind == "logcosh":
        a = d.abs()
        return a + F.softplus(-2.0 * a) - math.log(2.0)
    raise ValueError(f"unknown loss {kind!r}; allowed: mse, weighted_mse, logcosh")


def masked_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, kind: str, alpha: float = 1.0,
                reduction: str = "mean") -> torch.Tensor:
    """Mean (or sum with ``reduction='sum'``) of the element loss over cells with mask > 0.

    All tensors (B, 1, H, W); computed in float32 whatever the autocast dtype.
    """
    on = mask > 0
    pred = pred.float()
    y = torch.where(on, y.float(), torch.zeros((), device=y.device))
    el = torch.where(on, elementwise_loss(pred, y, kind, alpha), torch.zeros((), device=pred.device))
    total = el.sum()
    if reduction == "sum":
        return total
    return total / on.sum().clamp_min(1)
