"""A canary's new weight reaches every worker of ``ferryman serve --workers 2``.

The store is on real PostgreSQL (a fresh schema per test). The ``pid`` model answers
with the id of the worker process that ran it, and every response names the version
that served, so each answer says which worker routed it and where. Requests carry their
routing key as ``X-Request-ID``, so the expected version of each is known exactly from
the rollout's salt (:class:`~ferryman.rollout.router.Router`). Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from ferryman.config import Settings
from ferryman.registry import Registry
from ferryman.rollout.base import RolloutOptions
from ferryman.rollout.router import Router
from ferryman.rollout.service import RolloutService
from ferryman.serving import EndpointService
from tests.server.conftest import ServerProcess, StartServer
from tests.serving._store import WAIT, _register_code

pytestmark = pytest.mark.slow

PID_CODE = """
import os

import numpy as np


class Pid:
    def predict(self, frame):
        return np.full(len(frame), float(os.getpid()))
"""
#: Keys per kind of key in each round of requests.
PER_KIND = 16


@pytest.fixture
def pg_settings(pg_schema_url: str, tmp_path: Path) -> Settings:
    """A store on PostgreSQL with endpoint ``pid`` on pid/1 and a second version, pid/2."""
    settings = Settings(home=tmp_path / "pg-home", database_url=pg_schema_url, user="bob")
    with Registry.from_settings(settings) as registry:
        for _ in range(2):
            _register_code(registry, tmp_path, "pid", PID_CODE, "Pid", pd.DataFrame({"x": [1.0]}))
        EndpointService(database=registry.database, user="bob").create("pid", model="pid/1")
    return settings


@pytest.fixture
def rollouts(pg_settings: Settings) -> Iterator[RolloutService]:
    with Registry.from_settings(pg_settings) as registry:
        yield RolloutService(registry=registry, user="bob")


def keys_between(salt: str, low: float, high: float) -> list[str]:
    """Routing keys the candidate serves at weight ``high`` but not at weight ``low``."""
    below, above = Router(weight=low, salt=salt), Router(weight=high, salt=salt)
    found: list[str] = []
    for index in range(100_000):
        key = f"key-{index}"
        if not below.routes_to_candidate(key) and above.routes_to_candidate(key):
            found.append(key)
            if len(found) == PER_KIND:
                return found
    raise AssertionError(f"fewer than {PER_KIND} keys between {low} and {high} %")


def ask(server: ServerProcess, key: str) -> tuple[str, int]:
    """The version and worker process that answered a request with routing key ``key``."""
    # A new connection per request, so both worker processes take turns accepting.
    response = httpx.post(
        f"{server.url}/v1/endpoints/pid/predict",
        json={"instances": [{"x": 1.0}]},
        headers={"X-Request-ID": key},
        timeout=WAIT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model_version"], int(body["predictions"][0])


def routes_everywhere(server: ServerProcess, kinds: dict[str, str], router: Router) -> bool:
    """Whether, in one round, both workers answered every kind of key as ``router`` says.

    Args:
        server: The server.
        kinds: The kind of each routing key to send.
        router: The routing the answers must follow.
    """
    with ThreadPoolExecutor(max_workers=4) as threads:
        answers = list(threads.map(lambda key: (key, *ask(server, key)), kinds))
    wrong = [
        (key, version)
        for key, version, _ in answers
        if version != ("pid/2" if router.routes_to_candidate(key) else "pid/1")
    ]
    kinds_by_worker: dict[int, set[str]] = {}
    for key, _, pid in answers:
        kinds_by_worker.setdefault(pid, set()).add(kinds[key])
    every_kind = set(kinds.values())
    return (
        not wrong
        and len(kinds_by_worker) == 2
        and all(seen == every_kind for seen in kinds_by_worker.values())
    )


def wait_until_routed(server: ServerProcess, kinds: dict[str, str], router: Router) -> bool:
    """Whether a round of requests routed as ``router`` says in both workers, within WAIT."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if routes_everywhere(server, kinds, router):
            return True
        time.sleep(0.1)
    return False


def test_both_workers_route_by_a_canary_weight_changed_while_they_serve(
    start_server: StartServer, rollouts: RolloutService, pg_settings: Settings
) -> None:
    server = start_server(
        "--workers",
        "2",
        env={
            "FERRYMAN_HOME": str(pg_settings.home),
            "FERRYMAN_DATABASE_URL": str(pg_settings.database_url),
        },
    )
    options = RolloutOptions(steps=(50, 80, 100), bake_seconds=3600)
    salt = rollouts.start("pid", "pid/2", strategy="canary", options=options).salt
    kinds = {
        **dict.fromkeys(keys_between(salt, 0, 50), "candidate at 50 and 80 %"),
        **dict.fromkeys(keys_between(salt, 50, 80), "candidate at 80 % only"),
        **dict.fromkeys(keys_between(salt, 80, 100), "stable at 50 and 80 %"),
    }
    at_50, at_80 = Router(weight=50, salt=salt), Router(weight=80, salt=salt)

    assert wait_until_routed(server, kinds, at_50), "both workers never routed at 50 %"
    assert rollouts.promote("pid").weight == 80.0
    assert wait_until_routed(server, kinds, at_80), "both workers never routed at 80 %"
