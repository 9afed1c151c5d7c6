"""Concept drift over captured traffic: a window's predictions joined with their feedback.

Feedback (see :mod:`ferryman.capture.feedback`) gives the truth about captured predictions,
by request id and row, whenever it becomes known. :func:`concept_section` takes a window
of an endpoint's traffic (:func:`~ferryman.drift.traffic.read_window`), joins its primary
predictions with their latest feedback label and orders them by prediction time. That is
the *error stream*: 1 for a misclassification and 0 for a right answer (classifiers), or
the absolute error (regressors). On it:

- each streaming detector runs from the window's first labelled row: :class:`ADWIN`,
  :class:`PageHinkley` (its threshold solved for its ``target_arl``, as offline) and
  :class:`DDM` (0/1 streams only), reporting whether it detected a change and the time
  and row index (in the labelled stream) of its first detection;
- the realised performance of the window (accuracy, or mean absolute error) with its
  confidence interval (:func:`~ferryman.drift.performance_by_window`), against the
  reference performance when the version has one (its registered ``accuracy``, ``mae``
  or ``rmse`` metric: a reference profile holds distributions, not performance);
- with fewer than ``min_rows`` labelled rows the section is ``insufficient-data`` and,
  for a classifier with probabilities, accuracy is estimated without labels by
  :class:`CBPE`, its calibration checked on the endpoint's latest labelled predictions
  up to the window's end.

Nothing here raises for want of data: too few labels, no probabilities or labels that are
not numbers give a ``status`` and a ``message``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.drift._labels import read_calibration, read_labelled
from ferryman.drift._parameters import Configured, check_integer, check_number
from ferryman.drift.adwin import ADWIN
from ferryman.drift.base import StreamingDetector
from ferryman.drift.cbpe import CBPE
from ferryman.drift.ddm import DDM
from ferryman.drift.page_hinkley import PageHinkley
from ferryman.drift.performance import Metric, performance_by_window
from ferryman.drift.traffic import CapturedWindow
from ferryman.errors import InvalidInputError, UncalibratedModelWarning

if TYPE_CHECKING:
    from ferryman.capture import LogStore

#: Fewest labelled rows in a window for the detectors and the realised performance.
MIN_LABELLED_ROWS = 100
#: Most labelled predictions (the latest up to the window's end) CBPE checks calibration on.
CALIBRATION_ROWS = 10_000


class ConceptDrift(Configured):
    """How concept drift is checked on a window's labelled predictions.

    Args:
        detectors: Streaming detectors run on the error stream (each cloned per window);
            ``None``: ``ADWIN()``, ``PageHinkley()`` and ``DDM()``.
        min_rows: Fewest labelled rows for the detectors and the realised performance.
        confidence: Confidence level of the realised performance's interval, in (0, 1).
        calibration_rows: Most labelled predictions CBPE checks calibration on.
        cbpe: The CBPE configuration; ``None``: ``CBPE()``.

    Raises:
        InvalidInputError: A setting is out of range, or a detector is not one.
    """

    def __init__(
        self,
        *,
        detectors: Sequence[StreamingDetector] | None = None,
        min_rows: int = MIN_LABELLED_ROWS,
        confidence: float = 0.95,
        calibration_rows: int = CALIBRATION_ROWS,
        cbpe: CBPE | None = None,
    ) -> None:
        if detectors is not None:
            for detector in detectors:
                if not isinstance(detector, StreamingDetector):
                    raise InvalidInputError(
                        "ConceptDrift: detectors must be streaming detectors (ADWIN, "
                        f"PageHinkley, DDM), got {detector!r}."
                    )
        self.detectors = None if detectors is None else tuple(detectors)
        self.min_rows = check_integer("ConceptDrift", "min_rows", min_rows, low=1)
        self.confidence = check_number(
            "ConceptDrift", "confidence", confidence, low=0, high=1, low_open=True, high_open=True
        )
        self.calibration_rows = check_integer(
            "ConceptDrift", "calibration_rows", calibration_rows, low=1
        )
        if cbpe is not None and not isinstance(cbpe, CBPE):
            raise InvalidInputError(f"ConceptDrift: cbpe must be a CBPE, got {cbpe!r}.")
        self.cbpe = cbpe

    def streaming(self) -> tuple[StreamingDetector, ...]:
        """Fresh detectors for one window."""
        templates = self.detectors or (ADWIN(), PageHinkley(), DDM())
        return tuple(detector.clone() for detector in templates)


@dataclass(frozen=True)
class DetectorOutcome:
    """What one streaming detector saw in a window's error stream.

    Attributes:
        name: The detector (``adwin``, ``page_hinkley``, ``ddm``).
        status: ``ok``, ``insufficient-data`` (fewer labelled rows than it needs) or
            ``unavailable`` (it does not apply, e.g. DDM on a regressor's errors).
        detections: Each detection: its row index in the labelled stream (0 is the
            window's first labelled row) and that row's prediction time. A detector resets
            after a detection, so a later one is a further change (or a false alarm).
        message: Why it did not run, or ``""``.
    """

    name: str
    status: str
    detections: tuple[tuple[int, datetime], ...] = ()
    message: str = ""

    @property
    def detected(self) -> bool:
        """Whether it detected a change."""
        return bool(self.detections)

    @property
    def first_index(self) -> int | None:
        """Row index, in the labelled stream, of the first detection."""
        return self.detections[0][0] if self.detections else None

    @property
    def first_time(self) -> datetime | None:
        """Prediction time of the row of the first detection."""
        return self.detections[0][1] if self.detections else None

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values."""
        first = self.first_time
        return {
            "name": self.name,
            "status": self.status,
            "detected": self.detected,
            "first_detection_index": self.first_index,
            "first_detection_time": None if first is None else first.isoformat(),
            "detections": [
                {"index": index, "time": moment.isoformat()} for index, moment in self.detections
            ],
            "message": self.message,
        }


@dataclass(frozen=True)
class RealisedPerformance:
    """A window's performance on its labelled rows, against the reference's.

    Attributes:
        metric: ``accuracy``, ``mae`` or ``rmse``.
        value: The metric over the labelled rows.
        low: Lower end of its confidence interval.
        high: Upper end.
        n: Labelled rows.
        confidence: The interval's confidence level.
        reference: The reference performance, ``None`` when the version has none.
        difference: ``value - reference``.
        degraded: Whether the interval of the difference lies entirely on the worse side.
    """

    metric: str
    value: float
    low: float
    high: float
    n: int
    confidence: float
    reference: float | None = None
    difference: float | None = None
    degraded: bool = False

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values."""
        return {key: _finite(value) for key, value in vars(self).items()}


@dataclass(frozen=True)
class EstimatedPerformance:
    """Accuracy estimated without labels by CBPE, with its calibration check.

    Attributes:
        status: ``ok``, ``insufficient-data`` (too few labelled predictions to check
            calibration) or ``unavailable`` (no probabilities in the window).
        message: Why there is no estimate, or ``""``.
        value: Estimated accuracy.
        low: Lower end of its confidence interval.
        high: Upper end.
        n: Predictions estimated over.
        reliable: Whether the model passed the calibration check.
        calibration_error: Expected calibration error of the raw probabilities.
        recalibrated_error: Cross-fitted error after isotonic recalibration, when tried.
        max_calibration_error: The largest error that passes.
        calibration_rows: Labelled predictions the calibration was checked on.
        reference: The reference accuracy, ``None`` when the version has none.
    """

    status: str
    message: str = ""
    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0
    reliable: bool = False
    calibration_error: float | None = None
    recalibrated_error: float | None = None
    max_calibration_error: float | None = None
    calibration_rows: int = 0
    reference: float | None = None

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values (``method`` is ``cbpe``)."""
        return {"method": "cbpe", **{key: _finite(value) for key, value in vars(self).items()}}


@dataclass(frozen=True)
class ConceptSection:
    """Concept drift in a window: the detectors, realised and estimated performance.

    Attributes:
        status: ``ok``, ``insufficient-data`` (fewer than ``min_rows`` labelled rows) or
            ``unavailable`` (several outputs per row, labels that are not numbers).
        message: Why the detectors did not run, or ``""``.
        task: ``classification`` or ``regression``; ``None`` when unknown.
        metric: The realised performance's metric.
        rows: Records in the window.
        labelled_rows: Those with a feedback label.
        min_rows: Fewest labelled rows for a verdict.
        detectors: One outcome per detector.
        performance: The realised performance, with enough labelled rows.
        estimate: The CBPE estimate, for a classifier with too few labels.
    """

    status: str
    message: str = ""
    task: str | None = None
    metric: str | None = None
    rows: int = 0
    labelled_rows: int = 0
    min_rows: int = MIN_LABELLED_ROWS
    detectors: tuple[DetectorOutcome, ...] = ()
    performance: RealisedPerformance | None = None
    estimate: EstimatedPerformance | None = None

    @property
    def drifted(self) -> bool:
        """Whether a detector detected a change or the performance is degraded."""
        degraded = self.performance is not None and self.performance.degraded
        return degraded or any(detector.detected for detector in self.detectors)

    @property
    def labelled_share(self) -> float:
        """Share of the window's records with a label (0 for an empty window)."""
        return self.labelled_rows / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values."""
        return {
            "status": self.status,
            "message": self.message,
            "drifted": self.drifted,
            "task": self.task,
            "metric": self.metric,
            "rows": self.rows,
            "labelled_rows": self.labelled_rows,
            "labelled_share": self.labelled_share,
            "min_rows": self.min_rows,
            "detectors": [detector.to_dict() for detector in self.detectors],
            "performance": None if self.performance is None else self.performance.to_dict(),
            "estimate": None if self.estimate is None else self.estimate.to_dict(),
        }


def concept_section(
    store: LogStore,
    current: CapturedWindow,
    *,
    config: ConceptDrift | None = None,
    reference_performance: Mapping[str, float] | None = None,
    max_rows: int | None = None,
) -> ConceptSection:
    """Check a window of captured traffic for concept drift with its feedback.

    Args:
        store: The prediction log.
        current: The window (:func:`~ferryman.drift.traffic.read_window`); its
            predictions are read again with their labels.
        config: The detectors and thresholds; ``ConceptDrift()`` by default.
        reference_performance: The served version's metrics, e.g. ``{"accuracy":
            0.91}``: ``accuracy`` is a classifier's reference, ``mae`` (else ``rmse``) a
            regressor's.
        max_rows: Most labelled rows read (the latest); default the window's records.

    Returns:
        The section; too little data gives a status, never an error.

    Raises:
        InvalidInputError: ``reference_performance`` is not a mapping.
        QueryError: The log could not be read in the store's query timeout.
    """
    if reference_performance is not None and not isinstance(reference_performance, Mapping):
        raise InvalidInputError(
            "reference_performance must be a mapping of metric names to numbers, e.g. "
            f'{{"accuracy": 0.91}}; got {type(reference_performance).__name__}.'
        )
    settings = config or ConceptDrift()
    info = current.info
    table = read_labelled(store, info, limit=max(info.matched, 1) if max_rows is None else max_rows)
    prediction = table.column("prediction").combine_chunks()
    probabilities = any(name.startswith("probability[") for name in current.outputs) or (
        table.column("probabilities").null_count < table.num_rows
    )
    base: dict[str, Any] = {
        "rows": info.matched,
        "labelled_rows": table.num_rows,
        "min_rows": settings.min_rows,
    }
    nested = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if any(check(prediction.type) for check in nested):
        return ConceptSection(
            status="unavailable",
            message="The model returns several outputs per row; concept drift needs one.",
            **base,
        )
    if not current.outputs and table.num_rows == 0:
        return ConceptSection(
            status="insufficient-data",
            message=f"The window holds no predictions; at least {settings.min_rows} labelled "
            "ones are needed for the detectors and the realised performance.",
            detectors=tuple(
                DetectorOutcome(d.name, "insufficient-data", message="No predictions.")
                for d in settings.streaming()
            ),
            **base,
        )
    regression = not probabilities and (
        pa.types.is_floating(prediction.type)
        or any(current.frame[name].dtype.kind == "f" for name in current.outputs)
    )
    task, metric = ("regression", "mae") if regression else ("classification", "accuracy")
    reference = _reference(reference_performance, task)
    if reference is not None:
        metric = reference[0]
    base.update(task=task, metric=metric)
    try:
        errors, frame = _errors(table, regression)
    except InvalidInputError as exc:
        return ConceptSection(status="unavailable", message=str(exc), **base)
    detectors = settings.streaming()
    if table.num_rows < settings.min_rows:
        message = (
            f"{table.num_rows} of the window's {info.matched} records have a feedback label; "
            f"at least {settings.min_rows} are needed for the detectors and the realised "
            "performance."
        )
        estimate = None
        if not regression and probabilities:
            estimate = _estimate(store, current, settings, reference)
        return ConceptSection(
            status="insufficient-data",
            message=message,
            detectors=tuple(
                DetectorOutcome(d.name, "insufficient-data", message=message) for d in detectors
            ),
            estimate=estimate,
            **base,
        )
    times = table.column("time").to_pylist()
    outcomes = tuple(_run(detector, errors, times, regression) for detector in detectors)
    performance = _realised(frame, metric, reference, settings)
    return ConceptSection(status="ok", detectors=outcomes, performance=performance, **base)


# -- internals -----------------------------------------------------------------------------


def _errors(table: pa.Table, regression: bool) -> tuple[list[float], pd.DataFrame]:
    """The error stream and the ``prediction``/``label`` frame of the labelled rows."""
    from ferryman.capture._schemas import as_text

    prediction = table.column("prediction").combine_chunks()
    label = table.column("label").combine_chunks()
    if regression:
        try:
            truth = pc.cast(label, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInputError(
                "The feedback labels of this regressor's predictions are not all numbers, so "
                "its errors cannot be measured; send numeric labels."
            ) from None
        predicted = pc.cast(prediction, pa.float64()).to_numpy(zero_copy_only=False)
        if not (np.isfinite(truth).all() and np.isfinite(predicted).all()):
            raise InvalidInputError(
                "Some feedback labels or predictions of this regressor are not finite numbers "
                "(NaN or infinite), so its errors cannot be measured."
            )
        frame = pd.DataFrame({"prediction": predicted, "label": truth})
        return np.abs(predicted - truth).tolist(), frame
    predicted_text = as_text(prediction).to_pylist()
    truth_text = label.to_pylist()
    frame = pd.DataFrame({"prediction": predicted_text, "label": truth_text}, dtype=object)
    errors = [float(p != t) for p, t in zip(predicted_text, truth_text, strict=True)]
    return errors, frame


def _needed(detector: StreamingDetector) -> int:
    """Labelled rows a detector needs before it can decide anything."""
    if isinstance(detector, PageHinkley):
        return detector.warmup + 1
    if isinstance(detector, DDM):
        return detector.min_instances
    if isinstance(detector, ADWIN):
        return max(detector.grace_period, detector.clock, 2 * detector.min_window_length + 1)
    return 1


def _run(
    detector: StreamingDetector, errors: list[float], times: list[datetime], regression: bool
) -> DetectorOutcome:
    if regression and isinstance(detector, DDM):
        return DetectorOutcome(
            detector.name,
            "unavailable",
            message="DDM watches a 0/1 error stream; a regressor's errors are distances.",
        )
    needed = _needed(detector)
    if len(errors) < needed:
        return DetectorOutcome(
            detector.name,
            "insufficient-data",
            message=f"{len(errors)} labelled rows; {detector.name} needs at least {needed} "
            "(its warm-up) to decide.",
        )
    update = detector.update
    for value in errors:
        update(value)
    found = tuple((index, times[index]) for index in detector.detections)
    return DetectorOutcome(detector.name, "ok", detections=found)


def _reference(metrics: Mapping[str, float] | None, task: str) -> tuple[str, float] | None:
    """The reference metric for ``task`` among a version's metrics, if it has one."""
    names = ("accuracy",) if task == "classification" else ("mae", "rmse")
    for name in names:
        value = (metrics or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return name, float(value)
    return None


def _realised(
    frame: pd.DataFrame,
    metric: str,
    reference: tuple[str, float] | None,
    settings: ConceptDrift,
) -> RealisedPerformance:
    result = performance_by_window(
        frame,
        reference=0.0 if reference is None else reference[1],
        metric=cast(Metric, metric),
        timestamp=None,
        window=len(frame),
        confidence=settings.confidence,
        min_rows=settings.min_rows,
    )
    window = result.windows[0]
    assert window.value is not None and window.low is not None and window.high is not None
    return RealisedPerformance(
        metric=metric,
        value=window.value,
        low=window.low,
        high=window.high,
        n=window.n,
        confidence=settings.confidence,
        reference=None if reference is None else reference[1],
        difference=None if reference is None else window.difference,
        degraded=reference is not None and window.degraded,
    )


def _estimate(
    store: LogStore,
    current: CapturedWindow,
    settings: ConceptDrift,
    reference: tuple[str, float] | None,
) -> EstimatedPerformance:
    """CBPE's accuracy estimate for the window, calibrated on earlier labelled traffic."""
    columns = [name for name in current.outputs if name.startswith("probability[")]
    classes = [name[len("probability[") : -1] for name in columns]
    window = current.frame[columns].dropna().to_numpy(dtype=np.float64) if columns else None
    accuracy = None if reference is None else reference[1]
    if window is None or len(window) == 0:
        return EstimatedPerformance(
            status="unavailable",
            message="The window holds no probabilities to estimate accuracy from.",
            reference=accuracy,
        )
    matrix, labels = read_calibration(store, current.info, classes, settings.calibration_rows)
    cbpe = CBPE() if settings.cbpe is None else settings.cbpe.clone()
    if len(labels) < settings.min_rows:
        return EstimatedPerformance(
            status="insufficient-data",
            message=f"{len(labels)} labelled predictions with probabilities up to the window's "
            f"end; at least {settings.min_rows} are needed to check the model's calibration "
            "before estimating its accuracy without labels.",
            max_calibration_error=cbpe.max_calibration_error,
            calibration_rows=len(labels),
            reference=accuracy,
        )
    cbpe.fit(matrix, labels)
    with warnings.catch_warnings():  # reported as reliable=False instead
        warnings.simplefilter("ignore", UncalibratedModelWarning)
        estimate = cbpe.estimate(window)
    return EstimatedPerformance(
        status="ok",
        value=estimate.value,
        low=estimate.low,
        high=estimate.high,
        n=estimate.n,
        reliable=estimate.reliable,
        calibration_error=cbpe.calibration_error_,
        recalibrated_error=cbpe.recalibrated_error_,
        max_calibration_error=cbpe.max_calibration_error,
        calibration_rows=len(labels),
        reference=accuracy,
    )


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = [
    "CALIBRATION_ROWS",
    "MIN_LABELLED_ROWS",
    "ConceptDrift",
    "ConceptSection",
    "DetectorOutcome",
    "EstimatedPerformance",
    "RealisedPerformance",
    "concept_section",
]
