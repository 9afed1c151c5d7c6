"""Two-sample Kolmogorov-Smirnov test; its statistic is the L-infinity effect size.

On raw values the statistic is exact (sort, then ``searchsorted``) and equals
:func:`scipy.stats.ks_2samp`'s, and so does the p-value: exact below 10,000 values per
sample (computed by SciPy), Smirnov's asymptotic distribution above.

Against a stored profile the reference's distribution function is known only at its
cut points (the distinct interior percentiles), where it is exact. The statistic is
then the largest gap *at the cut points*, a lower bound of the true statistic; the
true statistic exceeds it by at most the largest share of either sample in one
percentile bin (about 0.01 plus the current sample's excess share in that bin). The
p-value is then asymptotic.
"""

from __future__ import annotations

import warnings

import numpy as np

from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_choice, check_number
from ferryman.drift._summaries import FloatArray, NumericSummary, as_summary
from ferryman.drift.base import DriftResult, FeatureKind, Sample
from ferryman.errors import InvalidInputError

#: Above this many values in either sample, the p-value is asymptotic (as in SciPy).
MAX_EXACT_N = 10_000


class KSTest(Configured):
    """Kolmogorov-Smirnov: the largest gap between two empirical distribution functions.

    Args:
        min_effect: Smallest statistic (a share of the distribution, in [0, 1]) that
            counts as drift. 0.05: five percentage points at the worst place.
        alpha: Significance level in (0, 1) for this test's own decision and for the
            null band.
        method: ``"auto"`` (exact p-value up to 10,000 values per sample), ``"exact"``
            or ``"asymp"``, as in :func:`scipy.stats.ks_2samp`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> KSTest().compare(rng.normal(size=2000), rng.normal(1.0, size=2000)).drifted
        True
    """

    name = "ks"
    kinds: tuple[FeatureKind, ...] = ("numeric",)

    def __init__(
        self, *, min_effect: float = 0.05, alpha: float = 0.05, method: str = "auto"
    ) -> None:
        self.min_effect = check_number("KSTest", "min_effect", min_effect, low=0, high=1)
        self.alpha = check_number(
            "KSTest", "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )
        self.method = check_choice("KSTest", "method", method, ("auto", "exact", "asymp"))

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare two numeric samples.

        Raises:
            InvalidInputError: A sample is empty, categorical, or has no finite value.
        """
        ref = _numeric(reference)
        cur = _numeric(current)
        if cur.values is None:
            raise InvalidInputError("KSTest: the current sample must be values, not a profile.")
        n, m = ref.n, cur.n
        if ref.values is not None:
            statistic = ks_statistic(ref.values, cur.values)
            p_value = self._p_value(ref.values, cur.values, statistic)
            approximate = False
        else:
            statistic = float(np.max(np.abs(ref.cdf(ref.cut_points) - cur.cdf(ref.cut_points))))
            p_value = _asymptotic_p(statistic, n, m)
            approximate = True
        return decide(
            method=self.name,
            statistic=statistic,
            p_value=p_value,
            effect_size=statistic,
            min_effect=self.min_effect,
            null_band=_null_band(self.alpha, n, m),
            alpha=self.alpha,
            n_reference=n,
            n_current=m,
            approximate=approximate,
        )

    def _p_value(self, ref: FloatArray, cur: FloatArray, statistic: float) -> float:
        exact = self.method == "exact" or (
            self.method == "auto" and max(len(ref), len(cur)) <= MAX_EXACT_N
        )
        if not exact:
            return _asymptotic_p(statistic, len(ref), len(cur))
        from scipy import stats

        with warnings.catch_warnings():
            # SciPy falls back to the asymptotic p-value (with a warning) when the
            # exact computation overflows; that fallback is what we want.
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(ref, cur, method="exact").pvalue)


def ks_statistic(ref: FloatArray, cur: FloatArray) -> float:
    """Return the two-sample KS statistic of two *sorted* arrays (SciPy's arithmetic)."""
    n, m = len(ref), len(cur)
    # Both distribution functions change only at sample values; evaluate at all of them.
    # Keys are sorted, which NumPy's searchsorted exploits.
    gap_at_ref = (
        np.searchsorted(ref, ref, side="right") / n - np.searchsorted(cur, ref, side="right") / m
    )
    gap_at_cur = (
        np.searchsorted(ref, cur, side="right") / n - np.searchsorted(cur, cur, side="right") / m
    )
    largest = max(float(gap_at_ref.max()), float(gap_at_cur.max()))
    smallest = min(float(gap_at_ref.min()), float(gap_at_cur.min()))
    return max(largest, min(max(-smallest, 0.0), 1.0))


def _asymptotic_p(statistic: float, n: int, m: int) -> float:
    from scipy import stats

    en = float(n) * float(m) / (float(n) + float(m))
    return float(np.clip(stats.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


def _null_band(alpha: float, n: int, m: int) -> float:
    from scipy import stats

    en = float(n) * float(m) / (float(n) + float(m))
    return float(stats.kstwo.isf(alpha, max(1.0, np.round(en))))


def _numeric(sample: Sample) -> NumericSummary:
    summary = as_summary(sample, owner="KSTest")
    if not isinstance(summary, NumericSummary):
        raise InvalidInputError(
            "KSTest compares numeric samples; got a categorical one. "
            "Use one of: chi2, jensen_shannon, psi, z."
        )
    if summary.n == 0:
        raise InvalidInputError("KSTest needs at least one finite value in each sample.")
    return summary


__all__ = ["MAX_EXACT_N", "KSTest", "ks_statistic"]
