"""The log's HTTP routes on a Starlette app of their own, with and without a token's scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ferryman.capture import PredictionLog
from ferryman.config import Settings
from ferryman.security import Principal, Role
from ferryman.server import logs
from tests.capture.conftest import SECRET, T0, Clock, submit_one

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Context:
    """What the routes need from the server's context."""

    settings: Settings
    capture: PredictionLog


class AsPrincipal:
    """Stand-in for the auth middleware: the principal comes from the test."""

    def __init__(self, app: ASGIApp, *, principal: Principal | None) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.principal is not None:
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)


Client = Callable[..., Any]


@pytest.fixture
def prediction_log(tmp_path: Path, clock: Clock) -> PredictionLog:
    log = PredictionLog(
        root=tmp_path / "home" / "logs", secret=SECRET, clock=clock, maintenance_interval=None
    )
    submit_one(log.writer, "c1", proba=0.55, passthrough={"user_id": ["u1"]})
    submit_one(log.writer, "c2", proba=0.95)
    submit_one(log.writer, "f1", endpoint="fraud", version="fraud/1")
    log.writer.flush()
    return log


@pytest.fixture
def client(tmp_path: Path, prediction_log: PredictionLog) -> Client:
    @asynccontextmanager
    async def make(principal: Principal | None = None) -> AsyncIterator[httpx.AsyncClient]:
        context = Context(
            settings=Settings(home=tmp_path / "home", user="local"), capture=prediction_log
        )
        app = Starlette(routes=logs.routes(context))
        wrapped = AsPrincipal(app, principal=principal)
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as c:
            yield c

    return make


SCOPED = Principal("churn-app", Role.DEPLOYER, frozenset({"churn"}))
PREDICTOR = Principal("churn-client", Role.PREDICTOR, frozenset({"churn"}))


async def test_tail_returns_the_latest_records(client: Client) -> None:
    async with client() as c:
        response = await c.get("/v1/logs/churn", params={"n": 1})

    body = response.json()
    assert response.status_code == 200
    assert body["endpoint"] == "churn"
    assert body["rows"][0][body["columns"].index("request_id")] in {"c1", "c2"}
    assert len(body["rows"]) == 1


async def test_query_runs_sql_and_passes_duckdb_errors_as_400(client: Client) -> None:
    async with client() as c:
        ok = await c.post(
            "/v1/logs/query",
            json={"sql": "SELECT endpoint, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1"},
        )
        bad = await c.post("/v1/logs/query", json={"sql": "SELECT nope FROM predictions"})
        copy = await c.post("/v1/logs/query", json={"sql": "COPY predictions TO 'x.csv'"})

    assert ok.json() == {
        "columns": ["endpoint", "n"],
        "rows": [["churn", 2], ["fraud", 1]],
        "truncated": False,
    }
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_query"
    assert 'Referenced column "nope" not found' in bad.json()["error"]
    assert (copy.status_code, copy.json()["code"]) == (400, "invalid_query")


async def test_scoped_token_queries_only_its_endpoints(client: Client, root: Path) -> None:
    fraud_file = next((root / "predictions" / "endpoint=fraud").rglob("*.parquet"))
    async with client(SCOPED) as c:
        own = await c.post(
            "/v1/logs/query",
            json={"sql": "SELECT DISTINCT endpoint FROM predictions", "endpoint": "churn"},
        )
        unscoped = await c.post(
            "/v1/logs/query", json={"sql": "SELECT DISTINCT endpoint FROM predictions"}
        )
        other = await c.post("/v1/logs/query", json={"sql": "SELECT 1", "endpoint": "fraud"})
        sneaky = await c.post(
            "/v1/logs/query",
            json={"sql": f"SELECT * FROM '{fraud_file}'", "endpoint": "churn"},
        )
        tail_other = await c.get("/v1/logs/fraud")

    assert own.json()["rows"] == [["churn"]]
    assert unscoped.json()["rows"] == [["churn"]]
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    assert sneaky.status_code == 400 and "Permission Error" in sneaky.json()["error"]
    assert tail_other.status_code == 403


async def test_a_role_without_read_logs_is_refused(client: Client) -> None:
    async with client(PREDICTOR) as c:
        response = await c.post("/v1/logs/query", json={"sql": "SELECT 1"})

    assert response.status_code == 403
    assert "may not read_logs" in response.json()["error"]


async def test_feedback_one_or_many_reports_unknown_ids(client: Client) -> None:
    async with client() as c:
        one = await c.post("/v1/feedback", json={"request_id": "c1", "label": 1})
        many = await c.post(
            "/v1/feedback",
            json=[{"request_id": "c1", "label": 0}, {"request_id": "zzz", "label": 1}],
        )
        invalid = await c.post("/v1/feedback", json=[{"request_id": "c1"}])
        empty = await c.post("/v1/feedback", content=b"")

    assert one.json() == {"accepted": 1, "duplicates": 0, "unknown": []}
    assert many.json() == {"accepted": 1, "duplicates": 1, "unknown": ["zzz"]}
    assert invalid.status_code == 400 and "feedback[0]" in invalid.json()["error"]
    assert empty.status_code == 400


async def test_scoped_feedback_counts_other_endpoints_ids_as_unknown(client: Client) -> None:
    async with client(PREDICTOR) as c:
        response = await c.post(
            "/v1/feedback",
            json=[{"request_id": "c2", "label": 1}, {"request_id": "f1", "label": 1}],
        )

    assert response.json() == {"accepted": 1, "duplicates": 0, "unknown": ["f1"]}


async def test_performance_over_a_window(client: Client) -> None:
    async with client() as c:
        await c.post("/v1/feedback", json=[{"request_id": "c1", "label": 1}])
        response = await c.get(
            "/v1/endpoints/churn/performance",
            params={"since": (T0 - dt.timedelta(hours=1)).isoformat()},
        )
        bad = await c.get("/v1/endpoints/churn/performance", params={"window": "soon"})

    body = response.json()
    assert response.status_code == 200
    assert [(v["model_version"], v["n"], v["metrics"]["accuracy"]) for v in body["versions"]] == [
        ("churn/1", 1, 1.0)
    ]
    assert bad.status_code == 400 and "Invalid window 'soon'" in bad.json()["error"]


async def test_review_lists_candidates_and_stores_a_verdict(client: Client) -> None:
    async with client(SCOPED) as c:
        listed = await c.get("/v1/logs/churn/review", params={"confidence_below": "0.6"})
        marked = await c.post(
            "/v1/logs/churn/review",
            json={"request_id": "c1", "verdict": "ok", "comment": "fine really"},
        )
        again = await c.get("/v1/logs/churn/review", params={"confidence_below": "0.6"})
        missing = await c.post("/v1/logs/churn/review", json={"request_id": "f1", "verdict": "ok"})
        wrong = await c.post("/v1/logs/churn/review", json={"request_id": "c1", "verdict": "meh"})

    assert [c["request_id"] for c in listed.json()["candidates"]] == ["c1"]
    assert marked.status_code == 201
    assert marked.json()["reviewer"] == "churn-app"
    assert again.json()["candidates"] == []
    assert (missing.status_code, missing.json()["code"]) == (404, "record_not_found")
    assert wrong.status_code == 400 and "Unknown verdict 'meh'" in wrong.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "message"),
    [
        ("GET", "/v1/logs/churn", {"n": "0"}, None, "invalid n '0'"),
        ("GET", "/v1/logs/churn", {"since": "2026-01-01T00:00:00"}, None, "with a zone"),
        ("GET", "/v1/logs/..bad", {}, None, "Invalid endpoint name"),
        ("POST", "/v1/logs/query", {}, {"sql": 1}, "invalid field 'sql'"),
        ("POST", "/v1/logs/query", {}, {"sql": "SELECT 1", "x": 1}, "unknown field 'x'"),
        ("POST", "/v1/logs/query", {}, {"sql": "SELECT 1", "limit": 0}, "invalid field 'limit'"),
        ("GET", "/v1/logs/churn/review", {"confidence_below": "x"}, None, "expected a number"),
    ],
    ids=["n", "naive", "endpoint", "sql-type", "unknown-field", "limit", "threshold"],
)
async def test_bad_requests_get_a_400_naming_the_problem(
    client: Client,
    method: str,
    path: str,
    params: dict[str, str],
    body: Any,
    message: str,
) -> None:
    async with client() as c:
        response = await c.request(method, path, params=params, json=body)

    assert response.status_code == 400
    assert message in response.json()["error"]
