"""Masked losses on the configured target scale.

``y`` and ``pred`` are on the target scale (``log1p``: log(1 + mm); ``mm``). Cells where
``mask`` is 0 (region 2, no coverage, no rain data at the target time) contribute
nothing — they are removed with ``where`` so even a NaN there cannot leak in — and the
loss is the mean over the masked-in cells of the batch.

- ``mse``:          (pred - y)^2
- ``weighted_mse``: (1 + alpha * y) (pred - y)^2  (heavier rain weighs more; y >= 0)
- ``logcosh``:      log(cosh(pred - y)), computed stably as |d| + softplus(-2|d|) - log 2
- ``balanced``:     w(y_mm) ((pred - y)^2 + |pred - y|), the balanced MSE + MAE of Shi et al.
                    (2017, HKO-7), with threshold weights w = 1, 2, 5, 10, 30 for observed
                    rain below 0.1, 5, 15, 30 mm / 12 h and above (:data:`BALANCED_WEIGHTS`)
- ``cross_entropy``: the bins head's negative log-likelihood of the observed rain bin
                    (:func:`training.bins.masked_cross_entropy`); see :func:`make_loss`
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


#: (threshold mm / 12 h, weight): the balanced loss weighs a cell by the highest threshold its
#: observed rain reaches (weight 1 below the first).
BALANCED_WEIGHTS = ((0.1, 2.0), (5.0, 5.0), (15.0, 10.0), (30.0, 30.0))


def balanced_weight(y_mm: torch.Tensor) -> torch.Tensor:
    w = torch.ones_like(y_mm)
    for threshold, weight in BALANCED_WEIGHTS:
        w = torch.where(y_mm >= threshold, torch.full_like(y_mm, weight), w)
    return w


def elementwise_loss(pred: torch.Tensor, y: torch.Tensor, kind: str, alpha: float = 1.0,
                     transform: str = "log1p") -> torch.Tensor:
    d = pred - y
    if kind == "balanced":
        return balanced_weight(to_mm(y, transform)) * (d * d + d.abs())
    if kind == "mse":
        return d * d
    if kind == "weighted_mse":
        return (1.0 + alpha * y) * d * d
    if kind == "logcosh":
        a = d.abs()
        return a + F.softplus(-2.0 * a) - math.log(2.0)
    raise ValueError(f"unknown loss {kind!r}; allowed: mse, weighted_mse, logcosh, balanced "
                     "(cross_entropy: see make_loss)")


def masked_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, kind: str, alpha: float = 1.0,
                reduction: str = "mean", transform: str = "log1p") -> torch.Tensor:
    """Mean (or sum with ``reduction='sum'``) of the element loss over cells with mask > 0.

    All tensors (B, 1, H, W); computed in float32 whatever the autocast dtype.
    """
    on = mask > 0
    pred = pred.float()
    y = torch.where(on, y.float(), torch.zeros((), device=y.device))
    el = torch.where(on, elementwise_loss(pred, y, kind, alpha, transform), torch.zeros((), device=pred.device))
    total = el.sum()
    if reduction == "sum":
        return total
    return total / on.sum().clamp_min(1)


def make_loss(loss: str, head: str, alpha: float, transform: str, bin_edges_mm):
    """``f(output, y, mask) -> summed loss`` for a model head; y on the target scale.

    The bins head is trained with cross-entropy only, the regression head with any of the
    pointwise losses; other pairs are a configuration error.
    """
    from pipeline.common.config import check_head_and_loss
    from training import bins

    check_head_and_loss(head, loss)
    if head == "bins":
        return lambda out, y, mask: bins.masked_cross_entropy(out, to_mm(y.float(), transform), mask, bin_edges_mm)
    return lambda out, y, mask: masked_loss(out, y, mask, loss, alpha, reduction="sum", transform=transform)
