"""Normalised Wasserstein: SciPy's distance on raw data, a tight approximation on profiles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ferryman.drift import WassersteinTest
from ferryman.errors import InvalidInputError
from ferryman.signature import build_profile

Sampler = Callable[[np.random.Generator, int], np.ndarray]
SAMPLERS: dict[str, Sampler] = {
    "normal": lambda r, n: r.normal(size=n),
    "lognormal": lambda r, n: r.lognormal(size=n),
    "exponential": lambda r, n: r.exponential(size=n),
    "integers": lambda r, n: r.integers(0, 100, n).astype(float),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_wasserstein_equals_scipy_divided_by_the_reference_std(
    rng: np.random.Generator, name: str
) -> None:
    reference = SAMPLERS[name](rng, 3000)
    current = SAMPLERS[name](rng, 2000) * 1.1 + 0.3
    result = WassersteinTest().compare(reference, current)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert result.statistic == pytest.approx(expected, abs=1e-9)
    assert result.effect_size == result.statistic


CHANGES = [(0.0, 1.0), (0.1, 1.0), (0.0, 1.2), (0.0, 0.8)]


@pytest.mark.parametrize("name", ["normal", "lognormal", "exponential"])
@pytest.mark.parametrize(("shift", "scale"), CHANGES, ids=[f"+{s}sd x{k}" for s, k in CHANGES])
def test_wasserstein_against_a_profile_is_within_0_006_of_the_exact_value(
    rng: np.random.Generator, name: str, shift: float, scale: float
) -> None:
    reference = SAMPLERS[name](rng, 100_000)
    current = SAMPLERS[name](rng, 100_000) * scale + shift * reference.std()
    profile = build_profile(pd.DataFrame({"x": reference})).features[0]
    exact = WassersteinTest().compare(reference, current).effect_size
    approx = WassersteinTest().compare(profile, current)
    assert approx.approximate
    assert approx.effect_size == pytest.approx(exact, abs=0.006)


def test_wasserstein_against_a_discrete_profile_is_exact_for_the_same_support(
    rng: np.random.Generator,
) -> None:
    reference = rng.integers(0, 100, 100_000).astype(float)
    current = rng.integers(0, 100, 100_000).astype(float)
    profile = build_profile(pd.DataFrame({"x": reference})).features[0]
    exact = WassersteinTest().compare(reference, current).effect_size
    assert WassersteinTest().compare(profile, current).effect_size == pytest.approx(
        exact, abs=0.001
    )


def test_wasserstein_ignores_an_irrelevant_shift_in_a_million_rows(
    rng: np.random.Generator,
) -> None:
    result = WassersteinTest().compare(rng.normal(size=1_000_000), rng.normal(0.01, 1, 1_000_000))
    assert result.p_value is not None and result.p_value < 0.05
    assert not result.drifted


def test_wasserstein_widens_its_threshold_for_small_samples(rng: np.random.Generator) -> None:
    small = WassersteinTest().compare(rng.normal(size=60), rng.normal(size=60))
    large = WassersteinTest().compare(rng.normal(size=60_000), rng.normal(size=60_000))
    assert small.threshold > small.min_effect == large.threshold


def test_wasserstein_refuses_a_constant_reference() -> None:
    with pytest.raises(InvalidInputError, match="reference is constant"):
        WassersteinTest().compare([1.0] * 10, [1.0, 2.0])
