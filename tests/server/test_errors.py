"""Failures map to statuses in one table, the server stays up, and nothing hangs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from ferryman.errors import (
    EndpointNotReadyError,
    MalformedRequestError,
    PredictionError,
    PredictionTimeoutError,
    SchemaValidationError,
    VersionNotFoundError,
)
from ferryman.server.errors import Protocol, error_response, status_of
from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio

TOY = "/v1/endpoints/toy/predict"


def toy_rows(x: float = 1.0, delay: float = 0.0) -> dict[str, Any]:
    return {"instances": [{"x": x, "delay": delay}]}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MalformedRequestError("m"), 400),
        (SchemaValidationError("s"), 400),
        (VersionNotFoundError("v"), 404),
        (EndpointNotReadyError("r"), 503),
        (PredictionTimeoutError("t"), 504),
        (PredictionError("p"), 500),
        (KeyError("bug"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_exception_class_has_one_status(error: Exception, status: int) -> None:
    assert status_of(error)[0] == status


def test_an_unexpected_exception_is_answered_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="ferryman.server"):
        response = error_response(
            KeyError("secret internals"), protocol=Protocol.OIP_V2, request_id="r"
        )

    body = orjson.loads(response.body)
    assert response.status_code == 500
    assert "secret" not in body["error"]
    assert body["error_id"] in body["error"]
    assert body["error_id"] in caplog.text


@pytest.mark.parametrize(
    ("protocol", "keys"),
    [
        (Protocol.NATIVE, {"error", "code", "request_id"}),
        (Protocol.OIP_V2, {"error"}),
        (Protocol.MLFLOW, {"error_code", "message"}),
    ],
)
def test_each_protocol_has_its_error_shape(protocol: Protocol, keys: set[str]) -> None:
    response = error_response(MalformedRequestError("bad"), protocol=protocol, request_id="r")

    assert set(orjson.loads(response.body)) == keys


async def test_a_model_that_raises_is_a_500_with_an_error_id_in_the_log(
    serve_app: ServeApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="ferryman.server"):
        async with serve_app() as served:
            response = await served.client.post(TOY, json=toy_rows(x=-1.0))
            after = await served.client.post(TOY, json=toy_rows(x=1.0))

    body = response.json()
    assert response.status_code == 500
    assert body["code"] == "prediction_error"
    assert "x must not be negative" in body["error"]
    assert f"error_id={body['error_id']}" in caplog.text
    assert after.status_code == 200


async def test_a_prediction_slower_than_the_timeout_is_a_504_and_others_go_on(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    endpoints.update("toy", timeout_ms=200.0)
    async with serve_app() as served:
        slow = asyncio.create_task(served.client.post(TOY, json=toy_rows(delay=3.0)))
        other = await served.client.post(
            "/v1/endpoints/iris/predict", json={"instances": [[5.0, 3.0, 1.5, 0.2]]}
        )
        timed_out = await asyncio.wait_for(slow, 10)

    assert other.status_code == 200
    assert timed_out.status_code == 504
    assert "timeout of 200 ms" in timed_out.json()["error"]


async def test_an_unknown_endpoint_is_a_404_naming_it(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post("/v1/endpoints/nope/predict", json=toy_rows())

    assert response.status_code == 404
    assert response.json()["code"] == "endpoint_not_found"
    assert "'nope'" in response.json()["error"]


async def test_an_endpoint_whose_model_cannot_load_is_a_503_with_retry_after(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    endpoints.create("unsigned", model="toy/3")
    async with serve_app() as served:
        response = await served.client.post("/v1/endpoints/unsigned/predict", json=toy_rows())

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "has no signature" in response.json()["error"]


async def test_a_body_over_the_limit_is_a_413(serve_app: ServeApp) -> None:
    async with serve_app(max_body_bytes=1000) as served:
        response = await served.client.post(TOY, json={"instances": [{"x": 1.0}] * 200})

    assert response.status_code == 413
    assert "over the limit of 1000 bytes" in response.json()["error"]


async def test_a_streamed_body_over_the_limit_is_refused_before_it_is_all_read(
    serve_app: ServeApp,
) -> None:
    # No Content-Length: the server counts bytes as they arrive and stops at the limit.
    async with serve_app(max_body_bytes=1000) as served:
        app = served.app
        chunks = [b'{"instances": [' + b'{"x": 1.0, "delay": 0},' * 20] * 50
        received: list[int] = []
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            received.append(1)
            more = len(received) < len(chunks)
            return {"type": "http.request", "body": chunks[len(received) - 1], "more_body": more}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": TOY,
            "raw_path": TOY.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"ferryman")],
            "client": ("127.0.0.1", 1),
            "server": ("ferryman", 80),
        }
        await asyncio.wait_for(app(scope, receive, send), 10)

    assert sent[0]["status"] == 413
    assert len(received) < len(chunks)


async def test_a_malformed_content_length_is_a_400(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        app = served.app
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": TOY,
            "raw_path": TOY.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-length", b"lots")],
            "scheme": "http",
            "server": ("ferryman", 80),
        }
        await asyncio.wait_for(app(scope, receive, send), 10)

    assert sent[0]["status"] == 400
    assert b"invalid Content-Length" in sent[1]["body"]


async def test_a_wrong_method_is_a_405_in_json(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.get(TOY)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
