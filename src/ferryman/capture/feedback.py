"""Ground truth for captured predictions: labels and outcomes that arrive later.

A feedback item names a captured request (``request_id``, and ``row`` for a request of
several rows, default 0) and gives its true ``label`` (a class or a value) and/or a
numeric ``outcome`` (revenue, churned or not), with the ``time`` it became known
(default: when it was received). Feedback for ids that were never captured is reported
and not stored: truth without its prediction is of no use and would only hide typos.
Late feedback is fine (any age), and a second item for the same ``(request_id, row)``
replaces the first: the ``feedback`` view shows the latest, ``feedback_log`` all of them.

Labels are stored as text in the same form Arrow gives class labels (``1`` for 1 and 1.0,
``true`` for a boolean), so they compare with predictions and probability classes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ferryman.capture._layout import LogStorage, hour_start, process_token
from ferryman.capture._schemas import BASE_SCHEMAS
from ferryman.capture.query import LogReader, aware
from ferryman.errors import InvalidInputError

#: Most feedback items accepted in one call.
MAX_ITEMS = 100_000

_KEYS = ("request_id", "row", "label", "outcome", "time")


@dataclass(frozen=True)
class Feedback:
    """The truth about one captured prediction.

    Attributes:
        request_id: The captured request's id.
        label: The true class or value (a string, number or boolean), or ``None``.
        outcome: A numeric outcome, or ``None``.
        time: When the truth became known (aware), or ``None`` for when received.
        row: The row within the request (0 for one-row requests).

    Raises:
        InvalidInputError: A field has the wrong type, or neither ``label`` nor
            ``outcome`` is given.
    """

    request_id: str
    label: str | int | float | bool | None = None
    outcome: float | None = None
    time: dt.datetime | None = None
    row: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.request_id, str) or not 0 < len(self.request_id) <= 256:
            raise InvalidInputError(
                f"request_id must be a string of 1-256 characters, got {self.request_id!r}."
            )
        if isinstance(self.row, bool) or not isinstance(self.row, int) or self.row < 0:
            raise InvalidInputError(f"row must be an integer >= 0, got {self.row!r}.")
        if self.label is not None and not isinstance(self.label, str | int | float | bool):
            raise InvalidInputError(
                f"label must be a string, number or boolean, got {type(self.label).__name__}."
            )
        if self.outcome is not None and (
            isinstance(self.outcome, bool) or not isinstance(self.outcome, int | float)
        ):
            raise InvalidInputError(f"outcome must be a number, got {self.outcome!r}.")
        if self.label is None and self.outcome is None:
            raise InvalidInputError(
                f"Feedback for {self.request_id!r} has neither a label nor an outcome; give one."
            )
        if self.time is not None:
            aware(self.time, "time")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, position: int | None = None) -> Feedback:
        """Build an item from a JSON object ``{request_id, label | outcome, time?, row?}``.

        Args:
            data: The decoded object; ``time`` may be an ISO 8601 string with a zone.
            position: The item's index in a list, named in error messages.

        Raises:
            InvalidInputError: A key is unknown or a value is invalid; the message names
                the item and the field.
        """
        where = "feedback" if position is None else f"feedback[{position}]"
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"{where}: expected an object with request_id and label or outcome, got "
                f"{type(data).__name__}."
            )
        unknown = [key for key in data if key not in _KEYS]
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown field {unknown[0]!r}; expected {', '.join(_KEYS)}."
            )
        time = data.get("time")
        if isinstance(time, str):
            try:
                time = dt.datetime.fromisoformat(time)
            except ValueError:
                raise InvalidInputError(
                    f"{where}: invalid time {time!r}; expected ISO 8601 with a zone, e.g. "
                    "2026-01-31T12:00:00+00:00."
                ) from None
        if time is not None and not isinstance(time, dt.datetime):
            raise InvalidInputError(f"{where}: time must be an ISO 8601 string.")
        outcome = data.get("outcome")
        try:
            return cls(
                request_id=data.get("request_id"),  # type: ignore[arg-type]  # checked above
                label=data.get("label"),
                outcome=outcome,
                time=time,
                row=data.get("row", 0),
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class FeedbackReport:
    """What :func:`submit_feedback` did.

    Attributes:
        accepted: Items stored.
        duplicates: Stored items that replaced earlier feedback for the same request and
            row, or were repeated within this call (the last one wins).
        unknown: Request ids with no captured prediction (not stored), in order.
    """

    accepted: int
    duplicates: int
    unknown: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "unknown": self.unknown}


def submit_feedback(
    reader: LogReader,
    storage: LogStorage,
    items: Sequence[Feedback | Mapping[str, Any]],
    *,
    now: dt.datetime,
    allowed: Sequence[str] | None = None,
    flush: Callable[[], object] | None = None,
) -> FeedbackReport:
    """Store feedback for captured predictions.

    Args:
        reader: Reads the log.
        storage: Where feedback segments are written.
        items: Feedback items or their JSON objects.
        now: The time of receipt (aware).
        allowed: Only predictions of these endpoints count as known (``None``: any).
        flush: Writes buffered predictions, called before ids are declared unknown.

    Raises:
        InvalidInputError: An item is invalid, or there are none or too many.
    """
    if not items:
        raise InvalidInputError("No feedback given: send one item or a list of items.")
    if len(items) > MAX_ITEMS:
        raise InvalidInputError(f"{len(items)} feedback items: at most {MAX_ITEMS} per call.")
    parsed = [
        item if isinstance(item, Feedback) else Feedback.from_mapping(item, position=position)
        for position, item in enumerate(items)
    ]
    latest: dict[tuple[str, int], Feedback] = {}
    for item in parsed:
        latest[(item.request_id, item.row)] = item
    duplicates = len(parsed) - len(latest)
    homes = _endpoints_of(reader, list(latest), allowed)
    missing = [key for key in latest if key not in homes]
    if missing and flush is not None:
        flush()
        homes.update(_endpoints_of(reader, missing, allowed))
    known = {key: item for key, item in latest.items() if key in homes}
    duplicates += _already_there(reader, list(known), allowed)
    received = aware(now, "now")
    by_endpoint: dict[str, list[Feedback]] = {}
    for key, item in known.items():
        for endpoint in homes[key]:
            by_endpoint.setdefault(endpoint, []).append(item)
    start = hour_start(int(received.timestamp() * 1_000_000))
    for endpoint, entries in by_endpoint.items():
        table = _table(entries, received)
        storage.write(storage.segment_path("feedback", endpoint, start, process_token()), table)
    unknown = list(dict.fromkeys(key[0] for key in latest if key not in homes))
    return FeedbackReport(accepted=len(known), duplicates=duplicates, unknown=unknown)


def label_text(label: str | int | float | bool) -> str:
    """A label as stored: Arrow's text form (``1`` for 1 and 1.0, ``true`` for True).

    >>> label_text(1.0), label_text(True), label_text("yes")
    ('1', 'true', 'yes')
    """
    text: str = pa.scalar(label).cast(pa.string()).as_py()
    return text


def _endpoints_of(
    reader: LogReader, keys: list[tuple[str, int]], allowed: Sequence[str] | None
) -> dict[tuple[str, int], list[str]]:
    if not keys:
        return {}
    ids = sorted({key[0] for key in keys})
    table = reader.arrow(
        'SELECT DISTINCT request_id, "row", endpoint FROM predictions '
        "WHERE request_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
        endpoints=allowed,
    )
    wanted = set(keys)
    homes: dict[tuple[str, int], list[str]] = {}
    for request_id, row, endpoint in zip(
        *(table.column(name).to_pylist() for name in ("request_id", "row", "endpoint")),
        strict=True,
    ):
        key = (request_id, row)
        if key in wanted:
            homes.setdefault(key, []).append(endpoint)
    return homes


def _already_there(
    reader: LogReader, keys: list[tuple[str, int]], allowed: Sequence[str] | None
) -> int:
    if not keys:
        return 0
    table = reader.arrow(
        'SELECT DISTINCT request_id, "row" FROM feedback_log '
        "WHERE request_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted({key[0] for key in keys})],
        endpoints=allowed,
    )
    found = set(
        zip(table.column("request_id").to_pylist(), table.column("row").to_pylist(), strict=True)
    )
    return sum(1 for key in keys if key in found)


_last_sequence = 0
_sequence_lock = threading.Lock()


def _sequence(count: int) -> list[int]:
    """Increasing numbers (nanoseconds since the epoch, at least) ordering feedback that
    arrives in the same instant of the receipt clock: the later write wins."""
    global _last_sequence
    with _sequence_lock:
        start = max(_last_sequence + 1, time.time_ns())
        _last_sequence = start + count - 1
    return list(range(start, start + count))


def _table(entries: list[Feedback], received: dt.datetime) -> pa.Table:
    schema = BASE_SCHEMAS["feedback"]
    return pa.table(
        {
            "request_id": [item.request_id for item in entries],
            "row": [item.row for item in entries],
            "label": [None if item.label is None else label_text(item.label) for item in entries],
            "outcome": [None if item.outcome is None else float(item.outcome) for item in entries],
            "time": [aware(item.time, "time") if item.time else received for item in entries],
            "received_at": [received] * len(entries),
            "sequence": _sequence(len(entries)),
        },
        schema=schema,
    )
