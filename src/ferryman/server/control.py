"""The control plane over HTTP: models, versions, aliases, status and endpoints.

Thin routes over :class:`~ferryman.registry.Registry` and
:class:`~ferryman.serving.endpoints.EndpointService`: each parses and validates its body
with a pydantic model, runs the (blocking) store call on a worker thread as the
authenticated principal (so the audit log names who acted), and answers JSON. Errors
use the native error shape and the status table in :mod:`ferryman.server.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman.errors import InvalidInputError
from ferryman.registry import Registry
from ferryman.server import alerts, drift, logs, rollouts
from ferryman.server._context import ServerContext, parse_body
from ferryman.server.auth import principal_of
from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs.base import dumps
from ferryman.serving.endpoints import EndpointService

Handler = Callable[[Request], Awaitable[Response]]

_PATH_VALUE = re.compile(r"^[A-Za-z0-9._-]+$")
_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointCreate(_Body):
    """Body of ``POST /v1/endpoints``."""

    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=300, description="Model reference.")
    max_batch_size: int = Field(default=1, ge=1, le=100_000)
    max_latency_ms: float = Field(default=5.0, gt=0, le=3_600_000)
    timeout_ms: float = Field(default=10_000.0, gt=0, le=3_600_000)
    unknown_columns: Literal["reject", "ignore"] = "reject"
    passthrough: list[str] = Field(default_factory=list, max_length=1000)
    privacy: dict[str, str] = Field(
        default_factory=dict, max_length=1000, description="column -> keep|hash|drop|redact"
    )
    capture_sample_rate: StrictFloat | StrictInt = Field(default=1.0, ge=0, le=1)
    log_retention_days: StrictFloat | StrictInt | None = Field(default=None, gt=0, le=365_000)
    description: str = Field(default="", max_length=10_000)


class EndpointUpdate(_Body):
    """Body of ``PATCH /v1/endpoints/{name}``; omitted fields keep their value."""

    model: str | None = Field(default=None, min_length=1, max_length=300)
    max_batch_size: int | None = Field(default=None, ge=1, le=100_000)
    max_latency_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    timeout_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    unknown_columns: Literal["reject", "ignore"] | None = None
    passthrough: list[str] | None = Field(default=None, max_length=1000)
    privacy: dict[str, str] | None = Field(default=None, max_length=1000)
    capture_sample_rate: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=1)
    log_retention_days: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=365_000)
    description: str | None = Field(default=None, max_length=10_000)


class AliasMove(_Body):
    """Body of ``PUT /v1/models/{name}/aliases/{alias}``."""

    version: int = Field(ge=1, le=2**31 - 1)


class StatusChange(_Body):
    """Body of ``POST /v1/models/{name}/versions/{version}/status``."""

    status: Literal["approved", "rejected", "archived"]
    comment: str | None = Field(default=None, max_length=10_000)


#: Request body models, by name, for the OpenAPI document.
BODIES: dict[str, type[BaseModel]] = {
    "EndpointCreate": EndpointCreate,
    "EndpointUpdate": EndpointUpdate,
    "AliasMove": AliasMove,
    "StatusChange": StatusChange,
}


def routes(context: ServerContext) -> list[Route]:
    """The control-plane routes."""

    def actor(request: Request) -> str:
        principal = principal_of(request.scope)
        return principal.name if principal is not None else context.settings.user

    def registry(request: Request) -> Registry:
        return context.registry.acting_as(actor(request))

    def endpoints(request: Request) -> EndpointService:
        return EndpointService(database=context.registry.database, user=actor(request))

    async def parse(request: Request, model: type[_Body]) -> Any:
        return await parse_body(request, model, context.settings.max_body_bytes)

    def check_path(request: Request) -> None:
        for key in ("name", "alias"):
            value = request.path_params.get(key)
            if value is not None and not _PATH_VALUE.match(value):
                raise InvalidInputError(
                    f"invalid {key} {value!r}: use letters, digits, '.', '_' or '-'"
                )

    def int_param(request: Request, key: str) -> int:
        text = request.path_params[key]
        if not _VERSION.match(text) or int(text) > 2**31 - 1:
            raise InvalidInputError(f"invalid version {text!r}: expected a number >= 1")
        return int(text)

    async def list_models(request: Request) -> Any:
        tags = _pairs(request.query_params.getlist("tag"))
        owner = request.query_params.get("owner_team")
        found = await run_in_threadpool(context.registry.list_models, tags=tags, owner_team=owner)
        return [m.to_dict() for m in found]

    async def get_model(request: Request) -> Any:
        info = await run_in_threadpool(context.registry.get_model, request.path_params["name"])
        return info.to_dict()

    async def list_versions(request: Request) -> Any:
        query = request.query_params
        found = await run_in_threadpool(
            context.registry.search_versions,
            name=request.path_params["name"],
            status=query.getlist("status") or None,
            tags=_pairs(query.getlist("tag")),
            alias=query.get("alias"),
            metrics=query.getlist("metric"),
        )
        return [v.to_dict() for v in found]

    async def get_version(request: Request) -> Any:
        ref = f"{request.path_params['name']}/{int_param(request, 'version')}"
        info = await run_in_threadpool(context.registry.get_version, ref)
        return info.to_dict()

    async def get_alias(request: Request) -> Any:
        ref = f"{request.path_params['name']}@{request.path_params['alias']}"
        info = await run_in_threadpool(context.registry.get_version, ref)
        return info.to_dict()

    async def alias_history(request: Request) -> Any:
        events = await run_in_threadpool(
            context.registry.alias_history,
            request.path_params["name"],
            request.path_params["alias"],
        )
        return [e.to_dict() for e in events]

    async def put_alias(request: Request) -> Any:
        body: AliasMove = await parse(request, AliasMove)
        event = await run_in_threadpool(
            registry(request).set_alias,
            request.path_params["name"],
            request.path_params["alias"],
            body.version,
        )
        return event.to_dict()

    async def delete_alias(request: Request) -> Any:
        event = await run_in_threadpool(
            registry(request).delete_alias,
            request.path_params["name"],
            request.path_params["alias"],
        )
        return event.to_dict()

    async def change_status(request: Request) -> Any:
        body: StatusChange = await parse(request, StatusChange)
        ref = f"{request.path_params['name']}/{int_param(request, 'version')}"
        info = await run_in_threadpool(
            registry(request).set_status, ref, body.status, comment=body.comment
        )
        return info.to_dict()

    async def list_endpoints(request: Request) -> Any:
        found = await run_in_threadpool(endpoints(request).list)
        return [e.to_dict() for e in found]

    async def get_endpoint(request: Request) -> Any:
        found = await run_in_threadpool(endpoints(request).get, request.path_params["name"])
        return found.to_dict()

    async def create_endpoint(request: Request) -> Any:
        body: EndpointCreate = await parse(request, EndpointCreate)
        values = body.model_dump()
        name = values.pop("name")
        created = await run_in_threadpool(lambda: endpoints(request).create(name, **values))
        return created.to_dict()

    async def update_endpoint(request: Request) -> Any:
        body: EndpointUpdate = await parse(request, EndpointUpdate)
        changes = {k: v for k, v in body.model_dump().items() if v is not None}
        name = request.path_params["name"]
        updated = await run_in_threadpool(lambda: endpoints(request).update(name, **changes))
        return updated.to_dict()

    async def delete_endpoint(request: Request) -> Any:
        name = request.path_params["name"]
        await run_in_threadpool(endpoints(request).delete, name)
        return {"deleted": name}

    async def audit_log(request: Request) -> Any:
        limit_text = request.query_params.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10_000:
            raise InvalidInputError(f"invalid limit {limit_text!r}: expected 1-10000")
        entries = await run_in_threadpool(
            context.registry.audit_entries,
            entity=request.query_params.get("entity"),
            limit=int(limit_text),
        )
        return [e.to_dict() for e in entries]

    def json_route(
        path: str, handlers: dict[str, tuple[Callable[[Request], Awaitable[Any]], int]]
    ) -> Route:
        """One route per path, dispatching on the method, so a 405 lists every method."""

        async def endpoint(request: Request) -> Response:
            handler, status = handlers[request.method]
            try:
                check_path(request)
                result = await handler(request)
            except Exception as exc:  # every failure becomes an error body, never a crash
                return error_response(
                    exc, protocol=Protocol.NATIVE, request_id=request_id(request.scope)
                )
            return Response(dumps(result), status_code=status, media_type="application/json")

        return Route(path, endpoint, methods=list(handlers))

    return [
        json_route("/v1/models", {"GET": (list_models, 200)}),
        json_route("/v1/models/{name}", {"GET": (get_model, 200)}),
        json_route("/v1/models/{name}/versions", {"GET": (list_versions, 200)}),
        json_route("/v1/models/{name}/versions/{version}", {"GET": (get_version, 200)}),
        json_route("/v1/models/{name}/versions/{version}/status", {"POST": (change_status, 200)}),
        json_route(
            "/v1/models/{name}/aliases/{alias}",
            {"GET": (get_alias, 200), "PUT": (put_alias, 200), "DELETE": (delete_alias, 200)},
        ),
        json_route("/v1/models/{name}/aliases/{alias}/history", {"GET": (alias_history, 200)}),
        json_route("/v1/endpoints", {"GET": (list_endpoints, 200), "POST": (create_endpoint, 201)}),
        json_route(
            "/v1/endpoints/{name}",
            {
                "GET": (get_endpoint, 200),
                "PATCH": (update_endpoint, 200),
                "DELETE": (delete_endpoint, 200),
            },
        ),
        json_route("/v1/audit", {"GET": (audit_log, 200)}),
    ]


def _pairs(values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"invalid tag filter {item!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


_ERROR_TEXT = {
    400: "Invalid parameters or body; the message names the field.",
    401: "No valid API token.",
    403: "The token's role or scope does not allow this.",
    404: "No such model, version, alias or endpoint.",
    409: "Conflicts with the current state (a duplicate, a disallowed status change).",
    413: "The body is larger than the server's limit.",
    503: "The metadata store is unreachable.",
}


def openapi_schemas() -> dict[str, Any]:
    """JSON schemas of the control plane's request bodies, for ``components.schemas``."""
    schemas: dict[str, Any] = {}
    for name, model in {**BODIES, **rollouts.BODIES}.items():
        schemas[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(logs.SCHEMAS)
    schemas.update(alerts.SCHEMAS)
    return schemas


def openapi_paths() -> dict[str, Any]:
    """The control plane's path items for the OpenAPI document."""
    name = _path_parameter("name", "A model name.")
    alias = _path_parameter("alias", "An alias, e.g. production.")
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "A version number.",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,9}$"},
    }
    endpoint = _path_parameter("name", "An endpoint's name.")

    def op(
        summary: str,
        result: str,
        errors: tuple[int, ...],
        *,
        body: str | None = None,
        params: tuple[Any, ...] = (),
        status: int = 200,
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": list(params),
            "responses": {
                str(status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": result}}},
                },
                **{
                    str(code): {
                        "description": _ERROR_TEXT[code],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NativeError"}
                            }
                        },
                    }
                    for code in sorted({*errors, 400, 401, 403, 503})
                },
            },
        }
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}
                },
            }
        return operation

    writes = (400, 404, 409, 413)
    return {
        "/v1/models": {"get": op("List registered models.", "array", (400,))},
        "/v1/models/{name}": {"get": op("A registered model.", "object", (404,), params=(name,))},
        "/v1/models/{name}/versions": {
            "get": op("A model's versions, filtered.", "array", (400, 404), params=(name,))
        },
        "/v1/models/{name}/versions/{version}": {
            "get": op("One version.", "object", (400, 404), params=(name, version))
        },
        "/v1/models/{name}/versions/{version}/status": {
            "post": op(
                "Approve, reject or archive a version.",
                "object",
                writes,
                body="StatusChange",
                params=(name, version),
            )
        },
        "/v1/models/{name}/aliases/{alias}": {
            "get": op("The version an alias points to.", "object", (404,), params=(name, alias)),
            "put": op(
                "Point an alias at a version.",
                "object",
                writes,
                body="AliasMove",
                params=(name, alias),
            ),
            "delete": op(
                "Remove an alias (its history stays).", "object", (400, 404), params=(name, alias)
            ),
        },
        "/v1/models/{name}/aliases/{alias}/history": {
            "get": op("Every move of an alias.", "array", (404,), params=(name, alias))
        },
        "/v1/endpoints": {
            "get": op("List endpoints.", "array", ()),
            "post": op("Create an endpoint.", "object", writes, body="EndpointCreate", status=201),
        },
        "/v1/endpoints/{name}": {
            "get": op("One endpoint.", "object", (404,), params=(endpoint,)),
            "patch": op(
                "Change an endpoint.", "object", writes, body="EndpointUpdate", params=(endpoint,)
            ),
            "delete": op("Delete an endpoint.", "object", (400, 404), params=(endpoint,)),
        },
        "/v1/audit": {"get": op("Audit log entries, newest last.", "array", (400,))},
        **rollouts.openapi_paths(op),
        **drift.openapi_paths(op),
        **logs.openapi_paths(op),
        **alerts.openapi_paths(op),
    }


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9._-]+$"},
    }
