"""Rollouts over HTTP: ``/v1/rollouts`` to start one, and its status, history and commands.

- ``POST /v1/rollouts``: start (``ferryman deploy``).
- ``GET /v1/rollouts/{endpoint}``: status (phase, split, gates now, what happens next).
- ``GET /v1/rollouts/{endpoint}/history``: the endpoint's rollouts, each with its events.
- ``POST /v1/rollouts/{endpoint}/{action}``: ``promote``, ``pause``, ``resume``,
  ``abort``, ``rollback`` (body optional: ``{"reason": "…"}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman.errors import InvalidInputError
from ferryman.monitoring.base import MetricSource
from ferryman.rollout.base import RolloutOptions, RoutingKey, Strategy
from ferryman.rollout.service import RolloutService
from ferryman.rollout.status import describe
from ferryman.server._context import ServerContext, parse_body
from ferryman.server.auth import principal_of
from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs.base import dumps
from ferryman.store._tables import utcnow

ACTIONS = ("promote", "pause", "resume", "abort", "rollback")


class RolloutStart(BaseModel):
    """Body of ``POST /v1/rollouts``: what ``ferryman deploy`` sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")
    model: str = Field(min_length=1, max_length=300, description="The candidate's reference.")
    strategy: Literal["recreate", "blue-green", "canary", "shadow", "ab-test"]
    steps: list[float] | None = Field(default=None, min_length=1, max_length=100)
    bake: str | float | None = Field(default=None, description="e.g. 60s, 5m")
    gates: list[str] = Field(default_factory=list, max_length=50)
    failure_limit: int | None = Field(default=None, ge=1, le=1000)
    manual: bool = False
    keep_previous: str | float | None = None
    smoke_rows: list[dict[str, Any]] | None = Field(default=None, max_length=10_000)
    smoke_tolerance: float | None = Field(default=None, ge=0, le=1)
    sample: float | None = Field(default=None, gt=0, le=1)
    then: Literal["canary", "promote"] | None = None
    key: str | None = Field(default=None, max_length=300)
    weights: list[float] | None = Field(default=None, min_length=2, max_length=2)
    min_samples: int | None = Field(default=None, ge=1, le=10_000_000)
    interval: str | float | None = None
    alpha: float | None = Field(default=None, gt=0, lt=1)
    minimum_effect: float | None = Field(default=None, gt=0)
    outcome: Literal["binary", "numeric"] | None = None
    test: Literal["sequential", "fixed"] | None = None

    def options(self) -> RolloutOptions:
        """The rollout options this body asks for (defaults where omitted)."""
        values: dict[str, Any] = {
            "steps": self.steps,
            "bake_seconds": self.bake,
            "gates": self.gates,
            "failure_limit": self.failure_limit,
            "manual": self.manual,
            "keep_previous_seconds": self.keep_previous,
            "smoke_rows": self.smoke_rows,
            "smoke_tolerance": self.smoke_tolerance,
            "sample": self.sample,
            "then": self.then,
            "key": self.key,
            "weights": self.weights,
            "min_samples": self.min_samples,
            "interval_seconds": self.interval,
            "alpha": self.alpha,
            "minimum_effect": self.minimum_effect,
            "outcome": self.outcome,
            "test": self.test,
        }
        if isinstance(self.key, str):
            RoutingKey.parse(self.key)  # a clear error before anything else
        return RolloutOptions.from_dict({k: v for k, v in values.items() if v is not None})


class RolloutCommand(BaseModel):
    """Optional body of ``POST /v1/rollouts/{endpoint}/{action}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(default="", max_length=2000)


def routes(context: ServerContext, metrics: Callable[[], MetricSource | None]) -> list[Route]:
    """The rollout routes.

    Args:
        context: The server's context.
        metrics: Returns where gates read metrics (for live gate values in status).
    """

    def service(request: Request) -> RolloutService:
        principal = principal_of(request.scope)
        user = principal.name if principal is not None else context.settings.user
        return RolloutService(
            registry=context.registry.acting_as(user),
            user=user,
            gate_modules=context.settings.gate_modules,
        )

    async def parse(request: Request, model: type[BaseModel], *, optional: bool) -> Any:
        limit = context.settings.max_body_bytes
        return await parse_body(request, model, limit, optional=optional)

    async def start(request: Request) -> Any:
        body: RolloutStart = await parse(request, RolloutStart, optional=False)
        options = body.options()
        started = await run_in_threadpool(
            lambda: service(request).start(
                body.endpoint, body.model, strategy=Strategy.parse(body.strategy), options=options
            )
        )
        return started.to_dict()

    async def status(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]

        def work() -> dict[str, Any]:
            svc = service(request)
            log = context.capture.store if context.capture is not None else None
            return describe(svc, svc.get(endpoint), metrics=metrics(), now=utcnow(), log=log)

        return await run_in_threadpool(work)

    async def history(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]
        limit_text = request.query_params.get("limit", "20")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            raise InvalidInputError(f"invalid limit {limit_text!r}: expected 1-1000")

        def work() -> list[dict[str, Any]]:
            svc = service(request)
            return [
                {**r.to_dict(), "events": [e.to_dict() for e in svc.events(r.id)]}
                for r in svc.history(endpoint, limit=int(limit_text))
            ]

        return await run_in_threadpool(work)

    async def command(request: Request) -> Any:
        endpoint = request.path_params["endpoint"]
        action = request.path_params["action"]
        if action in ("history", "report"):
            return _MethodNotAllowed("GET")
        if action not in ACTIONS:
            raise InvalidInputError(
                f"unknown rollout action {action!r}: expected one of {', '.join(ACTIONS)}"
            )
        body: RolloutCommand = await parse(request, RolloutCommand, optional=True)

        def work() -> dict[str, Any]:
            svc = service(request)
            if action == "promote":
                return svc.promote(endpoint).to_dict()
            if action == "pause":
                return svc.pause(endpoint).to_dict()
            if action == "resume":
                return svc.resume(endpoint).to_dict()
            if action == "abort":
                return svc.abort(endpoint, reason=body.reason).to_dict()
            return svc.rollback(endpoint, reason=body.reason).to_dict()

        return await run_in_threadpool(work)

    def json_route(
        path: str, method: str, handler: Callable[[Request], Awaitable[Any]], code: int = 200
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                for key in ("endpoint",):
                    value = request.path_params.get(key)
                    if value is not None and not _valid_name(value):
                        raise InvalidInputError(f"invalid endpoint name {value!r}")
                result = await handler(request)
            except Exception as exc:
                return error_response(
                    exc, protocol=Protocol.NATIVE, request_id=request_id(request.scope)
                )
            if isinstance(result, _MethodNotAllowed):
                body = {
                    "error": f"method {request.method} not allowed; use {result.allow}",
                    "code": "method_not_allowed",
                    "request_id": request_id(request.scope),
                }
                return Response(
                    dumps(body),
                    status_code=405,
                    media_type="application/json",
                    headers={"Allow": result.allow},
                )
            return Response(dumps(result), status_code=code, media_type="application/json")

        return Route(path, endpoint, methods=[method])

    return [
        json_route("/v1/rollouts", "POST", start, 201),
        json_route("/v1/rollouts/{endpoint}", "GET", status),
        json_route("/v1/rollouts/{endpoint}/history", "GET", history),
        json_route("/v1/rollouts/{endpoint}/{action}", "POST", command),
    ]


@dataclass(frozen=True)
class _MethodNotAllowed:
    allow: str


def _query(name: str, description: str, *, integer: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "integer", "minimum": 1, "maximum": 10_000}
        if integer
        else {"type": "string", "maxLength": 100}
    )
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _valid_name(value: str) -> bool:
    return 0 < len(value) <= 200 and all(c.isalnum() or c in "._-" for c in value)


#: Request body models, by name, for the OpenAPI document.
BODIES: dict[str, type[BaseModel]] = {
    "RolloutStart": RolloutStart,
    "RolloutCommand": RolloutCommand,
}


def openapi_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The rollout routes' path items, built with the control plane's ``op`` helper."""
    endpoint = {
        "name": "endpoint",
        "in": "path",
        "required": True,
        "description": "An endpoint's name.",
        "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9._-]+$"},
    }
    action = {
        "name": "action",
        "in": "path",
        "required": True,
        "description": "What to do.",
        "schema": {"type": "string", "enum": list(ACTIONS)},
    }
    writes = (400, 404, 409, 413)
    return {
        "/v1/rollouts": {
            "post": op("Start a rollout.", "object", writes, body="RolloutStart", status=201)
        },
        "/v1/rollouts/{endpoint}": {
            "get": op(
                "A rollout's status: phase, split, gates now, what happens next.",
                "object",
                (404,),
                params=(endpoint,),
            )
        },
        "/v1/rollouts/{endpoint}/report": {
            "get": {
                **op(
                    "The shadow diff report (JSON, or a standalone HTML page).",
                    "object",
                    (400, 404),
                    params=(
                        endpoint,
                        _query("since", "Start: a duration back from now (1h) or ISO time."),
                        _query("until", "End: a duration back from now or ISO time."),
                        _query("candidate", "The candidate version, name/N."),
                        _query("top", "How many disagreements to list.", integer=True),
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["json", "html"]},
                        },
                    ),
                ),
            }
        },
        "/v1/rollouts/{endpoint}/history": {
            "get": op("The endpoint's rollouts, newest first.", "array", (400,), params=(endpoint,))
        },
        "/v1/rollouts/{endpoint}/{action}": {
            "post": op(
                "Promote, pause, resume, abort or roll back the endpoint's rollout.",
                "object",
                writes,
                body="RolloutCommand",
                params=(endpoint, action),
            )
        },
    }


__all__ = ["ACTIONS", "BODIES", "RolloutCommand", "RolloutStart", "openapi_paths", "routes"]
