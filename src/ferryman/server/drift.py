"""Drift over HTTP, ``GET /v1/drift/{endpoint}``, and the server's drift monitor.

The route compares the endpoint's captured traffic with the reference profile of the
version it serves (:func:`ferryman.drift.endpoint.endpoint_report`). Query parameters,
all optional:

- ``window``: a duration back from now (``90s``, ``15m``, ``24h``, ``7d``) or a number of
  latest records (``5000``); default ``24h``.
- ``version``: only records of this model version, ``name/N``.
- ``format``: ``json`` (default: the offline report's JSON plus ``endpoint``, ``status``,
  ``window``, ``protected_columns`` and ``concept``) or ``html`` (the standalone page,
  ``text/html``).

The ``concept`` section is concept drift from the window's feedback (streaming detectors
on the error stream, realised performance against the served version's registered
metrics, or a CBPE estimate without labels; see :mod:`ferryman.drift.concept`).

The report names captured values (the largest categories, categories new in the window),
so on top of the ``read`` permission the auth middleware checks for every ``GET``, the
caller needs ``read_logs`` on the endpoint (403 otherwise), as for the log itself.
Answers: 404 without a prediction log (capture off), for an unknown endpoint, or when the
served version has no reference profile; 503 while the endpoint's model is loading. A
window with no records is not an error: its features are ``insufficient-data``.

:func:`create_monitor` builds the :class:`~ferryman.drift.monitor.DriftMonitor` a server
runs, whose targets (:func:`monitor_targets`) follow the pool: every loaded endpoint,
against its served version's profile.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ferryman.errors import (
    EndpointNotFoundError,
    EndpointNotReadyError,
    InvalidInputError,
    NotFoundError,
)
from ferryman.server.auth import log_reading_route
from ferryman.serving.codecs.base import dumps

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ferryman.capture import PredictionLog
    from ferryman.drift.monitor import DriftMonitor, MonitorTarget
    from ferryman.drift.traffic import TrafficWindow
    from ferryman.signature import ReferenceProfile
    from ferryman.store import Database

logger = logging.getLogger("ferryman.server")

#: What ``window`` means when a request does not say.
DEFAULT_REPORT_WINDOW = "24h"
FORMATS = ("json", "html")
#: The lease that elects the one process of a deployment that runs the drift monitor.
MONITOR_LEASE = "drift-monitor"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class _Info(Protocol):
    @property
    def ref(self) -> str: ...

    @property
    def profile(self) -> dict[str, Any] | None: ...

    @property
    def metrics(self) -> dict[str, float]: ...


class _Loaded(Protocol):
    @property
    def info(self) -> _Info: ...


class _Deployment(Protocol):
    @property
    def version(self) -> _Loaded: ...


class _Runtime(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def deployment(self) -> _Deployment | None: ...


class _Pool(Protocol):
    def find(self, name: str) -> _Runtime | None: ...

    def list(self) -> Sequence[_Runtime]: ...


class DriftContext(Protocol):
    """What the drift route and monitor need from the server's context."""

    @property
    def capture(self) -> PredictionLog | None:
        """The prediction log, or ``None`` when capture is off."""
        ...

    @property
    def pool(self) -> _Pool:
        """The runtime pool (``find(name).deployment.version.info`` is the served version)."""
        ...


def routes(context: DriftContext) -> list[Route]:
    """The drift report route."""

    async def report(request: Request, endpoint: str) -> Response:
        return await _report(context, request, endpoint)

    return [
        log_reading_route(
            "/v1/drift/{endpoint}", report, why="the drift report shows captured values"
        )
    ]


async def _report(context: DriftContext, request: Request, endpoint: str) -> Response:
    from ferryman.drift.endpoint import endpoint_report
    from ferryman.drift.traffic import TrafficWindow

    if not _NAME.match(endpoint):
        raise InvalidInputError(
            f"invalid endpoint name {endpoint!r}: expected 1-200 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    query = request.query_params
    output = query.get("format", "json")
    if output not in FORMATS:
        raise InvalidInputError(f"invalid format {output!r}: expected json or html")
    window = TrafficWindow.parse(
        query.get("window", DEFAULT_REPORT_WINDOW), version=query.get("version")
    )
    capture = context.capture
    if capture is None:
        raise NotFoundError(
            "This server keeps no prediction log (capture is off), so there is no traffic "
            "to check for drift; compare files with: ferryman drift report --reference FILE "
            "--current FILE"
        )
    info = served_version(context, endpoint)
    if info.profile is None:
        raise NotFoundError(
            f"{info.ref}, which endpoint {endpoint!r} serves, has no reference profile to "
            "compare with: register the version with its training data (X=...) so it is "
            "profiled, or compare files with: ferryman drift report --reference FILE"
        )
    privacy = capture.writer.capture_of(endpoint).privacy
    profile = info.profile

    def work() -> Any:
        found = endpoint_report(
            capture.store,
            endpoint,
            reference=profile,
            window=window,
            privacy=privacy,
            reference_name=f"{info.ref} (stored reference profile)",
            concept=True,
            reference_performance=info.metrics,
        )
        return found.to_html() if output == "html" else found.to_dict()

    result = await run_in_threadpool(work)
    if output == "html":
        return HTMLResponse(result)
    return Response(dumps(result), media_type="application/json")


def served_version(context: DriftContext, endpoint: str) -> _Info:
    """The version ``endpoint`` serves in this process (its stable one during a rollout).

    Raises:
        EndpointNotFoundError: No such endpoint.
        EndpointNotReadyError: Its model is still loading, or failed to load.
    """
    runtime = context.pool.find(endpoint)
    if runtime is None:
        raise EndpointNotFoundError(
            f"No endpoint named {endpoint!r}. List endpoints with: ferryman endpoints list"
        )
    deployment = runtime.deployment
    if deployment is None:
        raise EndpointNotReadyError(
            f"endpoint {endpoint!r} is not ready: its model is loading or failed to load",
            retry_after=1,
        )
    return deployment.version.info


def monitor_targets(context: DriftContext) -> Callable[[], list[MonitorTarget]]:
    """What the server's drift monitor watches: each loaded endpoint, against its served
    version's stored profile (parsed once per version) and registered metrics (the
    reference performance of concept drift), with its privacy policy.

    An endpoint whose version has no profile is a target without a reference (the monitor
    skips it and says why); endpoints still loading are left out.
    """
    from ferryman.drift.monitor import MonitorTarget
    from ferryman.signature import ReferenceProfile

    parsed: dict[str, ReferenceProfile] = {}

    def targets() -> list[MonitorTarget]:
        capture = context.capture
        found: list[MonitorTarget] = []
        served: set[str] = set()
        for runtime in context.pool.list():
            deployment = runtime.deployment
            if deployment is None:
                continue
            info = deployment.version.info
            served.add(info.ref)
            profile = parsed.get(info.ref)
            if profile is None and info.profile is not None:
                profile = parsed[info.ref] = ReferenceProfile.from_dict(info.profile)
            found.append(
                MonitorTarget(
                    endpoint=runtime.name,
                    reference=profile,
                    reference_name=f"{info.ref} (stored reference profile)",
                    privacy=None
                    if capture is None
                    else capture.writer.capture_of(runtime.name).privacy,
                    reference_performance=info.metrics,
                )
            )
        for ref in set(parsed) - served:  # versions no longer served
            del parsed[ref]
        return found

    return targets


def create_monitor(
    context: DriftContext,
    registry: CollectorRegistry,
    *,
    interval_seconds: float,
    window: TrafficWindow | timedelta | int,
    min_rows: int,
    leader: Callable[[], bool] | None = None,
    process: bool = True,
) -> DriftMonitor | None:
    """The drift monitor of a server, its gauges registered on ``registry``.

    Args:
        context: The server's context.
        registry: The Prometheus registry exposed at ``/metrics``.
        interval_seconds: Seconds between evaluations.
        window: The rolling window of captured traffic.
        min_rows: Fewest usable values per feature and window for a verdict, and fewest
            labelled rows for the concept drift detectors.
        leader: Whether this process evaluates now (see :func:`lease_leader`).
        process: Compute reports in a low-priority child process (see ``DriftMonitor``).

    Returns:
        The monitor (not started), or ``None`` when capture is off.

    Raises:
        InvalidInputError: A setting is out of range.
        MissingDependencyError: prometheus-client is not installed.
    """
    from ferryman.drift import DataDrift
    from ferryman.drift.concept import ConceptDrift
    from ferryman.drift.monitor import DriftMetrics, DriftMonitor

    capture = context.capture
    if capture is None:
        return None
    return DriftMonitor(
        store=capture.store,
        metrics=DriftMetrics.create(registry),
        targets=monitor_targets(context),
        interval=interval_seconds,
        window=window,
        data=DataDrift(min_rows=min_rows, n_jobs=1),
        leader=leader,
        concept=ConceptDrift(min_rows=min_rows),
        process=process,
    )


def lease_leader(database: Database, holder: str, *, ttl_seconds: float) -> Callable[[], bool]:
    """Whether this process holds (or could take) the drift monitor's lease now.

    With several server processes only the holder evaluates; when it dies the lease
    expires after ``ttl_seconds`` and another process takes over. Make ``ttl_seconds``
    longer than the monitor's interval, so the holder renews it in time. An unreachable
    store means "not the leader" for this run.
    """
    from ferryman.errors import FerrymanError
    from ferryman.store.leases import Lease

    lease = Lease(database=database, name=MONITOR_LEASE, holder=holder, ttl_seconds=ttl_seconds)

    def leads() -> bool:
        try:
            return lease.acquire()
        except FerrymanError as exc:
            logger.warning("drift: cannot take the monitor lease (%s)", type(exc).__name__)
            return False

    return leads


def openapi_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The drift route's path item, built with the control plane's ``op`` helper."""
    endpoint = {
        "name": "endpoint",
        "in": "path",
        "required": True,
        "description": "An endpoint's name.",
        "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9._-]+$"},
    }
    window = {
        "name": "window",
        "in": "query",
        "required": False,
        "description": "A duration back from now (90s, 15m, 24h, 7d) or a number of latest "
        f"records (5000); default {DEFAULT_REPORT_WINDOW}.",
        "schema": {"type": "string", "maxLength": 100},
    }
    version = {
        "name": "version",
        "in": "query",
        "required": False,
        "description": "Only records of this model version, name/N.",
        "schema": {"type": "string"},
    }
    output = {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(FORMATS)},
    }
    operation = op(
        "Drift of an endpoint's captured traffic against its served version's reference "
        "profile (JSON, or a standalone HTML page).",
        "object",
        (404,),
        params=(endpoint, window, version, output),
    )
    ok: Mapping[str, Any] = operation["responses"]["200"]
    operation["responses"]["200"] = {
        **ok,
        "content": {**ok["content"], "text/html": {"schema": {"type": "string"}}},
    }
    return {"/v1/drift/{endpoint}": {"get": operation}}


__all__ = [
    "DEFAULT_REPORT_WINDOW",
    "FORMATS",
    "MONITOR_LEASE",
    "DriftContext",
    "create_monitor",
    "lease_leader",
    "monitor_targets",
    "openapi_paths",
    "routes",
    "served_version",
]
