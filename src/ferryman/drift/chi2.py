"""Pearson's chi-square test of homogeneity over decile bins or categories.

The statistic is Pearson's chi-square of the two-row table (reference, current) with
expected counts from its margins and no continuity correction; it equals
``scipy.stats.chi2_contingency(table, correction=False)``. Sparse categories are
pooled first (expected count below 5 in the smaller sample), which keeps the
chi-square approximation valid on long-tailed columns.

The effect size is Cohen's w against the pooled shares,
``w = sqrt(statistic * (1/n + 1/m))``, which does not grow with the sample size:
0.1 is small, 0.3 medium, 0.5 large.
"""

from __future__ import annotations

import math

import numpy as np

from ferryman.drift._binning import BinTable, binned, chi2_null_scale
from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_number
from ferryman.drift.base import DriftResult, FeatureKind, Sample


class ChiSquareTest(Configured):
    """Pearson's chi-square test of homogeneity, with Cohen's w as effect size.

    Args:
        min_effect: Smallest Cohen's w that counts as drift (0.2).
        alpha: Significance level in (0, 1).
        min_expected: Categories with a smaller expected count in the smaller sample
            are pooled.

    Example:
        >>> result = ChiSquareTest().compare(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
        >>> round(result.statistic, 4), round(result.effect_size, 4)
        (19.7802, 0.629)
    """

    name = "chi2"
    kinds: tuple[FeatureKind, ...] = ("numeric", "categorical")

    def __init__(
        self, *, min_effect: float = 0.2, alpha: float = 0.05, min_expected: float = 5.0
    ) -> None:
        self.min_effect = check_number("ChiSquareTest", "min_effect", min_effect, low=0)
        self.alpha = check_number(
            "ChiSquareTest", "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )
        self.min_expected = check_number("ChiSquareTest", "min_expected", min_expected, low=0)

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare two samples (numeric or categorical).

        Raises:
            InvalidInputError: A sample is empty or has no usable value, or one is
                numeric and the other categorical.
        """
        table = binned("ChiSquareTest", reference, current, min_expected=self.min_expected)
        statistic = pearson_statistic(table)
        df, scale = chi2_null_scale(table)
        from scipy import stats

        return decide(
            method=self.name,
            statistic=statistic,
            p_value=float(stats.chi2.sf(statistic, df)) if len(table.labels) > 1 else 1.0,
            effect_size=math.sqrt(statistic * scale),
            min_effect=self.min_effect,
            null_band=math.sqrt(float(stats.chi2.isf(self.alpha, df)) * scale),
            alpha=self.alpha,
            n_reference=int(table.reference.sum()),
            n_current=int(table.current.sum()),
        )


def pearson_statistic(table: BinTable) -> float:
    """Return Pearson's chi-square of a two-row table (no continuity correction)."""
    observed = np.vstack((table.reference, table.current)).astype(np.float64)
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    return float(np.sum((observed - expected) ** 2 / expected))
