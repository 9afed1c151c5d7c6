"""Confidence-based performance estimation (CBPE): accuracy without labels.

If a classifier's probabilities are calibrated, its top-class probability is the
chance that the prediction is right, so the expected accuracy of a window is the mean
of those probabilities, known before any label arrives. The estimate holds only under
two assumptions: the probabilities are calibrated, and the relation between inputs
and labels has not changed (no concept drift; CBPE cannot see concept drift, only the
effect of covariate shift on a calibrated model).

:meth:`CBPE.fit` checks the first on labelled reference data: the expected calibration
error (ECE, top-class confidence in ``bins`` equal-width bins) must be at most
``max_calibration_error``. When it is not, and ``recalibrate`` is set, an isotonic map
from confidence to correctness is learned on the reference; its ECE is measured by
2-fold cross-fitting, so it is not judged on the data it was fitted to. Estimates
from a model that fails the check carry ``reliable=False`` and raise an
:class:`~ferryman.errors.UncalibratedModelWarning`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from ferryman.drift._parameters import Configured, check_integer, check_number
from ferryman.errors import InvalidInputError, NotFittedError, UncalibratedModelWarning


@dataclass(frozen=True)
class PerformanceEstimate:
    """An estimated accuracy with its confidence interval.

    Attributes:
        value: Estimated accuracy, in [0, 1].
        low: Lower end of the confidence interval.
        high: Upper end of the confidence interval.
        n: Number of predictions.
        reliable: Whether the model passed the calibration check.
    """

    value: float
    low: float
    high: float
    n: int
    reliable: bool


class CBPE(Configured):
    """Estimate a classifier's accuracy from its probabilities.

    Args:
        max_calibration_error: Largest acceptable expected calibration error, in [0, 1].
        bins: Equal-width confidence bins for the calibration error.
        recalibrate: Learn an isotonic recalibration when the raw probabilities fail.
        confidence: Confidence level of the estimate's interval, in (0, 1).
        seed: Seed of the cross-fitting split.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(0.5, 1.0, 5000)
        >>> labels = (rng.random(5000) < p).astype(int)  # calibrated: right with probability p
        >>> cbpe = CBPE().fit(np.column_stack([1 - p, p]), labels)
        >>> cbpe.reliable_, round(cbpe.estimate(np.column_stack([1 - p, p])).value, 2)
        (True, 0.75)
    """

    def __init__(
        self,
        *,
        max_calibration_error: float = 0.05,
        bins: int = 10,
        recalibrate: bool = True,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.max_calibration_error = check_number(
            "CBPE", "max_calibration_error", max_calibration_error, low=0, high=1
        )
        self.bins = check_integer("CBPE", "bins", bins, low=1)
        if not isinstance(recalibrate, bool):
            raise InvalidInputError(
                f"CBPE: recalibrate must be True or False, got {recalibrate!r}."
            )
        self.recalibrate = recalibrate
        self.confidence = check_number(
            "CBPE", "confidence", confidence, low=0, high=1, low_open=True, high_open=True
        )
        self.seed = check_integer("CBPE", "seed", seed, low=0)

    def fit(self, probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> Self:
        """Check calibration on labelled reference data (and recalibrate if allowed).

        Args:
            probabilities: ``(n, k)`` class probabilities, columns in the order of the
                class indices ``0..k-1``; or ``(n,)`` probabilities of class 1.
            labels: True class indices, ``n`` of them.

        Raises:
            InvalidInputError: Shapes disagree, or probabilities are outside [0, 1].
        """
        matrix = _matrix(probabilities)
        truth = np.asarray(labels).ravel()
        if len(truth) != len(matrix) or len(truth) == 0:
            raise InvalidInputError(
                f"CBPE.fit needs one label per row of probabilities; got {len(truth)} labels "
                f"for {len(matrix)} rows."
            )
        confidence = matrix.max(axis=1)
        correct = (matrix.argmax(axis=1) == truth).astype(np.float64)
        self.reference_accuracy_: float = float(correct.mean())
        self.calibration_error_: float = expected_calibration_error(confidence, correct, self.bins)
        self.calibrator_: Any = None
        self.recalibrated_error_: float | None = None
        if self.calibration_error_ > self.max_calibration_error and self.recalibrate:
            self.recalibrated_error_ = self._cross_fitted_error(confidence, correct)
            self.calibrator_ = _isotonic(confidence, correct)
        errors = [self.calibration_error_, self.recalibrated_error_]
        self.reliable_: bool = any(
            e is not None and e <= self.max_calibration_error for e in errors
        )
        return self

    def estimate(self, probabilities: npt.ArrayLike) -> PerformanceEstimate:
        """Estimate the accuracy of a batch of predictions from their probabilities.

        Raises:
            NotFittedError: :meth:`fit` was not called first.
            InvalidInputError: The probabilities are empty or malformed.

        Warns:
            UncalibratedModelWarning: The model failed the calibration check.
        """
        if not hasattr(self, "reliable_"):
            raise NotFittedError(
                "This CBPE is not fitted yet; call fit(probabilities, labels) first."
            )
        confidence = _matrix(probabilities).max(axis=1)
        if len(confidence) == 0:
            raise InvalidInputError("CBPE.estimate needs at least one prediction.")
        if self.calibrator_ is not None:
            confidence = np.clip(self.calibrator_.predict(confidence), 0.0, 1.0)
        if not self.reliable_:
            warnings.warn(
                f"The model's probabilities are not calibrated (expected calibration error "
                f"{self.calibration_error_:.3f} > {self.max_calibration_error}); the "
                "accuracy estimate may be wrong.",
                UncalibratedModelWarning,
                stacklevel=2,
            )
        from scipy.stats import norm

        n = len(confidence)
        value = float(confidence.mean())
        se = math.sqrt(float(np.sum(confidence * (1 - confidence)))) / n
        z = float(norm.ppf((1 + self.confidence) / 2))
        return PerformanceEstimate(
            value=value,
            low=max(0.0, value - z * se),
            high=min(1.0, value + z * se),
            n=n,
            reliable=self.reliable_,
        )

    def _cross_fitted_error(self, confidence: np.ndarray, correct: np.ndarray) -> float:
        rng = np.random.default_rng(self.seed)
        half = rng.permutation(len(confidence)) < len(confidence) // 2
        calibrated = np.empty(len(confidence))
        for train in (half, ~half):
            if train.sum() == 0 or (~train).sum() == 0:
                return self.calibration_error_
            model = _isotonic(confidence[train], correct[train])
            calibrated[~train] = model.predict(confidence[~train])
        return expected_calibration_error(calibrated, correct, self.bins)


def expected_calibration_error(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = 10
) -> float:
    """Return the expected calibration error of top-class confidences.

    ``sum over bins of (bin share) * |accuracy in bin - mean confidence in bin|``, with
    ``bins`` equal-width bins over [0, 1].

    Example:
        >>> expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 1, 1, 0], bins=10)
        0.1
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    gap = np.bincount(index, weights=hits - conf, minlength=bins)
    return float(np.round(np.sum(np.abs(gap)) / len(conf), 12))


def _isotonic(confidence: np.ndarray, correct: np.ndarray) -> Any:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(confidence, correct)


def _matrix(probabilities: npt.ArrayLike) -> np.ndarray:
    matrix = np.asarray(probabilities, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = np.column_stack((1 - matrix, matrix))
    if (
        matrix.ndim != 2
        or not np.isfinite(matrix).all()
        or (matrix < 0).any()
        or (matrix > 1).any()
    ):
        raise InvalidInputError(
            "Probabilities must be a finite (n, k) array (or (n,) for class 1) in [0, 1]."
        )
    return matrix
