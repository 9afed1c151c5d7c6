"""``GET /v1/drift/{endpoint}`` and the server's drift monitor, over a stand-in context."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ferryman.capture import EndpointCapture, PredictionLog, PrivacyPolicy
from ferryman.drift.traffic import TrafficWindow
from ferryman.security import Principal, Role
from ferryman.server import drift
from ferryman.store import Database
from tests.drift.traffic import SECRET, T0, Clock, capture, reference_profile, traffic

pytestmark = pytest.mark.anyio

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Info:
    """The served version's registry record (the fields the route reads)."""

    ref: str
    profile: dict[str, Any] | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Loaded:
    info: Info


@dataclass
class Deployment:
    version: Loaded


@dataclass
class Runtime:
    name: str
    deployment: Deployment | None


@dataclass
class Pool:
    """Stand-in for the runtime pool: endpoints by name."""

    runtimes: list[Runtime] = field(default_factory=list)

    def find(self, name: str) -> Runtime | None:
        return next((r for r in self.runtimes if r.name == name), None)

    def list(self) -> Sequence[Runtime]:
        return sorted(self.runtimes, key=lambda r: r.name)


@dataclass(frozen=True)
class Context:
    """The attributes of the server's context the route and the monitor use."""

    capture: PredictionLog | None
    pool: Pool


class AsPrincipal:
    """Stand-in for the auth middleware: the principal comes from the test."""

    def __init__(self, app: ASGIApp, *, principal: Principal | None) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.principal is not None:
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)


def served(
    name: str,
    profile: dict[str, Any] | None = None,
    ref: str = "churn/1",
    metrics: dict[str, float] | None = None,
) -> Runtime:
    return Runtime(name, Deployment(Loaded(Info(ref, profile, metrics or {}))))


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    """A prediction log (not started) whose clock reads 5 minutes after 2,000 records of
    ``churn`` with age shifted; ``churn`` hashes ``email``."""
    clock = Clock()
    log = PredictionLog(
        root=tmp_path / "logs", secret=SECRET, clock=clock, maintenance_interval=None
    )
    log.configure("churn", EndpointCapture(privacy=PrivacyPolicy.from_mapping({"email": "hash"})))
    capture(log.writer, traffic(2000, seed=1, age_shift=0.5))
    clock.set(T0 + dt.timedelta(minutes=5))
    return log


@pytest.fixture
def pool() -> Pool:
    profile = reference_profile().to_dict()
    return Pool(
        [
            served("churn", profile, metrics={"accuracy": 0.95}),
            served("quiet", profile),
            served("unprofiled", None, ref="legacy/2"),
            Runtime("loading", None),
        ]
    )


def make_client(context: Context) -> Client:
    @asynccontextmanager
    async def make(principal: Principal | None = None) -> AsyncIterator[httpx.AsyncClient]:
        app = Starlette(routes=drift.routes(context))
        transport = httpx.ASGITransport(app=AsPrincipal(app, principal=principal))
        async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as c:
            yield c

    return make


@pytest.fixture
def client(log: PredictionLog, pool: Pool) -> Client:
    return make_client(Context(capture=log, pool=pool))


async def test_the_report_compares_the_window_with_the_served_profile(client: Client) -> None:
    async with client() as c:
        response = await c.get("/v1/drift/churn")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert [f["name"] for f in body["features"] if f["drifted"]] == ["age"]
    assert (body["endpoint"], body["status"], body["window"]["rows"]) == ("churn", "ok", 2000)
    assert body["window"]["span_seconds"] == 86_400.0
    assert body["reference"] == "churn/1 (stored reference profile)"
    assert body["protected_columns"] == {"email": "hash"}


async def test_the_report_holds_concept_drift_from_the_feedback(
    client: Client, log: PredictionLog
) -> None:
    async with client() as c:
        unlabelled = (await c.get("/v1/drift/churn")).json()["concept"]
    # Every one of the 2,000 captured rows (requests r-0, r-500, ...) turns out class 1.
    log.store.submit_feedback(
        [
            {"request_id": f"r-{start}", "row": row, "label": 1}
            for start in range(0, 2000, 500)
            for row in range(500)
        ]
    )
    async with client() as c:
        labelled = (await c.get("/v1/drift/churn")).json()["concept"]

    assert (unlabelled["status"], unlabelled["labelled_rows"]) == ("insufficient-data", 0)
    assert (labelled["status"], labelled["labelled_rows"]) == ("ok", 2000)
    performance = labelled["performance"]
    assert (performance["metric"], performance["reference"]) == ("accuracy", 0.95)
    assert performance["value"] < 0.95 and performance["degraded"]  # about half predict 0
    assert [d["name"] for d in labelled["detectors"]] == ["adwin", "page_hinkley", "ddm"]


async def test_the_window_can_be_a_count_of_records(client: Client) -> None:
    async with client() as c:
        body = (await c.get("/v1/drift/churn", params={"window": "300"})).json()

    assert (body["window"]["rows"], body["window"]["last_records"]) == (300, 300)


async def test_the_version_parameter_filters_records(client: Client) -> None:
    async with client() as c:
        body = (await c.get("/v1/drift/churn", params={"version": "churn/9"})).json()

    assert (body["window"]["version"], body["window"]["rows"]) == ("churn/9", 0)


async def test_the_html_report_is_a_standalone_page(client: Client) -> None:
    async with client() as c:
        response = await c.get("/v1/drift/churn", params={"format": "html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


async def test_an_endpoint_without_traffic_is_insufficient_data(client: Client) -> None:
    async with client() as c:
        response = await c.get("/v1/drift/quiet")

    assert response.status_code == 200
    assert response.json()["status"] == "insufficient-data"


ERRORS = [
    ("unknown endpoint", "/v1/drift/nosuch", 404, "endpoint_not_found", "No endpoint named"),
    ("still loading", "/v1/drift/loading", 503, "endpoint_not_ready", "is not ready"),
    ("no profile", "/v1/drift/unprofiled", 404, "not_found", "legacy/2, which endpoint"),
    ("bad format", "/v1/drift/churn?format=pdf", 400, "invalid_input", "expected json or html"),
    ("bad window", "/v1/drift/churn?window=soon", 400, "invalid_input", "Invalid window"),
    ("bad name", "/v1/drift/-churn", 400, "invalid_input", "invalid endpoint name"),
    ("window too far back", "/v1/drift/churn?window=9999999w", 400, "invalid_input", "year 1"),
]


@pytest.mark.parametrize(
    ("path", "status", "code", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
async def test_errors_have_a_status_code_and_message(
    client: Client, path: str, status: int, code: str, message: str
) -> None:
    async with client() as c:
        response = await c.get(path)

    assert response.status_code == status
    assert response.json()["code"] == code and message in response.json()["error"]


async def test_without_a_prediction_log_there_is_no_report(pool: Pool) -> None:
    async with make_client(Context(capture=None, pool=pool))() as c:
        response = await c.get("/v1/drift/churn")

    assert response.status_code == 404 and "capture is off" in response.json()["error"]


@pytest.mark.parametrize(
    ("principal", "status"),
    [
        (Principal("ops", Role.DEPLOYER), 200),
        (Principal("dash", Role.VIEWER), 403),
        (Principal("fraud-team", Role.DEPLOYER, frozenset({"fraud"})), 403),
    ],
    ids=["deployer", "viewer", "token scoped to another endpoint"],
)
async def test_the_report_needs_read_logs_on_the_endpoint(
    client: Client, principal: Principal, status: int
) -> None:
    async with client(principal) as c:
        response = await c.get("/v1/drift/churn")

    assert response.status_code == status


# -- the monitor ---------------------------------------------------------------------------


def test_monitor_targets_follow_the_pool(log: PredictionLog, pool: Pool) -> None:
    targets = drift.monitor_targets(Context(capture=log, pool=pool))()

    by_name = {t.endpoint: t for t in targets}
    assert sorted(by_name) == ["churn", "quiet", "unprofiled"]  # "loading" is left out
    assert by_name["churn"].reference == reference_profile()
    assert by_name["unprofiled"].reference is None
    assert by_name["churn"].privacy == PrivacyPolicy.from_mapping({"email": "hash"})
    assert by_name["churn"].reference_performance == {"accuracy": 0.95}


def test_the_server_monitor_publishes_gauges(log: PredictionLog, pool: Pool) -> None:
    registry = CollectorRegistry()
    monitor = drift.create_monitor(
        Context(capture=log, pool=pool),
        registry,
        interval_seconds=300.0,
        window=TrafficWindow(span=dt.timedelta(hours=1)),
        min_rows=100,
    )
    assert monitor is not None and monitor.process  # a server computes in a child process

    try:
        run = monitor.evaluate_once(T0 + dt.timedelta(minutes=5))
    finally:
        monitor.stop()

    assert set(run.reports) == {"churn", "quiet"} and set(run.skipped) == {"unprofiled"}
    labels = {"endpoint": "churn", "feature": "age"}
    assert registry.get_sample_value("ferryman_feature_drifted", labels) == 1.0
    assert registry.get_sample_value("ferryman_labelled_rows", {"endpoint": "churn"}) == 0.0


def test_there_is_no_monitor_without_a_prediction_log(pool: Pool) -> None:
    context = Context(capture=None, pool=pool)

    found = drift.create_monitor(
        context, CollectorRegistry(), interval_seconds=300.0, window=3600, min_rows=100
    )

    assert found is None


def test_one_process_holds_the_monitor_lease(tmp_path: Path) -> None:
    database = Database(url=f"sqlite:///{tmp_path / 'ferryman.db'}").open()
    try:
        first = drift.lease_leader(database, "host:1", ttl_seconds=600.0)
        second = drift.lease_leader(database, "host:2", ttl_seconds=600.0)

        assert (first(), second(), first()) == (True, False, True)
    finally:
        database.close()


def test_the_openapi_path_item_offers_json_and_html() -> None:
    def op(summary: str, result: str, errors: tuple[int, ...], **kw: Any) -> dict[str, Any]:
        ok = {"description": "OK", "content": {"application/json": {"schema": {"type": result}}}}
        return {"summary": summary, "parameters": list(kw["params"]), "responses": {"200": ok}}

    item = drift.openapi_paths(op)["/v1/drift/{endpoint}"]["get"]

    assert set(item["responses"]["200"]["content"]) == {"application/json", "text/html"}
    assert [p["name"] for p in item["parameters"]] == ["endpoint", "window", "version", "format"]
