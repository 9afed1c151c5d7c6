"""Population stability index (PSI) over the reference's decile bins or categories.

``PSI = sum((c_i - r_i) * ln(c_i / r_i))`` over the bins, with ``r_i`` and ``c_i`` the
reference and current shares, each floored at 0.0001 so that an empty bin does not
make the index infinite (zero-bin smoothing). Numeric bins are the reference's deciles
(stored in its profile), never the combined data's. Common reading: below 0.1 no
meaningful change, 0.1 to 0.25 moderate, above 0.25 large.

Significance: PSI is the symmetric (Jeffreys) divergence; under no drift
``PSI * n*m/(n+m)`` is approximately chi-square with ``k - 1`` degrees of freedom for
``k`` bins, which gives the p-value and the null band.
"""

from __future__ import annotations

import numpy as np

from ferryman.drift._binning import BinTable, binned, chi2_null_scale
from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_number
from ferryman.drift.base import DriftResult, FeatureKind, Sample

#: Shares are floored at this value before taking logarithms.
PSI_FLOOR = 1e-4


class PSITest(Configured):
    """Population stability index.

    Args:
        min_effect: Smallest PSI that counts as drift (0.1, the usual "moderate" mark).
        alpha: Significance level in (0, 1).
        floor: Zero-bin smoothing: shares below it are raised to it.
        min_expected: Categories with a smaller expected count in the smaller sample
            are pooled (see :mod:`ferryman.drift`).

    Example:
        >>> result = PSITest().compare(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
        >>> round(result.effect_size, 4)  # (0.8 - 0.5) ln(0.8/0.5) + (0.2 - 0.5) ln(0.2/0.5)
        0.4159
    """

    name = "psi"
    kinds: tuple[FeatureKind, ...] = ("numeric", "categorical")

    def __init__(
        self,
        *,
        min_effect: float = 0.1,
        alpha: float = 0.05,
        floor: float = PSI_FLOOR,
        min_expected: float = 5.0,
    ) -> None:
        self.min_effect = check_number("PSITest", "min_effect", min_effect, low=0)
        self.alpha = check_number(
            "PSITest", "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )
        self.floor = check_number("PSITest", "floor", floor, low=0, high=1, low_open=True)
        self.min_expected = check_number("PSITest", "min_expected", min_expected, low=0)

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare two samples (numeric or categorical).

        Raises:
            InvalidInputError: A sample is empty or has no usable value, or one is
                numeric and the other categorical.
        """
        table = binned("PSITest", reference, current, min_expected=self.min_expected)
        value = psi(table, floor=self.floor)
        df, scale = chi2_null_scale(table)
        from scipy import stats

        return decide(
            method=self.name,
            statistic=value,
            p_value=float(stats.chi2.sf(value / scale, df)),
            effect_size=value,
            min_effect=self.min_effect,
            null_band=float(stats.chi2.isf(self.alpha, df)) * scale,
            alpha=self.alpha,
            n_reference=int(table.reference.sum()),
            n_current=int(table.current.sum()),
        )


def psi(table: BinTable, *, floor: float = PSI_FLOOR) -> float:
    """Return the PSI of a two-row table, shares floored at ``floor``."""
    ref = np.maximum(table.reference / table.reference.sum(), floor)
    cur = np.maximum(table.current / table.current.sum(), floor)
    return float(np.sum((cur - ref) * np.log(cur / ref)))
