"""The prediction routes' fused front layer answers exactly as the generic stack does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferryman.config import Settings
from ferryman.security.roles import Permission
from ferryman.server import create_app, dataplane
from ferryman.server.dataplane import DataPlane, FerrymanApp
from tests.server.conftest import ServeApp, Served

pytestmark = pytest.mark.anyio

CANCER = load_breast_cancer(as_frame=True).data
ROWS = CANCER.head(2).to_dict("records")

#: (path, body) of a request per protocol, and of its failures.
REQUESTS: list[tuple[str, Any]] = [
    ("/v1/endpoints/cancer/predict", {"instances": ROWS}),
    ("/v1/endpoints/cancer/predict", {"instances": [{"nope": 1}]}),
    ("/v1/endpoints/cancer/predict", "not json"),
    ("/v1/endpoints/missing/predict", {"instances": ROWS}),
    ("/v1/endpoints/cancer/invocations", {"dataframe_records": ROWS}),
    ("/v1/endpoints/cancer/invocations", {"dataframe_records": [{"nope": 1}]}),
    ("/v2/models/cancer/infer", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]}),
    ("/v2/models/cancer/versions/1/infer", {"inputs": []}),
    (
        "/v2/models/toy/infer",
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2.0]}]},
    ),
]


def _comparable(response: httpx.Response) -> tuple[int, Any, list[str]]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in {"request_id", "id"}}
    # Same header names; values of ids and timings differ from request to request.
    return response.status_code, body, sorted(response.headers.keys())


async def _post(served: Served, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    if isinstance(body, str):
        return await served.client.post(path, content=body, **kwargs)
    return await served.client.post(path, json=body, **kwargs)


@pytest.mark.parametrize(("path", "body"), REQUESTS)
async def test_answers_match_the_generic_stack(serve_app: ServeApp, path: str, body: Any) -> None:
    async with serve_app() as served:
        app = served.app
        assert isinstance(app, FerrymanApp)
        fused = await _post(served, path, body, headers={"x-request-id": "fixed-id"})
        plane, app.data_plane = app.data_plane, None
        try:
            generic = await _post(served, path, body, headers={"x-request-id": "fixed-id"})
        finally:
            app.data_plane = plane
    assert _comparable(fused) == _comparable(generic)
    assert fused.headers["x-request-id"] == "fixed-id"


async def test_predictions_do_not_enter_the_generic_stack(serve_app: ServeApp) -> None:
    async with serve_app() as served:

        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            raise AssertionError("the generic stack was entered")

        served.app.middleware_stack = broken
        response = await served.client.post(
            "/v1/endpoints/cancer/predict", json={"instances": ROWS}
        )
        assert response.status_code == 200
        assert response.headers["x-queue-time-ms"] and response.headers["x-compute-time-ms"]
        with pytest.raises(AssertionError, match="generic stack"):
            await served.client.get("/healthz")


async def test_requests_are_counted_and_denials_answered_in_each_protocol(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        app = served.app
        # A remote client while no token exists: refused in the route's protocol's shape.
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://f") as remote:
            native = await remote.post("/v1/endpoints/cancer/predict", json={"instances": ROWS})
            v2 = await remote.post("/v2/models/cancer/infer", json={"inputs": []})
            mlflow = await remote.post("/invocations", json={"dataframe_records": ROWS})
        assert [r.status_code for r in (native, v2, mlflow)] == [401, 401, 401]
        assert native.json()["code"] == "unauthorized"
        assert set(v2.json()) == {"error"}
        assert mlflow.json()["error_code"] == "UNAUTHENTICATED"
        assert native.headers["www-authenticate"].startswith("Bearer")
        assert native.headers["x-request-id"]
        text = (await served.client.get("/metrics")).text
    # /invocations has no default endpoint here (four endpoints): counted under "".
    assert 'ferryman_errors_total{endpoint="cancer",kind="unauthorized"} 2.0' in text
    assert 'ferryman_errors_total{endpoint="",kind="unauthorized"} 1.0' in text


def _plane(routes: list[Route]) -> DataPlane:
    return DataPlane(routes, metrics=None, auth=None)  # type: ignore[arg-type]


async def _nothing(request: Any) -> Any:
    raise AssertionError("not called")


def test_match_gives_the_route_its_parameters_and_permission() -> None:
    native = Route("/v1/endpoints/{endpoint}/predict", _nothing, methods=["POST"])
    versioned = Route("/v2/models/{name}/versions/{version}/infer", _nothing, methods=["POST"])
    root = Route("/invocations", _nothing, methods=["POST"])
    plane = _plane([native, versioned, root])
    found = plane.match("/v1/endpoints/churn/predict")
    assert found is not None
    assert found[1] == {"endpoint": "churn"}
    assert found[2] is not None and found[2].permission is Permission.PREDICT
    assert found[2].endpoint == "churn"
    found = plane.match("/v2/models/churn/versions/3/infer")
    assert found is not None and found[1] == {"name": "churn", "version": "3"}
    assert found[2] is not None and found[2].endpoint == "churn"
    found = plane.match("/invocations")
    assert found is not None and found[2] is None  # follows the default endpoint
    assert plane.match("/v1/endpoints/churn") is None
    assert plane.match("/v1/endpoints/churn/predict/more") is None


def test_remembered_matches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataplane, "_MAX_CACHED_PATHS", 10)
    plane = _plane([Route("/v1/endpoints/{endpoint}/predict", _nothing, methods=["POST"])])
    for i in range(50):
        assert plane.match(f"/v1/endpoints/e{i}/predict") is not None
        assert plane.match(f"/random/{i}") is None
    assert len(plane._matches) == 10


def test_only_prediction_routes_are_accepted() -> None:
    with pytest.raises(ValueError, match=r"not prediction routes: \['/v1/models'\]"):
        _plane([Route("/v1/models", _nothing, methods=["POST"])])


async def test_a_root_path_or_another_method_goes_to_the_generic_stack() -> None:
    seen: list[str] = []

    class Plane:
        def match(self, path: str) -> Any:
            return (_nothing, {}, None)

        async def serve(self, *args: Any) -> None:
            seen.append("plane")

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append("generic")

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    app = FerrymanApp()
    app.data_plane = Plane()  # type: ignore[assignment]
    app.middleware_stack = ok
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/x", "root_path": ""}
    await app(scope, receive, send)
    await app({**scope, "root_path": "/api"}, receive, send)
    await app({**scope, "method": "GET"}, receive, send)
    assert seen == ["plane", "generic", "generic"]


async def test_added_middleware_sees_predictions_too(home: Path) -> None:
    seen: list[str] = []

    class Count:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.app(scope, receive, send)

    app = create_app(Settings(home=home, user="alice", endpoint_refresh_seconds=3600))
    app.add_middleware(Count)
    async with app.router.lifespan_context(app):
        await app.state.pool.wait_loaded()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://f") as client:
            response = await client.post("/v1/endpoints/cancer/predict", json={"instances": ROWS})
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    assert seen == ["/v1/endpoints/cancer/predict"]
