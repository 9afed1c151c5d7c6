"""Alert rules over HTTP: the routes behind ``ferryman alerts add|list|remove|history``.

=======================================  ======================  ===========================
route                                    permission              scope
=======================================  ======================  ===========================
``GET    /v1/alerts``                    ``read``                every rule; webhook URLs
                                                                 only for rules the token may
                                                                 manage, else scheme and host
``POST   /v1/alerts``                    ``manage_endpoints``    the body's ``endpoint``
``GET    /v1/alerts/history``            ``read``                every rule
``GET    /v1/alerts/{name}``             ``read``                as ``GET /v1/alerts``
``DELETE /v1/alerts/{name}``             ``manage_endpoints``    the rule's endpoint
=======================================  ======================  ===========================

Rules go to the metadata store through :class:`~ferryman.monitoring.alerts.AlertService`,
as the authenticated principal (so the audit log names who acted); every server process's
:class:`~ferryman.monitoring.alerts.AlertEngine` reads the stored rules at each round, so a
rule added here is evaluated from the next round on, like one added with the CLI. Errors
use the native error shape: 400 for an invalid rule (the message names the field), 404 for
an unknown rule, 409 for a name already taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ferryman.errors import InvalidInputError
from ferryman.monitoring.alerts import AlertRule, AlertRuleInfo, AlertService
from ferryman.security import Permission
from ferryman.server._context import ServerContext, parse_body
from ferryman.server._json_routes import Forbidden, JsonHandler, json_route
from ferryman.server.auth import principal_of

#: Most transitions ``GET /v1/alerts/history`` returns.
MAX_HISTORY: Final = 1000

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class AlertWebhook(BaseModel):
    """Where a rule's notifications are POSTed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    url: str = Field(min_length=1, max_length=2000, description="An http:// or https:// URL.")
    format: Literal["json", "slack"] = Field(
        default="json", description="Ferryman's JSON payload, or Slack's {\"text\": …}."
    )


class AlertRuleCreate(BaseModel):
    """Body of ``POST /v1/alerts``: what ``ferryman alerts add`` takes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=200, pattern=_NAME_PATTERN)
    endpoint: str = Field(min_length=1, max_length=200, pattern=_NAME_PATTERN)
    when: str = Field(
        min_length=1,
        max_length=500,
        description='The condition, e.g. "null_rate > 0.01 for 5m".',
    )
    window: str = Field(
        default="5m", min_length=1, max_length=50, description="e.g. 30s, 5m, 1h30m"
    )
    severity: Literal["info", "warning", "critical"] = "warning"
    version: str | None = Field(
        default=None, min_length=1, max_length=320, description="Only this version: name/N."
    )
    role: Literal["primary", "shadow", "batch"] | None = None
    webhooks: list[AlertWebhook] = Field(default_factory=list, max_length=20)

    def rule(self) -> AlertRule:
        """The alert rule this body describes.

        Raises:
            InvalidInputError: A field is invalid (subclasses: a malformed condition or
                duration, an unknown metric); the message names it.
        """
        # Durations are bounded (365d) by the rule parser itself, as for the CLI.
        return AlertRule.from_dict(self.model_dump())


def routes(context: ServerContext) -> list[Route]:
    """The alert rule routes."""

    def service(request: Request) -> AlertService:
        principal = principal_of(request.scope)
        user = principal.name if principal is not None else context.settings.user
        return AlertService(database=context.registry.database, user=user)

    def view(request: Request, info: AlertRuleInfo) -> dict[str, Any]:
        data = info.to_dict()
        if not may_manage(request, info.rule.endpoint):
            data["webhooks"] = [
                {"url": hook.redacted, "format": hook.format} for hook in info.rule.webhooks
            ]
        return data

    async def list_rules(request: Request) -> Any:
        endpoint = request.query_params.get("endpoint")
        infos = await run_in_threadpool(service(request).list, endpoint=endpoint)
        return [view(request, info) for info in infos]

    async def add_rule(request: Request) -> Any:
        body = await parse_body(request, AlertRuleCreate, context.settings.max_body_bytes)
        rule = body.rule()
        allow(request, rule.endpoint)
        info = await run_in_threadpool(service(request).add, rule)
        return info.to_dict()

    async def get_rule(request: Request) -> Any:
        info = await run_in_threadpool(service(request).get, request.path_params["name"])
        return view(request, info)

    async def remove_rule(request: Request) -> Any:
        name = request.path_params["name"]

        def work() -> dict[str, Any]:
            alerts = service(request)
            allow(request, alerts.get(name).rule.endpoint)
            alerts.remove(name)
            return {"name": name, "removed": True}

        return await run_in_threadpool(work)

    async def history(request: Request) -> Any:
        query = request.query_params
        limit = query.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_HISTORY:
            raise InvalidInputError(f"invalid limit {limit!r}: expected 1-{MAX_HISTORY}")
        events = await run_in_threadpool(
            service(request).history,
            endpoint=query.get("endpoint"),
            rule=query.get("rule"),
            limit=int(limit),
        )
        return [event.to_dict() for event in events]

    def check_name(request: Request) -> None:
        name = request.path_params.get("name")
        if name is not None and not _valid_name(name):
            raise InvalidInputError(
                f"invalid alert rule name {name!r}: use 1-200 letters, digits, '.', "
                "'_' or '-', starting with a letter or digit"
            )

    def route(path: str, handlers: dict[str, tuple[JsonHandler, int]]) -> Route:
        """One route per path; a rule name in the path is checked first."""
        return json_route(path, handlers, check=check_name)

    return [
        route("/v1/alerts", {"GET": (list_rules, 200), "POST": (add_rule, 201)}),
        # Before /v1/alerts/{name}: "history" is this route, not a rule's name.
        route("/v1/alerts/history", {"GET": (history, 200)}),
        route("/v1/alerts/{name}", {"GET": (get_rule, 200), "DELETE": (remove_rule, 200)}),
    ]


def may_manage(request: Request, endpoint: str) -> bool:
    """Whether the request's principal may manage ``endpoint``'s alert rules.

    Without a principal (no authentication layer in front) everything is allowed.
    """
    principal = principal_of(request.scope)
    return principal is None or principal.can(Permission.MANAGE_ENDPOINTS, endpoint)


def allow(request: Request, endpoint: str) -> None:
    """Refuse (403) unless the request's principal may manage ``endpoint``'s alert rules."""
    principal = principal_of(request.scope)
    if principal is not None and not principal.can(Permission.MANAGE_ENDPOINTS, endpoint):
        raise Forbidden(
            f"token {principal.name!r} (role {principal.role}) may not "
            f"{Permission.MANAGE_ENDPOINTS.value} on endpoint {endpoint!r}, so it may not "
            "add or remove that endpoint's alert rules"
        )


def _valid_name(value: str) -> bool:
    return (
        0 < len(value) <= 200
        and value[0].isalnum()
        and all(c.isalnum() or c in "._-" for c in value)
    )


#: JSON schemas of the alert routes' request bodies, for ``components.schemas``.
SCHEMAS: dict[str, Any] = {}


def _add_schema(name: str, model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    SCHEMAS.update(schema.pop("$defs", {}))  # nested models become components of their own
    SCHEMAS[name] = schema


_add_schema("AlertRuleCreate", AlertRuleCreate)


def openapi_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The alert routes' path items, built with the control plane's ``op`` helper."""
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "An alert rule's name.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _NAME_PATTERN},
    }

    def query(key: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": key,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }

    text = {"type": "string"}
    endpoint = query("endpoint", "Only this endpoint's rules.", text)
    return {
        "/v1/alerts": {
            "get": op("Alert rules with their current state.", "array", (), params=(endpoint,)),
            "post": op(
                "Add an alert rule; evaluated from the engine's next round on.",
                "object",
                (400, 409, 413),
                body="AlertRuleCreate",
                status=201,
            ),
        },
        "/v1/alerts/history": {
            "get": op(
                "The latest alert transitions, newest first.",
                "array",
                (400,),
                params=(
                    endpoint,
                    query("rule", "Only this rule's transitions.", text),
                    query(
                        "limit",
                        "Most transitions returned (default 20).",
                        {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY},
                    ),
                ),
            )
        },
        "/v1/alerts/{name}": {
            "get": op("One alert rule with its state.", "object", (404,), params=(name,)),
            "delete": op(
                "Remove an alert rule (its history stays); configured rules cannot be.",
                "object",
                (400, 404),
                params=(name,),
            ),
        },
    }


__all__ = [
    "MAX_HISTORY",
    "SCHEMAS",
    "AlertRuleCreate",
    "AlertWebhook",
    "allow",
    "may_manage",
    "openapi_paths",
    "routes",
]
