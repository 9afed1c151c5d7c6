"""Wasserstein distance (earth mover's distance) normalised by the reference's spread.

The effect size is ``W1(reference, current) / std(reference)``: how far, in reference
standard deviations, the current values had to move on average. A mean shift of
0.1 sd gives 0.1; a standard deviation grown by 10 % gives about 0.08 for normal data.

On raw values W1 is exact and equals :func:`scipy.stats.wasserstein_distance`.
Against a stored profile both distribution functions are known exactly at the
profile's cut points (its distinct interior percentiles), and W1 is the sum of
``|F_ref - F_cur|`` at each cut point times the distance to the next one, plus, for
the outer 1 % on each side, the gap between the two samples' 1st (99th) percentiles
times 0.01, corrected exactly where the two parts overlap. This is exact for discrete
data between the outer cut points; otherwise the error is the variation of the gap
within one percentile bin plus the error of the tail term (within 0.005 sd on the
benchmark's distributions; the tests pin it).

Significance: under no drift, ``sqrt(n*m/(n+m)) * W1`` tends to the integral of
``|B(u)|`` over the reference's quantile function, ``B`` a Brownian bridge. The
p-value and the null band come from 10,000 seeded bridges simulated at the quantile
levels (the tails outside the outer levels counted by the trapezoid rule, which
slightly overstates them: the test is conservative).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ferryman.drift._binning import is_constant
from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_integer, check_number
from ferryman.drift._summaries import FloatArray, NumericSummary, as_summary
from ferryman.drift.base import DriftResult, FeatureKind, Sample
from ferryman.errors import InvalidInputError


class WassersteinTest(Configured):
    """Normalised Wasserstein distance, with a Brownian-bridge null distribution.

    Args:
        min_effect: Smallest normalised distance that counts as drift (0.1: a shift of
            a tenth of the reference's standard deviation).
        alpha: Significance level in (0, 1).
        draws: Number of simulated Brownian bridges for the p-value and the null band.
        seed: Seed of the simulation.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> result = WassersteinTest().compare(rng.normal(size=5000), rng.normal(0.5, size=5000))
        >>> round(result.effect_size, 1), result.drifted
        (0.5, True)
    """

    name = "wasserstein"
    kinds: tuple[FeatureKind, ...] = ("numeric",)

    def __init__(
        self, *, min_effect: float = 0.1, alpha: float = 0.05, draws: int = 10_000, seed: int = 0
    ) -> None:
        self.min_effect = check_number("WassersteinTest", "min_effect", min_effect, low=0)
        self.alpha = check_number(
            "WassersteinTest", "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )
        self.draws = check_integer("WassersteinTest", "draws", draws, low=100)
        self.seed = check_integer("WassersteinTest", "seed", seed, low=0)

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare two numeric samples.

        Raises:
            InvalidInputError: A sample is empty, categorical or without finite values,
                or the reference is constant (its spread is zero).
        """
        ref = _numeric(reference)
        cur = _numeric(current)
        if cur.values is None:
            raise InvalidInputError(
                "WassersteinTest: the current sample must be values, not a profile."
            )
        if is_constant(ref) or not ref.std:
            raise InvalidInputError(
                "WassersteinTest: the reference is constant, so its spread is 0 and the "
                "distance cannot be normalised. Use jensen_shannon or chi2."
            )
        spread = float(ref.std)
        if ref.values is not None:
            distance = wasserstein_distance(ref.values, cur.values)
        else:
            distance = _distance_to_profile(ref, cur)
        effect = distance / spread
        bridges = _null_draws(tuple(ref.levels.tolist()), self.draws, self.seed)
        # einsum, not BLAS: a 10,000 x 101 product is too small for threads, and BLAS
        # threads busy-waiting on a loaded 2-core machine make it 20 times slower.
        null = np.einsum("ij,j->i", bridges, _trapezoid_weights(ref.quantiles) / spread)
        n, m = ref.n, cur.n
        scale = np.sqrt(n * m / (n + m))
        exceed = int(np.count_nonzero(null >= effect * scale))
        return decide(
            method=self.name,
            statistic=effect,
            p_value=(1 + exceed) / (self.draws + 1),
            effect_size=effect,
            min_effect=self.min_effect,
            null_band=float(np.quantile(null, 1 - self.alpha)) / scale,
            alpha=self.alpha,
            n_reference=n,
            n_current=m,
            approximate=ref.values is None,
        )


def wasserstein_distance(ref: FloatArray, cur: FloatArray) -> float:
    """Return W1 between two *sorted* samples, with SciPy's arithmetic.

    ``sum(|F_ref(x) - F_cur(x)| * dx)`` over the merged sorted values.
    """
    merged = np.concatenate((ref, cur))
    merged.sort(kind="stable")  # two sorted runs: a linear merge
    deltas = np.diff(merged)
    ref_cdf = np.searchsorted(ref, merged[:-1], side="right") / len(ref)
    cur_cdf = np.searchsorted(cur, merged[:-1], side="right") / len(cur)
    return float(np.sum(np.multiply(np.abs(ref_cdf - cur_cdf), deltas)))


def _distance_to_profile(ref: NumericSummary, cur: NumericSummary) -> float:
    """W1 between a profile and a sorted sample; see the module docstring.

    The area between the two distribution functions, split into the part between the
    outer cut points (a sum over cut points, exact for discrete data) and the two
    outer bands below ``F_ref(c_0)`` and above ``F_ref(c_last)`` (the quantile gap at the
    band's edge times its height), corrected exactly, from the current values, for
    the pieces where the two parts overlap or leave a gap.
    """
    values = cur.values
    if values is None:
        raise InvalidInputError("WassersteinTest: the current sample must be values.")
    m = len(values)
    cuts = ref.cut_points
    ref_cdf = ref.cdf(cuts)
    cur_cdf = cur.cdf(cuts)
    distance = float(np.sum(np.abs(ref_cdf - cur_cdf)[:-1] * np.diff(cuts)))
    # Left band: u below a = F_ref(c_0).
    a, c0, k0 = float(ref_cdf[0]), float(cuts[0]), round(float(cur_cdf[0]) * m)
    rank = min(m, max(1, math.ceil(a * m)))
    distance += a * abs(c0 - float(values[rank - 1]))
    if k0 > rank:
        distance += float(np.sum(c0 - values[rank:k0])) / m
    elif k0 < rank:
        distance -= float(np.sum(values[k0:rank] - c0)) / m
    # Right band: u above b = F_ref(c_last).
    b, c1, k1 = float(ref_cdf[-1]), float(cuts[-1]), round(float(cur_cdf[-1]) * m)
    rank = min(m, max(1, math.ceil(b * m)))
    distance += (1 - b) * abs(c1 - float(values[min(m - 1, rank)]))
    if k1 < rank:
        distance += float(np.sum(values[k1:rank] - c1)) / m
    elif k1 > rank:
        distance -= float(np.sum(c1 - values[rank:k1])) / m
    return max(distance, 0.0)


def _trapezoid_weights(quantiles: FloatArray) -> FloatArray:
    """Weights of |B| at each level: the trapezoid rule for the integral over dQ."""
    steps = np.diff(quantiles)
    weights = np.zeros(len(quantiles))
    weights[:-1] += steps / 2
    weights[1:] += steps / 2
    return weights


@lru_cache(maxsize=8)
def _null_draws(levels: tuple[float, ...], draws: int, seed: int) -> FloatArray:
    """|B(level)| for ``draws`` Brownian bridges (rows) at the given levels (columns)."""
    grid = np.asarray(levels, dtype=np.float64)
    rng = np.random.default_rng(seed)
    steps = np.diff(grid, prepend=0.0)
    walk = np.cumsum(rng.standard_normal((draws, len(grid))) * np.sqrt(steps), axis=1)
    bridge = walk - grid[None, :] * walk[:, -1:]
    result = np.abs(bridge)
    result.setflags(write=False)
    return result


def _numeric(sample: Sample) -> NumericSummary:
    summary = as_summary(sample, owner="WassersteinTest")
    if not isinstance(summary, NumericSummary):
        raise InvalidInputError(
            "WassersteinTest compares numeric samples; got a categorical one. "
            "Use one of: chi2, jensen_shannon, psi, z."
        )
    if summary.n == 0:
        raise InvalidInputError("WassersteinTest needs at least one finite value in each sample.")
    return summary
