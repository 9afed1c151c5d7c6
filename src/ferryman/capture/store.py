"""The log as a whole: query, tail, export, feedback, performance, review, retention, erasure.

:class:`LogStore` is what the CLI and the HTTP routes talk to. It reads the segments that
every writer process left under the root (see ``docs/capture.md`` for the layout), and
writes feedback and review verdicts synchronously (they are acknowledged only once
stored). Every call is blocking: servers run them on a worker thread.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferryman.capture import feedback as _feedback
from ferryman.capture import maintenance as _maintenance
from ferryman.capture import performance as _performance
from ferryman.capture import review as _review
from ferryman.capture._layout import LogStorage, check_endpoint
from ferryman.capture.query import ExportFormat, LogReader, QueryResult

if TYPE_CHECKING:
    from ferryman.capture.feedback import Feedback, FeedbackReport
    from ferryman.capture.maintenance import CompactionReport, EraseReport, RetentionReport
    from ferryman.capture.performance import PerformanceReport, Task
    from ferryman.capture.review import ReviewCandidate, ReviewMark
    from ferryman.config import Settings


class LogStore:
    """Read and manage the prediction log under one root.

    Args:
        root: A local directory or an fsspec URL (default layout: ``FERRYMAN_HOME/logs``).
        secret: The hashing key (``FERRYMAN_SECRET_KEY``), for ``pii_hash`` in queries.
        storage_options: Keyword arguments for the fsspec filesystem.
        query_timeout: Seconds after which a query is stopped.
        max_rows: Most rows one query returns.
        flush: Writes this process's buffered predictions; called before an erasure and
            before feedback or a verdict is refused for an unknown request id.
        clock: Wall clock (seconds since the epoch), for receipt times.
    """

    def __init__(
        self,
        *,
        root: str | Path,
        secret: bytes | None = None,
        storage_options: Mapping[str, Any] | None = None,
        query_timeout: float = 30.0,
        max_rows: int = 10_000,
        flush: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = str(root)
        self.secret = secret
        self.storage_options = dict(storage_options or {})
        self.query_timeout = query_timeout
        self.max_rows = max_rows
        self.flush = flush
        self.clock = clock
        self.storage = LogStorage(root=self.root, storage_options=self.storage_options)
        self.reader = LogReader(
            storage=self.storage,
            secret=secret,
            query_timeout=query_timeout,
            max_rows=max_rows,
        )

    def __repr__(self) -> str:
        return f"LogStore(root={self.root!r}, query_timeout={self.query_timeout!r})"

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> LogStore:
        """The store at ``settings.home/logs`` with the configured secret key."""
        secret = settings.secret_key
        return cls(
            root=settings.home.resolve() / "logs",
            secret=None if secret is None else secret.get_secret_value().encode("utf-8"),
            **options,
        )

    def now(self) -> dt.datetime:
        """The current time according to ``clock`` (aware, UTC)."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- reading -------------------------------------------------------------------

    def query(
        self,
        sql: str,
        *,
        endpoint: str | None = None,
        allowed: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Run one SELECT over the views; see :meth:`LogReader.query`.

        Raises:
            QueryError: DuckDB rejected the query (its message) or it is not one SELECT.
            InvalidInputError: ``endpoint`` is invalid or outside ``allowed``.
        """
        return self.reader.query(sql, endpoint=endpoint, allowed=allowed, limit=limit)

    def tail(
        self,
        endpoint: str,
        n: int = 20,
        *,
        version: str | None = None,
        role: str | None = None,
        status: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> QueryResult:
        """The latest ``n`` records of ``endpoint``, newest first; see :meth:`LogReader.tail`."""
        return self.reader.tail(
            endpoint, n, version=version, role=role, status=status, since=since, until=until
        )

    def export(
        self,
        endpoint: str,
        path: str | Path,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        format: ExportFormat = "parquet",
        role: str | None = "primary",
    ) -> int:
        """Write records joined with feedback for retraining; see :meth:`LogReader.export`."""
        return self.reader.export(
            endpoint, path, since=since, until=until, format=format, role=role
        )

    # -- feedback and performance --------------------------------------------------------

    def submit_feedback(
        self,
        items: Sequence[Feedback | Mapping[str, Any]],
        *,
        allowed: Sequence[str] | None = None,
    ) -> FeedbackReport:
        """Store feedback; see :func:`ferryman.capture.feedback.submit_feedback`.

        Raises:
            InvalidInputError: An item is invalid (the message names it).
        """
        return _feedback.submit_feedback(
            self.reader, self.storage, items, now=self.now(), allowed=allowed, flush=self.flush
        )

    def performance(
        self,
        endpoint: str,
        *,
        since: dt.datetime,
        until: dt.datetime | None = None,
        task: Task = "auto",
    ) -> PerformanceReport:
        """Realised performance per version; see :func:`~ferryman.capture.performance.performance`.

        ``until`` defaults to now.
        """
        check_endpoint(endpoint)
        return _performance.performance(
            self.reader, endpoint, since=since, until=until or self.now(), task=task
        )

    # -- review ------------------------------------------------------------------------

    def review_candidates(
        self,
        endpoint: str,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        confidence_below: float = 0.6,
    ) -> list[ReviewCandidate]:
        """Records worth a look; see :func:`ferryman.capture.review.review_candidates`."""
        return _review.review_candidates(
            self.reader,
            endpoint,
            since=since,
            until=until,
            limit=limit,
            confidence_below=confidence_below,
        )

    def mark(
        self,
        endpoint: str,
        request_id: str,
        verdict: str,
        *,
        reviewer: str,
        comment: str = "",
        row: int = 0,
    ) -> ReviewMark:
        """Store a verdict; see :func:`ferryman.capture.review.mark`.

        Raises:
            InvalidInputError: The verdict is unknown or a field invalid.
            RecordNotFoundError: No such record on ``endpoint``.
        """
        return _review.mark(
            self.reader,
            self.storage,
            endpoint,
            request_id,
            verdict,
            reviewer=reviewer,
            now=self.now(),
            comment=comment,
            row=row,
            flush=self.flush,
        )

    # -- maintenance ----------------------------------------------------------------------

    def erase(self, where: str) -> EraseReport:
        """Remove the matched requests everywhere; see :func:`~ferryman.capture.maintenance.erase`.

        Raises:
            QueryError: ``where`` is not a valid condition over ``predictions``.
        """
        return _maintenance.erase(self.reader, self.storage, where, flush=self.flush)

    def apply_retention(
        self,
        ttl: Mapping[str, dt.timedelta],
        *,
        now: dt.datetime | None = None,
        default: dt.timedelta | None = None,
    ) -> RetentionReport:
        """Remove records past their TTL; see :func:`.maintenance.apply_retention`."""
        return _maintenance.apply_retention(
            self.storage, ttl, now=now or self.now(), default=default
        )

    def compact(
        self, *, now: dt.datetime | None = None, settle: dt.timedelta = dt.timedelta(minutes=10)
    ) -> CompactionReport:
        """Merge finished hours' segments; see :func:`~ferryman.capture.maintenance.compact`."""
        return _maintenance.compact(self.storage, now=now or self.now(), settle=settle)
