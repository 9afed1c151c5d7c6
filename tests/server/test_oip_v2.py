"""The Open Inference Protocol V2 over HTTP, in process (tritonclient: test_processes.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman._version import __version__
from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio


def toy_inputs(*xs: float) -> list[dict[str, Any]]:
    return [
        {"name": "x", "shape": [len(xs)], "datatype": "FP64", "data": list(xs)},
        {"name": "delay", "shape": [len(xs)], "datatype": "FP64", "data": [0.0] * len(xs)},
    ]


async def test_server_metadata_advertises_no_binary_extension(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.get("/v2")

    assert response.json() == {"name": "ferryman", "version": __version__, "extensions": []}


async def test_a_loaded_server_is_live_and_ready(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        live = await served.client.get("/v2/health/live")
        ready = await served.client.get("/v2/health/ready")

    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


async def test_a_server_with_an_unloadable_model_is_live_but_not_ready(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    endpoints.create("unsigned", model="toy/3")
    async with serve_app() as served:
        live = await served.client.get("/v2/health/live")
        ready = await served.client.get("/v2/health/ready")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert "unsigned" in ready.json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/toy", "/v2/models/toy/versions/1"])
async def test_model_metadata_describes_inputs_and_outputs(serve_app: ServeApp, path: str) -> None:
    async with serve_app() as served:
        response = await served.client.get(path)

    assert response.json() == {
        "name": "toy",
        "versions": ["1"],
        "platform": "python",
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [-1]},
            {"name": "delay", "datatype": "FP64", "shape": [-1]},
        ],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
    }


@pytest.mark.parametrize("path", ["/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"])
async def test_a_loaded_model_is_ready(serve_app: ServeApp, path: str) -> None:
    async with serve_app() as served:
        response = await served.client.get(path)

    assert (response.status_code, response.json()) == (200, {"name": "iris", "ready": True})


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/toy/versions/2",
        "/v2/models/toy/versions/2/ready",
        "/v2/models/toy/versions/one",
    ],
)
async def test_unknown_models_and_versions_are_404s(serve_app: ServeApp, path: str) -> None:
    async with serve_app() as served:
        response = await served.client.get(path)

    assert response.status_code == 404
    assert set(response.json()) == {"error"}


async def test_infer_echoes_the_id_and_returns_the_outputs(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            "/v2/models/toy/infer", json={"id": "req-1", "inputs": toy_inputs(1.0, 2.5)}
        )

    assert response.status_code == 200
    assert response.json() == {
        "model_name": "toy",
        "model_version": "1",
        "id": "req-1",
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [2], "data": [2.0, 5.0]}],
    }


async def test_infer_without_content_type_is_accepted(serve_app: ServeApp) -> None:
    import orjson

    async with serve_app() as served:
        response = await served.client.post(
            "/v2/models/toy/versions/1/infer",
            content=orjson.dumps({"inputs": toy_inputs(1.0)}),
            headers={"content-type": ""},
        )

    assert response.status_code == 200


async def test_infer_returns_only_the_requested_outputs(serve_app: ServeApp) -> None:
    inputs = [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}
    ]
    async with serve_app() as served:
        response = await served.client.post(
            "/v2/models/iris/infer", json={"inputs": inputs, "outputs": [{"name": "predict_proba"}]}
        )

    outputs = response.json()["outputs"]
    assert [(o["name"], o["datatype"], o["shape"]) for o in outputs] == [
        ("predict_proba", "FP64", [1, 3])
    ]


async def test_mixed_datatypes_feed_a_table_model(serve_app: ServeApp) -> None:
    inputs = [
        {"name": "age", "shape": [2, 1], "datatype": "INT32", "data": [30, 40]},
        {"name": "income", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]},
        {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Oslo", "Bergen"]},
        {"name": "member", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        {"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
    ]
    async with serve_app() as served:
        response = await served.client.post("/v2/models/mixed/infer", json={"inputs": inputs})

    assert response.json()["outputs"][0]["data"] == [131, 40]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"inputs": toy_inputs(1.0)[:1]}, "missing input 'delay'"),
        (
            {"inputs": [{**toy_inputs(1.0)[0], "datatype": "fp64"}, toy_inputs(1.0)[1]]},
            "unknown datatype 'fp64'",
        ),
        (
            {"inputs": [{**toy_inputs(1.0, 2.0)[0], "shape": [3]}, toy_inputs(1.0)[1]]},
            "holds 3 elements",
        ),
        ({"inputs": toy_inputs()}, "empty batch"),
        ({"inputs": toy_inputs(1.0), "outputs": [{"name": "logits"}]}, "unknown output"),
    ],
    ids=["missing-input", "lowercase-datatype", "shape-mismatch", "empty", "unknown-output"],
)
async def test_bad_infer_requests_are_400s_with_an_error_message(
    serve_app: ServeApp, payload: dict[str, Any], message: str
) -> None:
    async with serve_app() as served:
        response = await served.client.post("/v2/models/toy/infer", json=payload)

    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]


async def test_binary_tensor_data_is_refused_clearly(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            "/v2/models/toy/infer",
            content=b'{"inputs": []}',
            headers={"Inference-Header-Content-Length": "14"},
        )

    assert response.status_code == 400
    assert "binary tensor data is not supported" in response.json()["error"]


async def test_a_model_failure_is_a_500_with_an_error_id(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            "/v2/models/toy/infer", json={"inputs": toy_inputs(-1.0)}
        )

    assert response.status_code == 500
    assert set(response.json()) == {"error", "error_id"}
