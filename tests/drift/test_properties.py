"""Invariants over generated samples: identical samples show no drift; p-values in [0, 1]."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.drift import TESTS, DataDrift, benjamini_hochberg, get_test

NUMERIC_TESTS = sorted(name for name, cls in TESTS.items() if "numeric" in cls.kinds)
CATEGORICAL_TESTS = sorted(
    name for name, cls in TESTS.items() if "categorical" in cls.kinds and name != "z"
)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
numbers = st.lists(finite, min_size=2, max_size=300)


def spread(values: list[float]) -> float:
    """The standard deviation, 0 also for distinct values too close to have one (5e-324, 0)."""
    return 0.0 if len(set(values)) < 2 else float(np.std(np.sort(values)))  # as summarised


labels = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=2, max_size=300)


@settings(max_examples=40, deadline=None)
@given(values=numbers, name=st.sampled_from(NUMERIC_TESTS))
def test_identical_numeric_samples_show_no_drift(values: list[float], name: str) -> None:
    if name == "wasserstein" and not spread(values):
        return  # a constant reference has no spread to normalise by (it raises)
    result = get_test(name).compare(values, list(values))
    assert not result.drifted
    assert result.effect_size == 0


@settings(max_examples=40, deadline=None)
@given(values=labels, name=st.sampled_from(CATEGORICAL_TESTS))
def test_identical_categorical_samples_show_no_drift(values: list[str], name: str) -> None:
    result = get_test(name).compare(values, list(values))
    assert not result.drifted


@settings(max_examples=60, deadline=None)
@given(reference=numbers, current=numbers, name=st.sampled_from(NUMERIC_TESTS))
def test_numeric_p_values_lie_in_the_unit_interval(
    reference: list[float], current: list[float], name: str
) -> None:
    if name == "wasserstein" and not spread(reference):
        return  # as above
    p = get_test(name).compare(reference, current).p_value
    assert p is not None and 0 <= p <= 1


@settings(max_examples=60, deadline=None)
@given(reference=labels, current=labels, name=st.sampled_from(CATEGORICAL_TESTS))
def test_categorical_p_values_lie_in_the_unit_interval(
    reference: list[str], current: list[str], name: str
) -> None:
    p = get_test(name).compare(reference, current).p_value
    assert p is not None and 0 <= p <= 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), max_size=50))
def test_adjusted_p_values_lie_in_the_unit_interval_and_never_drop(p: list[float]) -> None:
    q = benjamini_hochberg(p)
    assert all(0 <= b <= 1 and b >= a for a, b in zip(p, q, strict=True))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(100, 2000))
def test_a_dataset_compared_with_itself_shows_no_drift(seed: int, rows: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "k": rng.integers(0, 4, rows),
            "c": rng.choice(["a", "b", "c"], rows),
        }
    )
    result = DataDrift(n_jobs=1).fit(frame).compare(frame.copy())
    assert not result.dataset_drift and result.n_drifted == 0
