"""Review candidates for each reason, verdicts stored and queryable, reviewed ones left out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ferryman.capture import CaptureWriter, LogStore, ReviewMark
from ferryman.errors import InvalidInputError, RecordNotFoundError, SchemaValidationError
from ferryman.flavors.base import Prediction
from tests.capture.conftest import T0, Clock, classified, frame, submit_one

MakeWriter = Callable[..., CaptureWriter]


@pytest.fixture
def traffic(make_writer: MakeWriter, clock: Clock) -> CaptureWriter:
    writer = make_writer()
    submit_one(writer, "fine", proba=0.95)
    clock.advance(1)
    submit_one(writer, "unsure", proba=0.55)
    clock.advance(1)
    writer.submit("crash", "churn", "churn/1", "primary", frame(age=[1.0]), None, 3.0, 500, "boom")
    clock.advance(1)
    writer.submit(
        "bad",
        "churn",
        None,
        "primary",
        {"age": ["old"]},
        None,
        0.1,
        400,
        SchemaValidationError("column 'age': expected a number"),
    )
    clock.advance(1)
    writer.submit(
        "nan",
        "churn",
        "churn/1",
        "primary",
        frame(age=[2.0]),
        Prediction(np.array([np.nan])),
        1.0,
    )
    clock.advance(1)
    submit_one(writer, "split", label=1, proba=0.9)
    submit_one(writer, "split", version="churn/2", role="shadow", label=0, proba=0.1)
    clock.advance(1)
    submit_one(writer, "agree", label=1, proba=0.9)
    submit_one(writer, "agree", version="churn/2", role="shadow", label=1, proba=0.8)
    writer.flush()
    return writer


def test_candidates_name_their_reasons_newest_first(
    traffic: CaptureWriter, store: LogStore
) -> None:
    found = store.review_candidates("churn", confidence_below=0.6)

    assert [(c.request_id, c.role, c.reasons) for c in found] == [
        ("split", "primary", ("shadow_disagreement",)),
        ("nan", "primary", ("null_prediction",)),
        ("bad", "primary", ("schema_violation",)),
        ("crash", "primary", ("error",)),
        ("unsure", "primary", ("low_confidence",)),
    ]
    assert found[-1].confidence == pytest.approx(0.55)
    assert found[2].error == "column 'age': expected a number"


def test_marked_records_are_stored_queryable_and_no_longer_candidates(
    traffic: CaptureWriter, store: LogStore
) -> None:
    mark = store.mark("churn", "unsure", "wrong", reviewer="ann", comment="should be 0")

    assert mark == ReviewMark(
        endpoint="churn",
        request_id="unsure",
        row=0,
        verdict="wrong",
        comment="should be 0",
        reviewer="ann",
        time=T0 + (store.now() - T0),
    )
    assert store.query("SELECT request_id, verdict, comment, reviewer FROM reviews").rows == [
        ("unsure", "wrong", "should be 0", "ann")
    ]
    remaining = [c.request_id for c in store.review_candidates("churn")]
    assert "unsure" not in remaining


def test_limit_and_threshold_apply(traffic: CaptureWriter, store: LogStore) -> None:
    assert len(store.review_candidates("churn", limit=2)) == 2
    low = {c.request_id for c in store.review_candidates("churn", confidence_below=0.99)}
    assert {"fine", "unsure", "agree"} <= low


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda s: s.mark("churn", "ghost", "ok", reviewer="ann"),
            RecordNotFoundError,
            "no captured prediction with request id 'ghost'",
        ),
        (
            lambda s: s.mark("fraud", "fine", "ok", reviewer="ann"),
            RecordNotFoundError,
            "Endpoint 'fraud' has no captured prediction",
        ),
        (
            lambda s: s.mark("churn", "fine", "maybe", reviewer="ann"),
            InvalidInputError,
            "Unknown verdict 'maybe'. Available: ok, unsure, wrong.",
        ),
        (
            lambda s: s.review_candidates("churn", confidence_below=2),
            InvalidInputError,
            "confidence_below must be a probability",
        ),
        (
            lambda s: s.review_candidates("churn", limit=0),
            InvalidInputError,
            "limit must be between 1 and 10000",
        ),
    ],
    ids=["unknown-id", "other-endpoint", "verdict", "threshold", "limit"],
)
def test_bad_review_calls_are_refused(
    traffic: CaptureWriter,
    store: LogStore,
    call: Callable[[LogStore], object],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        call(store)


def test_no_traffic_means_no_candidates(store: LogStore, make_writer: MakeWriter) -> None:
    writer = make_writer()
    writer.submit(
        "ok", "churn", "churn/1", "primary", frame(x=[1.0]), classified([1], [[0, 1]], [0, 1]), 1.0
    )
    writer.flush()

    assert store.review_candidates("churn") == []
    assert store.review_candidates("other") == []
