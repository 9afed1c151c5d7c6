"""The concept harness's vectorised baseline alarms exactly where the plain loop does."""

from __future__ import annotations

import math
import sys
from collections import deque
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "drift"))

from concept import baseline_detections


def _loop(stream: np.ndarray, z: float, reference: int, window: int) -> tuple[int, ...]:
    """The baseline as one writes it first: value by value."""
    found: list[int] = []
    learning: list[float] = []
    recent: deque[float] = deque(maxlen=window)
    mean = limit = math.nan
    for index, x in enumerate(stream.tolist()):
        if len(learning) < reference:
            learning.append(x)
            if len(learning) == reference:
                values = np.asarray(learning)
                mean = float(values.mean())
                limit = z * max(float(values.std()), 1e-12) / math.sqrt(window)
            continue
        recent.append(x)
        if len(recent) == window and abs(sum(recent) / window - mean) > limit:
            found.append(index)
            learning, recent = [], deque(maxlen=window)
    return tuple(found)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rate=st.floats(0.02, 0.5),
    jump=st.floats(0.0, 0.4),
    z=st.floats(1.0, 4.0),
)
def test_vectorised_baseline_equals_the_loop_on_error_streams(
    seed: int, rate: float, jump: float, z: float
) -> None:
    rng = np.random.default_rng(seed)
    stream = np.concatenate(
        [rng.random(1500) < rate, rng.random(1500) < min(rate + jump, 1.0)]
    ).astype(float)
    assert baseline_detections(stream, z, reference=200, window=20) == _loop(stream, z, 200, 20)


def test_vectorised_baseline_finds_a_mean_shift_after_it_happens() -> None:
    rng = np.random.default_rng(7)
    stream = np.concatenate([rng.normal(0, 1, 5000), rng.normal(1, 1, 2000)])
    found = baseline_detections(stream, 5.0)
    assert found and all(index >= 5000 for index in found)
    assert found[0] < 5100
