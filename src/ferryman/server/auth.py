"""Authentication and authorisation: one pure-ASGI layer in front of every route.

Each request is mapped to the permission it needs (:func:`required_permission`) and,
for data-plane routes, the endpoint it concerns. Health checks are public. Everything
else needs a bearer token (``Authorization: Bearer fm_…`` or ``X-API-Key: fm_…``) whose
role grants that permission for that endpoint — or, while no API token has ever been
created, a client on a loopback address (the laptop case), which acts as an admin.

Responses: 401 (with ``WWW-Authenticate: Bearer``) when no valid token is given, 403
when the token's role or scope does not allow the request, in the error shape of the
route's protocol.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferryman.security import Principal, Role, TokenService
from ferryman.security.roles import Permission
from ferryman.server.errors import Protocol as ErrorProtocol
from ferryman.server.errors import error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs.base import dumps

#: Routes anyone may call: liveness and readiness, in every protocol's spelling.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/ping", "/health"}
)

_PREDICT_ROUTES = (
    re.compile(r"^/v1/endpoints/(?P<endpoint>[^/]+)/(?:predict|invocations)$"),
    re.compile(r"^/v2/models/(?P<endpoint>[^/]+)(?:/versions/[^/]+)?/infer$"),
)
_ENDPOINT_PATH = re.compile(r"^/v1/endpoints/(?P<endpoint>[^/]+)")
_LOG_PATH = re.compile(r"^/v1/logs/(?P<endpoint>[^/]+)(?:/review)?$")
_ROLLOUT_PATH = re.compile(r"^/v1/rollouts/(?P<endpoint>[^/]+)")
_DRIFT_PATH = re.compile(r"^/v1/drift/(?P<endpoint>[^/]+)$")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: How long (seconds) the answer to "does any API token exist?" is reused.
HAS_TOKENS_TTL = 2.0


@dataclass(frozen=True)
class Requirement:
    """What a request needs: a permission (``None``: public) for an endpoint (or any).

    ``scoped_by_route``: the route itself limits a scoped token to its endpoints (the
    endpoint is in the body, e.g. a log query or feedback); here only the role counts.
    """

    permission: Permission | None
    endpoint: str | None = None
    scoped_by_route: bool = False


def required_permission(
    method: str, path: str, default_endpoint: Callable[[], str | None]
) -> Requirement:
    """Map a request to the permission it needs.

    Args:
        method: The HTTP method.
        path: The URL path.
        default_endpoint: Returns the endpoint the root MLflow routes serve, if any.
    """
    if path in PUBLIC_PATHS:
        return Requirement(None)
    if path == "/metrics":
        return Requirement(Permission.READ_METRICS)
    if method == "POST":
        for pattern in _PREDICT_ROUTES:
            match = pattern.match(path)
            if match:
                return Requirement(Permission.PREDICT, match["endpoint"])
        if path == "/invocations":
            return Requirement(Permission.PREDICT, default_endpoint())
        if path == "/v1/feedback":  # the route counts ids only on the token's endpoints
            return Requirement(Permission.PREDICT, scoped_by_route=True)
        if path == "/v1/logs/query":  # the route checks the query's endpoint scope
            return Requirement(Permission.READ_LOGS, scoped_by_route=True)
    if path.startswith("/v1/tokens"):
        return Requirement(Permission.MANAGE_TOKENS)
    if path.startswith("/v1/logs"):
        match = _LOG_PATH.match(path)
        return Requirement(Permission.READ_LOGS, match["endpoint"] if match else None)
    if path.startswith("/v1/drift/"):  # reports show captured values
        match = _DRIFT_PATH.match(path)
        return Requirement(Permission.READ_LOGS, match["endpoint"] if match else None)
    if method in _READ_METHODS:
        return Requirement(Permission.READ)
    if path.startswith("/v1/alerts"):  # the route checks the rule's endpoint scope
        return Requirement(Permission.MANAGE_ENDPOINTS, scoped_by_route=True)
    if path.startswith("/v1/endpoints"):
        match = _ENDPOINT_PATH.match(path)
        return Requirement(Permission.MANAGE_ENDPOINTS, match["endpoint"] if match else None)
    if path.startswith("/v1/rollouts"):
        match = _ROLLOUT_PATH.match(path)
        return Requirement(Permission.DEPLOY, match["endpoint"] if match else None)
    if path.startswith("/v1/models"):
        return Requirement(Permission.MANAGE_MODELS)
    return Requirement(Permission.MANAGE_TOKENS)  # unknown writes: only admins get a 404


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an IP address or name) is a loopback address."""
    if host is None:
        return False
    return _is_loopback(host)


@functools.lru_cache(maxsize=4096)
def _is_loopback(host: str) -> bool:
    # Every request asks about its client's address; parsing it each time cost about a
    # twentieth of a one-row prediction.
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AuthMiddleware:
    """Authenticate every non-public request and check its permission.

    Args:
        app: The application to protect.
        tokens: The token service; ``None`` means no token store (loopback only).
        local_user: Who a loopback client is while no token exists (audit trail name).
        insecure: While no token exists, accept clients from any address, not only
            loopback (``ferryman serve --insecure``, behind an authenticating proxy).
        default_endpoint: Returns the endpoint the root MLflow routes serve.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenService | None,
        local_user: str,
        default_endpoint: Callable[[], str | None],
        insecure: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.insecure = insecure
        self.tokens = tokens
        self.local = Principal(name=local_user, role=Role.ADMIN, endpoints=None)
        self.default_endpoint = default_endpoint
        self.clock = clock
        self._has_tokens: tuple[float, bool] | None = None

    def _tokens_exist(self) -> bool:
        if self.tokens is None:
            return False
        now = self.clock()
        if self._has_tokens is None or now - self._has_tokens[0] > HAS_TOKENS_TTL:
            # A short blocking read at most every HAS_TOKENS_TTL seconds; cheaper than a
            # thread hop on every request.
            self._has_tokens = (now, self.tokens.has_any())
        return self._has_tokens[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        denied = self.denial(scope)
        if denied is not None:
            await _deny(scope, send, *denied)
            return
        await self.app(scope, receive, send)

    def denial(self, scope: Scope, need: Requirement | None = None) -> tuple[int, str] | None:
        """Why a non-public request may not go on (status and message), or ``None``.

        ``need`` is :func:`required_permission` of the request, if the caller knows it.
        When the request may go on, the principal is left in ``scope["state"]["principal"]``.
        """
        if need is None:
            need = required_permission(scope["method"], scope["path"], self.default_endpoint)
        principal = self._authenticate(scope)
        if principal is None:
            return 401, self._why_unauthenticated(scope)
        permission = need.permission
        allowed = (
            permission is None
            or (need.scoped_by_route and permission in principal.role.permissions)
            or principal.can(permission, need.endpoint)
        )
        if permission is not None and not allowed:
            where = f" on endpoint {need.endpoint!r}" if need.endpoint else ""
            return (
                403,
                f"token {principal.name!r} (role {principal.role}) "
                f"may not {permission.value}{where}",
            )
        scope.setdefault("state", {})["principal"] = principal
        return None

    def _authenticate(self, scope: Scope) -> Principal | None:
        token = _token_from(scope)
        if token is not None and self.tokens is not None:
            return self.tokens.authenticate(token)
        anyone_local = self.insecure or _client_is_loopback(scope)
        if token is None and anyone_local and not self._tokens_exist():
            return self.local
        return None

    def _why_unauthenticated(self, scope: Scope) -> str:
        if _token_from(scope) is not None:
            return "invalid, expired or revoked API token"
        if not self._tokens_exist():
            return (
                "no API tokens exist yet, so only loopback clients are accepted; create "
                "one with: ferryman tokens create NAME --role ROLE"
            )
        return "missing API token: send 'Authorization: Bearer <token>'"


def principal_of(scope: Scope) -> Principal | None:
    """The authenticated principal of a request, set by :class:`AuthMiddleware`."""
    state = scope.get("state") or {}
    found = state.get("principal")
    return found if isinstance(found, Principal) else None


def log_reading_route(
    path: str, produce: Callable[[Request, str], Awaitable[Response]], *, why: str
) -> Route:
    """A ``GET`` route showing an endpoint's captured data, for callers who may read its logs.

    On top of the permission :class:`AuthMiddleware` checked, the principal needs
    ``read_logs`` on the endpoint named by the path's ``{endpoint}``; otherwise the answer
    is 403 with a native error body (``code`` ``forbidden``) ending with ``why``. Without a
    principal (no authentication layer in front) everything is allowed. Any exception
    ``produce`` raises becomes a native error response, never a crash.

    Args:
        path: The route's path, with an ``{endpoint}`` parameter.
        produce: Answers ``(request, endpoint)`` once the caller is allowed.
        why: Why the route needs ``read_logs``, e.g. ``"the drift report shows captured
            values"``.

    Returns:
        The route.
    """

    async def answer(request: Request) -> Response:
        rid = request_id(request.scope)
        endpoint = request.path_params["endpoint"]
        principal = principal_of(request.scope)
        if principal is not None and not principal.can(Permission.READ_LOGS, endpoint):
            body = {
                "error": f"token {principal.name!r} (role {principal.role}) may not "
                f"{Permission.READ_LOGS.value} on endpoint {endpoint!r}; {why}",
                "code": "forbidden",
                "request_id": rid,
            }
            return Response(dumps(body), status_code=403, media_type="application/json")
        try:
            return await produce(request, endpoint)
        except Exception as exc:  # every failure becomes an error body, never a crash
            return error_response(exc, protocol=ErrorProtocol.NATIVE, request_id=rid)

    return Route(path, answer, methods=["GET"])


def _token_from(scope: Scope) -> str | None:
    key: bytes
    value: bytes
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
            return ""
        if key == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


def _client_is_loopback(scope: Scope) -> bool:
    # ASGI servers leave out "client" only when there is no network peer (a Unix socket,
    # an in-process call); over TCP, uvicorn always sets it.
    client = scope.get("client")
    return client is None or is_loopback(client[0])


def denial_response(scope: Scope, status: int, message: str) -> Response:
    """The 401 or 403 answer to ``scope``, in the error shape of its route's protocol."""
    path: str = scope["path"]
    code = "unauthorized" if status == 401 else "forbidden"
    body: dict[str, str]
    if path == "/invocations" or path.endswith("/invocations"):
        body = {
            "error_code": "PERMISSION_DENIED" if status == 403 else "UNAUTHENTICATED",
            "message": message,
        }
    elif path.startswith("/v2"):
        body = {"error": message}
    else:
        body = {"error": message, "code": code}
    headers = {"www-authenticate": 'Bearer realm="ferryman"'} if status == 401 else None
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _deny(scope: Scope, send: Send, status: int, message: str) -> None:
    await denial_response(scope, status, message)(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}  # never called: a Response does not read the body
