"""A/B statistics: equal to hand and SciPy computations, right verdicts on simulated tests."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ferryman.errors import InvalidInputError
from ferryman.rollout import significance
from ferryman.rollout.significance import (
    ABAnalysis,
    ABTestPlan,
    ArmStats,
    Interval,
    analyze,
    lift,
    msprt,
    required_sample_size,
    sample_ratio_mismatch,
    summarize_arm,
    two_proportion_ztest,
    welch_ttest,
)


def conversions(count: int, converted: int) -> ArmStats:
    return ArmStats.from_conversions(count, converted)


def binary_arms(control: tuple[int, int], treatment: tuple[int, int]) -> dict[str, ArmStats]:
    return {"control": conversions(*control), "treatment": conversions(*treatment)}


def test_docstring_examples_run() -> None:
    result = doctest.testmod(significance, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


# -- sufficient statistics ---------------------------------------------------------------


def test_arm_stats_streamed_one_by_one_and_merged_equal_the_batch() -> None:
    values = np.random.default_rng(1).normal(3.0, 2.0, size=500)
    streamed = ArmStats()
    for value in values[:200]:
        streamed = streamed.add(float(value))
    merged = streamed.merge(ArmStats.from_outcomes(values[200:]))
    batch = ArmStats.from_outcomes(values)

    assert merged.count == batch.count == 500
    assert merged.mean == pytest.approx(batch.mean, rel=1e-12)
    assert merged.variance == pytest.approx(batch.variance, rel=1e-12)


def test_arm_stats_mean_and_variance_equal_numpy() -> None:
    values = np.random.default_rng(2).normal(10.0, 2.0, size=1000)
    arm = ArmStats.from_outcomes(values)

    assert arm.mean == pytest.approx(values.mean(), rel=1e-12)
    assert arm.variance == pytest.approx(values.var(ddof=1), rel=1e-10)


def test_arm_stats_accepts_numpy_integers_as_counts() -> None:
    arm = ArmStats.from_conversions(np.int64(10), np.int64(3))  # type: ignore[arg-type]

    assert (arm.count, arm.total) == (10, 3.0)
    assert type(arm.count) is int


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((-1, 0.0, 0.0), "count must be an integer >= 0, got -1"),
        ((2.5, 0.0, 0.0), "count must be an integer >= 0, got 2.5"),
        ((3, math.nan, 1.0), "sums must be finite"),
        ((3, 6.0, 1.0), "no 3 outcomes sum to 6.0 with squares summing to 1.0"),
        ((2, 1.0, -1.0), "no 2 outcomes"),
    ],
    ids=["negative-count", "fractional-count", "nan-total", "impossible-sums", "negative-squares"],
)
def test_arm_stats_rejects_impossible_statistics(
    arguments: tuple[int, float, float], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ArmStats(*arguments)


def test_from_conversions_rejects_more_conversions_than_outcomes() -> None:
    with pytest.raises(InvalidInputError, match=r"conversions must lie in \[0, 10\], got 11"):
        ArmStats.from_conversions(10, 11)


def test_from_outcomes_rejects_non_finite_values() -> None:
    with pytest.raises(InvalidInputError, match="one-dimensional sequence of finite numbers"):
        ArmStats.from_outcomes([1.0, math.inf])


def test_from_outcomes_reports_overflowing_squares() -> None:
    with pytest.raises(InvalidInputError, match="sums must be finite"):
        ArmStats.from_outcomes([1e200, 1e200])


# -- per-arm summaries -------------------------------------------------------------------


def test_binary_summary_uses_the_wilson_interval() -> None:
    n, x, z = 200, 30, stats.norm.ppf(0.975)
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))

    summary = summarize_arm("control", conversions(n, x), outcome="binary")

    assert (summary.count, summary.conversions, summary.mean) == (200, 30, 0.15)
    assert summary.ci.low == pytest.approx(centre - half, rel=1e-12)
    assert summary.ci.high == pytest.approx(centre + half, rel=1e-12)


def test_numeric_summary_uses_the_student_t_interval() -> None:
    values = np.random.default_rng(3).exponential(5.0, size=60)
    expected = stats.t.interval(0.95, 59, loc=values.mean(), scale=stats.sem(values))

    summary = summarize_arm("treatment", ArmStats.from_outcomes(values), outcome="numeric")

    assert summary.conversions is None
    assert summary.variance == pytest.approx(values.var(ddof=1), rel=1e-10)
    assert (summary.ci.low, summary.ci.high) == pytest.approx(expected, rel=1e-9)


def test_binary_summary_rejects_non_binary_statistics() -> None:
    with pytest.raises(InvalidInputError, match="binary outcomes must be 0 or 1"):
        summarize_arm("control", ArmStats.from_outcomes([0.5, 2.0]), outcome="binary")


def test_summary_needs_two_outcomes() -> None:
    with pytest.raises(InvalidInputError, match=r"arm 'control' has 1 outcome.*at least 2"):
        summarize_arm("control", ArmStats.from_outcomes([1.0]), outcome="numeric")


def test_summary_rejects_an_unknown_outcome_kind() -> None:
    with pytest.raises(InvalidInputError, match="outcome must be one of binary, numeric"):
        summarize_arm("a", conversions(10, 1), outcome="count")  # type: ignore[arg-type]


# -- fixed-horizon tests and lift -----------------------------------------------------------


def test_ztest_equals_the_normal_computation_by_hand() -> None:
    n_c, x_c, n_t, x_t = 2400, 240, 2600, 299
    p_c, p_t = x_c / n_c, x_t / n_t
    pooled = (x_c + x_t) / (n_c + n_t)
    z = (p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    wald = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t) * stats.norm.ppf(0.975)

    result = two_proportion_ztest(conversions(n_c, x_c), conversions(n_t, x_t))

    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert (result.ci.low, result.ci.high) == pytest.approx(
        (p_t - p_c - wald, p_t - p_c + wald), rel=1e-9
    )


def test_ztest_on_two_arms_without_any_conversion_finds_nothing() -> None:
    result = two_proportion_ztest(conversions(100, 0), conversions(100, 0))

    assert (result.statistic, result.p_value, result.rejected) == (0.0, 1.0, False)


def test_welch_equals_scipy_ttest_ind_on_the_same_data() -> None:
    rng = np.random.default_rng(4)
    control, treatment = rng.normal(10.0, 2.0, size=300), rng.normal(10.4, 3.0, size=450)
    expected = stats.ttest_ind(treatment, control, equal_var=False)

    result = welch_ttest(ArmStats.from_outcomes(control), ArmStats.from_outcomes(treatment))

    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-9)
    assert result.df == pytest.approx(expected.df, rel=1e-9)
    interval = expected.confidence_interval(0.95)
    assert (result.ci.low, result.ci.high) == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_welch_on_constant_arms_is_certain() -> None:
    same = welch_ttest(ArmStats.from_outcomes([2.0] * 5), ArmStats.from_outcomes([2.0] * 5))
    apart = welch_ttest(ArmStats.from_outcomes([2.0] * 5), ArmStats.from_outcomes([3.0] * 5))

    assert (same.statistic, same.p_value) == (0.0, 1.0)
    assert (apart.statistic, apart.p_value) == (math.inf, 0.0)


def test_lift_is_the_difference_and_ratio_of_means_with_their_intervals() -> None:
    control, treatment = conversions(1000, 100), conversions(1000, 120)
    se_c, se_t = math.sqrt(0.1 * 0.9 / 1000), math.sqrt(0.12 * 0.88 / 1000)
    z = stats.norm.ppf(0.975)
    relative_se = math.sqrt((se_t / 0.1) ** 2 + (0.12 * se_c / 0.1**2) ** 2)

    result = lift(control, treatment, outcome="binary")

    assert result.absolute == pytest.approx(0.02)
    assert result.absolute_ci.low == pytest.approx(0.02 - z * math.hypot(se_c, se_t))
    assert result.relative == pytest.approx(0.2)
    assert result.relative_ci is not None
    assert result.relative_ci.high == pytest.approx(0.2 + z * relative_se)


def test_relative_lift_is_undefined_when_the_control_mean_is_zero() -> None:
    result = lift(conversions(50, 0), conversions(50, 5), outcome="binary")

    assert (result.relative, result.relative_ci) == (None, None)


def test_required_sample_size_follows_the_textbook_formulas() -> None:
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    p1, p2 = 0.10, 0.12
    binary = (
        z_a * math.sqrt(2 * 0.11 * 0.89) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / 0.02**2

    assert required_sample_size(outcome="binary", minimum_effect=0.02, baseline_rate=0.1) == (
        math.ceil(binary),
        math.ceil(binary),
    )
    # Cohen's d = 0.5 needs 63 per group (normal approximation).
    assert required_sample_size(outcome="numeric", minimum_effect=0.5, baseline_std=1.0) == (
        63,
        63,
    )


def test_required_sample_size_with_a_smaller_treatment_arm_needs_more_control() -> None:
    equal = required_sample_size(outcome="numeric", minimum_effect=0.5, baseline_std=1.0)
    tenth = required_sample_size(
        outcome="numeric", minimum_effect=0.5, baseline_std=1.0, ratio=0.25
    )

    assert tenth[0] > equal[0]
    assert tenth[1] == math.ceil(0.25 * tenth[0])


def test_the_fixed_test_at_the_planned_size_has_the_planned_power() -> None:
    n, _ = required_sample_size(outcome="binary", minimum_effect=0.02, baseline_rate=0.1)
    rng = np.random.default_rng(5)
    detected = [
        two_proportion_ztest(
            conversions(n, int(rng.binomial(n, 0.10))), conversions(n, int(rng.binomial(n, 0.12)))
        ).rejected
        for _ in range(400)
    ]

    assert 0.75 <= np.mean(detected) <= 0.85


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"outcome": "binary", "minimum_effect": 0.02}, "binary outcomes need baseline_rate"),
        (
            {"outcome": "numeric", "minimum_effect": 1, "baseline_rate": 0.1},
            "numeric outcomes need baseline_std",
        ),
        (
            {"outcome": "binary", "minimum_effect": 0.5, "baseline_rate": 0.6},
            "baseline_rate \\+ minimum_effect must be below 1, got 1.1",
        ),
        (
            {"outcome": "binary", "minimum_effect": 0.02, "baseline_rate": 0.1, "power": 0.2},
            r"power must be a finite number in \(0.5, 1\), got 0.2",
        ),
        (
            {"outcome": "numeric", "minimum_effect": 1e-300, "baseline_std": 1.0},
            "too small to detect",
        ),
    ],
    ids=["binary-without-rate", "numeric-with-rate", "rate-above-one", "low-power", "tiny"],
)
def test_required_sample_size_rejects_bad_parameters(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        required_sample_size(**arguments)  # type: ignore[arg-type]


# -- the mixture sequential probability ratio test ----------------------------------------


def test_msprt_equals_the_closed_form() -> None:
    control, treatment = conversions(1000, 100), conversions(1000, 130)
    tau2, pooled = 0.02**2, 230 / 2000
    s2 = pooled * (1 - pooled) * (2 / 1000)
    ratio = math.sqrt(s2 / (s2 + tau2)) * math.exp(tau2 * 0.03**2 / (2 * s2 * (s2 + tau2)))
    half = math.sqrt(s2 * (s2 + tau2) / tau2 * (2 * math.log(20) + math.log((s2 + tau2) / s2)))

    result = msprt(control, treatment, outcome="binary", tau2=tau2)

    assert result.statistic == pytest.approx(math.log(ratio), rel=1e-12)
    assert result.p_value == pytest.approx(min(1.0, 1 / ratio), rel=1e-12)
    assert (result.ci.low, result.ci.high) == pytest.approx((0.03 - half, 0.03 + half))


def test_msprt_keeps_the_running_minimum_p_value_and_intersects_the_intervals() -> None:
    early = msprt(conversions(500, 50), conversions(500, 75), outcome="binary", tau2=4e-4)
    later = msprt(
        conversions(1000, 100), conversions(1000, 110), outcome="binary", tau2=4e-4, previous=early
    )
    alone = msprt(conversions(1000, 100), conversions(1000, 110), outcome="binary", tau2=4e-4)

    assert alone.p_value > early.p_value
    assert later.p_value == early.p_value
    assert later.ci == Interval(max(early.ci.low, alone.ci.low), min(early.ci.high, alone.ci.high))


def test_msprt_refuses_a_previous_result_of_another_test() -> None:
    fixed = two_proportion_ztest(conversions(100, 10), conversions(100, 12))

    with pytest.raises(InvalidInputError, match=r"previous must be an msprt result at alpha=0\.05"):
        msprt(
            conversions(100, 10), conversions(100, 12), outcome="binary", tau2=1e-4, previous=fixed
        )


def _false_winner_rates(outcome: str, seeds: int, looks: int, every: int) -> tuple[float, float]:
    """Share of A/A tests that ever show a winner: sequential, and naive fixed peeking."""
    plan = ABTestPlan(outcome=outcome, minimum_effect=0.02 if outcome == "binary" else 0.2)  # type: ignore[arg-type]
    sequential = naive = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        if outcome == "binary":
            draws = (rng.random((2, looks * every)) < 0.1).astype(float)
        else:
            draws = rng.normal(5.0, 1.0, size=(2, looks * every))
        sums, squares = np.cumsum(draws, axis=1), np.cumsum(draws * draws, axis=1)
        result: ABAnalysis | None = None
        peeked_fixed = False
        for look in range(1, looks + 1):
            n = look * every
            arms = {
                arm: ArmStats(n, float(sums[i, n - 1]), float(squares[i, n - 1]))
                for i, arm in enumerate(plan.arms)
            }
            result = analyze(plan, arms, previous=result)
            peeked_fixed = peeked_fixed or result.comparisons[0].fixed.rejected
        assert result is not None
        sequential += result.comparisons[0].sequential.rejected
        naive += peeked_fixed
    return sequential / seeds, naive / seeds


@pytest.mark.parametrize(
    ("outcome", "seeds"), [("binary", 200), ("numeric", 100)], ids=["binary", "numeric"]
)
def test_sequential_test_keeps_false_winners_at_alpha_under_continuous_peeking(
    outcome: str, seeds: int
) -> None:
    sequential, naive = _false_winner_rates(outcome, seeds, looks=20, every=100)
    sampling_error = 3 * math.sqrt(0.05 * 0.95 / seeds)

    assert sequential <= 0.05 + sampling_error
    # The same peeking with the fixed-horizon test does inflate false positives: the
    # simulation is sensitive enough to catch a test that is not peeking-safe.
    assert naive > 0.05 + sampling_error


# -- sample-ratio mismatch ---------------------------------------------------------------


def test_srm_is_detected_on_a_55_45_split_of_10000_configured_50_50() -> None:
    result = sample_ratio_mismatch([5500, 4500], [50, 50])

    assert result.detected
    assert result.statistic == pytest.approx(100.0)
    assert result.p_value == pytest.approx(stats.chisquare([5500, 4500]).pvalue, rel=1e-9)


def test_srm_is_not_detected_on_a_fair_split() -> None:
    rng = np.random.default_rng(6)
    first = int(rng.binomial(10_000, 0.5))

    result = sample_ratio_mismatch([first, 10_000 - first], [50, 50])

    assert not result.detected
    assert result.expected == (5000.0, 5000.0)


def test_srm_compares_with_unequal_weights() -> None:
    assert not sample_ratio_mismatch([9000, 1000], [90, 10]).detected
    assert sample_ratio_mismatch([5000, 5000], [90, 10]).detected


@pytest.mark.parametrize(
    ("counts", "weights", "message"),
    [
        ([10, 10], [1, 1, 1], "got 2 counts for 3 weights"),
        ([0, 0], [1, 1], "all counts are 0"),
        ([-1, 3], [1, 1], "counts must be integers >= 0"),
        ([5, 5], [1, 0], "weight 2 must be a finite number > 0, got 0"),
    ],
    ids=["length", "empty", "negative", "zero-weight"],
)
def test_srm_rejects_bad_input(counts: list[int], weights: list[float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        sample_ratio_mismatch(counts, weights)


# -- plans and verdicts ------------------------------------------------------------------


def test_sequential_test_finds_the_known_winner_while_peeking() -> None:
    plan = ABTestPlan(minimum_effect=0.02)
    rng = np.random.default_rng(7)
    control, treatment = np.cumsum(rng.random(20_000) < 0.10), np.cumsum(rng.random(20_000) < 0.13)
    result: ABAnalysis | None = None
    for n in range(100, 20_001, 100):
        arms = binary_arms((n, int(control[n - 1])), (n, int(treatment[n - 1])))
        result = analyze(plan, arms, previous=result)
        if result.verdict != "inconclusive":
            break

    assert result is not None
    assert (result.verdict, result.winner) == ("winner", "treatment")
    assert n < 20_000


def test_fixed_test_names_the_winner_once_the_planned_size_is_reached() -> None:
    plan = ABTestPlan(outcome="numeric", minimum_effect=0.5, baseline_std=2.0, test="fixed")
    needed = plan.sample_sizes()
    assert needed is not None
    rng = np.random.default_rng(8)
    control = rng.normal(10.0, 2.0, size=needed["control"])
    treatment = rng.normal(11.0, 2.0, size=needed["treatment"])
    arms = {
        "control": ArmStats.from_outcomes(control),
        "treatment": ArmStats.from_outcomes(treatment),
    }

    result = analyze(plan, arms)

    assert (result.verdict, result.winner) == ("winner", "treatment")
    assert result.comparisons[0].fixed.method == "welch-t-test"


def test_fixed_test_is_inconclusive_before_the_planned_size_even_when_significant() -> None:
    plan = ABTestPlan(minimum_effect=0.02, baseline_rate=0.1, test="fixed")

    result = analyze(plan, binary_arms((1000, 100), (1000, 200)))

    assert result.comparisons[0].fixed.rejected
    assert result.verdict == "inconclusive"
    assert "the fixed test decides at 3841 / 3841 outcomes; 1000 / 1000 so far" in result.reason


def test_a_worse_treatment_makes_the_control_the_winner() -> None:
    result = analyze(ABTestPlan(minimum_effect=0.02), binary_arms((5000, 650), (5000, 500)))

    assert (result.verdict, result.winner) == ("winner", "control")


def test_lower_is_better_turns_the_lower_mean_into_the_winner() -> None:
    plan = ABTestPlan(minimum_effect=0.02, higher_is_better=False)

    result = analyze(plan, binary_arms((5000, 650), (5000, 500)))

    assert (result.verdict, result.winner) == ("winner", "treatment")


def test_three_arms_name_the_right_winner_at_the_bonferroni_level() -> None:
    plan = ABTestPlan(arms=("a", "b", "c"), minimum_effect=0.02)
    arms = {"a": conversions(6000, 600), "b": conversions(6000, 610), "c": conversions(6000, 800)}

    result = analyze(plan, arms)

    assert (result.verdict, result.winner) == ("winner", "c")
    assert [c.sequential.alpha for c in result.comparisons] == [0.025, 0.025]
    assert [c.verdict for c in result.comparisons] == ["no-difference", "winner"]


def test_identical_arms_with_enough_data_show_no_difference() -> None:
    plan = ABTestPlan(minimum_effect=0.02)

    result = analyze(plan, binary_arms((20_000, 2000), (20_000, 2010)))

    assert (result.verdict, result.winner) == ("no-difference", None)
    ci = result.comparisons[0].sequential.ci
    assert ci.low >= -0.02 and ci.high <= 0.02


def test_too_little_data_is_inconclusive() -> None:
    result = analyze(ABTestPlan(minimum_effect=0.02), binary_arms((200, 20), (200, 25)))

    assert (result.verdict, result.winner) == ("inconclusive", None)


def test_sample_ratio_mismatch_overrides_a_clear_winner() -> None:
    result = analyze(ABTestPlan(minimum_effect=0.02), binary_arms((5500, 550), (4500, 700)))

    assert result.comparisons[0].verdict == "winner"
    assert (result.verdict, result.winner) == ("srm", None)
    assert "sample-ratio mismatch" in result.reason


def test_srm_is_checked_on_assignments_when_given() -> None:
    arms = binary_arms((5000, 500), (5000, 650))

    result = analyze(
        ABTestPlan(minimum_effect=0.02), arms, assigned={"control": 6000, "treatment": 5000}
    )

    assert result.srm.observed == (6000, 5000)
    assert result.verdict == "srm"


def test_analysis_serializes_to_json() -> None:
    result = analyze(ABTestPlan(minimum_effect=0.02), binary_arms((1000, 100), (1000, 120)))

    data = json.loads(json.dumps(result.to_dict()))

    assert data["verdict"] == result.verdict
    assert data["arms"][0]["ci"]["low"] == result.arms[0].ci.low
    assert data["comparisons"][0]["sequential"]["method"] == "msprt"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"arms": ("only",)}, "arms must be at least 2 non-empty names"),
        ({"arms": ("a", "a")}, "arm names must be unique"),
        ({"weights": (50, 30, 20)}, "got 3 weights for 2 arms"),
        ({"test": "bayesian"}, "test must be one of fixed, sequential; got 'bayesian'"),
        ({"test": "fixed"}, "a fixed-horizon test needs baseline_rate"),
        ({"baseline_std": 1.0}, "baseline_std does not apply to binary outcomes"),
        ({"alpha": 1.5}, r"alpha must be a finite number in \(0, 1\), got 1.5"),
        ({"tau2": -1.0}, "tau2 must be a finite number > 0"),
        ({"minimum_effect": 0}, "minimum_effect must be a finite number > 0, got 0"),
    ],
    ids=[
        "one-arm",
        "duplicate",
        "weights",
        "test",
        "fixed",
        "wrong-baseline",
        "alpha",
        "tau2",
        "mde",
    ],
)
def test_plan_rejects_bad_configuration(arguments: dict[str, object], message: str) -> None:
    configuration: dict[str, object] = {"minimum_effect": 0.02, **arguments}
    with pytest.raises(InvalidInputError, match=message):
        ABTestPlan(**configuration)  # type: ignore[arg-type]


def test_plan_defaults_tau2_to_the_squared_minimum_effect_and_splits_alpha() -> None:
    plan = ABTestPlan(arms=("a", "b", "c", "d"), weights=(4, 2, 2, 2), minimum_effect=0.1)

    assert plan.mixing_variance == pytest.approx(0.01)
    assert plan.comparison_alpha == pytest.approx(0.05 / 3)
    assert plan.shares == pytest.approx((0.4, 0.2, 0.2, 0.2))


def test_analyze_rejects_missing_arms() -> None:
    with pytest.raises(
        InvalidInputError, match="one entry per arm \\(control, treatment\\); got b"
    ):
        analyze(ABTestPlan(minimum_effect=0.02), {"b": conversions(10, 1)})


def test_analyze_rejects_assignments_that_miss_an_arm() -> None:
    with pytest.raises(
        InvalidInputError, match=r"assigned must have one entry per arm .*; got none"
    ):
        analyze(ABTestPlan(minimum_effect=0.02), binary_arms((10, 1), (10, 2)), assigned={})


def test_analyze_rejects_an_arm_without_enough_outcomes() -> None:
    with pytest.raises(InvalidInputError, match="arm 'treatment' has 1 outcome"):
        analyze(ABTestPlan(minimum_effect=0.02), binary_arms((10, 1), (1, 0)))


def test_analyze_rejects_a_previous_analysis_under_another_plan() -> None:
    arms = binary_arms((100, 10), (100, 12))
    earlier = analyze(ABTestPlan(minimum_effect=0.02), arms)

    with pytest.raises(InvalidInputError, match="previous was analysed under a different plan"):
        analyze(ABTestPlan(minimum_effect=0.05), arms, previous=earlier)


# -- properties --------------------------------------------------------------------------

values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_subnormal=False),
    min_size=2,
    max_size=60,
)
binary_counts = st.integers(min_value=2, max_value=10_000).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
)


@settings(max_examples=80, deadline=None)
@given(control=values, treatment=values)
def test_numeric_p_values_lie_in_the_unit_interval_and_intervals_hold_the_estimate(
    control: list[float], treatment: list[float]
) -> None:
    c, t = ArmStats.from_outcomes(control), ArmStats.from_outcomes(treatment)
    for result in (welch_ttest(c, t), msprt(c, t, outcome="numeric", tau2=1.0)):
        assert 0.0 <= result.p_value <= 1.0
        assert result.ci.contains(result.difference)
    gain = lift(c, t, outcome="numeric")
    assert gain.absolute_ci.contains(gain.absolute)
    if gain.relative is not None and gain.relative_ci is not None:
        assert gain.relative_ci.contains(gain.relative)
    summary = summarize_arm("c", c, outcome="numeric")
    assert summary.ci.contains(summary.mean)


@settings(max_examples=80, deadline=None)
@given(control=binary_counts, treatment=binary_counts)
def test_binary_p_values_lie_in_the_unit_interval_and_intervals_hold_the_estimate(
    control: tuple[int, int], treatment: tuple[int, int]
) -> None:
    c, t = conversions(*control), conversions(*treatment)
    for result in (two_proportion_ztest(c, t), msprt(c, t, outcome="binary", tau2=1e-4)):
        assert 0.0 <= result.p_value <= 1.0
        assert result.ci.contains(result.difference)
    for arm in (c, t):
        summary = summarize_arm("arm", arm, outcome="binary")
        assert 0.0 <= summary.ci.low <= summary.mean <= summary.ci.high <= 1.0


@settings(max_examples=60, deadline=None)
@given(arm=values)
def test_symmetric_arms_show_zero_lift_and_no_evidence(arm: list[float]) -> None:
    stats_ = ArmStats.from_outcomes(arm)

    gain = lift(stats_, stats_, outcome="numeric")

    assert gain.absolute == 0.0
    assert gain.relative in (0.0, None)
    assert welch_ttest(stats_, stats_).p_value == 1.0
    assert msprt(stats_, stats_, outcome="numeric", tau2=1.0).p_value == 1.0


@settings(max_examples=60, deadline=None)
@given(arm=binary_counts)
def test_symmetric_binary_arms_are_never_a_winner(arm: tuple[int, int]) -> None:
    result = analyze(ABTestPlan(minimum_effect=0.02), binary_arms(arm, arm))

    assert result.comparisons[0].lift.absolute == 0.0
    assert result.comparisons[0].fixed.p_value == 1.0
    assert result.verdict in ("no-difference", "inconclusive")
