"""The bins head: a categorical distribution over rain amounts (MetNet style).

Bins are cut at the inner edges ``e_1 < ... < e_K`` (mm / 12 h): ``[0, e_1), [e_1, e_2),
..., [e_K, inf)``, K + 1 bins. A value equal to an edge belongs to the bin above it, so
``P(rain >= e_k)`` is the sum of the bins from k on — the event definition of the
evaluation (value >= threshold), exact when every threshold is an edge.

Within a bin the distribution is taken as uniform (a piecewise-linear CDF); the open top
bin is closed at :func:`top_edge` for quantiles and CRPS. All functions are vectorised over
(B, bins, H, W) tensors or arrays with the bin axis at ``axis``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def top_edge(edges) -> float:
    """Upper bound given to the open top bin: twice the last inner edge."""
    return 2.0 * float(edges[-1])


def bounds(edges) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of every bin, mm; length len(edges) + 1."""
    e = np.asarray(edges, float)
    return np.concatenate([[0.0], e]), np.concatenate([e, [top_edge(e)]])


def bin_index(rain_mm: torch.Tensor, edges) -> torch.Tensor:
    """Bin of each value: k with e_k <= rain < e_{k+1} (e_0 = 0), as int64."""
    b = torch.as_tensor(np.asarray(edges, np.float32), device=rain_mm.device)
    return torch.bucketize(rain_mm.float().contiguous(), b, right=True)


def masked_cross_entropy(logits: torch.Tensor, rain_mm: torch.Tensor, mask: torch.Tensor, edges) -> torch.Tensor:
    """Sum over cells with mask > 0 of -log p(bin of the observed rain).

    logits (B, K+1, H, W); rain_mm and mask (B, 1, H, W). Masked-out cells (NaN rain
    included) contribute nothing.
    """
    on = mask[:, 0] > 0
    # rain_mm comes back from the target scale (expm1 of log1p): a relative 1e-5 keeps a
    # value equal to an edge in the bin above it, as the evaluation's `>=` does
    rain = torch.where(mask > 0, rain_mm, torch.zeros((), device=rain_mm.device)) * (1.0 + 1e-5)
    target = bin_index(rain, edges)[:, 0]
    nll = F.cross_entropy(logits.float(), target, reduction="none")  # (B, H, W)
    return torch.where(on, nll, torch.zeros((), device=nll.device)).sum()


def exceedance(probs, edges, thresholds, axis: int = 1):
    """P(rain >= t) for each threshold, stacked along ``axis``; every t must be an edge."""
    e = [float(v) for v in edges]
    idx = []
    for t in thresholds:
        match = [k for k, v in enumerate(e) if np.isclose(v, float(t))]
        if not match:
            raise ValueError(f"threshold {t} mm is not a bin edge of the bins head {e}; "
                             "add it to model.bin_edges_mm")
        idx.append(match[0] + 1)
    if isinstance(probs, torch.Tensor):
        tail = torch.flip(torch.cumsum(torch.flip(probs, (axis,)), axis), (axis,))  # P(bin >= k)
        return torch.cat([tail.narrow(axis, k, 1) for k in idx], axis)
    tail = np.flip(np.cumsum(np.flip(probs, axis), axis), axis)
    return np.concatenate([np.take(tail, [k], axis=axis) for k in idx], axis)


def quantile(probs: np.ndarray, edges, q: float, axis: int = 1) -> np.ndarray:
    """The q-quantile of the binned distribution (uniform within a bin), mm."""
    p = np.moveaxis(np.asarray(probs, np.float64), axis, -1)
    lo, hi = bounds(edges)
    cdf = np.cumsum(p, -1)
    k = np.minimum((cdf < q).sum(-1), p.shape[-1] - 1)  # first bin with cdf >= q
    before = np.take_along_axis(cdf, k[..., None], -1)[..., 0] - np.take_along_axis(p, k[..., None], -1)[..., 0]
    pk = np.take_along_axis(p, k[..., None], -1)[..., 0]
    frac = np.clip((q - before) / np.maximum(pk, 1e-12), 0.0, 1.0)
    return (lo[k] + frac * (hi[k] - lo[k])).astype(np.float32)


def mean(probs: np.ndarray, edges, axis: int = 1) -> np.ndarray:
    """Expected rain of the binned distribution (bin mid-points), mm."""
    lo, hi = bounds(edges)
    mid = (lo + hi) / 2
    shape = [1] * np.ndim(probs)
    shape[axis] = -1
    return (np.asarray(probs) * mid.reshape(shape)).sum(axis).astype(np.float32)
