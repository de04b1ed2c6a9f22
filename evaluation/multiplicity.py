"""Multiple comparisons: Holm's step-down adjustment of p-values.

Only the primary score (``evaluation.primary_score``) decides the verdict; every other
paired comparison of the two experiments is secondary, and its p-value is adjusted with
Holm (1979) over the family of all secondary comparisons, which controls the family-wise
error rate under any dependence between the tests (scores of the same forecasts are
strongly dependent).
"""
from __future__ import annotations

import numpy as np


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values, in the input order; NaN entries stay NaN and do not count.

    With the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))`` (the step-down maximum keeps the
    adjusted values in the order of the raw ones). Reject at level ``alpha`` where the
    adjusted value is below ``alpha``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
