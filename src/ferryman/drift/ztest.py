"""Two-proportion Z-test, for columns with exactly two categories.

``z = (p_cur - p_ref) / sqrt(p (1 - p) (1/n + 1/m))`` with ``p`` the pooled share of
the reference's most frequent category; the p-value is two-sided. The effect size is
Cohen's h, ``|2 asin(sqrt(p_cur)) - 2 asin(sqrt(p_ref))|``, which does not depend on
the sample sizes: 0.2 is small, 0.5 medium, 0.8 large. Under no drift ``h`` is about
normal with variance ``1/n + 1/m``, which gives the null band.
"""

from __future__ import annotations

import math

from ferryman.drift._binning import binned
from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_number
from ferryman.drift._summaries import CategoricalSummary, as_summary
from ferryman.drift.base import DriftResult, FeatureKind, Sample
from ferryman.errors import InvalidInputError


class ZTest(Configured):
    """Two-proportion Z-test with Cohen's h as effect size.

    Args:
        min_effect: Smallest Cohen's h that counts as drift (0.2, "small").
        alpha: Significance level in (0, 1).

    Example:
        >>> result = ZTest().compare([True] * 50 + [False] * 50, [True] * 80 + [False] * 20)
        >>> round(result.statistic, 4), round(result.effect_size, 4)
        (4.4475, 0.6435)
    """

    name = "z"
    kinds: tuple[FeatureKind, ...] = ("categorical",)

    def __init__(self, *, min_effect: float = 0.2, alpha: float = 0.05) -> None:
        self.min_effect = check_number("ZTest", "min_effect", min_effect, low=0)
        self.alpha = check_number(
            "ZTest", "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare the share of one category in two samples.

        Raises:
            InvalidInputError: A sample is empty or numeric, or the samples do not hold
                exactly two categories between them.
        """
        ref = as_summary(reference, owner="ZTest")
        cur = as_summary(current, owner="ZTest")
        if not isinstance(ref, CategoricalSummary) or not isinstance(cur, CategoricalSummary):
            raise InvalidInputError(
                "ZTest compares categorical samples; got a numeric one. "
                "Use one of: chi2, jensen_shannon, ks, psi, wasserstein."
            )
        table = binned("ZTest", ref, cur, min_expected=0)
        if len(table.labels) != 2:
            raise InvalidInputError(
                f"ZTest needs exactly two categories across both samples; got "
                f"{len(table.labels)}. Use chi2 or jensen_shannon."
            )
        n, m = int(table.reference.sum()), int(table.current.sum())
        p_ref = table.reference[0] / n
        p_cur = table.current[0] / m
        pooled = (table.reference[0] + table.current[0]) / (n + m)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
        z = 0.0 if spread == 0 else float((p_cur - p_ref) / spread)
        h = abs(2 * math.asin(math.sqrt(p_cur)) - 2 * math.asin(math.sqrt(p_ref)))
        from scipy import stats

        return decide(
            method=self.name,
            statistic=z,
            p_value=float(2 * stats.norm.sf(abs(z))),
            effect_size=h,
            min_effect=self.min_effect,
            null_band=float(stats.norm.isf(self.alpha / 2)) * math.sqrt(1 / n + 1 / m),
            alpha=self.alpha,
            n_reference=n,
            n_current=m,
        )
