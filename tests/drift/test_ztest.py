"""Two-proportion Z-test: hand-computed statistic and Cohen's h; two categories only."""

from __future__ import annotations

import math

import pytest

from ferryman.drift import ZTest
from ferryman.errors import InvalidInputError


def test_z_test_equals_the_hand_computed_pooled_statistic() -> None:
    result = ZTest().compare(["yes"] * 30 + ["no"] * 70, ["yes"] * 45 + ["no"] * 55)
    pooled = 75 / 200
    z = (0.45 - 0.30) / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert result.statistic == pytest.approx(-z, abs=1e-12)  # share of "no", most frequent
    assert result.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), abs=1e-12)


def test_z_test_effect_size_is_cohens_h() -> None:
    result = ZTest().compare([True] * 30 + [False] * 70, [True] * 45 + [False] * 55)
    h = abs(2 * math.asin(math.sqrt(0.55)) - 2 * math.asin(math.sqrt(0.70)))
    assert result.effect_size == pytest.approx(h, abs=1e-12)


def test_z_test_needs_exactly_two_categories() -> None:
    with pytest.raises(InvalidInputError, match="exactly two categories across both samples"):
        ZTest().compare(["a", "b", "c"], ["a", "b"])


def test_z_test_rejects_numeric_samples() -> None:
    with pytest.raises(InvalidInputError, match="ZTest compares categorical samples"):
        ZTest().compare([1.0, 2.0], [1.0, 2.0])
