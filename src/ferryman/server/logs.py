"""The prediction log over HTTP: tail, SQL, feedback, realised performance and review.

Routes and the permission each needs (checked here for the endpoint concerned, on top of
:class:`~ferryman.server.auth.AuthMiddleware`):

=======================================  ==============  ====================================
route                                    permission      scope
=======================================  ==============  ====================================
``GET  /v1/logs/{endpoint}``             ``read_logs``   the endpoint
``POST /v1/logs/query``                  ``read_logs``   ``endpoint`` of the body; a scoped
                                                         token must name one of its endpoints
``POST /v1/feedback``                    ``predict``     a scoped token's ids count only on
                                                         its endpoints (others: ``unknown``)
``GET  /v1/endpoints/{e}/performance``   ``read``        aggregates only, no record values
``GET  /v1/logs/{endpoint}/review``      ``read_logs``   the endpoint
``POST /v1/logs/{endpoint}/review``      ``read_logs``   the endpoint; the token's name is
                                                         recorded as the reviewer
=======================================  ==============  ====================================

Every store call blocks (DuckDB, Parquet), so it runs on a worker thread. Errors use the
native error shape: a query DuckDB rejects is a 400 carrying DuckDB's message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ferryman.capture import VERDICTS, PredictionLog, parse_window
from ferryman.config import Settings
from ferryman.errors import InvalidInputError, MalformedRequestError
from ferryman.security import Permission
from ferryman.server._context import read_body
from ferryman.server._json_routes import Forbidden, json_route
from ferryman.server.auth import principal_of

#: Most rows ``GET /v1/logs/{endpoint}`` and ``POST /v1/logs/query`` return.
MAX_ROWS = 10_000


class LogsContext(Protocol):
    """What the log routes need from the server's context."""

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        ...

    @property
    def capture(self) -> PredictionLog:
        """The process's prediction log."""
        ...


def routes(context: LogsContext) -> list[Route]:
    """The prediction log's routes."""
    limit = context.settings.max_body_bytes

    def store_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return run_in_threadpool(function, *args, **kwargs)

    async def json_body(request: Request) -> Any:
        body = await read_body(request, limit)
        if not body.strip():
            raise MalformedRequestError("request body is required: a JSON object")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequestError(f"request body is not valid JSON: {exc}") from None

    async def tail(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]
        allow(request, Permission.READ_LOGS, endpoint)
        query = request.query_params
        result = await store_call(
            context.capture.store.tail,
            endpoint,
            _int(query.get("n"), "n", default=20, low=1, high=MAX_ROWS),
            version=query.get("version"),
            role=query.get("role"),
            status=_int(query.get("status"), "status", default=None, low=100, high=599),
            since=_time(query.get("since"), "since"),
            until=_time(query.get("until"), "until"),
        )
        return {"endpoint": endpoint, **result.to_dict()}

    async def sql(request: Request) -> Any:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise MalformedRequestError("expected a JSON object {sql, endpoint?, limit?}")
        _only(body, ("sql", "endpoint", "limit"), "query")
        text, endpoint = body.get("sql"), body.get("endpoint")
        if not isinstance(text, str):
            raise InvalidInputError("invalid field 'sql': expected one SELECT statement (text)")
        if endpoint is not None and not isinstance(endpoint, str):
            raise InvalidInputError("invalid field 'endpoint': expected an endpoint name")
        rows = body.get("limit")
        if rows is not None and (not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS):
            raise InvalidInputError(f"invalid field 'limit': expected 1-{MAX_ROWS}")
        allowed = scope(request, Permission.READ_LOGS, endpoint)
        result = await store_call(
            context.capture.store.query, text, endpoint=endpoint, allowed=allowed, limit=rows
        )
        return result.to_dict()

    async def feedback(request: Request) -> Any:
        body = await json_body(request)
        items = body if isinstance(body, list) else [body]
        allowed = scope(request, Permission.PREDICT, None)
        report = await store_call(context.capture.store.submit_feedback, items, allowed=allowed)
        return report.to_dict()

    async def performance(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]
        allow(request, Permission.READ, endpoint)
        query = request.query_params
        until = _time(query.get("until"), "until") or dt.datetime.now(dt.UTC)
        since = _time(query.get("since"), "since")
        if since is None:
            since = until - parse_window(query.get("window", "1h"))
        report = await store_call(
            context.capture.store.performance,
            endpoint,
            since=since,
            until=until,
            task=query.get("task", "auto"),
        )
        return report.to_dict()

    async def candidates(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]
        allow(request, Permission.READ_LOGS, endpoint)
        query = request.query_params
        found = await store_call(
            context.capture.store.review_candidates,
            endpoint,
            since=_time(query.get("since"), "since"),
            until=_time(query.get("until"), "until"),
            limit=_int(query.get("limit"), "limit", default=50, low=1, high=MAX_ROWS),
            confidence_below=_float(query.get("confidence_below"), "confidence_below", 0.6),
        )
        return {"endpoint": endpoint, "candidates": [c.to_dict() for c in found]}

    async def mark(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]
        allow(request, Permission.READ_LOGS, endpoint)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise MalformedRequestError("expected a JSON object {request_id, verdict, comment?}")
        _only(body, ("request_id", "verdict", "comment", "row"), "review")
        principal = principal_of(request.scope)
        reviewer = principal.name if principal is not None else context.settings.user
        marked = await store_call(
            context.capture.store.mark,
            endpoint,
            body.get("request_id"),
            body.get("verdict"),
            reviewer=reviewer,
            comment=body.get("comment", ""),
            row=body.get("row", 0),
        )
        return marked.to_dict()

    return [
        json_route("/v1/logs/query", {"POST": (sql, 200)}),
        json_route("/v1/feedback", {"POST": (feedback, 200)}),
        json_route("/v1/logs/{endpoint}", {"GET": (tail, 200)}),
        json_route("/v1/logs/{endpoint}/review", {"GET": (candidates, 200), "POST": (mark, 201)}),
        json_route("/v1/endpoints/{endpoint}/performance", {"GET": (performance, 200)}),
    ]


def allow(request: Request, permission: Permission, endpoint: str | None) -> None:
    """Refuse (403) unless the request's principal may do ``permission`` on ``endpoint``.

    Without a principal (no authentication layer in front) everything is allowed.
    """
    principal = principal_of(request.scope)
    if principal is not None and not principal.can(permission, endpoint):
        where = f" on endpoint {endpoint!r}" if endpoint else ""
        raise Forbidden(
            f"token {principal.name!r} (role {principal.role}) may not {permission.value}{where}"
        )


def scope(request: Request, permission: Permission, endpoint: str | None) -> Sequence[str] | None:
    """The endpoints the principal may ``permission`` on (``None``: all), checking ``endpoint``.

    Raises:
        Forbidden: The principal lacks the permission, or ``endpoint`` is outside its scope.
    """
    principal = principal_of(request.scope)
    if principal is None:
        return None
    if permission not in principal.role.permissions:
        raise Forbidden(
            f"token {principal.name!r} (role {principal.role}) may not {permission.value}"
        )
    if endpoint is not None:
        allow(request, permission, endpoint)
    return None if principal.endpoints is None else sorted(principal.endpoints)


def _only(body: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    for key in body:
        if key not in keys:
            raise InvalidInputError(
                f"unknown field {key!r} in the {what} body; expected {', '.join(keys)}"
            )


def _int(text: str | None, name: str, *, default: int | None, low: int, high: int) -> Any:
    if text is None:
        return default
    if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
        raise InvalidInputError(f"invalid {name} {text!r}: expected an integer {low}-{high}")
    return int(text)


def _float(text: str | None, name: str, default: float) -> float:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(f"invalid {name} {text!r}: expected a number") from None


def _time(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInputError(
            f"invalid {name} {text!r}: expected ISO 8601 with a zone, e.g. "
            "2026-01-31T12:00:00+00:00 (URL-encode '+' as %2B) or ...Z"
        )
    return value


#: JSON schemas of the log routes' request bodies, for ``components.schemas``.
SCHEMAS: dict[str, Any] = {
    "LogQuery": {
        "type": "object",
        "required": ["sql"],
        "additionalProperties": False,
        "properties": {
            "sql": {"type": "string", "description": "One SELECT over the views."},
            "endpoint": {"type": "string", "description": "Scope the views to one endpoint."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
        },
    },
    "FeedbackItem": {
        "type": "object",
        "required": ["request_id"],
        "properties": {
            "request_id": {"type": "string"},
            "row": {"type": "integer", "minimum": 0},
            "label": {"description": "The true label (classification)."},
            "outcome": {"type": "number", "description": "A conversion 0/1 or a reward."},
            "time": {"type": "string", "description": "When it happened (ISO 8601)."},
        },
    },
    "Feedback": {
        "oneOf": [
            {"$ref": "#/components/schemas/FeedbackItem"},
            {
                "type": "array",
                "items": {"$ref": "#/components/schemas/FeedbackItem"},
                "minItems": 1,
            },
        ]
    },
    "ReviewMark": {
        "type": "object",
        "required": ["request_id", "verdict"],
        "additionalProperties": False,
        "properties": {
            "request_id": {"type": "string"},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "comment": {"type": "string"},
            "row": {"type": "integer", "minimum": 0},
        },
    },
}


def openapi_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The log routes' path items, built with the control plane's ``op`` helper."""
    endpoint = {
        "name": "endpoint",
        "in": "path",
        "required": True,
        "description": "An endpoint's name.",
        "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9._-]+$"},
    }

    def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    text = {"type": "string"}
    times = (query("since", text), query("until", text))
    return {
        "/v1/logs/{endpoint}": {
            "get": op(
                "The latest prediction records of an endpoint.",
                "object",
                (400, 404),
                params=(
                    endpoint,
                    query("n", {"type": "integer", "minimum": 1, "maximum": MAX_ROWS}),
                    query("version", text),
                    query("role", {"type": "string", "description": "primary, shadow, batch"}),
                    query("status", {"type": "integer", "minimum": 100, "maximum": 599}),
                    *times,
                ),
            )
        },
        "/v1/logs/query": {
            "post": op("One SQL SELECT over the prediction log.", "object", (400,), body="LogQuery")
        },
        "/v1/feedback": {
            "post": op(
                "Ground truth for request ids (one or many).", "object", (400,), body="Feedback"
            )
        },
        "/v1/endpoints/{endpoint}/performance": {
            "get": op(
                "Realised performance per version over a window.",
                "object",
                (400, 404),
                params=(endpoint, query("window", text), *times),
            )
        },
        "/v1/logs/{endpoint}/review": {
            "get": op(
                "Predictions worth a human look.",
                "object",
                (400, 404),
                params=(
                    endpoint,
                    *times,
                    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_ROWS}),
                    query("confidence_below", {"type": "number", "minimum": 0, "maximum": 1}),
                ),
            ),
            "post": op(
                "Mark a prediction with a verdict and a comment.",
                "object",
                (400, 404),
                body="ReviewMark",
                params=(endpoint,),
            ),
        },
    }
