"""Prometheus metrics of the serving path, built per application and injected.

:meth:`ServingMetrics.create` registers every metric on a registry it is given (never the
global default one), so each app, and each test, has its own. Recording a request is one
append to a queue (:meth:`EndpointSeries.record`); :meth:`ServingMetrics.apply_pending`
adds everything queued to the counters and histograms in bulk, one increment per series
and histogram bucket, with the buckets found by NumPy. It runs whenever the registry is
collected (so a scrape, or ``registry.get_sample_value``, always sees every request
recorded before it), every :data:`APPLY_SECONDS` while a server serves (so in
multiprocess mode a scrape shows the other processes' requests at most that late), and
on the recording call itself when :data:`MAX_PENDING` requests wait. Observing each
request directly cost about 6 µs of the event loop's time (four histogram observations
and a counter, each a Python loop over the buckets and a lock); queueing it costs a few
tenths of one.

Two modes:

- **single process** (one worker, tests in process): the registry holds the metrics and
  a ``ProcessCollector`` (``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
  ``process_open_fds``, ...); :meth:`ServingMetrics.exposition` renders it.
- **multiprocess** (``ferryman serve --workers N``): ``PROMETHEUS_MULTIPROC_DIR`` is set
  before the workers start, so prometheus-client writes every value to memory-mapped
  files in that directory; :meth:`ServingMetrics.exposition` merges all processes' files
  with a ``MultiProcessCollector``. Counters and histograms are summed over processes
  (dead ones included, so totals never go down); ``ferryman_requests_in_flight`` is
  summed over live processes; process metrics are per worker, labelled ``pid``
  (``ferryman_process_*``, sampled by :meth:`ServingMetrics.sample_process`). A worker
  calls :meth:`ServingMetrics.mark_process_dead` when it stops.

The prediction log's counters (:class:`CaptureMetrics`, :attr:`ServingMetrics.capture`)
follow the same rules: counters are incremented by what a process's capture writer
counted since the last sample, so summing over processes (dead ones included) gives the
totals; the backlog gauge is summed over live processes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

# The input and output metrics live in their own module; they are re-exported here.
from ferryman.monitoring._model_data_metrics import SCORE_BUCKETS, BulkHistogram, ModelDataMetrics

#: Latency buckets (seconds), 0.5 ms to 10 s.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Rows-per-model-call buckets.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)

#: Role of a request served to its caller (shadow copies will use ``"shadow"``).
PRIMARY = "primary"

#: Seconds between two applications of the queued requests while a server serves.
APPLY_SECONDS = 1.0
#: Requests queued before the recording call applies them itself.
MAX_PENDING = 50_000

# (series, version, status, seconds, error kind, queue s, compute s, rows in the call)
_Request = tuple[
    "EndpointSeries", str, int, float, str | None, float | None, float | None, int | None
]


class RequestSeries:
    """Pre-bound children for one endpoint, version and protocol (``record`` uses them).

    Not built directly: see :meth:`ServingMetrics.series`.
    """

    __slots__ = ("_counters", "_labels", "_requests", "duration")

    def __init__(self, metrics: ServingMetrics, endpoint: str, version: str, protocol: str):
        self._labels = (endpoint, version, protocol, PRIMARY)
        self._requests = metrics.requests
        self._counters: dict[int, Counter] = {}
        self.duration: BulkHistogram = metrics.request_duration.labels(*self._labels)

    def counter(self, status: int) -> Counter:
        """The ``ferryman_requests_total`` child of one HTTP status code."""
        child = self._counters.get(status)
        if child is None:
            labels = self._labels
            child = self._requests.labels(labels[0], labels[1], labels[2], labels[3], str(status))
            self._counters[status] = child
        return child


class EndpointSeries:
    """Pre-bound children for one endpoint: in flight, model-call histograms, errors.

    Not built directly: see :meth:`ServingMetrics.endpoint`.
    """

    __slots__ = (
        "_by_version",
        "_errors",
        "_kinds",
        "_metrics",
        "_pending",
        "batch_size",
        "compute",
        "in_flight",
        "name",
        "protocol",
        "queue",
    )

    def __init__(self, metrics: ServingMetrics, name: str, protocol: str) -> None:
        self.name = name
        self.protocol = protocol
        self._metrics = metrics
        self._by_version: dict[str, RequestSeries] = {}
        self._kinds: dict[str, Counter] = {}
        self._errors = metrics.errors
        self._pending = metrics._pending
        self.in_flight: Gauge = metrics.in_flight.labels(name)
        self.batch_size: BulkHistogram = metrics.batch_size.labels(name)
        self.queue: BulkHistogram = metrics.queue.labels(name)
        self.compute: BulkHistogram = metrics.compute.labels(name)

    def series(self, version: str) -> RequestSeries:
        """The children of this endpoint serving ``version`` (``name/N``; ``""``: none)."""
        found = self._by_version.get(version)
        if found is None:
            found = RequestSeries(self._metrics, self.name, version, self.protocol)
            self._by_version[version] = found
        return found

    def error(self, kind: str) -> Counter:
        """The ``ferryman_errors_total`` child of one error kind."""
        child = self._kinds.get(kind)
        if child is None:
            child = self._kinds[kind] = self._errors.labels(self.name, kind)
        return child

    def record(
        self,
        *,
        version: str,
        status: int,
        seconds: float,
        kind: str | None = None,
        queue_seconds: float | None = None,
        compute_seconds: float | None = None,
        batch_rows: int | None = None,
    ) -> None:
        """Record one finished request (queued; see the module docstring).

        Args:
            version: The version that served it, ``name/N`` (``""`` when none did).
            status: The HTTP status code answered.
            seconds: Wall time from receipt to the end of the response.
            kind: The error code (e.g. ``schema_validation``) when the request failed.
            queue_seconds: Time the model call waited, when a model call served it.
            compute_seconds: Time the model call took, when a model call served it.
            batch_rows: Rows in that model call, for one request per call only (the
                histogram counts calls); ``None`` for the others.
        """
        pending = self._pending
        pending.append(
            (self, version, status, seconds, kind, queue_seconds, compute_seconds, batch_rows)
        )
        if len(pending) >= MAX_PENDING:
            self._metrics.apply_pending()


#: Outcomes of ``ferryman_capture_records_total``, in the order of the writer's counters.
CAPTURE_OUTCOMES = ("written", "lost", "dropped", "sampled_out")


@dataclass(frozen=True, eq=False)
class CaptureMetrics:
    """What becomes of prediction records, as Prometheus metrics (all prefixed ``ferryman_``).

    Built by :meth:`ServingMetrics.create` (as its ``capture``); the server's periodic
    sampler adds the capture writer's counts to them. Metrics:

    - ``capture_records_total{outcome}``: ``written`` (stored in a segment), ``lost``
      (accepted but not stored: the segment could not be converted or written, e.g. disk
      full), ``dropped`` (refused: the buffer was full or the writer stopped) and
      ``sampled_out`` (requests left out by the endpoint's sampling rate; the other
      outcomes count records, one per row of a request);
    - ``capture_failed_writes_total``: segment writes that failed (each loses its records);
    - ``capture_pending``: requests accepted and waiting for the next flush (a gauge,
      summed over live processes in multiprocess mode).

    Every outcome is exposed from the start, at 0, so that ``increase(...)`` over a window
    is defined before the first loss.

    Attributes:
        records: ``capture_records_total``, labelled by ``outcome``.
        failed_writes: ``capture_failed_writes_total``.
        pending: ``capture_pending``.
        outcomes: The pre-bound child of each outcome of :data:`CAPTURE_OUTCOMES`.
    """

    records: Counter
    failed_writes: Counter
    pending: Gauge
    outcomes: dict[str, Counter]

    @classmethod
    def create(cls, registry: CollectorRegistry) -> CaptureMetrics:
        """Register the capture metrics on ``registry`` and return them."""
        records = Counter(
            "capture_records",
            "Prediction records by what became of them: written, lost (accepted, not "
            "stored), dropped (buffer full), sampled_out (requests, by the sampling rate).",
            ("outcome",),
            namespace="ferryman",
            registry=registry,
        )
        return cls(
            records=records,
            failed_writes=Counter(
                "capture_failed_writes",
                "Prediction log segment writes that failed (their records count as lost).",
                namespace="ferryman",
                registry=registry,
            ),
            pending=Gauge(
                "capture_pending",
                "Requests accepted by the capture writer and waiting for its next flush.",
                namespace="ferryman",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            outcomes={outcome: records.labels(outcome) for outcome in CAPTURE_OUTCOMES},
        )

    def add(
        self,
        *,
        written: int = 0,
        lost: int = 0,
        dropped: int = 0,
        sampled_out: int = 0,
        failed_writes: int = 0,
    ) -> None:
        """Add counts observed since the last call (increases, never totals).

        Raises:
            ValueError: A count is negative; the message names it.
        """
        counts = {
            "written": written,
            "lost": lost,
            "dropped": dropped,
            "sampled_out": sampled_out,
            "failed_writes": failed_writes,
        }
        negative = {name: count for name, count in counts.items() if count < 0}
        if negative:
            raise ValueError(
                f"Capture counts only increase; got negative increases {negative}. "
                "Pass what was counted since the last call."
            )
        for outcome in CAPTURE_OUTCOMES:
            if counts[outcome]:
                self.outcomes[outcome].inc(counts[outcome])
        if failed_writes:
            self.failed_writes.inc(failed_writes)

    def set_pending(self, requests: int) -> None:
        """Set the number of requests waiting for the capture writer's next flush."""
        self.pending.set(requests)


@dataclass(frozen=True, eq=False)
class QueueMetrics:
    """What waits on the serving path, as Prometheus metrics (all prefixed ``ferryman_``).

    Built by :meth:`ServingMetrics.create` (as its ``queues``). The depths are gauges set
    by sampling (``ferryman.server.metrics.QueueSampler``: every few seconds and when
    ``/metrics`` is scraped), never per request; in multiprocess mode they are summed
    over live processes. Metrics:

    - ``batch_queue_depth{endpoint}``: requests waiting in the endpoint's micro-batchers
      (stable version and candidate) for a model call;
    - ``mirror_queue_depth{endpoint}``: shadow copies waiting for the candidate;
    - ``mirror_dropped_total{endpoint}``: shadow copies dropped because the mirror's
      queue was full;
    - ``mirror_batch_size{endpoint}`` histogram: shadow copies served by one candidate
      call (1 for a copy served alone).

    Attributes:
        batch_depth: ``batch_queue_depth``.
        mirror_depth: ``mirror_queue_depth``.
        mirror_dropped: ``mirror_dropped_total``.
        mirror_batch: ``mirror_batch_size``.
    """

    batch_depth: Gauge
    mirror_depth: Gauge
    mirror_dropped: Counter
    mirror_batch: Histogram
    _dropped: dict[str, Counter] = field(default_factory=dict, repr=False)
    _batches: dict[str, Histogram] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> QueueMetrics:
        """Register the queue metrics on ``registry`` and return them."""
        ns = "ferryman"
        endpoint = ("endpoint",)
        return cls(
            batch_depth=Gauge(
                "batch_queue_depth",
                "Requests waiting in the endpoint's micro-batchers for a model call.",
                endpoint,
                namespace=ns,
                registry=registry,
                multiprocess_mode="livesum",
            ),
            mirror_depth=Gauge(
                "mirror_queue_depth",
                "Shadow copies of requests waiting for the candidate.",
                endpoint,
                namespace=ns,
                registry=registry,
                multiprocess_mode="livesum",
            ),
            mirror_dropped=Counter(
                "mirror_dropped",
                "Shadow copies of requests dropped because the mirror's queue was full.",
                endpoint,
                namespace=ns,
                registry=registry,
            ),
            mirror_batch=Histogram(
                "mirror_batch_size",
                "Shadow copies served by one candidate model call.",
                endpoint,
                namespace=ns,
                registry=registry,
                buckets=BATCH_BUCKETS,
            ),
        )

    def set_depths(self, gauge: Gauge, depths: Mapping[str, int]) -> None:
        """Set ``gauge`` (:attr:`batch_depth` or :attr:`mirror_depth`) per endpoint."""
        for endpoint, depth in depths.items():
            gauge.labels(endpoint).set(depth)

    def count_mirror_drop(self, endpoint: str) -> None:
        """Count one shadow copy of ``endpoint`` dropped because the queue was full."""
        child = self._dropped.get(endpoint)
        if child is None:
            child = self._dropped[endpoint] = self.mirror_dropped.labels(endpoint)
        child.inc()

    def observe_mirror_batch(self, endpoint: str, copies: int) -> None:
        """Record one candidate call that served ``copies`` shadow copies of ``endpoint``."""
        child = self._batches.get(endpoint)
        if child is None:
            child = self._batches[endpoint] = self.mirror_batch.labels(endpoint)
        child.observe(copies)


@dataclass(frozen=True, eq=False)
class ServingMetrics:
    """The serving path's Prometheus metrics, registered on one registry.

    Build with :meth:`create`. Metrics (all prefixed ``ferryman_``):

    - ``requests_total{endpoint,version,protocol,role,status}`` counter;
    - ``request_duration_seconds{endpoint,version,protocol,role}`` histogram;
    - ``requests_in_flight{endpoint}`` gauge;
    - ``errors_total{endpoint,kind}`` counter, ``kind`` an error code;
    - ``batch_size{endpoint}`` histogram of rows per model call (one observation per call:
      :meth:`EndpointSeries.record` takes ``batch_rows`` for one request of each call);
    - ``queue_seconds{endpoint}``, ``compute_seconds{endpoint}`` histograms, per request, of
      the wait for its model call and of that call;
    - ``model_load_seconds{endpoint,version}`` gauge: load and warm-up time;
    - the input and output metrics of :class:`ModelDataMetrics`, in :attr:`data`;
    - the prediction log's metrics of :class:`CaptureMetrics`, in :attr:`capture`;
    - the queue depths and shadow mirror metrics of :class:`QueueMetrics`, in :attr:`queues`.

    Attributes:
        registry: The registry the metrics are registered on.
        multiprocess_dir: The ``PROMETHEUS_MULTIPROC_DIR`` of a multiprocess server, or
            ``None`` in single-process mode.
        data: The input and output metrics.
        capture: The prediction log's metrics.
        queues: The queue depths and shadow mirror metrics.
    """

    registry: CollectorRegistry
    multiprocess_dir: Path | None
    requests: Counter
    request_duration: BulkHistogram
    in_flight: Gauge
    errors: Counter
    batch_size: BulkHistogram
    queue: BulkHistogram
    compute: BulkHistogram
    model_load: Gauge
    process: tuple[Gauge, Gauge, Gauge] | None
    data: ModelDataMetrics
    capture: CaptureMetrics
    queues: QueueMetrics
    _endpoints: dict[tuple[str, str], EndpointSeries] = field(default_factory=dict, repr=False)
    _pending: deque[_Request] = field(default_factory=deque, repr=False)
    _apply_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(
        cls, registry: CollectorRegistry, *, multiprocess_dir: Path | None = None
    ) -> ServingMetrics:
        """Register the serving metrics on ``registry`` and return them.

        Args:
            registry: A fresh registry (e.g. ``CollectorRegistry()``); never the global one.
            multiprocess_dir: The directory named by ``PROMETHEUS_MULTIPROC_DIR``, which
                must be set in the environment before ``prometheus_client`` is imported;
                ``None``: single-process mode.
        """
        ns = "ferryman"
        request_labels = ("endpoint", "version", "protocol", "role")
        applier = _PendingApplier()  # first, so that collecting applies the queue first
        registry.register(applier)
        process: tuple[Gauge, Gauge, Gauge] | None = None
        if multiprocess_dir is None:
            ProcessCollector(registry=registry)
        else:
            process = (
                _process_gauge(registry, "resident_memory_bytes", "Resident memory (bytes)."),
                _process_gauge(registry, "cpu_seconds", "User and system CPU time (seconds)."),
                _process_gauge(registry, "open_fds", "Open file descriptors."),
            )
        metrics = cls(
            registry=registry,
            multiprocess_dir=multiprocess_dir,
            requests=Counter(
                "requests",
                "Prediction requests answered, by HTTP status code.",
                (*request_labels, "status"),
                namespace=ns,
                registry=registry,
            ),
            request_duration=BulkHistogram(
                "request_duration_seconds",
                "Wall time of prediction requests (seconds), from receipt to response.",
                request_labels,
                namespace=ns,
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            in_flight=Gauge(
                "requests_in_flight",
                "Prediction requests being served now.",
                ("endpoint",),
                namespace=ns,
                registry=registry,
                multiprocess_mode="livesum",
            ),
            errors=Counter(
                "errors",
                "Failed prediction requests, by error code.",
                ("endpoint", "kind"),
                namespace=ns,
                registry=registry,
            ),
            batch_size=BulkHistogram(
                "batch_size",
                "Rows per model call (a micro-batch may serve several requests).",
                ("endpoint",),
                namespace=ns,
                registry=registry,
                buckets=BATCH_BUCKETS,
            ),
            queue=BulkHistogram(
                "queue_seconds",
                "Time (seconds) a request waited for its model call to start.",
                ("endpoint",),
                namespace=ns,
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            compute=BulkHistogram(
                "compute_seconds",
                "Time (seconds) of the model call that served a request.",
                ("endpoint",),
                namespace=ns,
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            model_load=Gauge(
                "model_load_seconds",
                "Time (seconds) to load and warm up the version an endpoint serves.",
                ("endpoint", "version"),
                namespace=ns,
                registry=registry,
                multiprocess_mode="livemax",
            ),
            process=process,
            data=ModelDataMetrics.create(registry),
            capture=CaptureMetrics.create(registry),
            queues=QueueMetrics.create(registry),
        )
        applier.metrics = metrics
        return metrics

    def endpoint(self, name: str, protocol: str) -> EndpointSeries:
        """The pre-bound children of an endpoint called over ``protocol``.

        Args:
            name: The endpoint's name (``""`` for requests naming no existing endpoint).
            protocol: ``native``, ``oip_v2`` or ``mlflow``.
        """
        key = (name, protocol)
        found = self._endpoints.get(key)
        if found is None:
            found = self._endpoints[key] = EndpointSeries(self, name, protocol)
        return found

    @property
    def pending(self) -> int:
        """Requests recorded and not yet applied to the counters and histograms."""
        return len(self._pending)

    def apply_pending(self) -> int:
        """Add every queued request to the counters and histograms (see the module).

        Thread-safe; requests recorded while it runs wait for the next call.

        Returns:
            How many requests were applied.
        """
        pending = self._pending
        with self._apply_lock:
            items = [pending.popleft() for _ in range(len(pending))]
            if items:
                _apply(items)
            return len(items)

    def observe_model_load(self, endpoint: str, version: str, seconds: float) -> None:
        """Record that ``endpoint`` now serves ``version``, which took ``seconds`` to load."""
        self.model_load.labels(endpoint, version).set(seconds)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (of every process, in multiprocess mode)."""
        self.apply_pending()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def sample_process(self) -> None:
        """Copy this process's memory, CPU time and open files into its per-pid gauges.

        Only in multiprocess mode (single-process mode reads them at each scrape).
        """
        if self.process is None:
            return
        values = {
            sample.name: sample.value
            for family in ProcessCollector(registry=None).collect()
            for sample in family.samples
        }
        memory, cpu, fds = self.process
        _set(memory.set, values.get("process_resident_memory_bytes"))
        _set(cpu.set, values.get("process_cpu_seconds_total"))
        _set(fds.set, values.get("process_open_fds"))

    def mark_process_dead(self) -> None:
        """Drop this process's live gauges from the multiprocess directory (at shutdown)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))  # type: ignore[no-untyped-call]


class _PendingApplier(Collector):
    """Collecting it applies the requests queued on its metrics; it exposes nothing."""

    def __init__(self) -> None:
        self.metrics: ServingMetrics | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        if self.metrics is not None:
            self.metrics.apply_pending()
        return []


_LATENCY_BOUNDS = np.asarray(LATENCY_BUCKETS, dtype=np.float64)
_BATCH_BOUNDS = np.asarray(BATCH_BUCKETS, dtype=np.float64)


def _apply(items: list[_Request]) -> None:
    """Add queued requests to their series: one increment per series and bucket."""
    answered: dict[tuple[EndpointSeries, str, int], int] = {}
    durations: dict[tuple[EndpointSeries, str], list[float]] = {}
    kinds: dict[tuple[EndpointSeries, str], int] = {}
    calls: dict[EndpointSeries, tuple[list[float], list[float], list[float]]] = {}
    for series, version, status, seconds, kind, queue, compute, rows in items:
        key = (series, version, status)
        answered[key] = answered.get(key, 0) + 1
        found = durations.get((series, version))
        if found is None:
            durations[(series, version)] = [seconds]
        else:
            found.append(seconds)
        if kind is not None:
            kinds[(series, kind)] = kinds.get((series, kind), 0) + 1
        if queue is not None or compute is not None or rows is not None:
            lists = calls.get(series)
            if lists is None:
                lists = calls[series] = ([], [], [])
            if queue is not None:
                lists[0].append(queue)
            if compute is not None:
                lists[1].append(compute)
            if rows is not None:
                lists[2].append(rows)
    for (series, version, status), count in answered.items():
        series.series(version).counter(status).inc(count)
    for (series, version), values in durations.items():
        _observe(series.series(version).duration, _LATENCY_BOUNDS, values)
    for (series, kind), count in kinds.items():
        series.error(kind).inc(count)
    for series, (queued, computed, sizes) in calls.items():
        _observe(series.queue, _LATENCY_BOUNDS, queued)
        _observe(series.compute, _LATENCY_BOUNDS, computed)
        _observe(series.batch_size, _BATCH_BOUNDS, sizes)


def _observe(histogram: BulkHistogram, bounds: np.ndarray, values: list[float]) -> None:
    """Observe ``values`` at once: bucket ``i`` holds those <= ``bounds[i]`` (Prometheus's le)."""
    if not values:
        return
    array = np.asarray(values, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, array, side="left"), minlength=len(bounds) + 1)
    histogram.observe_counts(counts.tolist(), float(array.sum()))


def _process_gauge(registry: CollectorRegistry, name: str, documentation: str) -> Gauge:
    return Gauge(
        f"process_{name}",
        f"{documentation} Per worker process (label pid).",
        namespace="ferryman",
        registry=registry,
        multiprocess_mode="liveall",
    )


def _set(setter: Callable[[float], None], value: float | None) -> None:
    if value is not None:
        setter(value)


__all__ = [
    "APPLY_SECONDS",
    "BATCH_BUCKETS",
    "CAPTURE_OUTCOMES",
    "LATENCY_BUCKETS",
    "MAX_PENDING",
    "PRIMARY",
    "SCORE_BUCKETS",
    "BulkHistogram",
    "CaptureMetrics",
    "EndpointSeries",
    "ModelDataMetrics",
    "QueueMetrics",
    "RequestSeries",
    "ServingMetrics",
]
