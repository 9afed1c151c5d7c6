"""Benjamini-Hochberg adjustment: control the false discovery rate across features.

Testing 25 features at 5 % each flags about one stationary feature in every other
report. Adjusted p-values (q-values) bound instead the expected share of false alarms
among the features called drifted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferryman.errors import InvalidInputError


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Return Benjamini-Hochberg adjusted p-values, in the input's order.

    ``q_(i) = min over j >= i of p_(j) * k / j`` for the ascending p-values of ``k``
    tests, capped at 1. A feature is a discovery at FDR level ``f`` when ``q <= f``.

    Raises:
        InvalidInputError: A p-value is NaN or outside [0, 1].

    Example:
        >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.2])
        [0.04, 0.05333333333333334, 0.05333333333333334, 0.2]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InvalidInputError(f"p-values must lie in [0, 1]; got {list(p_values)!r}.")
    order = np.argsort(p, kind="stable")
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    result = np.empty_like(adjusted)
    result[order] = adjusted
    result = np.maximum(result, p)  # q >= p exactly, whatever the rounding of p * k / i
    return [float(value) for value in result]
