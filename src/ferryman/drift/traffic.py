"""Windows of captured traffic: an endpoint's predictions, read from the prediction log.

A *window* (:class:`TrafficWindow`) is the last span of time, or the last N records, of an
endpoint's primary predictions answered with status 200, optionally of one model version
and ending some time before now (the previous day is ``TrafficWindow(span=1 day,
offset=1 day)``). :func:`read_window` reads one from the prediction log into the frame
:class:`~ferryman.drift.DataDrift` expects: one column per feature (the ``inputs`` struct)
and the model's outputs, ``prediction`` (``prediction[i]`` for several outputs) and
``probability[<class>]``, named as a version's reference profile names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.errors import InvalidInputError

if TYPE_CHECKING:
    from ferryman.capture import LogStore

#: The rolling window a monitor evaluates, unless configured.
DEFAULT_WINDOW = timedelta(hours=1)
#: Most records read from one window; a larger window is sampled uniformly (by a hash
#: of request id and row, so the same records every time). 100,000 rows already resolve
#: any practically relevant shift; reading a million in the server's monitor held the
#: GIL long enough to stall serving (open-loop p50 from about 4 to 11-27 ms while it ran).
MAX_WINDOW_ROWS = 100_000

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class TrafficWindow:
    """Which captured records form a sample: an endpoint's primary predictions with status 200.

    Give exactly one of ``span`` and ``rows``.

    Attributes:
        span: The records of the last ``span`` of time before the window's end.
        rows: The last ``rows`` records before the window's end.
        offset: How long before "now" the window ends (0: it ends now).
        version: Only records of this model version (``name/N``); ``None``: every version.

    Raises:
        InvalidInputError: Neither or both of ``span`` and ``rows``, a span or offset that
            is not a positive (offset: non-negative) duration, or ``rows`` below 1.

    >>> TrafficWindow.parse("24h").span, TrafficWindow.parse("5000").rows
    (datetime.timedelta(days=1), 5000)
    """

    span: timedelta | None = None
    rows: int | None = None
    offset: timedelta = timedelta(0)
    version: str | None = None

    def __post_init__(self) -> None:
        if (self.span is None) == (self.rows is None):
            raise InvalidInputError(
                "A traffic window needs exactly one of span (a duration) and rows (a number "
                f"of records); got span={self.span!r}, rows={self.rows!r}."
            )
        if self.span is not None and (
            not isinstance(self.span, timedelta) or self.span <= timedelta(0)
        ):
            raise InvalidInputError(f"span must be a positive timedelta, got {self.span!r}.")
        if self.rows is not None and (
            isinstance(self.rows, bool)
            or not isinstance(self.rows, int)
            or not 1 <= self.rows < 2**63
        ):
            raise InvalidInputError(
                f"rows must be an integer >= 1 (and below 2**63), got {self.rows!r}."
            )
        if not isinstance(self.offset, timedelta) or self.offset < timedelta(0):
            raise InvalidInputError(f"offset must be a timedelta >= 0, got {self.offset!r}.")

    @classmethod
    def parse(cls, text: str, *, version: str | None = None) -> TrafficWindow:
        """Read ``24h``, ``15m``, ``7d`` (a span of time) or ``5000`` (the last records).

        Raises:
            InvalidInputError: ``text`` is neither.
        """
        from ferryman.capture import parse_window

        stripped = text.strip() if isinstance(text, str) else ""
        if stripped.isdigit():
            return cls(rows=int(stripped), version=version)
        try:
            return cls(span=parse_window(stripped), version=version)
        except (InvalidInputError, OverflowError):
            raise InvalidInputError(
                f"Invalid window {text!r}: expected a duration such as 90s, 15m, 24h or 7d, "
                "or a number of records such as 5000."
            ) from None

    def describe(self) -> str:
        """The window in words, e.g. ``the last 24h`` or ``the last 5000 records of churn/3``.

        >>> TrafficWindow(span=timedelta(days=1), offset=timedelta(days=1)).describe()
        'the last 1d ending 1d before now'
        """
        what = f"the last {self.rows} records" if self.rows else f"the last {_duration(self.span)}"
        if self.offset:
            what += f" ending {_duration(self.offset)} before now"
        return what + (f" of {self.version}" if self.version else "")


@dataclass(frozen=True)
class WindowInfo:
    """Where a window of captured traffic lies and what it holds.

    Attributes:
        endpoint: The endpoint.
        window: What was asked for.
        since: The window's start (for a count window, its first record's time); ``None``
            for an empty count window.
        until: The window's end (exclusive).
        matched: Records in the window.
        rows: Records read (fewer than ``matched`` when the window was sampled).
        versions: The model versions that answered them.
    """

    endpoint: str
    window: TrafficWindow
    since: datetime | None
    until: datetime
    matched: int
    rows: int
    versions: tuple[str, ...] = ()

    @property
    def sampled(self) -> bool:
        """Whether only a uniform sample of the window's records was read."""
        return self.rows < self.matched

    def describe(self) -> str:
        """One line for reports: endpoint, records, sampling and time range."""
        version = f" of {self.window.version}" if self.window.version else ""
        sample = f", a uniform sample of {self.matched:,}" if self.sampled else ""
        since = "-" if self.since is None else f"{self.since:%Y-%m-%d %H:%M:%S}"
        return (
            f"{self.endpoint}: {self.rows:,} captured records (primary, status 200){version}"
            f"{sample}, {since} to {self.until:%Y-%m-%d %H:%M:%S} UTC"
        )

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values (times in ISO 8601)."""
        span = self.window.span
        return {
            "endpoint": self.endpoint,
            "since": None if self.since is None else self.since.isoformat(),
            "until": self.until.isoformat(),
            "span_seconds": None if span is None else span.total_seconds(),
            "last_records": self.window.rows,
            "offset_seconds": self.window.offset.total_seconds(),
            "version": self.window.version,
            "matched": self.matched,
            "rows": self.rows,
            "sampled": self.sampled,
            "versions": list(self.versions),
        }


@dataclass(frozen=True, eq=False)
class CapturedWindow:
    """A window of captured traffic, shaped for the drift tests.

    Attributes:
        info: Where it lies and what it holds.
        frame: One column per feature, then one per model output.
        features: The feature columns, as captured (after the privacy policy).
        outputs: The output columns: ``prediction`` or ``prediction[i]``, then
            ``probability[<class>]`` per class.
        digests: Text features whose every value is a 64-hex-character digest, as a
            ``hash`` privacy policy stores them.
    """

    info: WindowInfo
    frame: pd.DataFrame = field(repr=False)
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    digests: frozenset[str] = frozenset()


def read_window(
    store: LogStore,
    endpoint: str,
    window: TrafficWindow | timedelta | int = DEFAULT_WINDOW,
    *,
    now: datetime | None = None,
    max_rows: int = MAX_WINDOW_ROWS,
) -> CapturedWindow:
    """Read an endpoint's primary predictions with status 200 from the prediction log.

    Args:
        store: The prediction log.
        endpoint: The endpoint.
        window: A :class:`TrafficWindow`, a span of time, or a number of latest records.
        now: The time the window is relative to (timezone-aware); default the store's clock.
        max_rows: Most records read; of a larger window, the ``max_rows`` records with
            the smallest hash of request id and row are read: a uniform sample, the same
            on every read.

    Returns:
        The window; an endpoint without records gives an empty one.

    Raises:
        InvalidInputError: A bad endpoint name, window, ``max_rows`` or naive ``now``.
        QueryError: The log could not be read in the store's query timeout.
    """
    from ferryman.capture.query import aware, filters

    spec = _as_window(window)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidInputError(f"max_rows must be an integer >= 1, got {max_rows!r}.")
    try:
        until = (store.now() if now is None else aware(now, "now")) - spec.offset
        since = None if spec.span is None else until - spec.span
    except OverflowError:
        raise InvalidInputError(
            f"The window ({spec.describe()}) reaches back before the year 1; give a shorter "
            "span or offset."
        ) from None
    where, parameters = filters(
        version=spec.version, role="primary", status=200, since=since, until=until
    )
    source = f"SELECT * FROM predictions{where}"
    if spec.rows is not None:
        source += f" ORDER BY time DESC LIMIT {int(spec.rows)}"
    stats = store.reader.run(
        "SELECT count(*), list(DISTINCT model_version ORDER BY model_version) FILTER "
        f"(WHERE model_version IS NOT NULL), min(time) FROM ({source}) AS w",
        parameters,
        endpoints=[endpoint],
    )
    matched, versions, first = stats.rows[0]
    if matched > max_rows:
        # The records with the smallest hashes of (request id, row): a uniform sample,
        # the same one on every read.
        source = (
            f'SELECT * FROM ({source}) AS s ORDER BY hash(request_id, "row"), request_id, '
            f'"row" LIMIT {int(max_rows)}'
        )
    table = store.reader.arrow(
        "SELECT COLUMNS('^(inputs|prediction|probabilities)$') "
        f'FROM ({source}) AS w ORDER BY time, request_id, "row"',
        parameters,
        endpoints=[endpoint],
    )
    frame, features, outputs, digests = _shape(table)
    info = WindowInfo(
        endpoint=endpoint,
        window=spec,
        since=since if spec.span is not None else first,
        until=until,
        matched=int(matched),
        rows=len(frame),
        versions=tuple(versions or ()),
    )
    return CapturedWindow(info, frame, features, outputs, digests)


# -- internals -----------------------------------------------------------------------------


def _duration(value: timedelta | None) -> str:
    seconds = 0.0 if value is None else value.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _as_window(window: TrafficWindow | timedelta | int) -> TrafficWindow:
    if isinstance(window, TrafficWindow):
        return window
    if isinstance(window, timedelta):
        return TrafficWindow(span=window)
    if isinstance(window, int) and not isinstance(window, bool):
        return TrafficWindow(rows=window)
    raise InvalidInputError(
        f"A window is a TrafficWindow, a timedelta or a number of records; got {window!r}."
    )


def _shape(
    table: pa.Table,
) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """The features (from ``inputs``) and outputs of captured records, as one frame."""
    arrays: dict[str, pa.Array] = {}
    digests: set[str] = set()
    names = table.column_names
    if "inputs" in names and pa.types.is_struct(table.schema.field("inputs").type):
        inputs = table.column("inputs").combine_chunks()
        for position, child in enumerate(inputs.flatten()):
            name = inputs.type.field(position).name
            arrays[name] = child
            if _all_digests(child):
                digests.add(name)
    features = tuple(arrays)
    if "prediction" in names:
        prediction = table.column("prediction").combine_chunks()
        if pa.types.is_list(prediction.type) or pa.types.is_large_list(prediction.type):
            lengths = pc.list_value_length(prediction)
            width = pc.max(lengths).as_py() or 0
            for position in range(width):
                arrays.setdefault(f"prediction[{position}]", _element(prediction, position))
        elif not pa.types.is_null(prediction.type):
            arrays.setdefault("prediction", prediction)
    if "probabilities" in names and pa.types.is_map(table.schema.field("probabilities").type):
        probabilities = table.column("probabilities").combine_chunks()
        for key in pc.unique(probabilities.keys).to_pylist():
            if key is not None:
                arrays.setdefault(
                    f"probability[{key}]",
                    pc.map_lookup(probabilities, pa.scalar(key, pa.string()), "first"),
                )
    outputs = tuple(name for name in arrays if name not in features)
    frame = (
        pa.table(arrays).to_pandas()
        if arrays
        else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    )
    return frame, features, outputs, frozenset(digests)


def _element(values: pa.Array, position: int) -> pa.Array:
    try:
        return pc.list_element(values, position)
    except (pa.ArrowInvalid, pa.ArrowIndexError):  # lists of different lengths
        rows = values.to_pylist()
        return pa.array(
            [row[position] if row is not None and len(row) > position else None for row in rows]
        )


def _all_digests(values: pa.Array) -> bool:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    if values.null_count == len(values):
        return False
    matches = pc.match_substring_regex(values, _DIGEST.pattern)
    return bool(pc.all(matches, skip_nulls=True).as_py())


__all__ = [
    "DEFAULT_WINDOW",
    "MAX_WINDOW_ROWS",
    "CapturedWindow",
    "TrafficWindow",
    "WindowInfo",
    "read_window",
]
