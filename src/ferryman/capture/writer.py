"""The capture writer: one cheap call per prediction, Parquet segments written in the background.

:meth:`CaptureWriter.submit` runs on the server's event loop for every prediction. It
only decides sampling (a CRC-32 of the request id, so a request's primary and shadow
records are kept or dropped together) and appends references to a bounded buffer; when
the buffer is full the submission is dropped and counted, never waited for. A background
thread groups what is buffered by shape every ``convert_interval`` seconds (the
per-request Python work, in small doses), and every ``flush_interval`` seconds (or as
soon as ``flush_records`` submissions are waiting) turns each group into Arrow columns in
bulk, applies each endpoint's privacy policy and writes one Parquet segment per endpoint
and hour.

Durability: :meth:`CaptureWriter.stop` writes everything accepted before it returns (the
SIGTERM path); a process killed outright loses at most what arrived since the last flush,
about ``flush_interval`` seconds. A segment that cannot be written (disk full, read-only,
unreachable store) is counted in :attr:`CaptureWriter.records_lost` and logged once per
kind of failure; serving carries on.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal

from ferryman._background import lower_this_thread
from ferryman.capture._layout import LogStorage, check_endpoint, hour_start, process_token
from ferryman.capture._records import Grouped, Submission, endpoint_tables, record_count
from ferryman.capture._schemas import concat
from ferryman.capture.privacy import PrivacyPolicy
from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction

logger = logging.getLogger("ferryman.capture")

#: Which part a model version played in producing a record.
Role = Literal["primary", "shadow", "batch"]
ROLES: Final[tuple[str, ...]] = ("primary", "shadow", "batch")

_EMPTY: Mapping[str, Sequence[Any]] = {}
_CRC_RANGE = 2**32


@dataclass(frozen=True)
class EndpointCapture:
    """How one endpoint's predictions are captured.

    Attributes:
        privacy: The per-column privacy policy applied before anything is stored.
        sample_rate: Fraction of requests recorded, in [0, 1]; 1 records every request.
        retention: How long records are kept; ``None`` keeps them until erased.

    Raises:
        InvalidInputError: ``sample_rate`` is outside [0, 1] or ``retention`` is not
            positive.
    """

    privacy: PrivacyPolicy = field(default_factory=PrivacyPolicy)
    sample_rate: float = 1.0
    retention: timedelta | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise InvalidInputError(
                f"sample_rate must be a fraction in [0, 1], got {self.sample_rate!r}."
            )
        if self.retention is not None and self.retention <= timedelta(0):
            raise InvalidInputError(f"retention must be positive, got {self.retention}.")


def sampled(request_id: str, rate: float) -> bool:
    """Whether the request ``request_id`` is recorded at sampling rate ``rate``.

    Deterministic: the CRC-32 of the id's UTF-8 bytes, as a fraction of 2**32, is below
    ``rate``. Every process and every role (primary, shadow) decides alike.

    >>> sampled("any-id", 1.0), sampled("any-id", 0.0)
    (True, False)
    """
    if rate >= 1.0:
        return True
    return zlib.crc32(request_id.encode("utf-8")) < rate * _CRC_RANGE


class CaptureWriter:
    """Buffer prediction records and write them as Parquet segments off the hot path.

    Args:
        root: Where the log lives: a local directory or an fsspec URL; segments go under
            ``<root>/predictions/``.
        secret: Key of the hashed columns (``FERRYMAN_SECRET_KEY``); without one, columns
            whose policy is ``hash`` are dropped.
        flush_interval: Seconds between background flushes; also the most that a killed
            process loses.
        convert_interval: Seconds between two groupings of buffered submissions
            between writes (at most ``flush_interval``). Grouping holds the GIL for a
            few microseconds per submission; doing it a tenth of a second's records at a
            time keeps requests from waiting behind a whole second's worth. The Arrow
            columns are built once per write, their cost being mostly per group.
        max_pending: Most submissions (requests) buffered; beyond it they are dropped and
            counted in :attr:`records_dropped`.
        flush_records: Buffered submissions that trigger a flush before the interval ends.
        storage_options: Keyword arguments for the fsspec filesystem.
        process: Name of this writer in segment file names; default: host, pid and a
            random token.
        clock: Wall clock (seconds since the epoch) stamping each record.
    """

    def __init__(
        self,
        *,
        root: str | Path,
        secret: bytes | None = None,
        flush_interval: float = 1.0,
        convert_interval: float = 0.1,
        max_pending: int = 100_000,
        flush_records: int = 20_000,
        storage_options: Mapping[str, Any] | None = None,
        process: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if flush_interval <= 0:
            raise InvalidInputError(f"flush_interval must be positive, got {flush_interval!r}.")
        if convert_interval <= 0:
            raise InvalidInputError(f"convert_interval must be positive, got {convert_interval!r}.")
        if max_pending < 1 or flush_records < 1:
            raise InvalidInputError("max_pending and flush_records must be at least 1.")
        self.root = str(root)
        self.secret = secret
        self.flush_interval = flush_interval
        self.convert_interval = min(convert_interval, flush_interval)
        self.max_pending = max_pending
        self.flush_records = flush_records
        self.storage_options = dict(storage_options or {})
        self.process = process
        self.clock = clock
        self._endpoints: dict[str, EndpointCapture] = {}
        self._rates: dict[str, float] = {}
        self._pending: deque[Submission] = deque()
        self._grouped: dict[str, Grouped] = {}
        self._grouped_items = 0
        self._closed = False
        self._dropped = 0
        self._sampled_out = 0
        self._written = 0
        self._lost = 0
        self._failed_writes = 0
        self._sequence = 0
        self._logged: set[str] = set()
        self._storage: LogStorage | None = None
        self._name: str | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"CaptureWriter(root={self.root!r}, flush_interval={self.flush_interval!r}, "
            f"max_pending={self.max_pending!r}, flush_records={self.flush_records!r})"
        )

    # -- configuration --------------------------------------------------------------

    def configure(self, endpoint: str, capture: EndpointCapture) -> None:
        """Set how ``endpoint``'s predictions are captured (privacy, sampling, retention).

        Takes effect for records flushed from now on; endpoints never configured keep
        every column and every request.

        Raises:
            InvalidInputError: ``endpoint`` is not a valid endpoint name.
        """
        check_endpoint(endpoint)
        if capture.privacy.requires_secret and self.secret is None:
            logger.warning(
                "capture: endpoint %s hashes columns but no secret key is configured "
                "(FERRYMAN_SECRET_KEY); those columns are dropped, not stored",
                endpoint,
            )
        self._endpoints[endpoint] = capture
        self._rates[endpoint] = capture.sample_rate

    def capture_of(self, endpoint: str) -> EndpointCapture:
        """How ``endpoint`` is captured (the defaults when it was never configured)."""
        return self._endpoints.get(endpoint) or _DEFAULT

    # -- the hot path -----------------------------------------------------------------

    def submit(
        self,
        request_id: str,
        endpoint: str,
        version: str | None,
        role: str,
        data: Any,
        prediction: Prediction | None,
        latency_ms: float,
        status: int = 200,
        error: BaseException | str | None = None,
        passthrough: Mapping[str, Sequence[Any]] = _EMPTY,
        columns: Sequence[str] | None = None,
    ) -> None:
        """Accept one request's records; never blocks, never raises for a full buffer.

        Only references are kept: do not modify ``data``, ``prediction`` or
        ``passthrough`` afterwards.

        Args:
            request_id: The request's id (shared by its primary and shadow records).
            endpoint: The endpoint that served it.
            version: The model version, ``"name/N"``, or ``None`` when none was chosen.
            role: ``"primary"``, ``"shadow"`` or ``"batch"``.
            data: The model input (model payload): the validated DataFrame, 2-D array
                or dict of column arrays (arrays and dicts cost the background thread far
                less than DataFrames; see ``docs/capture.md``); for a rejected request,
                what was decoded (a dict of column lists or a list of records); or
                ``None``.
            prediction: The model's output, or ``None`` when the request failed.
            latency_ms: Time to answer, in milliseconds.
            status: The HTTP status answered.
            error: The error (its text and code are recorded), or ``None``.
            passthrough: Passthrough columns, one list of values per column.
            columns: Column names of a 2-D array ``data`` (default ``x0``, ``x1``, ...).
        """
        rate = self._rates.get(endpoint, 1.0)
        if rate < 1.0 and not sampled(request_id, rate):
            self._sampled_out += 1
            return
        item: Submission = (
            self.clock(),
            request_id,
            endpoint,
            version,
            role,
            data,
            prediction,
            latency_ms,
            status,
            error,
            passthrough,
            columns,
        )
        pending = self._pending
        if len(pending) >= self.max_pending or self._closed:
            self._drop(item)
            return
        pending.append(item)
        if len(pending) >= self.flush_records and not self._wake.is_set():
            self._wake.set()

    # -- counters -----------------------------------------------------------------------

    @property
    def records_written(self) -> int:
        """Records stored in segments so far."""
        return self._written

    @property
    def records_lost(self) -> int:
        """Records accepted but lost because their segment could not be converted or written."""
        return self._lost

    @property
    def records_dropped(self) -> int:
        """Records refused because the buffer was full (or the writer stopped)."""
        return self._dropped

    @property
    def records_sampled_out(self) -> int:
        """Requests not recorded because of the endpoint's sampling rate."""
        return self._sampled_out

    @property
    def failed_writes(self) -> int:
        """Segment writes that failed."""
        return self._failed_writes

    @property
    def pending(self) -> int:
        """Submissions waiting for the next flush (grouped or not yet)."""
        return len(self._pending) + self._grouped_items

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background flushing thread (idempotent)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ferryman-capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, write everything accepted, and stop the thread.

        Args:
            timeout: Longest wait (seconds) for the background thread's last flush;
                ``None`` waits as long as it takes. Whatever is still buffered after it
                is written by the calling thread.
        """
        self._closed = True
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.flush()

    def flush(self) -> int:
        """Write everything buffered now, on the calling thread.

        Returns:
            The number of records written by this call.
        """
        with self._flush_lock:
            self._convert_pending()
            return self._write_converted()

    # -- internals ------------------------------------------------------------------------

    def _run(self) -> None:
        lower_this_thread()
        # Group often, build and write once per flush interval: grouping is the per-request
        # Python work, and small doses keep requests from waiting behind a second's worth.
        due = time.monotonic() + self.flush_interval
        while not self._stopping.is_set():
            woken = self._wake.wait(max(0.0, min(self.convert_interval, due - time.monotonic())))
            self._wake.clear()
            try:
                with self._flush_lock:
                    self._convert_pending()
                    if woken or time.monotonic() >= due:
                        due = time.monotonic() + self.flush_interval
                        self._write_converted()
            except Exception as exc:  # the thread must outlive any bug in one flush
                self._log_once(
                    f"flush:{type(exc).__name__}",
                    "capture: a flush failed (%s); records were counted as lost",
                    type(exc).__name__,
                )

    def _drop(self, item: Submission) -> None:
        with self._lock:
            self._dropped += record_count(item)
        self._log_once(
            "buffer_full",
            "capture: the buffer is full (max_pending=%d) or the writer stopped; records are "
            "dropped and counted in records_dropped",
            self.max_pending,
        )

    def _storage_now(self) -> LogStorage:
        if self._storage is None:
            self._storage = LogStorage(root=self.root, storage_options=self.storage_options)
            self._name = self.process or process_token()
        return self._storage

    def _convert_pending(self) -> None:
        """Group every buffered submission by endpoint and shape, for the next write."""
        pending = self._pending
        items = [pending.popleft() for _ in range(len(pending))]
        if not items:
            return
        self._grouped_items += len(items)  # still pending: counted while grouped
        by_endpoint: dict[str, list[Submission]] = {}
        for item in items:
            by_endpoint.setdefault(item[2], []).append(item)
        for endpoint, submissions in by_endpoint.items():
            grouped = self._grouped.get(endpoint)
            if grouped is None:
                grouped = self._grouped[endpoint] = Grouped()
            before = grouped.count
            with _collection_paused():
                try:
                    grouped.add(submissions)
                except Exception as exc:  # keep every submission that can be read
                    rest = submissions[grouped.count - before :]
                    self._add_readable(endpoint, grouped, rest, type(exc).__name__)

    def _add_readable(
        self, endpoint: str, grouped: Grouped, submissions: list[Submission], failure: str
    ) -> None:
        """Add submissions one by one, counting as lost those that cannot be read."""
        lost = unread = 0
        for item in submissions:
            try:
                grouped.add([item])
            except Exception:
                lost += record_count(item)
                unread += 1
        self._grouped_items -= unread
        self._count_lost(endpoint, failure, lost)

    def _write_converted(self) -> int:
        """Make the grouped records into tables and write them: a segment per endpoint and hour."""
        grouped, self._grouped = self._grouped, {}
        self._grouped_items = 0
        written = 0
        for endpoint, records in grouped.items():
            for hour, table in self._convert(endpoint, records):
                written += self._write_segment(endpoint, hour, table)
        return written

    def _convert(self, endpoint: str, grouped: Grouped) -> list[tuple[int, Any]]:
        policy = self.capture_of(endpoint).privacy
        try:
            with _collection_paused():
                return grouped.tables(policy, self.secret)
        except Exception as exc:
            failure = type(exc).__name__
        # Something in the batch cannot be converted: keep every submission that can.
        tables: list[tuple[int, Any]] = []
        lost = 0
        for item in grouped.submissions():
            try:
                tables.extend(endpoint_tables([item], policy, self.secret))
            except Exception:
                lost += record_count(item)
        self._count_lost(endpoint, failure, lost)
        by_hour: dict[int, list[Any]] = {}
        for hour, table in tables:
            by_hour.setdefault(hour, []).append(table)
        return [(hour, concat(parts)) for hour, parts in by_hour.items()]

    def _count_lost(self, endpoint: str, failure: str, lost: int) -> None:
        if not lost:
            return
        with self._lock:
            self._lost += lost
        # The exception's text may quote input values: log only its type.
        self._log_once(
            f"convert:{failure}",
            "capture: records of endpoint %s could not be converted (%s); %d lost",
            endpoint,
            failure,
            lost,
        )

    def _write_segment(self, endpoint: str, hour: int, table: Any) -> int:
        storage = self._storage_now()
        self._sequence += 1
        name = f"{self._name}-{self._sequence:06d}"
        rows = int(table.num_rows)
        try:
            storage.write(
                storage.segment_path("predictions", endpoint, hour_start(hour), name), table
            )
        except Exception as exc:
            with self._lock:
                self._lost += rows
                self._failed_writes += 1
            number = exc.errno if isinstance(exc, OSError) else None
            code = errno.errorcode.get(number, "") if number is not None else ""
            self._log_once(
                f"write:{type(exc).__name__}:{code}",
                "capture: cannot write prediction segments under %s (%s %s); records are "
                "counted in records_lost until writing works again (logged once per kind)",
                self.root,
                type(exc).__name__,
                code,
            )
            return 0
        with self._lock:
            self._written += rows
        return rows

    def _log_once(self, kind: str, message: str, *args: object) -> None:
        if kind in self._logged:
            return
        self._logged.add(kind)
        logger.error(message, *args)


_DEFAULT = EndpointCapture()


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is converted.

    Converting allocates many short-lived objects while every buffered request is still
    referenced; each collection would walk all of them (measured: 30-40 % of the
    conversion time). Reference counting still frees everything; the pause lasts one
    conversion, milliseconds.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


__all__ = ["ROLES", "CaptureWriter", "EndpointCapture", "Role", "sampled"]
