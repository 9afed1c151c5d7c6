"""Jensen-Shannon distance over the reference's decile bins or categories.

The distance is the square root of the Jensen-Shannon divergence with logarithms in
base 2, so it lies in [0, 1] (1: no overlap at all); it equals
``scipy.spatial.distance.jensenshannon(r, c, base=2)``. Empty bins need no smoothing.
For small differences ``distance ≈ sqrt(PSI / 5.55)``: 0.1 corresponds to a PSI of
about 0.055. (Evidently uses the natural logarithm; its 0.1 is 0.12 here.)

Significance: the likelihood-ratio (G) test of the two-row table, chi-square with
``k - 1`` degrees of freedom. Null band: under no drift the divergence is about
``chi2(k-1) * (1/n + 1/m) / (8 ln 2)`` bits.
"""

from __future__ import annotations

import math

import numpy as np

from ferryman.drift._binning import BinTable, binned, chi2_null_scale
from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_number
from ferryman.drift.base import DriftResult, FeatureKind, Sample


class JensenShannonTest(Configured):
    """Jensen-Shannon distance (base 2) with a G-test for significance.

    Args:
        min_effect: Smallest distance that counts as drift (0.1).
        alpha: Significance level in (0, 1).
        min_expected: Categories with a smaller expected count in the smaller sample
            are pooled (see :mod:`ferryman.drift`).

    Example:
        >>> result = JensenShannonTest().compare(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
        >>> round(result.effect_size, 4)
        0.2704
    """

    name = "jensen_shannon"
    kinds: tuple[FeatureKind, ...] = ("numeric", "categorical")

    def __init__(
        self, *, min_effect: float = 0.1, alpha: float = 0.05, min_expected: float = 5.0
    ) -> None:
        self.min_effect = check_number("JensenShannonTest", "min_effect", min_effect, low=0, high=1)
        self.alpha = check_number(
            "JensenShannonTest", "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )
        self.min_expected = check_number("JensenShannonTest", "min_expected", min_expected, low=0)

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare two samples (numeric or categorical).

        Raises:
            InvalidInputError: A sample is empty or has no usable value, or one is
                numeric and the other categorical.
        """
        table = binned("JensenShannonTest", reference, current, min_expected=self.min_expected)
        distance = jensen_shannon_distance(table)
        df, scale = chi2_null_scale(table)
        from scipy import stats

        null_bits = float(stats.chi2.isf(self.alpha, df)) * scale / (8 * math.log(2))
        return decide(
            method=self.name,
            statistic=distance,
            p_value=float(stats.chi2.sf(g_statistic(table), df)),
            effect_size=distance,
            min_effect=self.min_effect,
            null_band=min(1.0, math.sqrt(null_bits)),
            alpha=self.alpha,
            n_reference=int(table.reference.sum()),
            n_current=int(table.current.sum()),
        )


def jensen_shannon_distance(table: BinTable) -> float:
    """Return the base-2 Jensen-Shannon distance between the two rows' shares."""
    ref = table.reference / table.reference.sum()
    cur = table.current / table.current.sum()
    middle = (ref + cur) / 2
    divergence = (_kl_bits(ref, middle) + _kl_bits(cur, middle)) / 2
    return math.sqrt(max(divergence, 0.0))


def g_statistic(table: BinTable) -> float:
    """Return the likelihood-ratio statistic ``2 * sum(O * ln(O / E))`` of the table."""
    observed = np.vstack((table.reference, table.current)).astype(np.float64)
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    positive = observed > 0
    return float(2 * np.sum(observed[positive] * np.log(observed[positive] / expected[positive])))


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    positive = p > 0
    return float(np.sum(p[positive] * np.log2(p[positive] / q[positive])))
