"""The flusher: writes a process's metric buckets to the metadata store every second.

Every server process runs one :class:`MetricFlusher` beside its
:class:`~ferryman.monitoring.MonitoringRecorder`. Each second, on its own thread (never
on the event loop), it drains the recorder and upserts every bucket that changed into
the ``metric_windows`` table, one row per endpoint, version, role, process and bucket
start. A process only ever writes its own rows, and always their full cumulative
counts, so a write is an idempotent overwrite: a failed write (store unreachable) is
simply repeated by the next flush, and readers add the rows of all processes up.
Buckets older than the retention horizon (48 hours by default) are deleted every few
minutes. :meth:`MetricFlusher.stop` flushes a last time.

Between two writes the thread drains the recorder every tenth of a second
(``drain_interval_seconds``): applying the queued observations is Python work that holds
the GIL, and applying a tenth of a second's worth at a time keeps a request that arrives
meanwhile from waiting behind a whole second's.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError, OperationalError

from ferryman._background import lower_this_thread
from ferryman.errors import InvalidInputError, StoreUnavailableError
from ferryman.monitoring.recorder import BucketSnapshot, MonitoringRecorder
from ferryman.store import Database, safe_url
from ferryman.store._tables import MetricWindowRow

logger = logging.getLogger(__name__)

_KEY_COLUMNS = ("endpoint", "version", "role", "process", "bucket_start")


class MetricFlusher:
    """Persist a recorder's buckets to the store on a background thread.

    Args:
        database: The metadata store (opened by :meth:`start` if it is not yet).
        recorder: The recorder whose buckets to write.
        interval_seconds: Seconds between flushes.
        drain_interval_seconds: Seconds between two drains of the recorder between
            flushes (at most ``interval_seconds``).
        retention: How long buckets are kept in the store; older ones are deleted.
        prune_interval_seconds: Seconds between two deletions of expired buckets.
        process: This process's identity in the stored rows; by default
            ``host:pid:random`` chosen in :meth:`start`, unique per process lifetime.
        clock: Returns the current time as Unix seconds (injectable for tests).

    Raises:
        InvalidInputError: An interval or the retention is not positive, or
            ``process`` is empty or longer than 100 characters.
    """

    def __init__(
        self,
        *,
        database: Database,
        recorder: MonitoringRecorder,
        interval_seconds: float = 1.0,
        drain_interval_seconds: float = 0.1,
        retention: timedelta = timedelta(hours=48),
        prune_interval_seconds: float = 300.0,
        process: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (interval_seconds > 0 and prune_interval_seconds > 0 and drain_interval_seconds > 0):
            raise InvalidInputError(
                f"MetricFlusher intervals must be positive seconds, got interval_seconds="
                f"{interval_seconds!r}, drain_interval_seconds={drain_interval_seconds!r}, "
                f"prune_interval_seconds={prune_interval_seconds!r}."
            )
        if retention <= timedelta(0):
            raise InvalidInputError(f"MetricFlusher retention must be positive, got {retention}.")
        if process is not None and not 0 < len(process) <= 100:
            raise InvalidInputError(
                f"MetricFlusher process must be 1 to 100 characters, got {process!r}."
            )
        self.database = database
        self.recorder = recorder
        self.interval_seconds = interval_seconds
        self.drain_interval_seconds = min(drain_interval_seconds, interval_seconds)
        self.retention = retention
        self.prune_interval_seconds = prune_interval_seconds
        self.process = process
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self._last_prune = -float("inf")

    def __repr__(self) -> str:
        return (
            f"MetricFlusher(database={self.database!r}, interval_seconds="
            f"{self.interval_seconds}, retention={self.retention!r}, process={self.process!r})"
        )

    @property
    def is_running(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> MetricFlusher:
        """Open the store if needed and start flushing in the background.

        Returns:
            ``self``.

        Raises:
            RuntimeError: The flusher already runs.
            StoreUnavailableError: The store cannot be reached.
        """
        if self.is_running:
            raise RuntimeError("MetricFlusher.start() called twice; call stop() first.")
        if self.process is None:
            host = socket.gethostname()[:60]
            self.process = f"{host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.database.open()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="ferryman-metric-flusher", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the thread and flush what is left (no-op when not running).

        This blocks on the store: from async code (an ASGI lifespan), call it in a
        worker thread, e.g. ``await anyio.to_thread.run_sync(flusher.stop)``.

        Args:
            timeout: Seconds to wait for the thread to finish its current flush.

        Raises:
            StoreUnavailableError: The final flush could not reach the store.
        """
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._thread = None
        self.flush()

    def flush(self) -> int:
        """Drain the recorder and write every changed bucket now.

        Returns:
            How many bucket rows were written.

        Raises:
            StoreUnavailableError: The store cannot be reached; the buckets stay in
                memory and the next flush writes them.
        """
        with self._flush_lock:
            snapshots = self.recorder.collect()
            if snapshots:
                self._upsert(snapshots)
                self.recorder.confirm(snapshots)
            return len(snapshots)

    def prune(self) -> int:
        """Delete buckets that started before the retention horizon.

        Returns:
            How many rows were deleted (across all processes).

        Raises:
            StoreUnavailableError: The store cannot be reached.
        """
        horizon = datetime.fromtimestamp(self.clock(), UTC) - self.retention
        statement = delete(MetricWindowRow).where(MetricWindowRow.bucket_start < horizon)
        try:
            with self.database.write() as session:
                result = session.execute(statement)
        except (OperationalError, DBAPIError) as exc:
            raise self._unavailable(exc) from exc
        return int(getattr(result, "rowcount", 0) or 0)

    def _run(self) -> None:
        lower_this_thread()
        due = time.monotonic() + self.interval_seconds
        while not self._stop.wait(
            min(self.drain_interval_seconds, max(0.0, due - time.monotonic()))
        ):
            try:
                if time.monotonic() < due:
                    self.recorder.drain()
                    continue
                due = time.monotonic() + self.interval_seconds
                self.flush()
                now = time.monotonic()
                if now - self._last_prune >= self.prune_interval_seconds:
                    self._last_prune = now
                    self.prune()
            except Exception:  # the thread must outlive a store outage; retried next time
                logger.exception(
                    "Could not write metric buckets; retrying in %ss.", self.interval_seconds
                )

    def _upsert(self, snapshots: Sequence[BucketSnapshot]) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        rows = [
            {
                "endpoint": snapshot.endpoint,
                "version": snapshot.version,
                "role": snapshot.role,
                "process": self.process or "",
                "bucket_start": snapshot.bucket_start,
                "bucket_seconds": snapshot.bucket_seconds,
                "data": snapshot.data,
                "updated_at": now,
            }
            for snapshot in snapshots
        ]
        statement = self._insert()
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY_COLUMNS),
            set_={
                "bucket_seconds": statement.excluded.bucket_seconds,
                "data": statement.excluded.data,
                "updated_at": statement.excluded.updated_at,
            },
        )
        try:
            with self.database.write() as session:
                session.execute(statement, rows)
        except (OperationalError, DBAPIError) as exc:
            raise self._unavailable(exc) from exc

    def _insert(self) -> Any:
        if self.database.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(MetricWindowRow)
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(MetricWindowRow)

    def _unavailable(self, exc: DBAPIError) -> StoreUnavailableError:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return StoreUnavailableError(
            f"Cannot write metric buckets to {safe_url(self.database.url)}: {reason}"
        )


__all__ = ["MetricFlusher"]
