"""Rollouts in a server running in process: routing, mirroring, switching, rolling back.

The toy endpoint serves ``toy@production`` = toy/1 (predicts x * 2); toy/2 predicts
x * 3. Tests drive the controller and the pool by hand (``tick``, ``refresh``), so
nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferryman.registry import Registry
from ferryman.rollout.base import Phase, RolloutOptions, RoutingKey
from ferryman.rollout.service import RolloutService
from tests.server.conftest import ServeApp, Served
from tests.serving._store import TOY_CODE, TOY_X, WAIT, _register_code

pytestmark = pytest.mark.anyio

PREDICT = "/v1/endpoints/toy/predict"

BROKEN = """
class Broken:
    def predict(self, frame):
        if (frame["x"] == 7.0).any():  # registers and warms up fine; fails on live traffic
            raise RuntimeError("the candidate is broken")
        return frame["x"].to_numpy() * 5
"""


@pytest.fixture
def rollouts(registry: Registry) -> RolloutService:
    return RolloutService(registry=registry, user="alice")


async def ask(served: Served, x: float = 1.0, **headers: str) -> dict[str, Any]:
    response = await served.client.post(
        PREDICT, json={"instances": [{"x": x, "delay": 0}]}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def settle(served: Served) -> None:
    """Let the pool pick up the latest rollout state (load, warm, re-route)."""
    await served.pool.refresh()


async def test_canary_serves_the_configured_share_from_the_candidate(
    serve_app: ServeApp, rollouts: RolloutService
) -> None:
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="canary", options=RolloutOptions(steps=(25, 100)))
        await settle(served)
        versions = Counter([(await ask(served))["model_version"] for _ in range(2000)])
    assert set(versions) == {"toy/1", "toy/2"}
    assert abs(versions["toy/2"] / 2000 - 0.25) <= 0.03


async def test_answers_match_the_version_that_served(
    serve_app: ServeApp, rollouts: RolloutService
) -> None:
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="canary", options=RolloutOptions(steps=(50, 100)))
        await settle(served)
        for _ in range(50):
            body = await ask(served, 2.0)
            factor = {"toy/1": 2.0, "toy/2": 3.0}[body["model_version"]]
            assert body["predictions"] == [2.0 * factor]


async def test_ab_test_keeps_each_user_in_one_arm(
    serve_app: ServeApp, rollouts: RolloutService
) -> None:
    options = RolloutOptions(key=RoutingKey.parse("header:X-User-Id"), weights=(50, 50))
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="ab-test", options=options)
        await settle(served)
        seen: dict[str, set[str]] = {}
        for _ in range(3):
            for user in range(100):
                body = await ask(served, **{"X-User-Id": f"user-{user}"})
                seen.setdefault(f"user-{user}", set()).add(body["model_version"])
    assert all(len(versions) == 1 for versions in seen.values())
    arms = Counter(next(iter(v)) for v in seen.values())
    assert 30 <= arms["toy/2"] <= 70


async def test_shadow_answers_from_stable_and_mirrors_to_the_candidate(
    serve_app: ServeApp, rollouts: RolloutService
) -> None:
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="shadow", options=RolloutOptions(sample=1.0))
        await settle(served)
        answers = [await ask(served, 1.0) for _ in range(50)]
        mirror = served.app.state.mirror
        async with asyncio.timeout(WAIT):
            while mirror.completed + mirror.failed + mirror.dropped < 50:
                await asyncio.sleep(0.01)
    assert {a["model_version"] for a in answers} == {"toy/1"}
    assert {a["predictions"][0] for a in answers} == {2.0}
    assert mirror.completed == 50 and mirror.failed == 0


async def test_a_failing_shadow_candidate_never_fails_a_caller(
    serve_app: ServeApp, registry: Registry, rollouts: RolloutService, tmp_path: Path
) -> None:
    _register_code(registry, tmp_path, "toy", BROKEN, "Broken", TOY_X)  # toy/4
    async with serve_app() as served:
        rollouts.start("toy", "toy/4", strategy="shadow", options=RolloutOptions(sample=1.0))
        await settle(served)
        answers = [await ask(served, 7.0) for _ in range(30)]
        mirror = served.app.state.mirror
        async with asyncio.timeout(WAIT):
            while mirror.failed + mirror.dropped < 30:
                await asyncio.sleep(0.01)
    assert all(a["predictions"] == [14.0] for a in answers)
    assert mirror.failed + mirror.dropped == 30


async def test_blue_green_rolls_back_when_green_disagrees_with_blue(
    serve_app: ServeApp, rollouts: RolloutService, registry: Registry
) -> None:
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="blue-green")
        await settle(served)
        decisions = await served.app.state.controller.tick()
        await settle(served)
        body = await ask(served)
    assert [d.kind for d in decisions] == ["rollback"]
    assert rollouts.get("toy").phase is Phase.ROLLED_BACK
    assert body["model_version"] == "toy/1"
    assert registry.get_version("toy@production").version == 1


async def test_blue_green_switches_all_traffic_then_rolls_back_instantly(
    serve_app: ServeApp, rollouts: RolloutService, registry: Registry
) -> None:
    smoke = ({"x": 1.0, "delay": 0.0}, {"x": 2.0, "delay": 0.0})
    options = RolloutOptions(smoke_rows=smoke, smoke_tolerance=1.0)
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="blue-green", options=options)
        await settle(served)
        assert (await ask(served))["model_version"] == "toy/1"  # green is not live yet
        decisions = await served.app.state.controller.tick()
        await settle(served)
        after_switch = {(await ask(served))["model_version"] for _ in range(20)}
        assert registry.get_version("toy@production").version == 2
        rollouts.rollback("toy", reason="post-switch check")
        await settle(served)
        blue = served.pool.get("toy")
        after_rollback = {(await ask(served))["model_version"] for _ in range(20)}
    assert [d.kind for d in decisions] == ["switch"]
    assert decisions[0].detail["smoke"]["rows"] == 2
    assert after_switch == {"toy/2"}
    assert after_rollback == {"toy/1"}
    assert blue.deployment is not None and blue.deployment.version.ref == "toy/1"
    assert registry.get_version("toy@production").version == 1


async def test_recreate_replaces_the_version_and_reports_downtime(
    serve_app: ServeApp, rollouts: RolloutService, registry: Registry
) -> None:
    async with serve_app() as served:
        rollout = rollouts.start("toy", "toy/2", strategy="recreate")
        await settle(served)
        body = await ask(served)
        async with asyncio.timeout(WAIT):
            while not [e for e in rollouts.events(rollout.id) if e.kind == "replaced"]:
                await asyncio.sleep(0.02)
        decisions = await served.app.state.controller.tick()
    assert body["model_version"] == "toy/2"
    assert [d.kind for d in decisions] == ["finish"]
    assert decisions[0].detail["downtime_seconds"] >= 0
    assert rollouts.get("toy").phase is Phase.SUCCEEDED
    assert registry.get_version("toy@production").version == 2


async def test_canary_without_gates_steps_through_and_moves_the_alias(
    serve_app: ServeApp, rollouts: RolloutService, registry: Registry
) -> None:
    options = RolloutOptions(steps=(10, 50, 100), bake_seconds=0)
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="canary", options=options)
        controller = served.app.state.controller
        kinds = [d.kind for d in await controller.tick()]
        kinds += [d.kind for d in await controller.tick()]
        await settle(served)
        body = await ask(served)
    assert kinds == ["step", "finish"]
    assert registry.get_version("toy@production").version == 2
    assert body["model_version"] == "toy/2"


async def test_rollout_api_starts_reports_and_steers(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        client = served.client
        created = await client.post(
            "/v1/rollouts",
            json={"endpoint": "toy", "model": "toy/2", "strategy": "canary", "steps": [20, 100]},
        )
        assert created.status_code == 201, created.text
        status = (await client.get("/v1/rollouts/toy")).json()
        assert (status["phase"], status["traffic"]["candidate"]) == ("running", 20.0)
        assert "step 1 of 2 at 20 %" in status["next"]
        conflict = await client.post(
            "/v1/rollouts", json={"endpoint": "toy", "model": "toy/2", "strategy": "shadow"}
        )
        assert conflict.status_code == 409
        paused = await client.post("/v1/rollouts/toy/pause")
        assert paused.json()["phase"] == "paused"
        rolled = await client.post("/v1/rollouts/toy/rollback", json={"reason": "test"})
        assert rolled.json()["phase"] == "rolled_back"
        history = (await client.get("/v1/rollouts/toy/history")).json()
        kinds = [e["kind"] for e in history[0]["events"]]
    assert kinds == ["started", "paused", "rolled-back"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/rollouts", {"endpoint": "nope", "model": "toy/2", "strategy": "canary"}, 404, "nope"),
        (
            "/v1/rollouts",
            {"endpoint": "toy", "model": "toy/2", "strategy": "big-bang"},
            400,
            "strategy",
        ),
        ("/v1/rollouts", {"endpoint": "toy", "model": "toy/99", "strategy": "canary"}, 404, "99"),
        (
            "/v1/rollouts",
            {"endpoint": "toy", "model": "toy/2", "strategy": "ab-test"},
            400,
            "routing key",
        ),
        (
            "/v1/rollouts",
            {"endpoint": "toy", "model": "toy/2", "strategy": "canary", "key": "cookie:x"},
            400,
            "routing key",
        ),
        ("/v1/rollouts/toy/promote", None, 404, "no active rollout"),
        ("/v1/rollouts/toy/explode", None, 400, "unknown rollout action"),
    ],
    ids=[
        "unknown-endpoint",
        "unknown-strategy",
        "unknown-version",
        "ab-without-key",
        "bad-key",
        "nothing-to-promote",
        "bad-action",
    ],
)
async def test_rollout_api_rejects_bad_requests_clearly(
    serve_app: ServeApp, path: str, body: dict[str, Any] | None, status: int, message: str
) -> None:
    async with serve_app() as served:
        response = (
            await served.client.post(path, json=body) if body else await served.client.post(path)
        )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


BAD_CANDIDATES = {
    "raises": ("if (x > 5).any():\n            raise RuntimeError('bad')", "error_rate < 0.05"),
    "nulls": ("x = np.where(x > 5, np.nan, x)", "null_rate < 0.01"),
    "slow": ("if (x > 5).any():\n            time.sleep(0.3)", "p99_latency_ms < 2 * stable"),
}
BAD_CODE = """
import time

import numpy as np


class Bad:
    def predict(self, frame):
        x = frame["x"].to_numpy()
        FLAW
        return x * 2
"""


@pytest.mark.parametrize("flaw", sorted(BAD_CANDIDATES))
async def test_a_bad_candidate_is_rolled_back_by_its_gate(
    serve_app: ServeApp, registry: Registry, rollouts: RolloutService, tmp_path: Path, flaw: str
) -> None:
    code, gate = BAD_CANDIDATES[flaw]
    _register_code(registry, tmp_path, "toy", BAD_CODE.replace("FLAW", code), "Bad", TOY_X)
    options = RolloutOptions(
        steps=(50, 100), bake_seconds=0, gates=(gate,), min_samples=20, failure_limit=1
    )
    async with serve_app() as served:
        rollout = rollouts.start("toy", "toy/4", strategy="canary", options=options)
        await settle(served)
        for _ in range(100):
            await served.client.post(PREDICT, json={"instances": [{"x": 7.0, "delay": 0}]})
        await asyncio.to_thread(served.app.state.flusher.flush)
        decisions = await served.app.state.controller.tick()
        await settle(served)
        after = [await ask(served, 7.0) for _ in range(20)]
    assert [d.kind for d in decisions] == ["rollback"]
    last = rollouts.events(rollout.id)[-1]
    assert last.kind == "rolled-back" and last.actor == f"gate: {gate}"
    result = last.detail["gates"]["results"][0]
    assert result["status"] == "fail" and result["observed"] is not None
    assert {a["model_version"] for a in after} == {"toy/1"}
    assert registry.get_version("toy@production").version == 1


async def test_a_good_candidate_passes_its_gates(
    serve_app: ServeApp, rollouts: RolloutService, registry: Registry
) -> None:
    gates = ("error_rate < 0.05", "null_rate < 0.01")
    options = RolloutOptions(steps=(50, 100), bake_seconds=0, gates=gates, min_samples=20)
    async with serve_app() as served:
        rollout = rollouts.start("toy", "toy/2", strategy="canary", options=options)
        await settle(served)
        early = await served.app.state.controller.tick()  # no traffic yet: inconclusive
        for _ in range(100):
            await ask(served, 7.0)
        await asyncio.to_thread(served.app.state.flusher.flush)
        rollouts.transition(rollout.id, kind="evaluate", message="evaluate now", evaluated_at=None)
        decisions = await served.app.state.controller.tick()
    assert early == []
    assert [d.kind for d in decisions] == ["finish"]
    assert decisions[0].detail["gates"]["status"] == "pass"
    assert registry.get_version("toy@production").version == 2


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real webhook receiver on a loopback port, collecting JSON bodies."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


async def test_a_gate_rollback_is_sent_to_the_rollout_webhook(
    serve_app: ServeApp,
    registry: Registry,
    rollouts: RolloutService,
    tmp_path: Path,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver
    code, gate = BAD_CANDIDATES["raises"]
    _register_code(registry, tmp_path, "toy", BAD_CODE.replace("FLAW", code), "Bad", TOY_X)
    options = RolloutOptions(steps=(50, 100), bake_seconds=0, gates=(gate,), min_samples=20)
    async with serve_app(rollout_webhooks=[{"url": url}]) as served:
        rollouts.start("toy", "toy/4", strategy="canary", options=replace(options, failure_limit=1))
        await settle(served)
        for _ in range(60):
            await served.client.post(PREDICT, json={"instances": [{"x": 7.0, "delay": 0}]})
        await asyncio.to_thread(served.app.state.flusher.flush)
        await served.app.state.controller.tick()
        async with asyncio.timeout(WAIT):
            while not received:
                await asyncio.sleep(0.02)
    event = received[0]
    assert (event["event"], event["endpoint"], event["candidate"]) == (
        "rollout.rollback",
        "toy",
        "toy/4",
    )
    assert event["detail"]["gates"]["results"][0]["gate"] == gate


@pytest.mark.parametrize(("factor", "outcome"), [(2, "step"), (5, "rollback")])
async def test_a_shadow_agreement_gate_promotes_to_canary_or_rolls_back(
    serve_app: ServeApp,
    registry: Registry,
    rollouts: RolloutService,
    tmp_path: Path,
    factor: int,
    outcome: str,
) -> None:
    code = TOY_CODE.replace("FACTOR", str(factor))
    _register_code(registry, tmp_path, "toy", code, "Toy", TOY_X)  # toy/4
    options = RolloutOptions(
        sample=1.0,
        bake_seconds=0,
        gates=("agreement > 0.98",),
        min_samples=20,
        failure_limit=1,
        then="canary",
    )
    async with serve_app() as served:
        rollouts.start("toy", "toy/4", strategy="shadow", options=options)
        await settle(served)
        for _ in range(40):
            await ask(served, 3.0)
        mirror = served.app.state.mirror
        async with asyncio.timeout(WAIT):
            while mirror.completed + mirror.failed + mirror.dropped < 40:
                await asyncio.sleep(0.01)
        await asyncio.to_thread(served.app.state.flusher.flush)
        decisions = await served.app.state.controller.tick()
    assert [d.kind for d in decisions] == [outcome]
    after = rollouts.get("toy")
    if outcome == "step":
        assert (after.strategy.value, after.weight, after.mirror) == ("canary", 10.0, 0.0)
    else:
        assert after.phase is Phase.ROLLED_BACK


@pytest.mark.parametrize(
    ("rates", "verdict"), [((0.2, 0.6), "winner"), ((0.4, 0.4), "no-difference")]
)
async def test_ab_test_status_analyses_outcomes_sent_as_feedback(
    serve_app: ServeApp, rollouts: RolloutService, rates: tuple[float, float], verdict: str
) -> None:
    options = RolloutOptions(
        key=RoutingKey.parse("header:X-User-Id"), weights=(50, 50), minimum_effect=0.25
    )
    rng = np.random.default_rng(7)
    async with serve_app() as served:
        rollouts.start("toy", "toy/2", strategy="ab-test", options=options)
        await settle(served)
        feedback = []
        for user in range(600):
            response = await served.client.post(
                PREDICT,
                json={"instances": [{"x": 1.0, "delay": 0}]},
                headers={"X-User-Id": f"user-{user}"},
            )
            body = response.json()
            rate = rates[0] if body["model_version"] == "toy/1" else rates[1]
            outcome = float(rng.random() < rate)
            feedback.append({"request_id": response.headers["x-request-id"], "outcome": outcome})
        await asyncio.to_thread(served.app.state.capture.writer.flush)
        sent = await served.client.post("/v1/feedback", json=feedback)
        assert sent.status_code == 200, sent.text
        status = (await served.client.get("/v1/rollouts/toy")).json()
    experiment = status["experiment"]
    assert sum(experiment["assigned"].values()) == 600
    analysis = experiment["analysis"]
    assert analysis["verdict"] == verdict
    if verdict == "winner":
        assert analysis["winner"] == "toy/2"
