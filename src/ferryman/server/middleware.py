"""Pure-ASGI middleware of the server (no ``BaseHTTPMiddleware``: it costs a task per request).

:class:`RequestIDMiddleware` gives every HTTP request an id: the client's ``X-Request-ID``
when it is sensible (1-128 visible ASCII characters), else a fresh one from
:func:`new_request_id`. Routes read it with :func:`request_id`; every response, errors
included, echoes it in ``X-Request-ID``.
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_HEADER = b"x-request-id"
_MAX_LENGTH = 128


class _Ids:
    """32 hex digits: 64 random bits drawn once per process, then a 64-bit counter.

    Unique across processes and restarts (a fresh prefix each time, and after a fork)
    without a system call per request: ``uuid4`` reads ``os.urandom``, which releases the
    GIL around ``getrandom``, and on a busy server the event loop then waits for a
    model or capture thread to hand the GIL back before the request can go on.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _Ids()


def new_request_id() -> str:
    """A new request id: 32 lowercase hex digits, unique across processes and restarts."""
    return _ids.next()


def request_id(scope: Scope) -> str:
    """Return the id :class:`RequestIDMiddleware` gave the request (or a new one)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    value = state.get("request_id")
    if value is None:
        value = state["request_id"] = new_request_id()
    return str(value)


def assign_request_id(scope: Scope) -> str:
    """Give a request its id: the client's ``X-Request-ID`` if sensible, else a new one.

    The id goes to ``scope["state"]["request_id"]`` (read it with :func:`request_id`).
    """
    value = _client_id(scope) or new_request_id()
    scope.setdefault("state", {})["request_id"] = value
    return value


def _client_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == _HEADER:
            if 0 < len(value) <= _MAX_LENGTH and all(33 <= byte <= 126 for byte in value):
                return str(value.decode("ascii"))
            return None
    return None


class RequestIDMiddleware:
    """Assign each HTTP request an id and echo it in the ``X-Request-ID`` response header.

    Args:
        app: The wrapped ASGI application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (_HEADER, assign_request_id(scope).encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
