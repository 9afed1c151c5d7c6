"""Jensen-Shannon: base-2 distance equal to SciPy's, G-test p-value equal to SciPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ferryman.drift import JensenShannonTest


def test_jensen_shannon_equals_the_hand_computed_base_2_distance() -> None:
    result = JensenShannonTest().compare(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
    middle = (0.65, 0.35)
    divergence = 0.5 * (
        0.5 * math.log2(0.5 / middle[0]) + 0.5 * math.log2(0.5 / middle[1])
    ) + 0.5 * (0.8 * math.log2(0.8 / middle[0]) + 0.2 * math.log2(0.2 / middle[1]))
    assert result.statistic == pytest.approx(math.sqrt(divergence), abs=1e-12)


def test_jensen_shannon_equals_scipy_with_an_empty_cell() -> None:
    reference = ["a"] * 30 + ["b"] * 70
    current = ["a"] * 10 + ["b"] * 60 + ["c"] * 30
    result = JensenShannonTest(min_expected=0).compare(reference, current)
    expected = jensenshannon([0.3, 0.7, 0.0], [0.1, 0.6, 0.3], base=2)
    assert result.statistic == pytest.approx(expected, abs=1e-12)


def test_jensen_shannon_p_value_is_scipy_g_test(rng: np.random.Generator) -> None:
    reference = rng.choice(list("abcd"), 400, p=[0.4, 0.3, 0.2, 0.1])
    current = rng.choice(list("abcd"), 300, p=[0.3, 0.3, 0.3, 0.1])
    result = JensenShannonTest().compare(reference, current)
    table = [
        [int((reference == c).sum()) for c in "abcd"],
        [int((current == c).sum()) for c in "abcd"],
    ]
    expected = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    assert result.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_jensen_shannon_distance_is_at_most_one() -> None:
    assert JensenShannonTest().compare(["a"] * 100, ["b"] * 100).statistic == pytest.approx(1.0)
