"""CBPE: accuracy estimated from probabilities, with a calibration check."""

from __future__ import annotations

import numpy as np
import pytest

from ferryman.drift import CBPE, expected_calibration_error
from ferryman.errors import NotFittedError, UncalibratedModelWarning


def _calibrated(rng: np.random.Generator, rows: int, low: float) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(low, 1.0, rows)
    right = rng.random(rows) < p
    labels = np.where(right, 1, 0)
    return np.column_stack([1 - p, p]), labels


def test_expected_calibration_error_equals_the_hand_computed_value() -> None:
    # Bin 0.9: accuracy 1, confidence 0.9; bin 0.6: accuracy 0.5, confidence 0.6.
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 1, 1, 0]) == pytest.approx(0.1)


def test_a_calibrated_model_passes_and_its_estimate_covers_the_true_accuracy() -> None:
    rng = np.random.default_rng(0)
    cbpe = CBPE().fit(*_calibrated(rng, 20_000, 0.5))
    probabilities, labels = _calibrated(rng, 5000, 0.6)  # covariate shift: more confident
    estimate = cbpe.estimate(probabilities)
    truth = float(np.mean(probabilities.argmax(1) == labels))
    assert cbpe.reliable_ and estimate.reliable
    assert estimate.low <= truth <= estimate.high


def test_an_overconfident_model_is_recalibrated_on_the_reference() -> None:
    rng = np.random.default_rng(1)
    probabilities, labels = _calibrated(rng, 20_000, 0.5)
    overconfident = np.column_stack([1 - probabilities[:, 1] ** 0.3, probabilities[:, 1] ** 0.3])
    cbpe = CBPE().fit(overconfident, labels)
    assert cbpe.calibration_error_ > 0.05
    assert cbpe.recalibrated_error_ is not None and cbpe.recalibrated_error_ <= 0.05
    estimate = cbpe.estimate(overconfident)
    assert estimate.value == pytest.approx(np.mean(probabilities.argmax(1) == labels), abs=0.02)


def test_an_uncalibrated_model_warns_that_the_estimate_may_be_wrong() -> None:
    rng = np.random.default_rng(2)
    probabilities, labels = _calibrated(rng, 5000, 0.5)
    cbpe = CBPE(recalibrate=False).fit(probabilities[:, ::-1] * 0 + [[0.01, 0.99]], labels)
    with pytest.warns(UncalibratedModelWarning, match="not calibrated"):
        estimate = cbpe.estimate(probabilities)
    assert not estimate.reliable


def test_estimate_before_fit_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(probabilities, labels\) first"):
        CBPE().estimate([[0.5, 0.5]])
