"""The prediction routes' front door: one ASGI layer instead of eight.

A prediction on the generic stack passed through Starlette's error middleware, the
request-id, metrics and auth middleware (each wrapping ``send`` in a closure of its
own), the exception middleware, the router's scan of the routes and two more wrappers
around the route's function: about 20 µs of a one-row prediction (142-147 against
122-123 µs per request in process, before and after). :class:`FerrymanApp` sends
every ``POST`` to a prediction path (:data:`PREDICT_PATHS`) through :class:`DataPlane`
instead, which does the same work in one function: it gives the request its id, counts
it in the request metrics, checks its token with the same
:class:`~ferryman.server.auth.AuthMiddleware` logic, calls the route's function and
echoes the id, so the answers, headers, metrics and audit are those of the generic
stack. Everything else (the control plane, health, other methods on the prediction
paths, a server mounted under a root path) goes through the generic stack.

The prediction route functions turn every exception into an error response themselves;
anything that still escapes goes on to uvicorn, which logs it and answers 500.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ferryman.server.auth import (
    PUBLIC_PATHS,
    AuthMiddleware,
    Requirement,
    denial_response,
    required_permission,
)
from ferryman.server.metrics import MetricsMiddleware
from ferryman.server.middleware import assign_request_id

#: Paths of the prediction routes (``POST`` only).
PREDICT_PATHS = frozenset(
    {
        "/v1/endpoints/{endpoint}/predict",
        "/v1/endpoints/{endpoint}/invocations",
        "/invocations",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    }
)
#: Most distinct paths whose match is remembered.
_MAX_CACHED_PATHS = 4096

_Endpoint = Callable[[Request], Awaitable[Response]]
#: The route function, its path parameters, and the permission the path needs (``None``
#: where it depends on more than the path: ``/invocations`` serves the default endpoint).
_Match = tuple[_Endpoint, dict[str, Any], Requirement | None]


class DataPlane:
    """Serve prediction requests in one layer (see the module docstring).

    Args:
        routes: The prediction routes (their paths in :data:`PREDICT_PATHS`), in the
            order the router would try them.
        metrics: Records the requests (its wrapped app is not used).
        auth: Checks them (its wrapped app is not used).
    """

    def __init__(
        self, routes: Sequence[Route], *, metrics: MetricsMiddleware, auth: AuthMiddleware
    ) -> None:
        unknown = [route.path for route in routes if route.path not in PREDICT_PATHS]
        if unknown:
            raise ValueError(f"not prediction routes: {unknown}; expected {sorted(PREDICT_PATHS)}")
        if any(path in PUBLIC_PATHS for path in PREDICT_PATHS):
            raise ValueError("a prediction path is public; the data plane always authenticates")
        self.routes = list(routes)
        self.metrics = metrics
        self.auth = auth
        self._matches: dict[str, _Match | None] = {}

    def match(self, path: str) -> _Match | None:
        """The route function, path parameters and permission for ``path``, or ``None``."""
        try:
            return self._matches[path]
        except KeyError:
            pass
        found: _Match | None = None
        for route in self.routes:
            matched = route.path_regex.match(path)
            if matched is not None:
                convert = route.param_convertors
                params = {
                    key: convert[key].convert(value) for key, value in matched.groupdict().items()
                }
                need = (
                    None
                    if path == "/invocations"
                    else required_permission("POST", path, _no_default)
                )
                found = (route.endpoint, params, need)
                break
        if len(self._matches) < _MAX_CACHED_PATHS:
            self._matches[path] = found
        return found

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: _Endpoint,
        params: dict[str, Any],
        need: Requirement | None,
    ) -> None:
        """Answer one prediction request (the last three arguments from :meth:`match`)."""
        rid = assign_request_id(scope)
        scope["path_params"] = dict(params)
        metrics = self.metrics
        series = metrics.series_for(scope["path"])
        status = 500
        body = b""
        if series is not None:
            series.in_flight.inc()
        start = time.perf_counter()
        try:
            denied = self.auth.denial(scope, need)
            if denied is None:
                response = await endpoint(Request(scope, receive))
            else:
                response = denial_response(scope, *denied)
            status = response.status_code
            body = getattr(response, "body", b"")
            response.raw_headers.append((b"x-request-id", rid.encode("ascii")))
            await response(scope, receive, send)
        finally:
            if series is not None:
                series.in_flight.dec()
                metrics.observe(series, scope, status, body, time.perf_counter() - start)


def _no_default() -> str | None:
    raise AssertionError("only /invocations asks for the default endpoint")


class FerrymanApp(Starlette):
    """The server's Starlette app, with prediction requests served by its :class:`DataPlane`.

    ``data_plane`` is ``None`` until :func:`~ferryman.server.app.create_app` sets it;
    until then (and for every other request) the app is a plain Starlette app. Middleware
    added with :meth:`add_middleware` must see every request, so adding any turns the data
    plane off: predictions then take the generic stack, with the added middleware in it.
    """

    data_plane: DataPlane | None = None

    def add_middleware(self, *args: Any, **kwargs: Any) -> None:
        super().add_middleware(*args, **kwargs)
        self.data_plane = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plane = self.data_plane
        if (
            plane is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            found = plane.match(scope["path"])
            if found is not None:
                scope["app"] = self
                await plane.serve(scope, receive, send, *found)
                return
        await super().__call__(scope, receive, send)


__all__ = ["PREDICT_PATHS", "DataPlane", "FerrymanApp"]
