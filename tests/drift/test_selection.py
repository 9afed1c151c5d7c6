"""The automatic rule: a test per column by type, cardinality and constancy."""

from __future__ import annotations

import numpy as np
import pytest

from ferryman.drift import choose_test, summarize

rng = np.random.default_rng(0)
CASES = [
    ("continuous numbers", rng.normal(size=500), rng.normal(size=500), "wasserstein"),
    ("ten distinct numbers", rng.integers(0, 10, 500), rng.integers(0, 10, 500), "jensen_shannon"),
    ("constant numbers", np.full(500, 2.0), rng.normal(size=500), "jensen_shannon"),
    ("two labels", rng.choice(["a", "b"], 500), rng.choice(["a", "b"], 500), "z"),
    ("booleans", rng.random(500) < 0.3, rng.random(500) < 0.3, "z"),
    (
        "a third label appears",
        rng.choice(["a", "b"], 500),
        rng.choice(list("abc"), 500),
        "jensen_shannon",
    ),
    (
        "many labels",
        rng.choice(list("abcdefgh"), 500),
        rng.choice(list("abcdefgh"), 500),
        "jensen_shannon",
    ),
]


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_automatic_rule_picks_the_documented_test(
    reference: np.ndarray, current: np.ndarray, expected: str
) -> None:
    assert choose_test(summarize(reference), summarize(current)) == expected
