"""Liveness, readiness and the OpenAPI document (schemathesis runs in test_processes.py)."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio


async def test_healthz_answers_while_the_process_serves(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_lists_each_endpoints_version_when_ready(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["endpoints"]["toy"] == {"state": "ready", "model_version": "toy/1"}


async def test_readyz_is_a_503_naming_the_endpoint_that_failed(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    endpoints.create("unsigned", model="toy/3")
    async with serve_app() as served:
        response = await served.client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["endpoints"]["unsigned"]["state"] == "failed"


async def test_the_document_describes_every_route_of_the_app(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        document = (await served.client.get("/openapi.json")).json()
        routes = [route for route in served.app.routes if isinstance(route, Route)]

    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    served_routes = {
        (route.path, method)
        for route in routes
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served_routes == documented


async def test_the_document_offers_the_current_endpoints_as_examples(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        document = (await served.client.get("/openapi.json")).json()

    parameter = document["paths"]["/v1/endpoints/{endpoint}/predict"]["post"]["parameters"][0]
    assert sorted(parameter["examples"]) == ["cancer", "iris", "mixed", "toy"]


async def test_every_schema_reference_in_the_document_resolves(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        raw = (await served.client.get("/openapi.json")).text
        document = (await served.client.get("/openapi.json")).json()

    references = set(re.findall(r'"#/components/schemas/(\w+)"', raw))
    assert references
    assert references <= set(document["components"]["schemas"])
