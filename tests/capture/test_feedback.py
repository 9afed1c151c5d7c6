"""Feedback: known and unknown ids, duplicates (last write wins), late arrival, validation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferryman.capture import CaptureWriter, Feedback, FeedbackReport, LogStore, PredictionLog
from ferryman.errors import InvalidInputError
from tests.capture.conftest import SECRET, T0, Clock, frame, regressed, submit_one

MakeWriter = Callable[..., CaptureWriter]


@pytest.fixture
def captured(make_writer: MakeWriter) -> CaptureWriter:
    writer = make_writer()
    for index in range(3):
        submit_one(writer, f"r{index}")
    submit_one(writer, "other-0", endpoint="fraud", version="fraud/1")
    writer.flush()
    return writer


def latest_labels(store: LogStore) -> list[tuple[Any, ...]]:
    return store.query(
        'SELECT request_id, "row", label, outcome FROM feedback ORDER BY request_id'
    ).rows


def test_feedback_for_known_ids_is_stored(captured: CaptureWriter, store: LogStore) -> None:
    report = store.submit_feedback(
        [{"request_id": "r0", "label": 1}, {"request_id": "r1", "outcome": 12.5}]
    )

    assert report == FeedbackReport(accepted=2, duplicates=0, unknown=[])
    assert latest_labels(store) == [("r0", 0, "1", None), ("r1", 0, None, 12.5)]


def test_unknown_ids_are_reported_and_not_stored(captured: CaptureWriter, store: LogStore) -> None:
    report = store.submit_feedback(
        [
            {"request_id": "nope", "label": 1},
            {"request_id": "r2", "label": 0},
            {"request_id": "r2", "row": 5, "label": 0},
            {"request_id": "nope", "label": 0},
        ]
    )

    assert report.to_dict() == {"accepted": 1, "duplicates": 1, "unknown": ["nope", "r2"]}
    assert store.query("SELECT count(*) FROM feedback_log").rows == [(1,)]


def test_duplicates_are_counted_and_the_last_write_wins(
    captured: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    first = store.submit_feedback(
        [{"request_id": "r0", "label": "a"}, {"request_id": "r0", "label": "b"}]
    )
    clock.advance(5)
    second = store.submit_feedback([{"request_id": "r0", "label": "c"}])

    assert (first.accepted, first.duplicates) == (1, 1)
    assert (second.accepted, second.duplicates) == (1, 1)
    assert latest_labels(store) == [("r0", 0, "c", None)]
    assert store.query("SELECT count(*) FROM feedback_log").rows == [(2,)]


def test_late_feedback_keeps_its_own_time_and_is_accepted(
    captured: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    clock.advance(90 * 86_400)
    happened = T0 + dt.timedelta(days=30)

    report = store.submit_feedback(
        [{"request_id": "r1", "label": True, "time": happened.isoformat()}]
    )

    assert report.accepted == 1
    assert store.query("SELECT label, time, received_at FROM feedback").rows == [
        ("true", happened, T0 + dt.timedelta(days=90))
    ]


def test_feedback_scoped_to_some_endpoints_sees_only_their_ids(
    captured: CaptureWriter, store: LogStore
) -> None:
    report = store.submit_feedback(
        [{"request_id": "r0", "label": 1}, {"request_id": "other-0", "label": 1}],
        allowed=["fraud"],
    )

    assert report.to_dict() == {"accepted": 1, "duplicates": 0, "unknown": ["r0"]}
    assert store.query("SELECT endpoint, request_id FROM feedback").rows == [("fraud", "other-0")]


def test_feedback_for_a_still_buffered_prediction_is_accepted(root: Path, clock: Clock) -> None:
    log = PredictionLog(root=root, secret=SECRET, clock=clock, maintenance_interval=None)
    log.writer.submit("fresh", "churn", "churn/1", "primary", frame(a=[1.0]), regressed([2]), 1.0)

    report = log.store.submit_feedback([{"request_id": "fresh", "label": 2.0}])

    assert report.accepted == 1
    assert log.store.query("SELECT label FROM feedback").rows == [("2",)]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "No feedback given"),
        ([{"label": 1}], r"feedback\[0\]: request_id must be a string"),
        ([{"request_id": "r0"}], r"feedback\[0\]: .*neither a label nor an outcome"),
        ([{"request_id": "r0", "label": 1, "colour": 2}], r"unknown field 'colour'"),
        ([{"request_id": "r0", "label": [1]}], "label must be a string, number or boolean"),
        ([{"request_id": "r0", "outcome": "high"}], "outcome must be a number"),
        ([{"request_id": "r0", "label": 1, "time": "yesterday"}], "invalid time 'yesterday'"),
        ([{"request_id": "r0", "label": 1, "time": "2026-01-01T00:00:00"}], "naive datetime"),
        ([{"request_id": "r0", "label": 1, "row": -1}], "row must be an integer >= 0"),
        (["r0"], r"feedback\[0\]: expected an object"),
    ],
    ids=[
        "none",
        "no-id",
        "no-label",
        "unknown-field",
        "label-type",
        "outcome-type",
        "time-text",
        "naive-time",
        "row",
        "not-object",
    ],
)
def test_invalid_feedback_is_refused_naming_the_item(
    captured: CaptureWriter, store: LogStore, items: list[Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        store.submit_feedback(items)


def test_feedback_objects_can_be_given_directly(captured: CaptureWriter, store: LogStore) -> None:
    report = store.submit_feedback([Feedback("r0", label=0.0)])

    assert report.accepted == 1
    assert latest_labels(store) == [("r0", 0, "0", None)]
