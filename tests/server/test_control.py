"""The control plane over HTTP: models, aliases, status and endpoints."""

from __future__ import annotations

import pytest

from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio


async def test_models_and_versions_are_listed(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        models = (await served.client.get("/v1/models")).json()
        versions = (await served.client.get("/v1/models/iris/versions")).json()
    assert "iris" in [m["name"] for m in models]
    assert [v["ref"] for v in versions] == ["iris/1"]


async def test_alias_move_over_http_is_kept_in_history(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        moved = await served.client.put("/v1/models/iris/aliases/staging", json={"version": 1})
        current = await served.client.get("/v1/models/iris/aliases/staging")
        history = await served.client.get("/v1/models/iris/aliases/staging/history")
    assert moved.status_code == 200
    assert current.json()["version"] == 1
    assert [e["version"] for e in history.json()] == [1]


async def test_endpoint_create_update_delete(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        created = await served.client.post(
            "/v1/endpoints", json={"name": "iris-b", "model": "iris/1", "max_batch_size": 8}
        )
        updated = await served.client.patch(
            "/v1/endpoints/iris-b", json={"description": "second copy"}
        )
        deleted = await served.client.delete("/v1/endpoints/iris-b")
        gone = await served.client.get("/v1/endpoints/iris-b")
    assert created.status_code == 201 and created.json()["max_batch_size"] == 8
    assert updated.json()["description"] == "second copy"
    assert (deleted.status_code, gone.status_code) == (200, 404)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/v1/endpoints", {"name": "x", "model": "nope"}, 404, "nope"),
        ("POST", "/v1/endpoints", {"name": "iris", "model": "iris/1"}, 409, "already exists"),
        (
            "POST",
            "/v1/endpoints",
            {"name": "x", "model": "iris/1", "max_batch_size": 0},
            400,
            "max_batch_size",
        ),
        ("POST", "/v1/endpoints", {"name": "x", "model": "iris/1", "colour": "red"}, 400, "colour"),
        ("PATCH", "/v1/endpoints/iris", None, 400, "body is required"),
        ("PUT", "/v1/models/iris/aliases/prod", {"version": 9}, 404, "no version 9"),
        ("POST", "/v1/models/iris/versions/1/status", {"status": "approved"}, 409, "someone else"),
        ("GET", "/v1/models/iris/versions/0", None, 400, "invalid version"),
        ("GET", "/v1/models/nope", None, 404, "nope"),
    ],
    ids=[
        "unknown-model",
        "duplicate",
        "bad-batch",
        "unknown-field",
        "no-body",
        "unknown-version",
        "self-approval",
        "version-zero",
        "unknown-model-get",
    ],
)
async def test_bad_requests_get_a_4xx_naming_the_problem(
    serve_app: ServeApp, method: str, path: str, body: object, status: int, message: str
) -> None:
    async with serve_app() as served:
        response = await served.client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
