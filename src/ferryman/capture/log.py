"""One server process's prediction log: the writer for the hot path, the store for the rest.

A server builds one :class:`PredictionLog` (``PredictionLog.from_settings``), configures
each endpoint's capture (privacy, sampling, retention) as endpoints load, starts it in
its lifespan and stops it on shutdown (which writes everything accepted). The serving
path calls ``log.writer.submit(...)``; routes use ``log.store``. With
``maintenance_interval`` set, a background thread compacts finished hours and applies
retention; across several processes on one host the maintenance lock lets one of them
do it at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferryman._background import lower_this_thread
from ferryman.capture.store import LogStore
from ferryman.capture.writer import CaptureWriter, EndpointCapture

if TYPE_CHECKING:
    from ferryman.capture.maintenance import CompactionReport, RetentionReport
    from ferryman.config import Settings

logger = logging.getLogger("ferryman.capture")


class PredictionLog:
    """The capture writer and the log store of one process, sharing one root.

    Args:
        root: A local directory or an fsspec URL.
        secret: The hashing key (``FERRYMAN_SECRET_KEY``).
        flush_interval: Seconds between writer flushes (the most a killed process loses).
        max_pending: Most requests buffered before new ones are dropped and counted.
        flush_records: Buffered requests that trigger an early flush.
        storage_options: Keyword arguments for the fsspec filesystem.
        query_timeout: Seconds after which a query is stopped.
        max_rows: Most rows one query returns.
        maintenance_interval: Seconds between compaction and retention runs; ``None``
            runs none (use :meth:`maintain` or ``ferryman logs retention``).
        default_retention: TTL of endpoints configured without one; ``None`` keeps them.
        clock: Wall clock (seconds since the epoch).
    """

    def __init__(
        self,
        *,
        root: str | Path,
        secret: bytes | None = None,
        flush_interval: float = 1.0,
        max_pending: int = 100_000,
        flush_records: int = 20_000,
        storage_options: Mapping[str, Any] | None = None,
        query_timeout: float = 30.0,
        max_rows: int = 10_000,
        maintenance_interval: float | None = 600.0,
        default_retention: dt.timedelta | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = str(root)
        self.maintenance_interval = maintenance_interval
        self.default_retention = default_retention
        self.writer = CaptureWriter(
            root=root,
            secret=secret,
            flush_interval=flush_interval,
            max_pending=max_pending,
            flush_records=flush_records,
            storage_options=storage_options,
            clock=clock,
        )
        self.store = LogStore(
            root=root,
            secret=secret,
            storage_options=storage_options,
            query_timeout=query_timeout,
            max_rows=max_rows,
            flush=self.writer.flush,
            clock=clock,
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"PredictionLog(root={self.root!r}, "
            f"flush_interval={self.writer.flush_interval!r}, "
            f"maintenance_interval={self.maintenance_interval!r})"
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> PredictionLog:
        """The log at ``settings.home/logs`` with the configured secret key.

        Args:
            settings: The settings in force.
            options: Any other constructor argument.
        """
        secret = settings.secret_key
        return cls(
            root=settings.home.resolve() / "logs",
            secret=None if secret is None else secret.get_secret_value().encode("utf-8"),
            **options,
        )

    def configure(self, endpoint: str, capture: EndpointCapture) -> None:
        """Set ``endpoint``'s privacy policy, sampling rate and retention.

        Raises:
            InvalidInputError: ``endpoint`` is not a valid endpoint name.
        """
        self.writer.configure(endpoint, capture)

    def retention(self) -> dict[str, dt.timedelta]:
        """Endpoint -> TTL for every configured endpoint that has one."""
        found: dict[str, dt.timedelta] = {}
        for endpoint in self.store.storage.endpoints("predictions"):
            ttl = self.writer.capture_of(endpoint).retention
            if ttl is not None:
                found[endpoint] = ttl
        return found

    def start(self) -> None:
        """Start the writer's thread and, if configured, the maintenance thread."""
        self.writer.start()
        if self.maintenance_interval is not None and self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._maintain_loop, name="ferryman-capture-maintenance", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop maintenance and write everything the writer accepted (blocking)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.writer.stop(timeout)

    def maintain(self, now: dt.datetime | None = None) -> tuple[CompactionReport, RetentionReport]:
        """Compact finished hours and apply every endpoint's retention once."""
        when = now or self.store.now()
        compacted = self.store.compact(now=when)
        removed = self.store.apply_retention(
            self.retention(), now=when, default=self.default_retention
        )
        return compacted, removed

    def _maintain_loop(self) -> None:
        lower_this_thread()
        interval = self.maintenance_interval or 600.0
        while not self._stopping.wait(interval):
            try:
                self.maintain()
            except Exception as exc:  # keep the thread; the next run may succeed
                logger.error("capture: log maintenance failed (%s)", type(exc).__name__)
