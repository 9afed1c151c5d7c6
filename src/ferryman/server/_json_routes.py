"""Control-plane JSON routes: one route per path, dispatching on the method.

The log, feedback, review and alert routes answer JSON and share one shape: a handler
per method returns a JSON-serialisable result and the route's success status, a
:class:`Forbidden` becomes a 403 body, and every other failure the native error body
(:func:`~ferryman.server.errors.error_response`), never a crash. One route per path
means a request with another method gets a 405 listing every method the path takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs.base import dumps

#: A method's handler: reads the request, returns the JSON-serialisable result.
JsonHandler = Callable[[Request], Awaitable[Any]]


class Forbidden(Exception):
    """The authenticated principal may not do this (answered with 403)."""


def json_route(
    path: str,
    handlers: Mapping[str, tuple[JsonHandler, int]],
    *,
    check: Callable[[Request], None] | None = None,
) -> Route:
    """A route serving ``handlers`` (method → handler and success status) at ``path``.

    Args:
        path: The route's path, with Starlette path parameters.
        handlers: For each method, its handler and the status of a success.
        check: Called before the handler (e.g. to validate a path parameter); what it
            raises is answered like the handler's errors.
    """

    async def endpoint(request: Request) -> Response:
        handler, status = handlers[request.method]
        rid = request_id(request.scope)
        try:
            if check is not None:
                check(request)
            result = await handler(request)
        except Forbidden as exc:
            body = {"error": str(exc), "code": "forbidden", "request_id": rid}
            return Response(dumps(body), status_code=403, media_type="application/json")
        except Exception as exc:  # every failure becomes an error body, never a crash
            return error_response(exc, protocol=Protocol.NATIVE, request_id=rid)
        return Response(dumps(result), status_code=status, media_type="application/json")

    return Route(path, endpoint, methods=list(handlers))


__all__ = ["Forbidden", "JsonHandler", "json_route"]
