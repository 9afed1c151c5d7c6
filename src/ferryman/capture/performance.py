"""Realised performance: captured predictions joined with their feedback, per model version.

For a window of prediction times, every successful record (status below 400, with a
prediction) that has a feedback label is paired with it, and each model version that
served or shadowed the endpoint gets scikit-learn's metrics:

- classification: accuracy, precision, recall, F1 (binary: of the positive class, the
  model's second class, as in scikit-learn; multiclass: macro averages), ROC AUC (binary;
  one-vs-rest macro for multiclass) and log loss, the last two only when every record has
  probabilities;
- regression: MAE, RMSE and R².

A metric that is undefined for the window (ROC AUC with one class present, R² of one
record) is ``None``, never a made-up number. The task is the version's: classification
when it returns probabilities or non-float predictions, regression for float predictions
without probabilities; pass ``task`` to decide.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.capture._schemas import as_text
from ferryman.capture.query import LogReader, filters
from ferryman.errors import InvalidInputError

Task = Literal["auto", "classification", "regression"]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")


@dataclass(frozen=True)
class VersionPerformance:
    """One model version's realised performance over a window.

    Attributes:
        model_version: ``"name/N"``.
        task: ``"classification"`` or ``"regression"``.
        n: Records with feedback that the metrics cover.
        metrics: Metric name -> value, ``None`` where undefined for this window.
    """

    model_version: str
    task: Literal["classification", "regression"]
    n: int
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model_version": self.model_version,
            "task": self.task,
            "n": self.n,
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class PerformanceReport:
    """Realised performance of an endpoint's versions over ``[since, until)``.

    Attributes:
        endpoint: The endpoint.
        since: Start of the window (UTC), inclusive.
        until: End of the window (UTC), exclusive.
        versions: One entry per version with feedback in the window, sorted by version.
    """

    endpoint: str
    since: dt.datetime
    until: dt.datetime
    versions: list[VersionPerformance]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "endpoint": self.endpoint,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "versions": [version.to_dict() for version in self.versions],
        }


def performance(
    reader: LogReader,
    endpoint: str,
    *,
    since: dt.datetime,
    until: dt.datetime,
    task: Task = "auto",
) -> PerformanceReport:
    """Compute realised performance per model version of ``endpoint``.

    Raises:
        InvalidInputError: The window is invalid, ``task`` is unknown, a version returns
            several outputs per row, or a regression's labels are not numbers.
    """
    if task not in ("auto", "classification", "regression"):
        raise InvalidInputError(
            f"Unknown task {task!r}. Available: auto, classification, regression."
        )
    where, parameters = filters(since=since, until=until, prefix="p.")
    table = reader.arrow(
        "SELECT p.model_version, p.prediction, p.probabilities, f.label "
        "FROM predictions p JOIN feedback f "
        f'ON f.request_id = p.request_id AND f."row" = p."row"{where} '
        "AND p.status < 400 AND p.prediction IS NOT NULL AND f.label IS NOT NULL "
        "AND p.model_version IS NOT NULL "
        'ORDER BY p.model_version, p.time, p.request_id, p."row"',
        parameters,
        endpoints=[endpoint],
    )
    versions = []
    names = table.column("model_version")
    for version in pc.unique(names).to_pylist():
        rows = table.filter(pc.equal(names, version))
        versions.append(_version(version, rows, task))
    return PerformanceReport(
        endpoint=endpoint,
        since=parameters[0],
        until=parameters[1],
        versions=sorted(versions, key=lambda v: _version_key(v.model_version)),
    )


def _version(version: str, rows: pa.Table, task: Task) -> VersionPerformance:
    predictions = rows.column("prediction").combine_chunks()
    probabilities = rows.column("probabilities").combine_chunks()
    if pa.types.is_list(predictions.type) or pa.types.is_fixed_size_list(predictions.type):
        raise InvalidInputError(
            f"{version} returns several outputs per row; realised performance needs one."
        )
    has_probabilities = probabilities.null_count < len(probabilities)
    if task == "auto":
        regression = pa.types.is_floating(predictions.type) and not has_probabilities
        task = "regression" if regression else "classification"
    labels = rows.column("label").combine_chunks()
    if task == "regression":
        return _regression(version, predictions, labels)
    return _classification(version, predictions, probabilities, labels)


def _classification(
    version: str, predictions: pa.Array, probabilities: pa.Array, labels: pa.Array
) -> VersionPerformance:
    from sklearn import metrics

    y_true = labels.to_pylist()
    y_pred = as_text(predictions).to_pylist()
    classes, matrix = _probability_matrix(probabilities)
    names = classes or sorted(set(y_true) | set(y_pred))
    binary = len(names) == 2
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": names[1]} if binary else {"average": "macro"}
    )
    values: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "precision": _defined(
            lambda: metrics.precision_score(y_true, y_pred, zero_division=0, **averaging)
        ),
        "recall": _defined(
            lambda: metrics.recall_score(y_true, y_pred, zero_division=0, **averaging)
        ),
        "f1": _defined(lambda: metrics.f1_score(y_true, y_pred, zero_division=0, **averaging)),
        "roc_auc": None,
        "log_loss": None,
    }
    if matrix is not None and classes is not None:
        if binary:
            positive = [label == classes[1] for label in y_true]
            values["roc_auc"] = _defined(lambda: metrics.roc_auc_score(positive, matrix[:, 1]))
        else:
            values["roc_auc"] = _defined(
                lambda: metrics.roc_auc_score(y_true, matrix, multi_class="ovr", labels=classes)
            )
        values["log_loss"] = _defined(lambda: metrics.log_loss(y_true, matrix, labels=classes))
    return VersionPerformance(version, "classification", len(y_true), values)


def _regression(version: str, predictions: pa.Array, labels: pa.Array) -> VersionPerformance:
    from sklearn import metrics

    try:
        y_true = pc.cast(labels, pa.float64()).to_numpy(zero_copy_only=False)
        y_pred = pc.cast(predictions, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(
            f"{version}: regression metrics need numeric predictions and labels; some are "
            f"not numbers ({type(exc).__name__}). Pass task='classification' for a classifier."
        ) from None
    values: dict[str, float | None] = {
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "rmse": math.sqrt(float(metrics.mean_squared_error(y_true, y_pred))),
        "r2": _defined(lambda: metrics.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
    }
    return VersionPerformance(version, "regression", len(y_true), values)


def _probability_matrix(probabilities: pa.Array) -> tuple[list[str] | None, np.ndarray | None]:
    """Classes and an ``(n, k)`` matrix, or ``(classes, None)`` when some rows lack them."""
    if probabilities.null_count == len(probabilities):
        return None, None
    first = next(value for value in probabilities.to_pylist() if value is not None)
    classes = [key for key, _ in first]
    if probabilities.null_count:
        return classes, None
    keys = probabilities.keys.to_pylist()
    width = len(classes)
    if len(keys) != width * len(probabilities) or keys != classes * len(probabilities):
        rows = [dict(value) for value in probabilities.to_pylist()]
        matrix = np.array([[row.get(name, 0.0) for name in classes] for row in rows])
        return classes, matrix
    items = probabilities.items.to_numpy(zero_copy_only=False)
    return classes, items.reshape(len(probabilities), width).astype(np.float64)


def _defined(compute: Any) -> float | None:
    # scikit-learn warns about undefined metrics; this report says None instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            value = float(compute())
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def _version_key(ref: str) -> tuple[str, int]:
    name, _, number = ref.rpartition("/")
    return (name, int(number)) if number.isdigit() else (ref, 0)
