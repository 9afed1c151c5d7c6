"""Concept drift over captured traffic: predictions joined with feedback, detectors, gauges."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from ferryman.capture import CaptureWriter, LogStore
from ferryman.drift import DDM, PageHinkley
from ferryman.drift.concept import ConceptDrift
from ferryman.drift.endpoint import EndpointDriftReport, endpoint_report
from ferryman.drift.monitor import DriftMetrics, DriftMonitor, MonitorTarget
from ferryman.drift.traffic import TrafficWindow
from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from tests.drift.traffic import T0, Clock, Traffic, reference_profile, traffic

#: Rows per captured request; each request is written one second after the previous one.
CHUNK = 10
#: Where the labels flip in :func:`flipping` (a multiple of CHUNK, so a request boundary).
CHANGE = 800
NOW = T0 + dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)
Key = tuple[str, int]


def write(
    writer: CaptureWriter,
    clock: Clock,
    data: Traffic,
    *,
    start: dt.datetime = T0,
    prefix: str = "r",
) -> list[Key]:
    """Capture ``data`` as requests of CHUNK rows one second apart; the (request, row) keys."""
    answer = data.prediction
    keys: list[Key] = []
    for first in range(0, len(data.inputs), CHUNK):
        rows = slice(first, first + CHUNK)
        request = f"{prefix}{first:06d}"
        clock.set(start + dt.timedelta(seconds=first // CHUNK))
        probabilities = None if answer.probabilities is None else answer.probabilities[rows]
        writer.submit(
            request,
            "churn",
            "churn/1",
            "primary",
            data.inputs.iloc[rows].reset_index(drop=True),
            Prediction(answer.predictions[rows], probabilities, answer.classes),
            1.0,
            200,
            None,
        )
        keys.extend((request, row) for row in range(len(data.inputs.iloc[rows])))
    writer.flush()
    return keys


def calibrated_labels(data: Traffic, seed: int) -> np.ndarray:
    """True classes drawn with the model's own probabilities: a calibrated model."""
    assert data.prediction.probabilities is not None
    score = data.prediction.probabilities[:, 1]
    return (np.random.default_rng(seed).random(len(score)) < score).astype(np.int64)


def send(
    store: LogStore, clock: Clock, keys: Sequence[Key], labels: Sequence[object], at: dt.datetime
) -> None:
    """Submit feedback for ``keys`` as it arrives at ``at`` (the receipt time)."""
    clock.set(at)
    items = [
        {"request_id": request, "row": row, "label": label}
        for (request, row), label in zip(keys, labels, strict=True)
    ]
    report = store.submit_feedback(items)
    assert (report.accepted, report.unknown) == (len(items), [])


def accuracy(predictions: object, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(predictions) == labels))


def concept_of(store: LogStore, **options: object) -> EndpointDriftReport:
    options.setdefault("now", NOW)
    options.setdefault("concept", True)
    return endpoint_report(store, "churn", reference=reference_profile(), **options)  # type: ignore[arg-type]


@pytest.fixture
def flipping(writer: CaptureWriter, store: LogStore, clock: Clock) -> tuple[Traffic, np.ndarray]:
    """1,600 records of a calibrated model whose true labels flip from record 800 on."""
    data = traffic(1600, seed=1)
    labels = calibrated_labels(data, seed=101)
    labels[CHANGE:] = 1 - labels[CHANGE:]
    keys = write(writer, clock, data)
    send(store, clock, keys, labels.tolist(), at=NOW - dt.timedelta(seconds=30))
    return data, labels


# -- the report's concept section ----------------------------------------------------------


def test_labels_that_flip_partway_are_detected_near_the_change(
    flipping: tuple[Traffic, np.ndarray], store: LogStore
) -> None:
    data, labels = flipping
    before = accuracy(data.prediction.predictions[:CHANGE], labels[:CHANGE])

    concept = concept_of(store, reference_performance={"accuracy": before}).concept

    assert concept is not None and concept.status == "ok" and concept.drifted
    assert (concept.task, concept.metric, concept.labelled_rows) == (
        "classification",
        "accuracy",
        1600,
    )
    change_time = T0 + dt.timedelta(seconds=CHANGE // CHUNK)
    for detector in concept.detectors:
        assert detector.detected, detector.name
        assert detector.first_index is not None and detector.first_time is not None
        assert CHANGE <= detector.first_index < CHANGE + 400, detector.name
        assert change_time <= detector.first_time < change_time + dt.timedelta(seconds=40)
    assert [d.name for d in concept.detectors] == ["adwin", "page_hinkley", "ddm"]
    performance = concept.performance
    assert performance is not None
    assert performance.value == pytest.approx(float(np.mean(data.prediction.predictions == labels)))
    assert performance.low < performance.value < performance.high
    assert performance.reference == before and performance.degraded


def test_a_stationary_stream_is_not_detected(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    data = traffic(1600, seed=1)
    labels = calibrated_labels(data, seed=101)
    send(store, clock, write(writer, clock, data), labels.tolist(), at=NOW)

    concept = concept_of(
        store, reference_performance={"accuracy": accuracy(data.prediction.predictions, labels)}
    ).concept

    assert concept is not None and concept.status == "ok" and not concept.drifted
    assert [(d.name, d.status, d.detected) for d in concept.detectors] == [
        ("adwin", "ok", False),
        ("page_hinkley", "ok", False),
        ("ddm", "ok", False),
    ]
    assert concept.performance is not None and not concept.performance.degraded
    assert concept.performance.value == pytest.approx(accuracy(data.prediction.predictions, labels))


def test_without_feedback_the_section_is_insufficient_data(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    write(writer, clock, traffic(1000, seed=1))

    result = concept_of(store)
    concept = result.concept

    assert concept is not None
    assert (concept.status, concept.rows, concept.labelled_rows) == ("insufficient-data", 1000, 0)
    assert "0 of the window's 1000 records have a feedback label" in concept.message
    assert {d.status for d in concept.detectors} == {"insufficient-data"}
    assert concept.performance is None and not concept.drifted
    assert concept.estimate is not None and concept.estimate.status == "insufficient-data"
    assert "check the model's calibration" in concept.estimate.message
    assert json.loads(result.to_json())["concept"]["labelled_rows"] == 0


def test_an_empty_window_is_insufficient_data_not_an_error(store: LogStore) -> None:
    concept = concept_of(store).concept

    assert concept is not None and (concept.status, concept.rows) == ("insufficient-data", 0)
    assert (concept.task, concept.estimate, concept.performance) == (None, None, None)
    assert {d.status for d in concept.detectors} == {"insufficient-data"}


def test_cbpe_estimates_an_unlabelled_window_calibrated_on_earlier_feedback(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    earlier = traffic(2000, seed=2)
    keys = write(writer, clock, earlier, start=T0 - 3 * HOUR, prefix="old")
    send(store, clock, keys, calibrated_labels(earlier, seed=7).tolist(), at=T0 - 2 * HOUR)
    current = traffic(1000, seed=3)
    write(writer, clock, current)

    concept = concept_of(store, reference_performance={"accuracy": 0.8}).concept

    assert concept is not None and concept.status == "insufficient-data"
    estimate = concept.estimate
    assert estimate is not None and estimate.status == "ok" and estimate.reliable
    assert (estimate.calibration_rows, estimate.n, estimate.reference) == (2000, 1000, 0.8)
    assert estimate.calibration_error is not None and estimate.calibration_error <= 0.05
    assert current.prediction.probabilities is not None
    expected = float(current.prediction.probabilities.max(axis=1).mean())
    assert estimate.value == pytest.approx(expected)
    assert estimate.low is not None and estimate.high is not None
    assert estimate.low < expected < estimate.high


def test_partial_late_feedback_counts_the_latest_label_of_each_row(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    data = traffic(1000, seed=4)
    keys = write(writer, clock, data)
    predicted = np.asarray(data.prediction.predictions)
    # Days later, labels for the 600 oldest records, all "wrong"; a later batch corrects
    # the first 300 of them to the predicted class.
    send(store, clock, keys[:600], (1 - predicted[:600]).tolist(), at=T0 + 2 * 24 * HOUR)
    send(store, clock, keys[:300], predicted[:300].tolist(), at=T0 + 3 * 24 * HOUR)

    concept = concept_of(store).concept
    latest = concept_of(store, window=TrafficWindow(rows=500)).concept

    assert concept is not None and concept.status == "ok"
    assert (concept.labelled_rows, concept.labelled_share) == (600, 0.6)
    assert concept.performance is not None
    assert (concept.performance.value, concept.performance.n) == (0.5, 600)
    assert concept.performance.reference is None and not concept.performance.degraded
    assert latest is not None and (latest.rows, latest.labelled_rows) == (500, 100)


def test_a_regressor_is_checked_on_its_absolute_errors(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    base = traffic(600, seed=5)
    values = base.inputs["income"].to_numpy() * 2.0
    data = Traffic(base.inputs, Prediction(values, None, None))
    truth = values + np.random.default_rng(5).normal(0.0, 1.0, len(values))
    send(store, clock, write(writer, clock, data), truth.tolist(), at=NOW)

    concept = concept_of(store, reference_performance={"mae": 0.8}).concept

    assert concept is not None and (concept.task, concept.metric) == ("regression", "mae")
    statuses = {d.name: d.status for d in concept.detectors}
    assert statuses == {"adwin": "ok", "page_hinkley": "ok", "ddm": "unavailable"}
    assert concept.performance is not None
    assert concept.performance.value == pytest.approx(float(np.mean(np.abs(values - truth))))
    assert concept.estimate is None


@pytest.mark.parametrize(
    ("label", "message"), [("high", "not all numbers"), ("nan", "not finite numbers")]
)
def test_a_regressors_labels_that_are_not_numbers_are_reported(
    writer: CaptureWriter, store: LogStore, clock: Clock, label: str, message: str
) -> None:
    base = traffic(200, seed=5)
    data = Traffic(base.inputs, Prediction(base.inputs["income"].to_numpy(), None, None))
    send(store, clock, write(writer, clock, data), [label] * 200, at=NOW)

    concept = concept_of(store).concept

    assert concept is not None and concept.status == "unavailable"
    assert message in concept.message and concept.detectors == ()


def test_a_detector_short_of_its_warm_up_says_so(
    flipping: tuple[Traffic, np.ndarray], store: LogStore
) -> None:
    config = ConceptDrift(detectors=(PageHinkley(warmup=2000), DDM()), min_rows=50)

    concept = concept_of(store, concept=config).concept

    assert concept is not None
    outcomes = {d.name: d for d in concept.detectors}
    assert outcomes["page_hinkley"].status == "insufficient-data"
    assert "needs at least 2001" in outcomes["page_hinkley"].message
    assert outcomes["ddm"].detected


def test_the_json_and_html_hold_the_concept_section(
    flipping: tuple[Traffic, np.ndarray], store: LogStore
) -> None:
    result = concept_of(store)

    document = json.loads(result.to_json())
    page = result.to_html()

    concept = document["concept"]
    assert concept["status"] == "ok" and concept["drifted"]
    assert [d["name"] for d in concept["detectors"]] == ["adwin", "page_hinkley", "ddm"]
    first = concept["detectors"][0]
    assert first["detections"][0] == {
        "index": first["first_detection_index"],
        "time": first["first_detection_time"],
    }
    assert "<h2>Concept drift:" in page and "page_hinkley" in page
    assert page.index("<h2>Concept drift:") < page.index("<h2>Features</h2>")
    assert json.loads(concept_of(store, concept=False).to_json())["concept"] is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ConceptDrift(min_rows=0), "min_rows must be an integer >= 1"),
        (lambda: ConceptDrift(confidence=1.0), "confidence must be a finite number"),
        (lambda: ConceptDrift(detectors=["adwin"]), "detectors must be streaming detectors"),  # type: ignore[list-item]
        (lambda: ConceptDrift(cbpe="cbpe"), "cbpe must be a CBPE"),  # type: ignore[arg-type]
    ],
    ids=["min_rows", "confidence", "detectors", "cbpe"],
)
def test_bad_concept_settings_are_refused(make: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        make()  # type: ignore[operator]


def test_a_concept_option_that_is_no_setting_is_refused(
    store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    with pytest.raises(InvalidInputError, match="concept must be True, False or a ConceptDrift"):
        concept_of(store, concept="yes")
    with pytest.raises(InvalidInputError, match="reference_performance must be a mapping"):
        concept_of(store, reference_performance=[0.9])
    with pytest.raises(InvalidInputError, match="concept must be True, False or a ConceptDrift"):
        DriftMonitor(store=store, metrics=gauges[1], targets=list, concept=1)  # type: ignore[arg-type]


# -- gauges --------------------------------------------------------------------------------


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_monitor_publishes_and_retires_concept_gauges(
    flipping: tuple[Traffic, np.ndarray],
    store: LogStore,
    gauges: tuple[CollectorRegistry, DriftMetrics],
) -> None:
    registry, metrics = gauges
    watched = [
        MonitorTarget("churn", reference_profile(), reference_performance={"accuracy": 0.68})
    ]
    monitor = DriftMonitor(store=store, metrics=metrics, targets=lambda: watched)

    concept = monitor.evaluate_once(NOW).reports["churn"].concept

    assert concept is not None and concept.performance is not None
    for detector in ("adwin", "page_hinkley", "ddm"):
        assert value(registry, "ferryman_concept_drift", endpoint="churn", detector=detector) == 1.0
    realised = value(registry, "ferryman_realised_performance", endpoint="churn", metric="accuracy")
    assert realised == concept.performance.value
    assert value(registry, "ferryman_labelled_rows", endpoint="churn") == 1600.0

    monitor.evaluate_once(NOW + 2 * HOUR)  # the window is empty now

    adwin = value(registry, "ferryman_concept_drift", endpoint="churn", detector="adwin")
    assert math.isnan(adwin or 0.0)
    assert math.isnan(
        value(registry, "ferryman_realised_performance", endpoint="churn", metric="accuracy") or 0.0
    )
    assert value(registry, "ferryman_labelled_rows", endpoint="churn") == 0.0

    watched.clear()
    monitor.evaluate_once(NOW)

    assert math.isnan(value(registry, "ferryman_labelled_rows", endpoint="churn") or 0.0)


def test_the_monitor_publishes_the_cbpe_estimate(
    writer: CaptureWriter,
    store: LogStore,
    clock: Clock,
    gauges: tuple[CollectorRegistry, DriftMetrics],
) -> None:
    registry, metrics = gauges
    earlier = traffic(1000, seed=2)
    keys = write(writer, clock, earlier, start=T0 - 3 * HOUR, prefix="old")
    send(store, clock, keys, calibrated_labels(earlier, seed=7).tolist(), at=T0 - 2 * HOUR)
    write(writer, clock, traffic(500, seed=3))
    monitor = DriftMonitor(
        store=store, metrics=metrics, targets=lambda: [MonitorTarget("churn", reference_profile())]
    )

    estimate = monitor.evaluate_once(NOW).reports["churn"].concept.estimate  # type: ignore[union-attr]

    assert estimate is not None and estimate.value is not None
    published = value(
        registry, "ferryman_estimated_performance", endpoint="churn", metric="accuracy"
    )
    assert published == estimate.value
    assert value(registry, "ferryman_labelled_rows", endpoint="churn") == 0.0
    assert value(registry, "ferryman_concept_drift", endpoint="churn", detector="adwin") is None


def test_a_monitor_without_concept_drift_publishes_no_concept_gauges(
    flipping: tuple[Traffic, np.ndarray],
    store: LogStore,
    gauges: tuple[CollectorRegistry, DriftMetrics],
) -> None:
    registry, metrics = gauges
    targets = [MonitorTarget("churn", reference_profile())]
    monitor = DriftMonitor(store=store, metrics=metrics, targets=lambda: targets, concept=False)

    assert monitor.evaluate_once(NOW).reports["churn"].concept is None
    assert value(registry, "ferryman_labelled_rows", endpoint="churn") is None
