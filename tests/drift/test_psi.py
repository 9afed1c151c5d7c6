"""PSI: hand-computed values, the zero-bin floor, bins from the reference's deciles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ferryman.drift import PSI_FLOOR, PSITest
from ferryman.signature import build_profile


def test_psi_equals_the_hand_computed_value_on_two_categories() -> None:
    result = PSITest().compare(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert result.statistic == pytest.approx(expected, abs=1e-12)


def test_psi_floors_empty_bins_at_one_in_ten_thousand() -> None:
    result = PSITest(min_expected=0).compare(["a"] * 10, ["a"] * 5 + ["b"] * 5)
    expected = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - PSI_FLOOR) * math.log(0.5 / PSI_FLOOR)
    assert result.statistic == pytest.approx(expected, abs=1e-12)


def test_psi_bins_numbers_at_the_reference_deciles() -> None:
    reference = np.arange(1, 101, dtype=float)  # deciles cut after 10.9, 20.8, ...
    current = np.concatenate([np.full(20, 5.0), np.full(80, 50.0)])
    result = PSITest().compare(reference, current)
    shares = np.array([0.2, 0, 0, 0, 0.8, 0, 0, 0, 0, 0])
    floored = np.maximum(shares, PSI_FLOOR)
    expected = float(np.sum((floored - 0.1) * np.log(floored / 0.1)))
    assert result.statistic == pytest.approx(expected, abs=1e-12)


def test_psi_gives_the_same_value_from_a_profile_as_from_the_data(
    rng: np.random.Generator,
) -> None:
    reference = rng.normal(size=20_000)
    current = rng.normal(0.3, 1, size=10_000)
    profile = build_profile(pd.DataFrame({"x": reference})).features[0]
    assert PSITest().compare(profile, current).statistic == pytest.approx(
        PSITest().compare(reference, current).statistic, abs=1e-12
    )


def test_psi_flags_a_large_shift(rng: np.random.Generator) -> None:
    assert PSITest().compare(rng.normal(size=5000), rng.normal(0.6, 1, 5000)).drifted
