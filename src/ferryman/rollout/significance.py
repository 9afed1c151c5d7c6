"""A/B test statistics: arm summaries, lift, fixed-horizon and sequential tests, SRM, verdict.

Everything here is a pure function of *sufficient statistics*: for each arm, the number
of outcomes, their sum and their sum of squares (:class:`ArmStats`). Those add up across
workers, time windows and SQL aggregates (``COUNT(*)``, ``SUM(x)``, ``SUM(x * x)``), so
nobody has to hold raw outcomes. Outcomes are either *binary* (a conversion, 0 or 1) or
*numeric* (a reward such as revenue).

Two kinds of test answer "does the treatment differ from the control?":

- *fixed horizon*: the two-proportion z-test (binary) or Welch's t-test (numeric). Valid
  only once, at a sample size fixed up front (:func:`required_sample_size`); looking
  earlier and stopping at the first significant result inflates false positives.
- *sequential*: the mixture sequential probability ratio test (mSPRT; Johari, Koomen,
  Pekelis and Walsh, "Peeking at A/B Tests", KDD 2017). Its p-value and confidence
  sequence stay valid however often, and whenever, someone looks.

:func:`analyze` puts it together for two or more arms (each treatment against the
first arm, the control, with a Bonferroni-corrected level), checks for a sample-ratio
mismatch and gives the verdict: ``winner``, ``no-difference``, ``inconclusive`` or
``srm``. A detected sample-ratio mismatch always yields ``srm`` and never a winner: the
assignment is broken, so no comparison between the arms can be trusted.

Example:
    >>> plan = ABTestPlan(minimum_effect=0.02)
    >>> result = analyze(
    ...     plan,
    ...     {
    ...         "control": ArmStats.from_conversions(5000, 500),
    ...         "treatment": ArmStats.from_conversions(5000, 650),
    ...     },
    ... )
    >>> result.verdict, result.winner
    ('winner', 'treatment')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ferryman.errors import InvalidInputError

#: What one outcome is: a 0/1 conversion or a real-valued reward.
OutcomeKind = Literal["binary", "numeric"]
#: Which test decides the verdict.
TestKind = Literal["fixed", "sequential"]
#: The verdict of an A/B analysis.
ABVerdict = Literal["winner", "no-difference", "inconclusive", "srm"]

OUTCOME_KINDS: tuple[OutcomeKind, ...] = ("binary", "numeric")
TEST_KINDS: tuple[TestKind, ...] = ("fixed", "sequential")
#: Fewest outcomes per arm for :func:`analyze` (a variance needs two).
MIN_OUTCOMES = 2
#: Confidence level of the per-arm intervals in :func:`analyze`.
SUMMARY_CONFIDENCE = 0.95


def _fail(message: str) -> InvalidInputError:
    return InvalidInputError(message)


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check(name: str, value: object, *, low: float, high: float | None = None) -> float:
    """Return ``value`` as a float in the open interval (low, high), or raise naming it."""
    number = float(value) if _is_real(value) else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(number) and number > low and (high is None or number < high)):
        bounds = f"in ({low:g}, {high:g})" if high is not None else f"> {low:g}"
        raise _fail(f"{name} must be a finite number {bounds}, got {value!r}.")
    return number


# Distribution functions straight from scipy.special: the ufuncs scipy.stats wraps, without
# its per-call overhead (a hundred times slower), which matters to simulations and dashboards.


def _normal_sf(x: float) -> float:
    from scipy import special

    return float(special.ndtr(-x))


def _normal_isf(q: float) -> float:
    from scipy import special

    return float(-special.ndtri(q))


def _t_sf(x: float, df: float) -> float:
    from scipy import special

    return float(special.stdtr(df, -x))


def _t_isf(q: float, df: float) -> float:
    from scipy import special

    return float(-special.stdtrit(df, q))


def _quantile(confidence: float) -> float:
    """Two-sided standard normal critical value for a confidence level."""
    return _normal_isf((1 - confidence) / 2)


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]``: a confidence interval or sequence."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Return whether ``value`` lies in the interval (ends included)."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class ArmStats:
    """Streaming sufficient statistics of one arm's outcomes.

    Instances are immutable; :meth:`add` and :meth:`merge` return new ones. Precision:
    the variance comes from ``total_squares - total**2 / count``, exact enough unless the
    outcomes' mean dwarfs their spread (subtract a constant from such outcomes first).

    Args:
        count: Number of outcomes.
        total: Sum of the outcomes (the number of conversions for 0/1 outcomes).
        total_squares: Sum of the squared outcomes (equal to ``total`` for 0/1 outcomes).

    Raises:
        InvalidInputError: A negative or non-integer count, non-finite sums, or sums no
            set of ``count`` real numbers can have.
    """

    count: int = 0
    total: float = 0.0
    total_squares: float = 0.0

    def __post_init__(self) -> None:
        if not _is_integer(self.count) or self.count < 0:
            raise _fail(f"ArmStats: count must be an integer >= 0, got {self.count!r}.")
        object.__setattr__(self, "count", int(self.count))
        sums = (self.total, self.total_squares)
        if not all(_is_real(x) and math.isfinite(x) for x in sums):
            raise _fail(
                f"ArmStats: sums must be finite, got total={self.total!r}, "
                f"total_squares={self.total_squares!r}."
            )
        # Cauchy-Schwarz: total**2 <= count * total_squares, up to rounding.
        slack = 1e-9 * max(1.0, self.count * self.total_squares)
        if (
            self.total_squares < 0
            or self.total * self.total > self.count * self.total_squares + slack
        ):
            raise _fail(
                f"ArmStats: no {self.count} outcomes sum to {self.total!r} with squares "
                f"summing to {self.total_squares!r}."
            )

    @classmethod
    def from_outcomes(cls, outcomes: npt.ArrayLike) -> ArmStats:
        """Summarize raw outcomes (a 1-D sequence or array of finite numbers).

        Raises:
            InvalidInputError: The outcomes are not one-dimensional finite numbers.
        """
        try:
            values = np.asarray(outcomes, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise _fail(f"ArmStats: outcomes must be numbers, got {outcomes!r}.") from exc
        if values.ndim != 1 or not np.isfinite(values).all():
            raise _fail("ArmStats: outcomes must be a one-dimensional sequence of finite numbers.")
        with np.errstate(over="ignore"):  # overflowing sums are reported by __post_init__
            return cls(values.size, float(values.sum()), float(np.square(values).sum()))

    @classmethod
    def from_conversions(cls, count: int, conversions: int) -> ArmStats:
        """Summarize ``count`` binary outcomes of which ``conversions`` were 1.

        Raises:
            InvalidInputError: ``conversions`` is not an integer in ``[0, count]``.
        """
        if not _is_integer(conversions):
            raise _fail(f"ArmStats: conversions must be an integer, got {conversions!r}.")
        if _is_integer(count) and not 0 <= conversions <= count:
            raise _fail(f"ArmStats: conversions must lie in [0, {count}], got {conversions}.")
        return cls(count, float(conversions), float(conversions))

    def add(self, outcome: float) -> ArmStats:
        """Return the statistics with one more outcome."""
        value = float(outcome)
        return self.merge(ArmStats(1, value, value * value))

    def merge(self, other: ArmStats) -> ArmStats:
        """Return the statistics of both sets of outcomes together."""
        return ArmStats(
            self.count + other.count,
            self.total + other.total,
            self.total_squares + other.total_squares,
        )

    @property
    def mean(self) -> float:
        """Mean outcome (the conversion rate for 0/1 outcomes); needs one outcome."""
        if self.count < 1:
            raise _fail("ArmStats: the mean of no outcomes is undefined; add outcomes first.")
        return self.total / self.count

    @property
    def variance(self) -> float:
        """Sample variance (denominator ``count - 1``); needs two outcomes."""
        if self.count < 2:
            raise _fail(
                f"ArmStats: a variance needs at least 2 outcomes, got {self.count}; "
                "add outcomes first."
            )
        return max(
            0.0, (self.total_squares - self.total * self.total / self.count) / (self.count - 1)
        )

    def is_binary(self) -> bool:
        """Return whether these can be the statistics of 0/1 outcomes."""
        return self.total == self.total_squares and float(self.total).is_integer()


@dataclass(frozen=True)
class ArmSummary:
    """One arm at a glance.

    Attributes:
        name: The arm's name.
        outcome: ``binary`` or ``numeric``.
        count: Number of outcomes.
        mean: Mean outcome; for binary outcomes, the conversion rate.
        variance: Sample variance of the outcomes.
        ci: Confidence interval of the mean: Wilson's for a rate, Student's t otherwise.
        confidence: Level of ``ci``, e.g. 0.95.
        conversions: Number of conversions (binary outcomes), else ``None``.
    """

    name: str
    outcome: OutcomeKind
    count: int
    mean: float
    variance: float
    ci: Interval
    confidence: float
    conversions: int | None


def summarize_arm(
    name: str, stats: ArmStats, *, outcome: OutcomeKind, confidence: float = SUMMARY_CONFIDENCE
) -> ArmSummary:
    """Summarize one arm with a confidence interval of its mean.

    Example:
        >>> s = summarize_arm("a", ArmStats.from_conversions(100, 10), outcome="binary")
        >>> round(s.ci.low, 4), round(s.ci.high, 4)
        (0.0552, 0.1744)

    Raises:
        InvalidInputError: Fewer than 2 outcomes, non-0/1 statistics for a binary
            outcome, or a confidence outside (0, 1).
    """
    _check_outcome(outcome)
    confidence = _check("confidence", confidence, low=0, high=1)
    _check_arm(name, stats, outcome)
    n, mean = stats.count, stats.mean
    if outcome == "binary":
        z = _quantile(confidence)
        denominator = 1 + z * z / n
        centre = (mean + z * z / (2 * n)) / denominator
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denominator
        # Clamp so rounding never puts the rate outside its interval, or the interval
        # outside [0, 1].
        ci = Interval(max(0.0, min(centre - half, mean)), min(1.0, max(centre + half, mean)))
        conversions: int | None = round(stats.total)
    else:
        half = _t_isf((1 - confidence) / 2, n - 1) * math.sqrt(stats.variance / n)
        ci = Interval(mean - half, mean + half)
        conversions = None
    return ArmSummary(name, outcome, n, mean, stats.variance, ci, confidence, conversions)


@dataclass(frozen=True)
class Lift:
    """How much the treatment's mean differs from the control's.

    Attributes:
        absolute: ``treatment mean - control mean``.
        absolute_ci: Confidence interval of ``absolute`` (Wald for rates, Welch otherwise).
        relative: ``absolute / control mean``, or ``None`` when the control mean is 0.
        relative_ci: Delta-method confidence interval of ``relative``, or ``None``.
        confidence: Level of both intervals.
    """

    absolute: float
    absolute_ci: Interval
    relative: float | None
    relative_ci: Interval | None
    confidence: float


def lift(
    control: ArmStats, treatment: ArmStats, *, outcome: OutcomeKind, confidence: float = 0.95
) -> Lift:
    """Return the treatment's absolute and relative lift over the control.

    Raises:
        InvalidInputError: As :func:`summarize_arm`.
    """
    _check_outcome(outcome)
    confidence = _check("confidence", confidence, low=0, high=1)
    _check_arm("control", control, outcome)
    _check_arm("treatment", treatment, outcome)
    se_c, se_t = _standard_errors(control, treatment, outcome)
    critical = _critical(control, treatment, outcome, confidence)
    difference = treatment.mean - control.mean
    half = critical * math.hypot(se_c, se_t)
    relative = relative_ci = None
    if control.mean != 0:
        # Delta method for the ratio of two independent means.
        ratio = treatment.mean / control.mean
        spread = math.hypot(se_t / control.mean, ratio * se_c / control.mean)
        relative = ratio - 1
        if math.isfinite(relative) and math.isfinite(critical * spread):
            relative_ci = Interval(relative - critical * spread, relative + critical * spread)
        else:  # a control mean so close to 0 that the ratio overflows
            relative = None
    ci = Interval(difference - half, difference + half)
    return Lift(difference, ci, relative, relative_ci, confidence)


@dataclass(frozen=True)
class SignificanceResult:
    """One test of ``treatment mean - control mean = 0``.

    Attributes:
        method: ``z-test``, ``welch-t-test`` or ``msprt``.
        statistic: z or t for the fixed-horizon tests; for the mSPRT, the log of the
            mixture likelihood ratio.
        p_value: Two-sided p-value in [0, 1]; for the mSPRT, always valid (the running
            minimum over the looks passed in as ``previous``).
        alpha: Level the test was judged at.
        rejected: Whether ``p_value <= alpha``.
        difference: ``treatment mean - control mean``.
        ci: Confidence interval of the difference at level ``1 - alpha``; for the mSPRT,
            the confidence sequence (running intersection over the looks).
        df: Welch-Satterthwaite degrees of freedom (Welch's test only), else ``None``.
    """

    method: Literal["z-test", "welch-t-test", "msprt"]
    statistic: float
    p_value: float
    alpha: float
    rejected: bool
    difference: float
    ci: Interval
    df: float | None = None


def two_proportion_ztest(
    control: ArmStats, treatment: ArmStats, *, alpha: float = 0.05
) -> SignificanceResult:
    """Two-proportion z-test: pooled standard error for z, unpooled (Wald) for the interval.

    Example:
        >>> r = two_proportion_ztest(
        ...     ArmStats.from_conversions(1000, 100), ArmStats.from_conversions(1000, 130)
        ... )
        >>> round(r.statistic, 4), round(r.p_value, 4)
        (2.1027, 0.0355)

    Raises:
        InvalidInputError: Fewer than 2 outcomes in an arm, non-0/1 statistics, or an
            alpha outside (0, 1).
    """
    alpha = _check("alpha", alpha, low=0, high=1)
    _check_arm("control", control, "binary")
    _check_arm("treatment", treatment, "binary")
    n_c, n_t = control.count, treatment.count
    difference = treatment.mean - control.mean
    pooled = (control.total + treatment.total) / (n_c + n_t)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = difference / spread if spread > 0 else 0.0  # spread 0: both arms all 0 or all 1
    p_value = min(1.0, 2 * _normal_sf(abs(z)))
    half = _quantile(1 - alpha) * math.hypot(*_standard_errors(control, treatment, "binary"))
    ci = Interval(difference - half, difference + half)
    return SignificanceResult("z-test", z, p_value, alpha, p_value <= alpha, difference, ci)


def welch_ttest(
    control: ArmStats, treatment: ArmStats, *, alpha: float = 0.05
) -> SignificanceResult:
    """Welch's unequal-variance t-test of the treatment's mean against the control's.

    Two constant arms give ``t = 0, p = 1`` when equal and ``t = ±inf, p = 0`` otherwise.

    Raises:
        InvalidInputError: Fewer than 2 outcomes in an arm, or an alpha outside (0, 1).
    """
    alpha = _check("alpha", alpha, low=0, high=1)
    _check_arm("control", control, "numeric")
    _check_arm("treatment", treatment, "numeric")
    se_c, se_t = _standard_errors(control, treatment, "numeric")
    se2 = se_c * se_c + se_t * se_t
    difference = treatment.mean - control.mean
    df = _welch_df(control, treatment)
    if se2 == 0:
        t = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        p_value = 1.0 if difference == 0 else 0.0
        ci = Interval(difference, difference)
    else:
        t = difference / math.sqrt(se2)
        p_value = min(1.0, 2 * _t_sf(abs(t), df))
        half = _t_isf(alpha / 2, df) * math.sqrt(se2)
        ci = Interval(difference - half, difference + half)
    return SignificanceResult(
        "welch-t-test", t, p_value, alpha, p_value <= alpha, difference, ci, df
    )


def msprt(
    control: ArmStats,
    treatment: ArmStats,
    *,
    outcome: OutcomeKind,
    tau2: float,
    alpha: float = 0.05,
    previous: SignificanceResult | None = None,
) -> SignificanceResult:
    """Mixture sequential probability ratio test of ``treatment mean - control mean = 0``.

    With the difference of means ``d``, its variance ``s2 = v (1/n_c + 1/n_t)`` (``v``
    the pooled variance: ``p (1 - p)`` of the pooled rate for binary outcomes, the pooled
    within-arm variance otherwise) and a normal mixing distribution ``N(0, tau2)`` over
    the true difference, the mixture likelihood ratio is
    ``sqrt(s2 / (s2 + tau2)) * exp(tau2 d**2 / (2 s2 (s2 + tau2)))``. Its reciprocal is a
    p-value that stays valid at any stopping time (Ville's inequality); inverting the
    test gives the confidence sequence ``d ± sqrt(s2 (s2 + tau2) / tau2 *
    (2 log(1/alpha) + log((s2 + tau2) / s2)))``.

    Pass the result of the previous look as ``previous`` to keep the p-value's running
    minimum and the running intersection of the intervals (if the intersection would be
    empty, the current interval is kept).

    Args:
        control: The control arm's statistics.
        treatment: The treatment arm's statistics.
        outcome: ``binary`` or ``numeric``.
        tau2: Variance of the mixing distribution, in squared outcome units; the test is
            most sensitive to differences of about ``sqrt(tau2)``.
        alpha: Level the test is judged at, and of the confidence sequence.
        previous: This test's result at the previous look, or ``None`` at the first.

    Raises:
        InvalidInputError: As :func:`summarize_arm`; ``tau2`` not positive; a
            ``previous`` result from another method or another alpha.
    """
    _check_outcome(outcome)
    tau2 = _check("tau2", tau2, low=0)
    alpha = _check("alpha", alpha, low=0, high=1)
    _check_arm("control", control, outcome)
    _check_arm("treatment", treatment, outcome)
    if previous is not None and (previous.method != "msprt" or previous.alpha != alpha):
        raise _fail(
            f"msprt: previous must be an msprt result at alpha={alpha:g}, got a "
            f"{previous.method} result at alpha={previous.alpha:g}."
        )
    n_c, n_t = control.count, treatment.count
    difference = treatment.mean - control.mean
    if outcome == "binary":
        pooled = (control.total + treatment.total) / (n_c + n_t)
        variance = pooled * (1 - pooled)
    else:
        sum_sq = (n_c - 1) * control.variance + (n_t - 1) * treatment.variance
        variance = sum_sq / (n_c + n_t - 2)
    s2 = variance * (1 / n_c + 1 / n_t)
    if s2 == 0:  # no noise at all: any difference is certain, none is no evidence
        log_ratio = 0.0 if difference == 0 else math.inf
        ci = Interval(difference, difference)
    else:
        log_ratio = 0.5 * math.log(s2 / (s2 + tau2)) + tau2 * difference * difference / (
            2 * s2 * (s2 + tau2)
        )
        half = math.sqrt(
            s2 * (s2 + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((s2 + tau2) / s2))
        )
        ci = Interval(difference - half, difference + half)
    p_value = 1.0 if log_ratio <= 0 else math.exp(-log_ratio)
    if previous is not None:
        p_value = min(p_value, previous.p_value)
        low, high = max(ci.low, previous.ci.low), min(ci.high, previous.ci.high)
        if low <= high:
            ci = Interval(low, high)
    return SignificanceResult("msprt", log_ratio, p_value, alpha, p_value <= alpha, difference, ci)


def required_sample_size(
    *,
    outcome: OutcomeKind,
    minimum_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    baseline_rate: float | None = None,
    baseline_std: float | None = None,
    ratio: float = 1.0,
) -> tuple[int, int]:
    """Outcomes needed in the control and treatment arms for a fixed-horizon test.

    Normal approximation, two-sided: for rates ``p1 = baseline_rate`` and ``p2 = p1 +
    minimum_effect``, ``n = (z_a sqrt(p (1-p) (1 + 1/r)) + z_b sqrt(p1 (1-p1) + p2
    (1-p2) / r))**2 / minimum_effect**2`` with ``p`` the weighted mean rate; for means,
    ``n = (z_a + z_b)**2 baseline_std**2 (1 + 1/r) / minimum_effect**2``.

    Example:
        >>> required_sample_size(outcome="binary", minimum_effect=0.02, baseline_rate=0.1)
        (3841, 3841)

    Args:
        outcome: ``binary`` (needs ``baseline_rate``) or ``numeric`` (``baseline_std``).
        minimum_effect: Smallest absolute difference of means worth detecting.
        alpha: Two-sided level of the test (already Bonferroni-corrected, if needed).
        power: Probability of detecting a difference of ``minimum_effect``, in
            (0.5, 1).
        baseline_rate: Expected conversion rate of the control, in (0, 1).
        baseline_std: Expected standard deviation of a numeric outcome.
        ratio: Treatment outcomes per control outcome (the ratio of their weights).

    Returns:
        ``(control, treatment)`` counts.

    Raises:
        InvalidInputError: A parameter out of range, or the baseline of the other kind.
    """
    _check_outcome(outcome)
    effect = _check("minimum_effect", minimum_effect, low=0)
    alpha = _check("alpha", alpha, low=0, high=1)
    power = _check("power", power, low=0.5, high=1)
    ratio = _check("ratio", ratio, low=0)
    z_a, z_b = _normal_isf(alpha / 2), _normal_isf(1 - power)
    if outcome == "binary":
        if baseline_rate is None or baseline_std is not None:
            raise _fail("binary outcomes need baseline_rate (and no baseline_std).")
        p1 = _check("baseline_rate", baseline_rate, low=0, high=1)
        p2 = p1 + effect
        if p2 >= 1:
            raise _fail(f"baseline_rate + minimum_effect must be below 1, got {p2:g}.")
        mean = (p1 + ratio * p2) / (1 + ratio)
        root = z_a * math.sqrt(mean * (1 - mean) * (1 + 1 / ratio)) + z_b * math.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2) / ratio
        )
        n = root * root / (effect * effect)
    else:
        if baseline_std is None or baseline_rate is not None:
            raise _fail("numeric outcomes need baseline_std (and no baseline_rate).")
        std = _check("baseline_std", baseline_std, low=0)
        n = (z_a + z_b) ** 2 * (std / effect) * (std / effect) * (1 + 1 / ratio)
    if not n * max(1.0, ratio) < 2**53:
        raise _fail(f"minimum_effect {effect:g} is too small to detect: the sample size overflows.")
    control = max(MIN_OUTCOMES, math.ceil(n - 1e-9))
    return control, max(MIN_OUTCOMES, math.ceil(ratio * control - 1e-9))


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio mismatch: chi-square goodness of fit of arm counts to the weights.

    Attributes:
        statistic: Pearson's chi-square statistic.
        p_value: Its p-value, ``k - 1`` degrees of freedom.
        threshold: The p-value under which a mismatch is declared.
        detected: Whether ``p_value < threshold``.
        observed: Count per arm.
        expected: Count per arm the weights predict.
    """

    statistic: float
    p_value: float
    threshold: float
    detected: bool
    observed: tuple[int, ...]
    expected: tuple[float, ...]


def sample_ratio_mismatch(
    counts: Sequence[int], weights: Sequence[float], *, threshold: float = 0.001
) -> SRMResult:
    """Test whether observed arm counts fit the configured weights.

    Example:
        >>> sample_ratio_mismatch([5500, 4500], [50, 50]).detected
        True

    Raises:
        InvalidInputError: Lengths differ or are below 2, a count is negative, all
            counts are 0, a weight is not positive, or the threshold is outside (0, 1).
    """
    from scipy import special

    threshold = _check("threshold", threshold, low=0, high=1)
    shares = _shares(weights)
    if len(counts) != len(shares):
        raise _fail(f"got {len(counts)} counts for {len(shares)} weights; give one per arm.")
    if any(not _is_integer(c) or c < 0 for c in counts):
        raise _fail(f"counts must be integers >= 0, got {list(counts)!r}.")
    counts = [int(c) for c in counts]
    total = sum(counts)
    if total == 0:
        raise _fail("all counts are 0: a sample-ratio check needs assigned units.")
    expected = tuple(total * share for share in shares)
    statistic = sum((o - e) * (o - e) / e for o, e in zip(counts, expected, strict=True))
    p_value = float(special.chdtrc(len(counts) - 1, statistic))
    return SRMResult(statistic, p_value, threshold, p_value < threshold, tuple(counts), expected)


@dataclass(frozen=True, kw_only=True)
class ABTestPlan:
    """What an A/B test compares, and how it decides; fixed before it starts.

    Args:
        arms: Arm names; the first is the control, each other one a treatment.
        weights: Traffic weight per arm (any positive scale, e.g. 50, 50); ``None``
            means equal weights.
        outcome: ``binary`` (0/1 conversions) or ``numeric`` (rewards).
        minimum_effect: Smallest absolute difference of means that matters, in outcome
            units (percentage points as a fraction for rates, e.g. 0.02). The fixed
            test is planned to detect it; a confidence interval inside ±minimum_effect
            means ``no-difference``; and ``minimum_effect**2`` is the default ``tau2``.
        test: ``sequential`` (mSPRT; may stop at any look) or ``fixed`` (decides only
            once the planned sample size is reached).
        alpha: Family-wise significance level in (0, 1), split equally (Bonferroni)
            over the ``len(arms) - 1`` comparisons.
        power: Power of the fixed test at ``minimum_effect``, in (0.5, 1).
        baseline_rate: Expected control conversion rate (binary); needed by ``fixed``.
        baseline_std: Expected standard deviation (numeric); needed by ``fixed``.
        tau2: Variance of the mSPRT's mixing distribution; ``None`` means
            ``minimum_effect**2``.
        higher_is_better: Whether a larger mean is the better outcome.
        srm_threshold: p-value under which a sample-ratio mismatch is declared.

    Raises:
        InvalidInputError: Any argument out of range, named with what is allowed.
    """

    arms: tuple[str, ...] = ("control", "treatment")
    weights: tuple[float, ...] | None = None
    outcome: OutcomeKind = "binary"
    minimum_effect: float
    test: TestKind = "sequential"
    alpha: float = 0.05
    power: float = 0.8
    baseline_rate: float | None = None
    baseline_std: float | None = None
    tau2: float | None = None
    higher_is_better: bool = True
    srm_threshold: float = 0.001

    def __post_init__(self) -> None:
        arms = tuple(self.arms)
        if len(arms) < 2 or any(not isinstance(a, str) or not a for a in arms):
            raise _fail(f"arms must be at least 2 non-empty names, got {self.arms!r}.")
        if len(set(arms)) != len(arms):
            raise _fail(f"arm names must be unique, got {self.arms!r}.")
        object.__setattr__(self, "arms", arms)
        if self.weights is not None:
            weights = tuple(self.weights)
            if len(weights) != len(arms):
                raise _fail(f"got {len(weights)} weights for {len(arms)} arms; give one per arm.")
            _shares(weights)
            object.__setattr__(self, "weights", weights)
        _check_outcome(self.outcome)
        if self.test not in TEST_KINDS:
            raise _fail(f"test must be one of {', '.join(TEST_KINDS)}; got {self.test!r}.")
        _check("minimum_effect", self.minimum_effect, low=0)
        _check("alpha", self.alpha, low=0, high=1)
        _check("power", self.power, low=0.5, high=1)
        _check("srm_threshold", self.srm_threshold, low=0, high=1)
        if self.tau2 is not None:
            _check("tau2", self.tau2, low=0)
        wanted, other = (
            ("baseline_rate", "baseline_std")
            if self.outcome == "binary"
            else ("baseline_std", "baseline_rate")
        )
        if getattr(self, other) is not None:
            raise _fail(f"{other} does not apply to {self.outcome} outcomes; use {wanted}.")
        if self.test == "fixed" and getattr(self, wanted) is None:
            raise _fail(
                f"a fixed-horizon test needs {wanted} to compute its sample size up front; "
                "give it, or use test='sequential'."
            )
        self.sample_sizes()  # validates the baseline against minimum_effect

    @property
    def shares(self) -> tuple[float, ...]:
        """Each arm's share of traffic, summing to 1."""
        return _shares(self.weights or (1.0,) * len(self.arms))

    @property
    def comparison_alpha(self) -> float:
        """Level of each treatment-versus-control comparison (Bonferroni)."""
        return self.alpha / (len(self.arms) - 1)

    @property
    def mixing_variance(self) -> float:
        """The mSPRT's ``tau2``: as configured, else ``minimum_effect**2``."""
        return self.tau2 if self.tau2 is not None else self.minimum_effect * self.minimum_effect

    def sample_sizes(self) -> dict[str, int] | None:
        """Outcomes per arm the fixed test needs, or ``None`` without a baseline."""
        if self.baseline_rate is None and self.baseline_std is None:
            return None
        shares = self.shares
        control = 0
        needed: dict[str, int] = {}
        for arm, share in zip(self.arms[1:], shares[1:], strict=True):
            n_c, n_t = required_sample_size(
                outcome=self.outcome,
                minimum_effect=self.minimum_effect,
                alpha=self.comparison_alpha,
                power=self.power,
                baseline_rate=self.baseline_rate,
                baseline_std=self.baseline_std,
                ratio=share / shares[0],
            )
            control, needed[arm] = max(control, n_c), n_t
        return {self.arms[0]: control, **needed}


@dataclass(frozen=True)
class Comparison:
    """One treatment against the control.

    Attributes:
        control: The control arm's name.
        treatment: The treatment arm's name.
        lift: Absolute and relative lift, at level ``1 - alpha`` of this comparison.
        fixed: The fixed-horizon test (z-test or Welch), at the corrected level.
        sequential: The mSPRT, at the corrected level.
        verdict: ``winner``, ``no-difference`` or ``inconclusive`` for this pair.
        winner: The better arm when ``verdict`` is ``winner``, else ``None``.
        reason: Why, in words.
    """

    control: str
    treatment: str
    lift: Lift
    fixed: SignificanceResult
    sequential: SignificanceResult
    verdict: ABVerdict
    winner: str | None
    reason: str


@dataclass(frozen=True)
class ABAnalysis:
    """The state of an A/B test at one look.

    Attributes:
        plan: The plan it was analysed under.
        arms: Per-arm summaries, control first.
        comparisons: Each treatment against the control.
        srm: The sample-ratio mismatch check.
        sample_sizes: Planned outcomes per arm for the fixed test, or ``None``.
        verdict: ``srm``, ``winner``, ``no-difference`` or ``inconclusive``.
        winner: The winning arm when ``verdict`` is ``winner``, else ``None``.
        reason: Why, in words.
    """

    plan: ABTestPlan
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SRMResult
    sample_sizes: dict[str, int] | None
    verdict: ABVerdict
    winner: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the analysis as JSON-ready dicts and lists."""
        return asdict(self)


def analyze(
    plan: ABTestPlan,
    outcomes: Mapping[str, ArmStats],
    *,
    assigned: Mapping[str, int] | None = None,
    previous: ABAnalysis | None = None,
) -> ABAnalysis:
    """Analyse an A/B test at one look and give its verdict.

    Verdict rules, in order: a sample-ratio mismatch gives ``srm`` (never a winner);
    otherwise a comparison has a ``winner`` when the plan's test rejects at the
    corrected level (the fixed test only once both arms reached their planned size),
    ``no-difference`` when that test's interval lies within ±minimum_effect, else
    ``inconclusive``. Overall, the winner is the treatment with the largest lift among
    those that beat the control; the control wins only if it beats every treatment;
    ``no-difference`` needs every comparison to say so; anything else is inconclusive.
    Treatments are not compared with each other.

    Args:
        plan: The test's plan.
        outcomes: Statistics per arm, one for each of ``plan.arms``.
        assigned: Units assigned per arm for the sample-ratio check; ``None`` uses the
            outcome counts (prefer assignments: outcomes may go missing unevenly).
        previous: The analysis at the previous look, to carry the mSPRT's running
            minimum p-value and intersected confidence sequence.

    Raises:
        InvalidInputError: Arms missing or unknown, fewer than :data:`MIN_OUTCOMES`
            outcomes in an arm, non-0/1 statistics for binary outcomes, or a
            ``previous`` analysis made under another plan.
    """
    names = plan.arms
    given_assigned = assigned if assigned is not None else outcomes
    for label, given in (("outcomes", outcomes), ("assigned", given_assigned)):
        if set(given) != set(names):
            raise _fail(
                f"{label} must have one entry per arm ({', '.join(names)}); got "
                f"{', '.join(sorted(given)) or 'none'}."
            )
    if previous is not None and previous.plan != plan:
        raise _fail("previous was analysed under a different plan; pass None to start over.")
    summaries = tuple(summarize_arm(n, outcomes[n], outcome=plan.outcome) for n in names)
    counts = [assigned[n] for n in names] if assigned is not None else [s.count for s in summaries]
    srm = sample_ratio_mismatch(counts, plan.shares, threshold=plan.srm_threshold)
    sizes = plan.sample_sizes()
    earlier = {c.treatment: c.sequential for c in previous.comparisons} if previous else {}
    comparisons = tuple(
        _compare(plan, names[0], arm, outcomes, sizes, earlier.get(arm)) for arm in names[1:]
    )
    verdict, winner, reason = _overall(plan, comparisons, srm)
    return ABAnalysis(plan, summaries, comparisons, srm, sizes, verdict, winner, reason)


def _compare(
    plan: ABTestPlan,
    control: str,
    treatment: str,
    outcomes: Mapping[str, ArmStats],
    sizes: dict[str, int] | None,
    previous: SignificanceResult | None,
) -> Comparison:
    alpha = plan.comparison_alpha
    c, t = outcomes[control], outcomes[treatment]
    test = two_proportion_ztest if plan.outcome == "binary" else welch_ttest
    fixed = test(c, t, alpha=alpha)
    sequential = msprt(
        c, t, outcome=plan.outcome, tau2=plan.mixing_variance, alpha=alpha, previous=previous
    )
    gain = lift(c, t, outcome=plan.outcome, confidence=1 - alpha)
    chosen = sequential if plan.test == "sequential" else fixed
    effect = plan.minimum_effect
    verdict: ABVerdict = "inconclusive"
    winner = None
    if (
        sizes is not None
        and plan.test == "fixed"
        and (c.count < sizes[control] or t.count < sizes[treatment])
    ):
        reason = (
            f"the fixed test decides at {sizes[control]} / {sizes[treatment]} outcomes; "
            f"{c.count} / {t.count} so far"
        )
    elif chosen.rejected:
        verdict = "winner"
        # The interval excludes 0 when rejected, unless the running intersection was
        # empty; then the point estimate gives the direction.
        centre = (chosen.ci.low + chosen.ci.high) / 2
        upward = (centre if not chosen.ci.contains(0) else chosen.difference) > 0
        winner = treatment if upward == plan.higher_is_better else control
        reason = f"{chosen.method} p = {chosen.p_value:.3g} <= {alpha:.3g}; {winner} is better"
    elif -effect <= chosen.ci.low and chosen.ci.high <= effect:
        verdict = "no-difference"
        reason = (
            f"the {chosen.method} interval [{chosen.ci.low:.3g}, {chosen.ci.high:.3g}] lies "
            f"within ±{effect:g}"
        )
    else:
        reason = (
            f"{chosen.method} p = {chosen.p_value:.3g} > {alpha:.3g} and the interval "
            f"[{chosen.ci.low:.3g}, {chosen.ci.high:.3g}] reaches beyond ±{effect:g}"
        )
    return Comparison(control, treatment, gain, fixed, sequential, verdict, winner, reason)


def _overall(
    plan: ABTestPlan, comparisons: tuple[Comparison, ...], srm: SRMResult
) -> tuple[ABVerdict, str | None, str]:
    if srm.detected:
        return (
            "srm",
            None,
            f"sample-ratio mismatch: observed {list(srm.observed)} against expected "
            f"{[round(e, 1) for e in srm.expected]} (p = {srm.p_value:.3g} < "
            f"{srm.threshold:g}); fix the assignment before reading any result",
        )
    sign = 1 if plan.higher_is_better else -1
    better = [c for c in comparisons if c.verdict == "winner" and c.winner == c.treatment]
    if better:
        best = max(better, key=lambda c: sign * c.lift.absolute)
        return "winner", best.treatment, f"{best.treatment} beats {best.control}: {best.reason}"
    if all(c.verdict == "winner" for c in comparisons):
        control = comparisons[0].control
        return "winner", control, f"{control} beats every treatment"
    if all(c.verdict == "no-difference" for c in comparisons):
        return "no-difference", None, "; ".join(c.reason for c in comparisons)
    return "inconclusive", None, "; ".join(f"{c.treatment}: {c.reason}" for c in comparisons)


def _check_outcome(outcome: object) -> None:
    if outcome not in OUTCOME_KINDS:
        raise _fail(f"outcome must be one of {', '.join(OUTCOME_KINDS)}; got {outcome!r}.")


def _check_arm(name: str, stats: ArmStats, outcome: OutcomeKind) -> None:
    if not isinstance(stats, ArmStats):
        raise _fail(f"arm {name!r}: expected ArmStats, got {type(stats).__name__}.")
    if stats.count < MIN_OUTCOMES:
        raise _fail(
            f"arm {name!r} has {stats.count} outcome(s); at least {MIN_OUTCOMES} are needed."
        )
    if outcome == "binary" and not stats.is_binary():
        raise _fail(
            f"arm {name!r}: binary outcomes must be 0 or 1 (total == total_squares, a whole "
            f"number), got total={stats.total!r}, total_squares={stats.total_squares!r}."
        )


def _shares(weights: Sequence[float]) -> tuple[float, ...]:
    if len(weights) < 2:
        raise _fail(f"weights must have one entry per arm (2 or more), got {list(weights)!r}.")
    values = [_check(f"weight {i + 1}", w, low=0) for i, w in enumerate(weights)]
    total = sum(values)
    return tuple(v / total for v in values)


def _standard_errors(
    control: ArmStats, treatment: ArmStats, outcome: OutcomeKind
) -> tuple[float, float]:
    """Standard errors of the two means (unpooled; ``p (1 - p) / n`` for rates)."""
    if outcome == "binary":
        c, t = control.mean * (1 - control.mean), treatment.mean * (1 - treatment.mean)
    else:
        c, t = control.variance, treatment.variance
    return math.sqrt(c / control.count), math.sqrt(t / treatment.count)


def _welch_df(control: ArmStats, treatment: ArmStats) -> float:
    a, b = control.variance / control.count, treatment.variance / treatment.count
    denominator = a * a / (control.count - 1) + b * b / (treatment.count - 1)
    if denominator == 0:
        return float(control.count + treatment.count - 2)
    return (a + b) * (a + b) / denominator


def _critical(
    control: ArmStats, treatment: ArmStats, outcome: OutcomeKind, confidence: float
) -> float:
    """Critical value of a two-sided interval: normal for rates, Welch's t otherwise."""
    if outcome == "binary":
        return _quantile(confidence)
    return _t_isf((1 - confidence) / 2, _welch_df(control, treatment))
