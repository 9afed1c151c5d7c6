"""Kolmogorov-Smirnov: SciPy's statistic and p-value on raw data, bounds against profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ferryman.drift import KSTest, summarize
from ferryman.errors import InvalidInputError
from ferryman.signature import build_profile

SIZES = [(50, 70), (900, 1000), (3000, 3000), (12_000, 15_000), (40_000, 25_000)]


@pytest.mark.parametrize(("n", "m"), SIZES, ids=[f"{n}x{m}" for n, m in SIZES])
def test_ks_statistic_and_p_value_equal_scipy(rng: np.random.Generator, n: int, m: int) -> None:
    reference = rng.normal(size=n)
    current = rng.normal(0.05, 1.1, size=m)
    result = KSTest().compare(reference, current)
    expected = stats.ks_2samp(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_ks_equals_scipy_with_ties(rng: np.random.Generator) -> None:
    reference = rng.integers(0, 5, 500).astype(float)
    current = rng.integers(0, 6, 400).astype(float)
    result = KSTest().compare(reference, current)
    expected = stats.ks_2samp(reference, current)
    assert (result.statistic, result.p_value) == pytest.approx(
        (expected.statistic, expected.pvalue), abs=1e-9
    )


@pytest.mark.parametrize("method", ["exact", "asymp"])
def test_ks_method_matches_scipy_method(rng: np.random.Generator, method: str) -> None:
    reference, current = rng.normal(size=300), rng.normal(0.2, size=250)
    result = KSTest(method=method).compare(reference, current)
    assert result.p_value == pytest.approx(
        stats.ks_2samp(reference, current, method=method).pvalue, abs=1e-9
    )


def test_ks_leaves_out_missing_and_infinite_values(rng: np.random.Generator) -> None:
    reference = rng.normal(size=400)
    current = rng.normal(size=300)
    dirty = np.concatenate([current, [np.nan, np.inf, -np.inf]])
    assert KSTest().compare(reference, dirty) == KSTest().compare(reference, current)


def test_ks_against_a_profile_is_a_lower_bound_within_one_percentile_bin(
    rng: np.random.Generator,
) -> None:
    reference = rng.normal(size=50_000)
    current = rng.normal(0.1, 1.2, size=40_000)
    exact = KSTest().compare(reference, current).statistic
    approx = KSTest().compare(build_profile(pd.DataFrame({"x": reference})).features[0], current)
    assert approx.approximate
    assert exact - 0.02 <= approx.statistic <= exact


def test_ks_decides_on_effect_size_not_only_on_the_p_value(rng: np.random.Generator) -> None:
    reference = rng.normal(size=200_000)
    result = KSTest().compare(reference, rng.normal(0.02, size=200_000))
    assert result.p_value is not None and result.p_value < 0.05
    assert not result.drifted


def test_ks_rejects_categorical_samples() -> None:
    with pytest.raises(InvalidInputError, match="KSTest compares numeric samples"):
        KSTest().compare(["a", "b"], ["a", "a"])


def test_ks_rejects_empty_samples() -> None:
    with pytest.raises(InvalidInputError, match="non-empty samples"):
        KSTest().compare([], [1.0, 2.0])


def test_ks_rejects_samples_without_finite_values() -> None:
    with pytest.raises(InvalidInputError, match="at least one finite value"):
        KSTest().compare([np.nan, np.inf], [1.0, 2.0])


def test_ks_accepts_a_summary_made_once(rng: np.random.Generator) -> None:
    reference, current = rng.normal(size=500), rng.normal(size=500)
    assert KSTest().compare(summarize(reference), current) == KSTest().compare(reference, current)
