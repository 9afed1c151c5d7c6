"""Realised performance per window, with confidence intervals, against the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferryman.drift import performance_by_window
from ferryman.errors import InvalidInputError


def _predictions(rng: np.random.Generator, accuracy_by_day: list[float]) -> pd.DataFrame:
    frames = []
    for day, accuracy in enumerate(accuracy_by_day):
        label = rng.integers(0, 2, 500)
        right = rng.random(500) < accuracy
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.Timestamp("2026-11-01")
                    + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, 500), unit="s"),
                    "prediction": np.where(right, label, 1 - label),
                    "label": label,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_each_day_gets_its_accuracy_and_only_the_worse_day_is_degraded() -> None:
    data = _predictions(np.random.default_rng(0), [0.9, 0.9, 0.75, 0.9])
    result = performance_by_window(data, reference=0.9, window="1D")
    assert [w.degraded for w in result.windows] == [False, False, True, False]
    assert result.degraded


def test_accuracy_intervals_are_wilson_intervals() -> None:
    frame = pd.DataFrame({"prediction": [1] * 80 + [0] * 20, "label": [1] * 100})
    window = performance_by_window(frame, reference=0.9, timestamp=None, window=100).windows[0]
    z = 1.959963984540054
    centre = (0.8 + z * z / 200) / (1 + z * z / 100)
    half = z * np.sqrt(0.8 * 0.2 / 100 + z * z / 40_000) / (1 + z * z / 100)
    assert (window.low, window.high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_late_and_partial_labels_are_left_out_and_counted() -> None:
    data = _predictions(np.random.default_rng(1), [0.9])
    data.loc[data.index[:200], "label"] = np.nan
    window = performance_by_window(data, reference=0.9).windows[0]
    assert (window.n, window.labelled_share) == (300, 0.6)


def test_a_window_with_few_labels_is_insufficient_data() -> None:
    data = _predictions(np.random.default_rng(2), [0.9])
    data.loc[data.index[10:], "label"] = np.nan
    window = performance_by_window(data, reference=0.9).windows[0]
    assert (window.status, window.value, window.degraded) == ("insufficient-data", None, False)


def test_a_reference_dataframe_adds_its_own_sampling_error() -> None:
    rng = np.random.default_rng(3)
    data = _predictions(rng, [0.86])
    reference = _predictions(rng, [0.9])
    with_error = performance_by_window(data, reference=reference)
    assert with_error.reference_low < with_error.reference < with_error.reference_high


def test_regression_errors_rise_in_the_degraded_window() -> None:
    rng = np.random.default_rng(4)
    label = rng.normal(size=2000)
    noise = np.concatenate([rng.normal(0, 0.5, 1000), rng.normal(0, 1.0, 1000)])
    frame = pd.DataFrame({"label": label, "prediction": label + noise})
    for metric in ("mae", "rmse"):
        result = performance_by_window(
            frame,
            reference=0.45 if metric == "mae" else 0.55,
            metric=metric,
            timestamp=None,
            window=1000,
        )
        assert [w.degraded for w in result.windows] == [False, True]


def test_a_missing_column_is_named() -> None:
    with pytest.raises(InvalidInputError, match="The data has no column 'label'"):
        performance_by_window(pd.DataFrame({"prediction": [1]}), reference=0.9, timestamp=None)


def test_time_windows_need_a_timestamp() -> None:
    frame = pd.DataFrame({"prediction": [1], "label": [1]})
    with pytest.raises(InvalidInputError, match="Time windows need a timestamp column"):
        performance_by_window(frame, reference=0.9, timestamp=None, window="1D")
