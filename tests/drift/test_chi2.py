"""Chi-square: SciPy's statistic and p-value, and pooling of sparse categories."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ferryman.drift import ChiSquareTest


def test_chi2_statistic_and_p_value_equal_scipy(rng: np.random.Generator) -> None:
    reference = rng.choice(list("abcde"), 1000, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    current = rng.choice(list("abcde"), 700, p=[0.25, 0.25, 0.2, 0.2, 0.1])
    result = ChiSquareTest().compare(reference, current)
    table = [
        [int((reference == c).sum()) for c in "abcde"],
        [int((current == c).sum()) for c in "abcde"],
    ]
    expected = stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_chi2_effect_size_is_cohens_w_with_pooled_shares() -> None:
    result = ChiSquareTest().compare(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
    assert result.effect_size == pytest.approx(np.sqrt(result.statistic * (1 / 100 + 1 / 100)))


def test_chi2_pools_sparse_categories_so_a_long_tail_does_not_raise_alarms() -> None:
    rng = np.random.default_rng(7)
    names = np.array([f"c{i}" for i in range(1000)])
    shares = 1 / np.arange(1, 1001) ** 1.1
    shares /= shares.sum()
    alarms = sum(
        ChiSquareTest(min_effect=0)
        .compare(names[rng.choice(1000, 2000, p=shares)], names[rng.choice(1000, 2000, p=shares)])
        .drifted
        for _ in range(40)
    )
    assert alarms <= 6  # about 2 expected at alpha = 0.05; unpooled it is far more
