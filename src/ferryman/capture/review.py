"""Human review: predictions worth a look, and reviewers' verdicts on them.

A record is a candidate for one or more reasons:

- ``error``: the request failed on the server's side (status 500 and above);
- ``schema_violation``: the request was rejected as the client's mistake (4xx), e.g. its
  rows did not match the signature;
- ``null_prediction``: it succeeded but the prediction is null or NaN;
- ``low_confidence``: its highest class probability is below ``confidence_below``;
- ``shadow_disagreement``: a shadow version predicted something else for the same request
  and row (exact comparison of the predictions' text), flagged on the primary record.

Records that already have a verdict are left out. A verdict (``ok``, ``wrong`` or
``unsure``) with a comment and the reviewer's name is stored under ``logs/reviews/`` and
queryable as the ``reviews`` view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import pyarrow as pa

from ferryman.capture._layout import LogStorage, check_endpoint, hour_start, process_token
from ferryman.capture._schemas import BASE_SCHEMAS
from ferryman.capture.query import LogReader, aware, filters
from ferryman.errors import InvalidInputError, RecordNotFoundError

Verdict = Literal["ok", "wrong", "unsure"]
VERDICTS: Final[tuple[str, ...]] = get_args(Verdict)
REASONS: Final[tuple[str, ...]] = (
    "error",
    "schema_violation",
    "null_prediction",
    "low_confidence",
    "shadow_disagreement",
)

_CANDIDATES = """
WITH p AS (SELECT * FROM predictions{where}),
primary_rows AS (
    SELECT request_id, "row", CAST(prediction AS VARCHAR) AS answer
    FROM p WHERE role = 'primary' AND status < 400
),
disagreements AS (
    SELECT DISTINCT s.request_id, s."row"
    FROM p s JOIN primary_rows m ON s.request_id = m.request_id AND s."row" = m."row"
    WHERE s.role = 'shadow' AND s.status < 400
      AND CAST(s.prediction AS VARCHAR) IS DISTINCT FROM m.answer
),
flagged AS (
    SELECT p.request_id, p."row", p.time, p.model_version, p.role, p.status, p.error,
        CAST(p.prediction AS VARCHAR) AS prediction,
        list_max(map_values(p.probabilities)) AS confidence,
        concat_ws(',',
            CASE WHEN p.status >= 500 THEN 'error' END,
            CASE WHEN p.status BETWEEN 400 AND 499 THEN 'schema_violation' END,
            CASE WHEN p.status < 400 AND (p.prediction IS NULL
                OR lower(CAST(p.prediction AS VARCHAR)) IN ('nan', '-nan'))
                THEN 'null_prediction' END,
            CASE WHEN list_max(map_values(p.probabilities)) < ? THEN 'low_confidence' END,
            CASE WHEN p.role = 'primary' AND d.request_id IS NOT NULL
                THEN 'shadow_disagreement' END
        ) AS reasons
    FROM p LEFT JOIN disagreements d ON d.request_id = p.request_id AND d."row" = p."row"
)
SELECT * FROM flagged
WHERE reasons <> ''
  AND NOT EXISTS (
      SELECT 1 FROM reviews r WHERE r.request_id = flagged.request_id AND r."row" = flagged."row"
  )
ORDER BY time DESC, request_id, "row", role
LIMIT ?
"""


@dataclass(frozen=True)
class ReviewCandidate:
    """A record worth a human look.

    Attributes:
        request_id: The request's id.
        row: The row within the request.
        time: When it was recorded (UTC).
        model_version: The version that produced it, if any.
        role: ``primary``, ``shadow`` or ``batch``.
        status: The HTTP status answered.
        reasons: Why it is a candidate (see :data:`REASONS`).
        prediction: The prediction as text, if any.
        confidence: The highest class probability, if any.
        error: The (privacy-filtered) error message, if any.
    """

    request_id: str
    row: int
    time: dt.datetime
    model_version: str | None
    role: str
    status: int
    reasons: tuple[str, ...]
    prediction: str | None
    confidence: float | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "request_id": self.request_id,
            "row": self.row,
            "time": self.time.isoformat(),
            "model_version": self.model_version,
            "role": self.role,
            "status": self.status,
            "reasons": list(self.reasons),
            "prediction": self.prediction,
            "confidence": self.confidence,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReviewMark:
    """A reviewer's verdict on one record.

    Attributes:
        endpoint: The endpoint.
        request_id: The request's id.
        row: The row within the request.
        verdict: ``ok``, ``wrong`` or ``unsure``.
        comment: Free text.
        reviewer: Who reviewed.
        time: When (UTC).
    """

    endpoint: str
    request_id: str
    row: int
    verdict: Verdict
    comment: str
    reviewer: str
    time: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "row": self.row,
            "verdict": self.verdict,
            "comment": self.comment,
            "reviewer": self.reviewer,
            "time": self.time.isoformat(),
        }


def review_candidates(
    reader: LogReader,
    endpoint: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    confidence_below: float = 0.6,
) -> list[ReviewCandidate]:
    """List ``endpoint``'s records worth a look that nobody has reviewed, newest first.

    Args:
        reader: Reads the log.
        endpoint: The endpoint.
        since: Only records at or after this time (aware).
        until: Only records before this time (aware).
        limit: Most candidates returned (1-10000).
        confidence_below: Highest class probability under which a prediction counts
            as low confidence, in [0, 1].

    Raises:
        InvalidInputError: A bad endpoint, window, limit or threshold.
    """
    check_endpoint(endpoint)
    if not 1 <= limit <= 10_000:
        raise InvalidInputError(f"limit must be between 1 and 10000, got {limit}.")
    if not 0.0 <= confidence_below <= 1.0:
        raise InvalidInputError(
            f"confidence_below must be a probability in [0, 1], got {confidence_below}."
        )
    where, parameters = filters(since=since, until=until)
    result = reader.run(
        _CANDIDATES.format(where=where),
        [*parameters, confidence_below, limit],
        endpoints=[endpoint],
        limit=limit,
    )
    return [
        ReviewCandidate(
            request_id=record["request_id"],
            row=int(record["row"]),
            time=record["time"],
            model_version=record["model_version"],
            role=record["role"],
            status=int(record["status"]),
            reasons=tuple(record["reasons"].split(",")),
            prediction=record["prediction"],
            confidence=record["confidence"],
            error=record["error"],
        )
        for record in result.records()
    ]


def mark(
    reader: LogReader,
    storage: LogStorage,
    endpoint: str,
    request_id: str,
    verdict: str,
    *,
    reviewer: str,
    now: dt.datetime,
    comment: str = "",
    row: int = 0,
    flush: Callable[[], object] | None = None,
) -> ReviewMark:
    """Store a verdict on one of ``endpoint``'s records.

    Raises:
        InvalidInputError: The verdict is unknown, or a field is invalid.
        RecordNotFoundError: ``endpoint`` has no record with that request id and row.
    """
    check_endpoint(endpoint)
    if verdict not in VERDICTS:
        raise InvalidInputError(
            f"Unknown verdict {verdict!r}. Available: {', '.join(sorted(VERDICTS))}."
        )
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 256:
        raise InvalidInputError("request_id must be a string of 1-256 characters.")
    if not isinstance(comment, str) or len(comment) > 10_000:
        raise InvalidInputError("comment must be text of at most 10000 characters.")
    if not reviewer:
        raise InvalidInputError("reviewer must name who reviewed.")
    if isinstance(row, bool) or not isinstance(row, int) or row < 0:
        raise InvalidInputError(f"row must be an integer >= 0, got {row!r}.")
    if not _exists(reader, endpoint, request_id, row):
        if flush is not None:
            flush()
        if flush is None or not _exists(reader, endpoint, request_id, row):
            raise RecordNotFoundError(
                f"Endpoint {endpoint!r} has no captured prediction with request id "
                f"{request_id!r} and row {row}."
            )
    when = aware(now, "now")
    table = pa.table(
        {
            "request_id": [request_id],
            "row": [row],
            "time": [when],
            "verdict": [verdict],
            "comment": [comment],
            "reviewer": [reviewer],
        },
        schema=BASE_SCHEMAS["reviews"],
    )
    start = hour_start(int(when.timestamp() * 1_000_000))
    storage.write(storage.segment_path("reviews", endpoint, start, process_token()), table)
    return ReviewMark(
        endpoint=endpoint,
        request_id=request_id,
        row=row,
        verdict=verdict,  # type: ignore[arg-type]  # checked against VERDICTS above
        comment=comment,
        reviewer=reviewer,
        time=when,
    )


def _exists(reader: LogReader, endpoint: str, request_id: str, row: int) -> bool:
    result = reader.run(
        'SELECT 1 FROM predictions WHERE request_id = ? AND "row" = ? LIMIT 1',
        [request_id, row],
        endpoints=[endpoint],
        limit=1,
    )
    return bool(result.rows)
