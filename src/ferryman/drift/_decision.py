"""The effect-size-first decision shared by every batch test."""

from __future__ import annotations

import math

from ferryman.drift.base import DriftResult


def decide(
    *,
    method: str,
    statistic: float,
    p_value: float | None,
    effect_size: float,
    min_effect: float,
    null_band: float,
    alpha: float,
    n_reference: int,
    n_current: int,
    approximate: bool = False,
) -> DriftResult:
    """Build a result: drift when the effect reaches the threshold and is significant.

    The threshold is the larger of ``min_effect`` (the smallest effect that matters)
    and ``null_band`` (the effect reached by chance at these sample sizes).
    """
    threshold = max(min_effect, null_band) if math.isfinite(null_band) else min_effect
    significant = p_value is None or p_value <= alpha
    p = None if p_value is None else min(1.0, max(0.0, float(p_value)))
    return DriftResult(
        method=method,
        statistic=float(statistic),
        p_value=p,
        effect_size=float(effect_size),
        threshold=float(threshold),
        drifted=bool(effect_size >= threshold and significant),
        min_effect=float(min_effect),
        null_band=float(null_band),
        n_reference=int(n_reference),
        n_current=int(n_current),
        approximate=approximate,
    )
