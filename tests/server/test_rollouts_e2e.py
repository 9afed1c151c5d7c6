"""Rollouts carried out by real ``ferryman serve`` processes under real HTTP load.

The server's controller (refreshing every 0.2 s here) moves the rollouts; the tests only
start them, watch the traffic and look at the history. Every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ferryman.config import Settings
from ferryman.registry import Registry
from ferryman.rollout.base import Phase, RolloutOptions
from ferryman.rollout.service import RolloutService
from tests.server.conftest import ServerProcess, StartServer
from tests.serving._store import WAIT

pytestmark = pytest.mark.slow

BODY = {"instances": [{"x": 1.0, "delay": 0.0}]}


@pytest.fixture
def rollouts(home: Path) -> Iterator[RolloutService]:
    with Registry.from_settings(Settings(home=home, user="bob")) as registry:
        yield RolloutService(registry=registry, user="bob")


class Load:
    """Requests from one thread, one after another, until stopped (bounded by WAIT)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.retry_after: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 3 * WAIT
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                response = client.post("/v1/endpoints/toy/predict", json=BODY)
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.versions[response.json()["model_version"]] += 1
                elif "retry-after" in response.headers:
                    self.retry_after.add(response.headers["retry-after"])

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)


def wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def load_on(server: ServerProcess) -> Iterator[Load]:
    with Load(server.url) as load:
        wait_for(lambda: sum(load.statuses.values()) >= 20, "the first requests")
        yield load


def test_blue_green_switch_under_load_fails_no_request(
    start_server: StartServer, rollouts: RolloutService
) -> None:
    server = start_server()
    options = RolloutOptions(smoke_tolerance=1.0, keep_previous_seconds=600)
    with load_on(server) as load:
        rollout = rollouts.start("toy", "toy/2", strategy="blue-green", options=options)
        wait_for(lambda: rollouts.get("toy").stage == "keeping", "the switch")
        wait_for(lambda: load.versions["toy/2"] >= 50, "requests served by green")
        served_by_blue = load.versions["toy/1"]
        wait_for(lambda: load.versions["toy/2"] >= 100, "more requests served by green")
    assert set(load.statuses) == {200}, load.statuses
    assert load.versions["toy/1"] == served_by_blue > 0  # none went back to blue
    kinds = [e.kind for e in rollouts.events(rollout.id)]
    assert kinds == ["started", "switched"]


def test_recreate_under_load_answers_503_with_retry_after_and_reports_downtime(
    start_server: StartServer, rollouts: RolloutService
) -> None:
    server = start_server()
    with load_on(server) as load:
        rollout = rollouts.start("toy", "toy/2", strategy="recreate")
        wait_for(lambda: rollouts.get("toy").phase is Phase.SUCCEEDED, "the replacement")
        done = sum(load.statuses.values())
        wait_for(lambda: sum(load.statuses.values()) >= done + 20, "requests after it")
    assert set(load.statuses) <= {200, 503}, load.statuses
    if load.statuses[503]:
        assert load.retry_after == {"1"}
    events = rollouts.events(rollout.id)
    replaced = [e for e in events if e.kind == "replaced"]
    assert replaced and replaced[0].detail["downtime_seconds"] >= 0
    finished = events[-1]
    assert finished.kind == "succeeded" and "measured downtime" in finished.message
    assert load.versions["toy/2"] >= 20


def test_a_restarted_server_resumes_a_canary_at_the_same_step(
    start_server: StartServer, rollouts: RolloutService
) -> None:
    first = start_server()
    options = RolloutOptions(steps=(50, 100), bake_seconds=3600)
    rollouts.start("toy", "toy/2", strategy="canary", options=options)
    with load_on(first) as load:
        wait_for(lambda: load.versions["toy/2"] >= 10, "candidate traffic")
    first.stop()
    second = start_server()
    assert rollouts.get("toy").weight == 50.0
    with load_on(second) as load:
        wait_for(lambda: sum(load.statuses.values()) >= 400, "traffic after the restart")
    assert set(load.statuses) == {200}
    share = load.versions["toy/2"] / sum(load.versions.values())
    assert 0.4 <= share <= 0.6
    rollouts.promote("toy")
    assert rollouts.get("toy").phase is Phase.SUCCEEDED


def test_canary_steps_advance_in_the_server_until_the_alias_moves(
    start_server: StartServer, rollouts: RolloutService, home: Path
) -> None:
    server = start_server()
    options = RolloutOptions(steps=(20, 60, 100), bake_seconds=0.5)
    with load_on(server) as load:
        rollout = rollouts.start("toy", "toy/2", strategy="canary", options=options)
        wait_for(lambda: rollouts.get("toy").phase is Phase.SUCCEEDED, "the canary's end")
    assert set(load.statuses) == {200}
    steps = [e.weight for e in rollouts.events(rollout.id) if e.kind == "step"]
    assert steps == [60.0]
    with Registry.from_settings(Settings(home=home, user="bob")) as registry:
        assert registry.get_version("toy@production").version == 2
