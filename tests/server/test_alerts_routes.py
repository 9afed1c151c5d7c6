"""Alert rules over HTTP: add, list, get, remove and history, errors, roles and delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferryman.config import Settings
from ferryman.monitoring.alerts import AlertEngine, AlertRule, AlertService
from ferryman.registry import Registry
from ferryman.security import Role, TokenService
from ferryman.server import create_app
from ferryman.store import Database
from tests.alerting import Fixed, Receiver
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WAIT = 30.0


def rule_body(name: str = "toy-errors", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "endpoint": "toy", "when": "error_rate > 0.05 for 2m"}
    body.update(fields)
    return body


# -- add, list, get, remove ------------------------------------------------------------------


async def test_a_rule_added_over_http_is_stored_with_its_fields_and_state(
    serve_app: ServeApp,
) -> None:
    body = rule_body(
        window="10m",
        severity="critical",
        version="toy/1",
        role="primary",
        webhooks=[{"url": "https://hooks.example.com/a", "format": "slack"}],
    )
    async with serve_app() as served:
        added = await served.client.post("/v1/alerts", json=body)
        fetched = await served.client.get("/v1/alerts/toy-errors")

    assert added.status_code == 201, added.text
    assert added.json() == fetched.json()
    assert {k: fetched.json()[k] for k in (*body, "source", "created_by", "state")} == {
        "name": "toy-errors",
        "endpoint": "toy",
        "when": "error_rate > 0.05 for 2m",
        "window": "10m",
        "severity": "critical",
        "version": "toy/1",
        "role": "primary",
        "webhooks": [{"url": "https://hooks.example.com/a", "format": "slack"}],
        "source": "api",
        "created_by": "alice",
        "state": "inactive",
    }


async def test_optional_fields_take_the_cli_defaults(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        added = (await served.client.post("/v1/alerts", json=rule_body())).json()

    assert (added["window"], added["severity"], added["version"], added["webhooks"]) == (
        "5m",
        "warning",
        None,
        [],
    )


async def test_rules_are_listed_by_name_and_filtered_by_endpoint(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        for name, endpoint in (("b-rule", "toy"), ("a-rule", "iris"), ("c-rule", "toy")):
            response = await served.client.post(
                "/v1/alerts", json=rule_body(name, endpoint=endpoint)
            )
            assert response.status_code == 201, response.text
        everything = (await served.client.get("/v1/alerts")).json()
        toy = (await served.client.get("/v1/alerts", params={"endpoint": "toy"})).json()

    assert [r["name"] for r in everything] == ["a-rule", "b-rule", "c-rule"]
    assert [r["name"] for r in toy] == ["b-rule", "c-rule"]


async def test_a_rule_added_over_http_is_seen_by_the_cli_service(
    serve_app: ServeApp, registry: Registry
) -> None:
    async with serve_app() as served:
        await served.client.post("/v1/alerts", json=rule_body())

    info = AlertService(database=registry.database, user="bob").get("toy-errors")
    assert info.rule == AlertRule.from_dict(rule_body())


async def test_removing_a_rule_deletes_it_and_audits_who_did(
    serve_app: ServeApp, registry: Registry
) -> None:
    async with serve_app() as served:
        await served.client.post("/v1/alerts", json=rule_body())
        removed = await served.client.delete("/v1/alerts/toy-errors")
        after = await served.client.get("/v1/alerts/toy-errors")

    assert (removed.status_code, removed.json()) == (200, {"name": "toy-errors", "removed": True})
    assert after.status_code == 404
    actions = [
        (e.action, e.actor) for e in registry.audit_entries(entity="alert:toy-errors", limit=10)
    ]
    assert sorted(actions) == [("alert.add", "alice"), ("alert.remove", "alice")]


async def test_history_lists_transitions_newest_first_with_the_cli_filters(
    serve_app: ServeApp, registry: Registry
) -> None:
    async with serve_app() as served:
        for name, endpoint in (("toy-errors", "toy"), ("iris-errors", "iris")):
            await served.client.post(
                "/v1/alerts", json=rule_body(name, endpoint=endpoint, when="error_rate > 0.05")
            )
        engine = AlertEngine(database=registry.database, source=Fixed(0.5))
        engine.evaluate_once(T0)
        engine.evaluate_once(T0 + timedelta(minutes=1))  # still firing: no new transition
        everything = (await served.client.get("/v1/alerts/history")).json()
        toy = (await served.client.get("/v1/alerts/history", params={"endpoint": "toy"})).json()
        iris = (
            await served.client.get("/v1/alerts/history", params={"rule": "iris-errors"})
        ).json()
        latest = (await served.client.get("/v1/alerts/history", params={"limit": 1})).json()

    assert [(e["rule"], e["state"]) for e in everything] == [
        ("toy-errors", "firing"),
        ("iris-errors", "firing"),
    ]
    assert [e["rule"] for e in toy] == ["toy-errors"]
    assert [e["rule"] for e in iris] == ["iris-errors"]
    assert latest == everything[:1]
    assert everything[0]["at"] == T0.isoformat()


# -- the running engine ----------------------------------------------------------------------


async def test_a_rule_added_over_http_fires_to_its_webhook_from_the_running_engine(
    serve_app: ServeApp, receiver: Receiver
) -> None:
    body = rule_body(
        "toy-traffic", when="request_count > 0", webhooks=[{"url": f"{receiver.url}/hook"}]
    )
    async with serve_app(alert_interval_seconds=0.2) as served:
        added = await served.client.post("/v1/alerts", json=body)
        assert added.status_code == 201, added.text
        for x in (1.0, 2.0, 3.0):
            answer = await served.client.post(
                "/v1/endpoints/toy/predict", json={"instances": [{"x": x, "delay": 0}]}
            )
            assert answer.status_code == 200, answer.text
        served.app.state.flusher.flush()
        with receiver.received:
            arrived = receiver.received.wait_for(lambda: receiver.bodies, WAIT)
        state = (await served.client.get("/v1/alerts/toy-traffic")).json()
        history = (await served.client.get("/v1/alerts/history?rule=toy-traffic")).json()

    assert arrived, "no notification reached the webhook"
    assert receiver.paths[0] == "/hook"
    first = receiver.bodies[0]
    assert (first["rule"], first["endpoint"], first["state"]) == ("toy-traffic", "toy", "firing")
    assert first["value"] >= 3
    assert (state["state"], state["last_value"]) == ("firing", first["value"])
    assert [e["state"] for e in history] == ["firing"]


# -- bad input ---------------------------------------------------------------------------------

BAD_BODIES = [
    pytest.param(
        rule_body(when="error_rat > 0.05"), "unknown_metric", "error_rat", id="unknown-metric"
    ),
    pytest.param(
        rule_body(when="error_rate 0.05"),
        "invalid_expression",
        "expected a comparison operator",
        id="bad-expression",
    ),
    pytest.param(
        rule_body(when="error_rate > stable"), "invalid_input", "uses 'stable'", id="stable"
    ),
    pytest.param(
        rule_body(window="5 minutes"), "invalid_expression", "Invalid duration", id="bad-window"
    ),
    pytest.param(
        rule_body(when="error_rate > 0.05 for 2 minutes"),
        "invalid_expression",
        "2 minutes",
        id="bad-for",
    ),
    pytest.param(rule_body(window="400d"), "invalid_expression", "at most 365d", id="long-window"),
    pytest.param(
        rule_body(window="99999999999999999999d"),
        "invalid_expression",
        "at most 365d",
        id="overflowing-window",
    ),
    pytest.param(rule_body(when=5), "invalid_input", "invalid field 'when'", id="when-not-text"),
    pytest.param(
        rule_body(webhooks="https://x.example.com"),
        "invalid_input",
        "invalid field 'webhooks'",
        id="webhooks-not-a-list",
    ),
    pytest.param(
        rule_body(webhooks=[{"url": "ftp://x.example.com/a"}]),
        "invalid_input",
        "Invalid webhook URL 'ftp://x.example.com/a'",
        id="webhook-scheme",
    ),
    pytest.param(
        rule_body(webhooks=[{"url": "https://x.example.com/a", "format": "teams"}]),
        "invalid_input",
        "invalid field 'webhooks.0.format'",
        id="webhook-format",
    ),
    pytest.param(
        rule_body(severity="urgent"), "invalid_input", "invalid field 'severity'", id="severity"
    ),
    pytest.param(rule_body(role="canary"), "invalid_input", "invalid field 'role'", id="role"),
    pytest.param(rule_body(version="toy"), "invalid_input", "must name one version", id="version"),
    pytest.param(rule_body(name="no spaces"), "invalid_input", "invalid field 'name'", id="name"),
    pytest.param(
        {"name": "x", "endpoint": "toy"}, "invalid_input", "invalid field 'when'", id="missing"
    ),
    pytest.param(
        rule_body(expression="error_rate > 1"),
        "invalid_input",
        "invalid field 'expression'",
        id="unknown-field",
    ),
    pytest.param([rule_body()], "invalid_input", "invalid field 'body'", id="not-an-object"),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD_BODIES)
async def test_an_invalid_rule_is_a_400_naming_what_is_wrong(
    serve_app: ServeApp, body: Any, code: str, message: str
) -> None:
    async with serve_app() as served:
        response = await served.client.post("/v1/alerts", json=body)
        listed = (await served.client.get("/v1/alerts")).json()

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert message in response.json()["error"]
    assert listed == []


async def test_a_body_that_is_not_json_is_a_400(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            "/v1/alerts", content=b"{name", headers={"content-type": "application/json"}
        )

    assert (response.status_code, response.json()["code"]) == (400, "malformed_request")
    assert "not valid JSON" in response.json()["error"]


async def test_adding_a_name_that_exists_is_a_409(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        await served.client.post("/v1/alerts", json=rule_body())
        again = await served.client.post("/v1/alerts", json=rule_body(endpoint="iris"))

    assert (again.status_code, again.json()["code"]) == (409, "already_exists")
    assert "'toy-errors' already exists" in again.json()["error"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_an_unknown_rule_is_a_404(serve_app: ServeApp, method: str) -> None:
    async with serve_app() as served:
        response = await served.client.request(method, "/v1/alerts/nope")

    assert (response.status_code, response.json()["code"]) == (404, "alert_rule_not_found")
    assert "No alert rule named 'nope'" in response.json()["error"]


async def test_a_configured_rule_cannot_be_removed_over_http(serve_app: ServeApp) -> None:
    configured = rule_body("from-config")
    async with serve_app(alert_rules=[configured]) as served:
        response = await served.client.delete("/v1/alerts/from-config")
        listed = (await served.client.get("/v1/alerts")).json()

    assert response.status_code == 400
    assert "comes from the server's configuration" in response.json()["error"]
    assert [(r["name"], r["source"]) for r in listed] == [("from-config", "config")]


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1"])
async def test_history_rejects_a_bad_limit(serve_app: ServeApp, limit: str) -> None:
    async with serve_app() as served:
        response = await served.client.get("/v1/alerts/history", params={"limit": limit})

    assert response.status_code == 400
    assert f"invalid limit {limit!r}: expected 1-1000" in response.json()["error"]


# -- roles -------------------------------------------------------------------------------------


@pytest.fixture
def tokens(home: Path) -> dict[str, str]:
    database = Database(url=Settings(home=home).resolved_database_url).open()
    try:
        service = TokenService(database=database, user="admin")
        made = {str(role): service.create(f"t-{role}", role)[1] for role in Role}
        made["iris-deployer"] = service.create("iris-only", Role.DEPLOYER, endpoints=["iris"])[1]
        return made
    finally:
        database.close()


@asynccontextmanager
async def remote_client(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client from a non-loopback address: it needs a token."""
    app = create_app(Settings(home=home, user="alice", endpoint_refresh_seconds=3600))
    async with app.router.lifespan_context(app):
        await app.state.pool.wait_loaded()
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("viewer", False), ("predictor", False), ("deployer", True), ("admin", True)],
)
async def test_adding_and_removing_needs_manage_endpoints(
    home: Path, tokens: dict[str, str], role: str, allowed: bool
) -> None:
    async with remote_client(home) as client:
        added = await client.post("/v1/alerts", json=rule_body(), headers=bearer(tokens[role]))
        await client.post("/v1/alerts", json=rule_body("kept"), headers=bearer(tokens["admin"]))
        removed = await client.delete("/v1/alerts/kept", headers=bearer(tokens[role]))
        listed = await client.get("/v1/alerts", headers=bearer(tokens[role]))

    assert (added.status_code, removed.status_code) == ((201, 200) if allowed else (403, 403))
    assert listed.status_code == 200
    if not allowed:
        assert "may not manage_endpoints" in added.json()["error"]


async def test_a_scoped_token_manages_only_its_endpoints_rules(
    home: Path, tokens: dict[str, str]
) -> None:
    scoped = bearer(tokens["iris-deployer"])
    async with remote_client(home) as client:
        own = await client.post(
            "/v1/alerts", json=rule_body("iris-rule", endpoint="iris"), headers=scoped
        )
        other = await client.post("/v1/alerts", json=rule_body(), headers=scoped)
        await client.post("/v1/alerts", json=rule_body(), headers=bearer(tokens["admin"]))
        remove_other = await client.delete("/v1/alerts/toy-errors", headers=scoped)
        remove_own = await client.delete("/v1/alerts/iris-rule", headers=scoped)

    assert (own.status_code, remove_own.status_code) == (201, 200)
    assert (other.status_code, remove_other.status_code) == (403, 403)
    assert other.json()["code"] == "forbidden"
    assert "on endpoint 'toy'" in remove_other.json()["error"]


async def test_readers_who_cannot_manage_a_rule_see_webhook_hosts_only(
    home: Path, tokens: dict[str, str]
) -> None:
    secret = "https://hooks.slack.com/services/T000/B000/SECRET"
    body = rule_body(webhooks=[{"url": secret, "format": "slack"}])
    async with remote_client(home) as client:
        await client.post("/v1/alerts", json=body, headers=bearer(tokens["admin"]))
        as_viewer = await client.get("/v1/alerts/toy-errors", headers=bearer(tokens["viewer"]))
        listed = await client.get("/v1/alerts", headers=bearer(tokens["iris-deployer"]))
        as_deployer = await client.get("/v1/alerts/toy-errors", headers=bearer(tokens["deployer"]))

    hidden = [{"url": "https://hooks.slack.com/…", "format": "slack"}]
    assert as_viewer.json()["webhooks"] == hidden
    assert listed.json()[0]["webhooks"] == hidden
    assert as_deployer.json()["webhooks"] == [{"url": secret, "format": "slack"}]


# -- the document --------------------------------------------------------------------------------


async def test_the_document_describes_the_alert_routes_and_their_body(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        document = (await served.client.get("/openapi.json")).json()

    paths = document["paths"]
    assert set(paths["/v1/alerts"]) == {"get", "post"}
    assert set(paths["/v1/alerts/{name}"]) == {"get", "delete"}
    assert set(paths["/v1/alerts/history"]) == {"get"}
    assert set(paths["/v1/alerts"]["post"]["responses"]) >= {"201", "400", "403", "409"}
    schemas = document["components"]["schemas"]
    body = schemas["AlertRuleCreate"]
    assert body["required"] == ["name", "endpoint", "when"]
    assert body["additionalProperties"] is False
    webhook_ref = body["properties"]["webhooks"]["items"]["$ref"]
    assert webhook_ref.removeprefix("#/components/schemas/") in schemas
