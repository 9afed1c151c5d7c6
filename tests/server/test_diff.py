"""``GET /v1/rollouts/{endpoint}/report`` on a Starlette app of its own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ferryman.capture import LogStore
from ferryman.security import Principal, Role
from ferryman.server import diff
from tests.rollout.diff_records import Clock, classified, open_log, submit

pytestmark = pytest.mark.anyio

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Context:
    """The one attribute of the server's context the route uses."""

    log: LogStore | None


class AsPrincipal:
    """Stand-in for the auth middleware: the principal comes from the test."""

    def __init__(self, app: ASGIApp, *, principal: Principal | None) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.principal is not None:
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    """Ten shadowed requests written 10 minutes before the store's clock; two disagree."""
    clock = Clock()
    capture = open_log(tmp_path / "logs", clock)
    for index in range(10):
        positive = 0.9 if index < 6 else 0.1
        flipped = 1 - positive if index in (2, 8) else positive
        for role, version, answer in (
            ("primary", "churn/1", positive),
            ("shadow", "churn/2", flipped),
        ):
            prediction = classified([int(answer > 0.5)], [answer])
            submit(capture.writer, f"r{index}", role, version, prediction)
    capture.writer.flush()
    clock.advance(600)
    return capture.store


def make_client(log: LogStore | None) -> Client:
    @asynccontextmanager
    async def make(principal: Principal | None = None) -> AsyncIterator[httpx.AsyncClient]:
        app = Starlette(routes=diff.routes(Context(log=log)))
        transport = httpx.ASGITransport(app=AsPrincipal(app, principal=principal))
        async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as c:
            yield c

    return make


async def test_the_report_is_json_by_default(store: LogStore) -> None:
    async with make_client(store)() as client:
        response = await client.get("/v1/rollouts/churn/report", params={"since": "1h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["rows_compared"], body["agreement_rate"]) == ("shadow", 10, 0.8)
    assert {d["request_id"] for d in body["disagreements"]} == {"r2", "r8"}


async def test_the_report_as_a_standalone_html_page(store: LogStore) -> None:
    async with make_client(store)() as client:
        response = await client.get("/v1/rollouts/churn/report?since=1h&format=html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert re.search(r"<script[^>]*\bsrc=", response.text) is None
    assert "churn/2" in response.text and "0.8" in response.text


async def test_a_window_without_the_records_is_a_400_that_says_what_to_do(
    store: LogStore,
) -> None:
    async with make_client(store)() as client:
        response = await client.get("/v1/rollouts/churn/report", params={"since": "5m"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert "No shadow records for endpoint 'churn'" in response.json()["error"]


async def test_an_iso_window_is_accepted(store: LogStore) -> None:
    params = {"since": "2026-03-14T15:00:00+00:00", "until": "2026-03-14T15:10:00Z"}
    async with make_client(store)() as client:
        response = await client.get("/v1/rollouts/churn/report", params=params)
    assert response.status_code == 200
    assert response.json()["until"] == "2026-03-14T15:10:00+00:00"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "invalid since 'yesterday'"),
        ("since=2026-03-14T15:00:00", "invalid since"),
        ("format=pdf", "invalid format 'pdf': expected json or html"),
        ("top=-1", "invalid top '-1'"),
        ("top=5000", "invalid top '5000'"),
    ],
    ids=["word", "naive-time", "format", "negative-top", "large-top"],
)
async def test_bad_query_parameters_are_400s_naming_them(
    store: LogStore, query: str, message: str
) -> None:
    async with make_client(store)() as client:
        response = await client.get(f"/v1/rollouts/churn/report?{query}")
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_without_a_prediction_log_the_report_is_not_found() -> None:
    async with make_client(None)() as client:
        response = await client.get("/v1/rollouts/churn/report")
    assert response.status_code == 404
    assert "capture is off" in response.json()["error"]


@pytest.mark.parametrize(
    "principal",
    [Principal("viewer", Role.VIEWER), Principal("other", Role.DEPLOYER, frozenset({"fraud"}))],
    ids=["viewer", "other-endpoint"],
)
async def test_the_report_needs_read_logs_on_the_endpoint(
    store: LogStore, principal: Principal
) -> None:
    async with make_client(store)(principal) as client:
        response = await client.get("/v1/rollouts/churn/report?since=1h")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "may not read_logs on endpoint 'churn'" in response.json()["error"]


async def test_a_token_that_reads_the_endpoints_logs_gets_the_report(store: LogStore) -> None:
    principal = Principal("churn-team", Role.DEPLOYER, frozenset({"churn"}))
    async with make_client(store)(principal) as client:
        response = await client.get("/v1/rollouts/churn/report?since=1h")
    assert response.status_code == 200
