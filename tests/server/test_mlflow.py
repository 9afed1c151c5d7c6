"""The MLflow scoring protocol over HTTP, in process, and the default endpoint."""

from __future__ import annotations

import pytest

from ferryman._version import __version__
from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio

RECORD = {"age": 30, "income": 1.0, "city": "Oslo", "member": True}


async def test_an_endpoints_invocations_take_every_format(serve_app: ServeApp) -> None:
    path = "/v1/endpoints/mixed/invocations"
    async with serve_app() as served:
        records = await served.client.post(path, json={"dataframe_records": [RECORD]})
        split = await served.client.post(
            path,
            json={"dataframe_split": {"columns": list(RECORD), "data": [list(RECORD.values())]}},
        )
        csv = await served.client.post(
            path,
            content=b"age,income,city,member\n30,1.0,Oslo,true\n",
            headers={"content-type": "text/csv"},
        )

    assert [r.json() for r in (records, split, csv)] == [{"predictions": [131]}] * 3


async def test_the_root_routes_serve_the_configured_default_endpoint(serve_app: ServeApp) -> None:
    async with serve_app(default_endpoint="mixed") as served:
        ping = await served.client.get("/ping")
        health = await served.client.get("/health")
        response = await served.client.post("/invocations", json={"instances": [RECORD]})

    assert (ping.status_code, health.status_code) == (200, 200)
    assert response.json() == {"predictions": [131]}


async def test_the_root_routes_serve_the_only_endpoint(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    for name in ("cancer", "toy", "iris"):
        endpoints.delete(name)
    async with serve_app() as served:
        response = await served.client.post(
            "/invocations", json={"inputs": [list(RECORD.values())]}
        )

    assert response.json() == {"predictions": [131]}


async def test_without_a_default_the_root_routes_say_how_to_choose(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        ping = await served.client.get("/ping")
        response = await served.client.post("/invocations", json={"instances": [RECORD]})

    assert ping.status_code == response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "--default-endpoint" in response.json()["message"]


async def test_a_default_endpoint_that_does_not_exist_is_a_404(serve_app: ServeApp) -> None:
    async with serve_app(default_endpoint="gone") as served:
        response = await served.client.get("/ping")

    assert response.status_code == 404
    assert "'gone'" in response.json()["message"]


async def test_version_is_ferrymans_version(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.get("/version")

    assert response.text == __version__


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"instances": []}', "text/plain", 415, "BAD_REQUEST"),
        (b'{"instances": []}', None, 415, "BAD_REQUEST"),
        (b"{", "application/json", 400, "BAD_REQUEST"),
        (b'{"instances": [], "inputs": []}', "application/json", 400, "BAD_REQUEST"),
        (
            b'{"dataframe_records": [{"age": "x"}]}',
            "application/json",
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ],
    ids=["text", "no-content-type", "malformed", "two-formats", "schema"],
)
async def test_errors_carry_an_mlflow_error_code_and_message(
    serve_app: ServeApp, content: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"content-type": content_type} if content_type else {"content-type": ""}
    async with serve_app() as served:
        response = await served.client.post(
            "/v1/endpoints/mixed/invocations", content=content, headers=headers
        )

    assert response.status_code == status
    assert response.json()["error_code"] == code
    assert response.json()["message"]
