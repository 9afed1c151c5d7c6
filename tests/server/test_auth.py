"""Authentication and roles: every route and every role, scopes, and the loopback rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferryman.config import Settings
from ferryman.security import Permission, Role, TokenService
from ferryman.server import create_app
from ferryman.server.auth import required_permission
from ferryman.store import Database

pytestmark = pytest.mark.anyio

CANCER_ROW = {"instances": [[13.0] * 30]}

#: (method, path, body, permission the route needs; None = public)
ROUTES: list[tuple[str, str, Any, Permission | None]] = [
    ("GET", "/healthz", None, None),
    ("GET", "/readyz", None, None),
    ("GET", "/v2/health/live", None, None),
    ("GET", "/v2/health/ready", None, None),
    ("GET", "/ping", None, None),
    (
        "POST",
        "/v1/endpoints/iris/predict",
        {"instances": [[5.1, 3.5, 1.4, 0.2]]},
        Permission.PREDICT,
    ),
    (
        "POST",
        "/v1/endpoints/iris/invocations",
        {"inputs": [[5.1, 3.5, 1.4, 0.2]]},
        Permission.PREDICT,
    ),
    (
        "POST",
        "/v2/models/iris/infer",
        {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        },
        Permission.PREDICT,
    ),
    ("GET", "/v2", None, Permission.READ),
    ("GET", "/v2/models/iris", None, Permission.READ),
    ("GET", "/openapi.json", None, Permission.READ),
    ("GET", "/v1/models", None, Permission.READ),
    ("GET", "/v1/models/iris/versions", None, Permission.READ),
    ("GET", "/v1/endpoints", None, Permission.READ),
    ("GET", "/v1/endpoints/iris", None, Permission.READ),
    ("GET", "/v1/audit", None, Permission.READ),
    ("PUT", "/v1/models/iris/aliases/staging", {"version": 1}, Permission.MANAGE_MODELS),
    ("PATCH", "/v1/endpoints/iris", {"description": "changed"}, Permission.MANAGE_ENDPOINTS),
    ("POST", "/v1/endpoints", {"name": "iris2", "model": "iris/1"}, Permission.MANAGE_ENDPOINTS),
]


@pytest.fixture
def tokens(home: Path) -> dict[Role, str]:
    database = Database(url=Settings(home=home).resolved_database_url).open()
    try:
        service = TokenService(database=database, user="admin")
        return {role: service.create(f"t-{role}", role)[1] for role in Role}
    finally:
        database.close()


@asynccontextmanager
async def _client(
    home: Path, *, client: tuple[str, int] = ("10.1.2.3", 5000), **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(home=home, user="alice", endpoint_refresh_seconds=3600, **overrides))
    async with app.router.lifespan_context(app):
        await app.state.pool.wait_loaded()
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as c:
            yield c


def _call(client: httpx.AsyncClient, method: str, path: str, body: Any, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_every_route_allows_exactly_the_roles_with_its_permission(
    home: Path, tokens: dict[Role, str], role: Role
) -> None:
    async with _client(home) as client:
        for method, path, body, permission in ROUTES:
            response = await _call(client, method, path, body, tokens[role])
            allowed = permission is None or permission in role.permissions
            assert (response.status_code != 403) == allowed, (method, path, role, response.text)
            assert response.status_code not in (401, 500), (method, path, response.text)


async def test_without_a_token_only_public_routes_answer(
    home: Path, tokens: dict[Role, str]
) -> None:
    async with _client(home) as client:
        for method, path, body, permission in ROUTES:
            response = await _call(client, method, path, body, None)
            expected_open = permission is None
            assert (response.status_code != 401) == expected_open, (method, path)
            if not expected_open:
                assert response.headers["www-authenticate"].startswith("Bearer")


async def test_invalid_token_is_refused_with_401(home: Path, tokens: dict[Role, str]) -> None:
    async with _client(home) as client:
        response = await _call(client, "GET", "/v1/models", None, "fm_nope_nope")
    assert response.status_code == 401
    assert "invalid, expired or revoked" in response.json()["error"]


async def test_endpoint_scoped_token_predicts_only_on_its_endpoints(home: Path) -> None:
    database = Database(url=Settings(home=home).resolved_database_url).open()
    try:
        _, token = TokenService(database=database, user="admin").create(
            "iris-only", Role.PREDICTOR, endpoints=["iris"]
        )
    finally:
        database.close()
    async with _client(home) as client:
        ok = await _call(
            client,
            "POST",
            "/v1/endpoints/iris/predict",
            {"instances": [[5.1, 3.5, 1.4, 0.2]]},
            token,
        )
        denied = await _call(client, "POST", "/v1/endpoints/cancer/predict", CANCER_ROW, token)
    assert (ok.status_code, denied.status_code) == (200, 403)
    assert "endpoint 'cancer'" in denied.json()["error"]


async def test_with_no_token_loopback_clients_act_as_admin(home: Path) -> None:
    async with _client(home, client=("127.0.0.1", 5000)) as client:
        response = await _call(
            client, "PUT", "/v1/models/iris/aliases/staging", {"version": 1}, None
        )
    assert response.status_code == 200


async def test_with_no_token_remote_clients_are_refused_unless_insecure(home: Path) -> None:
    async with _client(home) as client:
        refused = await _call(client, "GET", "/v1/models", None, None)
    async with _client(home, insecure=True) as client:
        allowed = await _call(client, "GET", "/v1/models", None, None)
    assert (refused.status_code, allowed.status_code) == (401, 200)
    assert "only loopback clients" in refused.json()["error"]


async def test_control_plane_changes_are_audited_as_the_token(
    home: Path, tokens: dict[Role, str]
) -> None:
    async with _client(home) as client:
        await _call(
            client, "PUT", "/v1/models/iris/aliases/staging", {"version": 1}, tokens[Role.DEPLOYER]
        )
        entries = (
            await _call(client, "GET", "/v1/audit?entity=iris@staging", None, tokens[Role.VIEWER])
        ).json()
    assert [(e["action"], e["actor"]) for e in entries] == [("alias.set", "t-deployer")]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/healthz", None),
        ("POST", "/v1/endpoints/churn/predict", (Permission.PREDICT, "churn")),
        ("POST", "/v2/models/churn/versions/3/infer", (Permission.PREDICT, "churn")),
        ("POST", "/invocations", (Permission.PREDICT, "default")),
        ("GET", "/metrics", (Permission.READ_METRICS, None)),
        ("DELETE", "/v1/endpoints/churn", (Permission.MANAGE_ENDPOINTS, "churn")),
        ("POST", "/v1/tokens", (Permission.MANAGE_TOKENS, None)),
        ("GET", "/v1/logs/churn", (Permission.READ_LOGS, "churn")),
        ("POST", "/v1/logs/churn/review", (Permission.READ_LOGS, "churn")),
        ("POST", "/v1/logs/query", (Permission.READ_LOGS, None)),
        ("POST", "/v1/feedback", (Permission.PREDICT, None)),
        ("POST", "/v1/rollouts", (Permission.DEPLOY, None)),
        ("POST", "/v1/rollouts/churn/rollback", (Permission.DEPLOY, "churn")),
    ],
)
def test_routes_map_to_their_permission(
    method: str, path: str, expected: tuple[Permission, str | None] | None
) -> None:
    need = required_permission(method, path, lambda: "default")
    got = None if need.permission is None else (need.permission, need.endpoint)
    assert got == expected
