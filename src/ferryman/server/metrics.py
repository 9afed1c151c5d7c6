"""Request metrics of the prediction routes, and ``GET /metrics``.

:class:`MetricsMiddleware` (pure ASGI) times every ``POST`` to a prediction route —
``/v1/endpoints/{endpoint}/predict``, ``/v1/endpoints/{endpoint}/invocations``,
``/invocations``, ``/v2/models/{name}[/versions/{version}]/infer`` — and records it in the
app's :class:`~ferryman.monitoring.ServingMetrics`; other requests pass straight through.
It sits outside auth, so 401s and 403s are counted too. Labels stay bounded:

- ``endpoint``: the endpoint named in the path (the default endpoint for
  ``/invocations``); ``""`` when no such endpoint exists, so random paths add no series;
- ``protocol``: from the route; ``version``: the version the endpoint serves when the
  response ends (``""`` if none is loaded);
- ``kind`` of an error: the ``code`` of the body when it has one (native protocol, auth
  errors), else derived from the status (and MLflow's ``error_code``), as the Open
  Inference and MLflow bodies carry no stable code. The body is looked at only for
  statuses of 400 and above.

Queue time, compute time and rows per model call come from the
:class:`~ferryman.serving.batching.TimedPrediction` a route leaves in
``scope["state"]["prediction_timing"]``; the rows are observed once per model call (for
its leading request), so ``ferryman_batch_size`` counts calls.

The middleware parses paths rather than the routes calling the metrics so that the
protocol routes stay free of monitoring code; a path's parse is cached per endpoint.

While a process serves, :func:`serving` samples every :data:`SAMPLE_SECONDS`: the
prediction log's counters (records written, lost, dropped, sampled out; failed writes;
the backlog), through a :class:`CaptureSampler`; the depths of the micro-batch and
shadow mirror queues, through a :class:`QueueSampler` (also sampled when ``/metrics`` is
scraped, so that a single process reports them fresh); and in multiprocess mode the
process's memory, CPU time and open files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferryman.errors import InvalidInputError
from ferryman.monitoring import EndpointSeries, ServingMetrics
from ferryman.monitoring.metrics import APPLY_SECONDS, CaptureMetrics, QueueMetrics
from ferryman.serving.batching import MicroBatcher
from ferryman.serving.runtime import Deployment, RuntimePool

if TYPE_CHECKING:
    from ferryman.capture import CaptureWriter, PredictionLog
    from ferryman.serving.mirror import Mirror

#: Seconds between samples of the capture writer's counters and, in multiprocess mode, of
#: a worker's memory, CPU time and open files.
SAMPLE_SECONDS = 5.0
#: Most distinct paths whose parse is remembered.
_MAX_CACHED_PATHS = 4096
_BODY_LIMIT = 4096

#: Error kind from the status, when the body carries no code.
_KIND_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "endpoint_not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "endpoint_not_ready",
    504: "prediction_timeout",
}
_MLFLOW_KINDS = {"BAD_REQUEST": "malformed_request", "INVALID_PARAMETER_VALUE": "schema_validation"}


def error_kind(status: int, body: bytes) -> str:
    """The error kind of a failed prediction response (see the module docstring)."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = payload.get("code")
        if isinstance(code, str) and code.isidentifier():
            return code
        if status == 400 and payload.get("error_code") in _MLFLOW_KINDS:
            return _MLFLOW_KINDS[payload["error_code"]]
    if status == 500:
        # error_response hides the text of unexpected exceptions behind this message.
        return "internal_error" if b"internal server error" in body else "prediction_error"
    return _KIND_BY_STATUS.get(status, f"http_{status}")


class MetricsMiddleware:
    """Record every prediction request in ``metrics`` (pure ASGI).

    Args:
        app: The wrapped ASGI application.
        metrics: Where to record.
        pool: The runtime pool, to tell existing endpoints and the version they serve.
        default_endpoint: Returns the endpoint ``/invocations`` serves, if any.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServingMetrics,
        pool: RuntimePool,
        default_endpoint: Callable[[], str | None],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.pool = pool
        self.default_endpoint = default_endpoint
        self._paths: dict[str, EndpointSeries] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        series = self.series_for(scope["path"])
        if series is None:
            await self.app(scope, receive, send)
            return
        status = 500
        body = b""

        async def send_observed(message: Message) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status >= 400 and len(body) < _BODY_LIMIT:
                body += message.get("body", b"")
            await send(message)

        in_flight = series.in_flight
        in_flight.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            in_flight.dec()
            self.observe(series, scope, status, body, time.perf_counter() - start)

    def series_for(self, path: str) -> EndpointSeries | None:
        """The series of a prediction path (``None``: the path does not predict)."""
        series = self._paths.get(path)
        return series if series is not None else self._series(path)

    def observe(
        self, series: EndpointSeries, scope: Scope, status: int, body: bytes, seconds: float
    ) -> None:
        """Record one answered prediction request (``body``: the answer's, read if >= 400)."""
        state = scope.get("state") or {}
        version = state.get("served_version")
        if version is None:  # failed before a version was chosen
            runtime = self.pool.find(series.name)
            deployment = runtime.deployment if runtime is not None else None
            version = deployment.version.ref if deployment is not None else ""
        timed = state.get("prediction_timing")
        if timed is None:
            series.record(
                version=version,
                status=status,
                seconds=seconds,
                kind=error_kind(status, body[:_BODY_LIMIT]) if status >= 400 else None,
            )
        else:
            series.record(
                version=version,
                status=status,
                seconds=seconds,
                queue_seconds=timed.queue_ms / 1000.0,
                compute_seconds=timed.compute_ms / 1000.0,
                batch_rows=timed.batch_rows if timed.leads else None,
            )

    def _series(self, path: str) -> EndpointSeries | None:
        """Parse a prediction path into its endpoint's series (``None``: not predicting)."""
        cache = True
        if path == "/invocations":
            name, protocol, cache = self.default_endpoint(), "mlflow", False
        elif path.startswith("/v1/endpoints/"):
            rest = path[len("/v1/endpoints/") :]
            name, _, action = rest.partition("/")
            if action == "predict":
                protocol = "native"
            elif action == "invocations":
                protocol = "mlflow"
            else:
                return None
        elif path.startswith("/v2/models/") and path.endswith("/infer"):
            rest = path[len("/v2/models/") : -len("/infer")]
            name, _, versioned = rest.partition("/")
            if versioned and (not versioned.startswith("versions/") or versioned.count("/") > 1):
                return None
            protocol = "oip_v2"
        else:
            return None
        if name is None or self.pool.find(name) is None:
            name, cache = "", False
        series = self.metrics.endpoint(name, protocol)
        if cache and len(self._paths) < _MAX_CACHED_PATHS:
            self._paths[path] = series
        return series


def routes(metrics: ServingMetrics, *, sample: Callable[[], None] | None = None) -> list[Route]:
    """``GET /metrics``: the Prometheus text exposition of ``metrics``.

    Args:
        metrics: What to expose.
        sample: Called on the event loop before each exposition, to refresh this
            process's sampled gauges (e.g. :meth:`QueueSampler.sample`).
    """

    async def exposition(request: Request) -> Response:
        if sample is not None:
            sample()
        if metrics.multiprocess_dir is None:
            content = metrics.exposition()
        else:  # reads one file per process: off the event loop
            content = await run_in_threadpool(metrics.exposition)
        return Response(content, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", exposition, methods=["GET"])]


class CaptureSampler:
    """Adds what a capture writer counted since the previous sample to the Prometheus metrics.

    The writer keeps totals for its process's life; the Prometheus counters get only the
    increases, so that in multiprocess mode the sum over processes (dead ones included)
    is the total of every writer. The first sample adds everything counted so far.

    Args:
        metrics: Where to count.
        writer: The process's capture writer (``PredictionLog.writer``).
    """

    def __init__(self, metrics: CaptureMetrics, writer: CaptureWriter) -> None:
        self.metrics = metrics
        self.writer = writer
        self._last = (0, 0, 0, 0, 0)

    def __repr__(self) -> str:
        return f"CaptureSampler(metrics={self.metrics!r}, writer={self.writer!r})"

    def sample(self) -> None:
        """Add the increases of the writer's counters and set the backlog gauge."""
        writer = self.writer
        totals = (
            writer.records_written,
            writer.records_lost,
            writer.records_dropped,
            writer.records_sampled_out,
            writer.failed_writes,
        )
        written, lost, dropped, sampled_out, failed = (
            max(now - before, 0) for now, before in zip(totals, self._last, strict=True)
        )
        self._last = totals
        self.metrics.add(
            written=written,
            lost=lost,
            dropped=dropped,
            sampled_out=sampled_out,
            failed_writes=failed,
        )
        self.metrics.set_pending(writer.pending)


class QueueSampler:
    """Sets the queue depth gauges from the runtime pool's micro-batchers and the mirror.

    Reading a depth costs a ``len`` per queue, so sampling (every few seconds, and at
    each scrape) adds no work to requests. An endpoint that disappears is set to 0 once.

    Args:
        metrics: Where to set the depths.
        pool: The process's runtime pool.
        mirror: The process's shadow mirror, if any.
    """

    def __init__(self, metrics: QueueMetrics, pool: RuntimePool, mirror: Mirror | None) -> None:
        self.metrics = metrics
        self.pool = pool
        self.mirror = mirror
        self._batch_endpoints: set[str] = set()

    def __repr__(self) -> str:
        return f"QueueSampler(metrics={self.metrics!r}, pool={self.pool!r})"

    def sample(self) -> None:
        """Set ``ferryman_batch_queue_depth`` and ``ferryman_mirror_queue_depth`` now."""
        live = {
            runtime.name: _queued(runtime.deployment) + _queued(runtime.candidate)
            for runtime in self.pool.list()
        }
        depths = dict.fromkeys(self._batch_endpoints - live.keys(), 0) | live
        self._batch_endpoints = set(live)
        self.metrics.set_depths(self.metrics.batch_depth, depths)
        if self.mirror is not None:
            self.metrics.set_depths(self.metrics.mirror_depth, self.mirror.depths())


def _queued(deployment: Deployment | None) -> int:
    """Requests waiting in a deployment's micro-batcher (0 without micro-batching)."""
    if deployment is None:
        return 0
    runner = deployment.runner
    return runner.queued if isinstance(runner, MicroBatcher) else 0


@asynccontextmanager
async def serving(
    metrics: ServingMetrics,
    capture: PredictionLog | None = None,
    *,
    queues: QueueSampler | None = None,
    interval: float = SAMPLE_SECONDS,
) -> AsyncIterator[None]:
    """While a server process serves, apply its queued requests and sample its other metrics.

    Every :data:`~ferryman.monitoring.metrics.APPLY_SECONDS` (or ``interval``, if shorter)
    the requests recorded since go to the counters and histograms
    (:meth:`ServingMetrics.apply_pending`). Every ``interval`` seconds: the increases of
    ``capture``'s writer counters go to ``metrics.capture`` (:class:`CaptureSampler`),
    the queue depths to ``metrics.queues`` (``queues``), and in multiprocess mode the
    process's memory, CPU time and open files to its per-pid gauges. On exit the queue
    is applied and a last capture sample taken and, in multiprocess mode, the process is
    marked dead.

    Args:
        metrics: The server's metrics.
        capture: The process's prediction log, or ``None`` when nothing is captured.
        queues: Samples the process's queue depths, or ``None``.
        interval: Seconds between samples.

    Raises:
        InvalidInputError: ``interval`` is not positive.
    """
    if not interval > 0:
        raise InvalidInputError(f"interval must be a positive number of seconds, got {interval!r}.")
    sampler = CaptureSampler(metrics.capture, capture.writer) if capture is not None else None
    task = asyncio.create_task(_sample(metrics, sampler, queues, interval), name="ferryman-sampler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.apply_pending()
        if sampler is not None:
            sampler.sample()
        if metrics.multiprocess_dir is not None:
            metrics.mark_process_dead()


async def _sample(
    metrics: ServingMetrics,
    sampler: CaptureSampler | None,
    queues: QueueSampler | None,
    interval: float,
) -> None:
    due = 0.0
    while True:
        metrics.apply_pending()
        if time.monotonic() >= due:
            due = time.monotonic() + interval
            metrics.sample_process()  # does nothing in single-process mode
            if sampler is not None:
                sampler.sample()
            if queues is not None:
                queues.sample()
        await asyncio.sleep(min(APPLY_SECONDS, interval))
