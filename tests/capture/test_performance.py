"""Realised performance equals scikit-learn's metrics computed on the same pairs."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn import metrics

from ferryman.capture import CaptureWriter, LogStore
from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from tests.capture.conftest import T0, Clock, frame, regressed

MakeWriter = Callable[..., CaptureWriter]
SINCE, UNTIL = T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1)


def test_binary_classification_metrics_equal_scikit_learns(
    make_writer: MakeWriter, store: LogStore
) -> None:
    rng = np.random.default_rng(7)
    positive = rng.uniform(size=200)
    y_true = (rng.uniform(size=200) < positive).astype(int)
    y_pred = (positive > 0.5).astype(int)
    writer = make_writer()
    for index in range(200):
        writer.submit(
            f"r{index}",
            "churn",
            "churn/1",
            "primary",
            frame(x=[positive[index]]),
            Prediction(
                np.array([y_pred[index]]),
                np.array([[1 - positive[index], positive[index]]]),
                [0, 1],
            ),
            1.0,
        )
    writer.flush()
    store.submit_feedback([{"request_id": f"r{i}", "label": int(y_true[i])} for i in range(200)])

    report = store.performance("churn", since=SINCE, until=UNTIL)

    (version,) = report.versions
    proba = np.column_stack([1 - positive, positive])
    assert (version.model_version, version.task, version.n) == ("churn/1", "classification", 200)
    assert version.metrics == pytest.approx(
        {
            "accuracy": metrics.accuracy_score(y_true, y_pred),
            "precision": metrics.precision_score(y_true, y_pred),
            "recall": metrics.recall_score(y_true, y_pred),
            "f1": metrics.f1_score(y_true, y_pred),
            "roc_auc": metrics.roc_auc_score(y_true, positive),
            "log_loss": metrics.log_loss(y_true, proba),
        }
    )


def test_multiclass_metrics_are_macro_averages(make_writer: MakeWriter, store: LogStore) -> None:
    rng = np.random.default_rng(3)
    classes = ["cat", "dog", "eel"]
    proba = rng.dirichlet([1, 1, 1], size=150)
    y_pred = [classes[i] for i in proba.argmax(axis=1)]
    y_true = [classes[i] for i in rng.integers(0, 3, size=150)]
    writer = make_writer()
    for index in range(150):
        writer.submit(
            f"m{index}",
            "zoo",
            "zoo/4",
            "primary",
            frame(x=[1.0]),
            Prediction(np.array([y_pred[index]], dtype=object), proba[index : index + 1], classes),
            1.0,
        )
    writer.flush()
    store.submit_feedback([{"request_id": f"m{i}", "label": y_true[i]} for i in range(150)])

    (version,) = store.performance("zoo", since=SINCE, until=UNTIL).versions

    assert version.metrics == pytest.approx(
        {
            "accuracy": metrics.accuracy_score(y_true, y_pred),
            "precision": metrics.precision_score(y_true, y_pred, average="macro"),
            "recall": metrics.recall_score(y_true, y_pred, average="macro"),
            "f1": metrics.f1_score(y_true, y_pred, average="macro"),
            "roc_auc": metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes),
            "log_loss": metrics.log_loss(y_true, proba, labels=classes),
        }
    )


def test_regression_metrics_equal_scikit_learns(make_writer: MakeWriter, store: LogStore) -> None:
    rng = np.random.default_rng(11)
    y_pred = rng.normal(100, 10, size=80)
    y_true = y_pred + rng.normal(0, 3, size=80)
    writer = make_writer()
    for index in range(80):
        writer.submit(
            f"p{index}",
            "prices",
            "prices/2",
            "primary",
            frame(x=[1.0]),
            regressed([y_pred[index]]),
            1.0,
        )
    writer.flush()
    store.submit_feedback([{"request_id": f"p{i}", "label": float(y_true[i])} for i in range(80)])

    (version,) = store.performance("prices", since=SINCE, until=UNTIL).versions

    assert (version.task, version.n) == ("regression", 80)
    assert version.metrics == pytest.approx(
        {
            "mae": metrics.mean_absolute_error(y_true, y_pred),
            "rmse": math.sqrt(metrics.mean_squared_error(y_true, y_pred)),
            "r2": metrics.r2_score(y_true, y_pred),
        }
    )


def test_each_version_is_scored_on_its_own_records_within_the_window(
    make_writer: MakeWriter, store: LogStore, clock: Clock
) -> None:
    writer = make_writer()
    for index in range(4):
        for role, version, answer in (("primary", "churn/1", 1), ("shadow", "churn/2", 0)):
            writer.submit(
                f"r{index}",
                "churn",
                version,
                role,
                frame(x=[1.0]),
                Prediction(np.array([answer])),
                1.0,
            )
    clock.advance(7200)
    writer.submit(
        "late", "churn", "churn/1", "primary", frame(x=[1.0]), Prediction(np.array([0])), 1.0
    )
    writer.flush()
    store.submit_feedback([{"request_id": r, "label": 1} for r in ["r0", "r1", "r2", "r3", "late"]])

    report = store.performance("churn", since=SINCE, until=UNTIL)

    assert [(v.model_version, v.n, v.metrics["accuracy"]) for v in report.versions] == [
        ("churn/1", 4, 1.0),
        ("churn/2", 4, 0.0),
    ]
    assert report.versions[0].metrics["roc_auc"] is None


def test_undefined_metrics_are_none_not_numbers(make_writer: MakeWriter, store: LogStore) -> None:
    writer = make_writer()
    writer.submit(
        "only",
        "churn",
        "churn/1",
        "primary",
        frame(x=[1.0]),
        Prediction(np.array([1]), np.array([[0.2, 0.8]]), [0, 1]),
        1.0,
    )
    writer.submit("p", "prices", "prices/1", "primary", frame(x=[1.0]), regressed([3.0]), 1.0)
    writer.flush()
    store.submit_feedback([{"request_id": "only", "label": 1}, {"request_id": "p", "label": 2}])

    (classifier,) = store.performance("churn", since=SINCE, until=UNTIL).versions
    (regressor,) = store.performance("prices", since=SINCE, until=UNTIL).versions

    assert classifier.metrics["roc_auc"] is None
    assert regressor.metrics["r2"] is None
    assert regressor.metrics["mae"] == 1.0


def test_no_feedback_means_no_versions(make_writer: MakeWriter, store: LogStore) -> None:
    assert store.performance("churn", since=SINCE, until=UNTIL).versions == []


def test_regression_with_text_labels_is_refused(make_writer: MakeWriter, store: LogStore) -> None:
    writer = make_writer()
    writer.submit("p", "prices", "prices/1", "primary", frame(x=[1.0]), regressed([3.0]), 1.0)
    writer.flush()
    store.submit_feedback([{"request_id": "p", "label": "expensive"}])

    with pytest.raises(InvalidInputError, match="regression metrics need numeric"):
        store.performance("prices", since=SINCE, until=UNTIL)


def test_unknown_task_is_refused(store: LogStore) -> None:
    with pytest.raises(InvalidInputError, match="Unknown task 'ranking'"):
        store.performance("churn", task="ranking", since=SINCE, until=UNTIL)  # type: ignore[arg-type]
