"""Queue depths and shadow mirror metrics of an app running in process, scraped from /metrics.

The ``gated`` model predicts x * FACTOR; a call with a row x == 7 holds its model thread
until the test creates the file named by $QUEUE_GATE (touching ``<gate>.started`` first),
so requests and shadow copies pile up behind it in a known number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ferryman.registry import Registry
from ferryman.rollout.base import RolloutOptions
from ferryman.rollout.service import RolloutService
from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp, Served
from tests.server.test_metrics import value
from tests.serving._store import WAIT, _register_code

pytestmark = pytest.mark.anyio

GATED = """
import os
import time
from pathlib import Path


class Gated:
    def predict(self, frame):
        x = frame["x"].to_numpy()
        if BLOCKS and (x == 7.0).any():
            gate = Path(os.environ["QUEUE_GATE"])
            Path(f"{gate}.started").touch()
            deadline = time.monotonic() + 120
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        return x * FACTOR
"""
X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})


def register(registry: Registry, directory: Path, *, factor: int, blocks: bool) -> None:
    code = GATED.replace("FACTOR", str(factor)).replace("BLOCKS", str(blocks))
    _register_code(registry, directory, "gated", code, "Gated", X)


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "gate"
    monkeypatch.setenv("QUEUE_GATE", str(path))
    return path


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.005)


async def post(served: Served, x: float) -> int:
    response = await served.client.post(
        "/v1/endpoints/gated/predict", json={"instances": [{"x": x}]}
    )
    return response.status_code


async def scrape(served: Served) -> str:
    return (await served.client.get("/metrics")).text


async def test_requests_waiting_in_the_micro_batcher_show_in_batch_queue_depth(
    serve_app: ServeApp,
    registry: Registry,
    endpoints: EndpointService,
    tmp_path: Path,
    gate: Path,
) -> None:
    register(registry, tmp_path, factor=2, blocks=True)
    endpoints.create("gated", model="gated/1", max_batch_size=8, timeout_ms=120_000.0)
    async with serve_app(model_threads=1) as served:
        blocked = asyncio.create_task(post(served, 7.0))
        await until(Path(f"{gate}.started").exists)
        waiting = [asyncio.create_task(post(served, 1.0)) for _ in range(3)]
        runner = served.pool.get("gated").ready().runner
        await until(lambda: getattr(runner, "queued", None) == 3)
        during = await scrape(served)
        gate.touch()
        statuses = await asyncio.gather(blocked, *waiting)
        after = await scrape(served)

    assert statuses == [200] * 4
    assert value(during, "ferryman_batch_queue_depth", endpoint="gated") == 3
    assert value(after, "ferryman_batch_queue_depth", endpoint="gated") == 0
    assert value(after, "ferryman_batch_queue_depth", endpoint="toy") == 0


async def test_shadow_copies_queued_dropped_and_batched_are_counted(
    serve_app: ServeApp,
    registry: Registry,
    endpoints: EndpointService,
    tmp_path: Path,
    gate: Path,
) -> None:
    register(registry, tmp_path, factor=2, blocks=False)  # gated/1 answers callers
    register(registry, tmp_path, factor=3, blocks=True)  # gated/2, the shadow candidate
    endpoints.create("gated", model="gated/1", timeout_ms=120_000.0)
    rollouts = RolloutService(registry=registry, user="alice")
    async with serve_app(mirror_queue_size=2) as served:
        rollouts.start("gated", "gated/2", strategy="shadow", options=RolloutOptions(sample=1.0))
        await served.pool.refresh()
        mirror = served.app.state.mirror
        statuses = [await post(served, 7.0)]  # its copy holds the candidate
        await until(Path(f"{gate}.started").exists)
        statuses += [await post(served, 1.0) for _ in range(5)]  # 2 wait, 3 are dropped
        during = await scrape(served)
        gate.touch()
        await until(lambda: mirror.completed + mirror.failed == 3)
        after = await scrape(served)

    assert statuses == [200] * 6
    assert value(during, "ferryman_mirror_queue_depth", endpoint="gated") == 2
    assert value(during, "ferryman_mirror_dropped_total", endpoint="gated") == 3
    assert value(after, "ferryman_mirror_queue_depth", endpoint="gated") == 0
    assert value(after, "ferryman_mirror_dropped_total", endpoint="gated") == 3
    # The held copy alone, then the two that waited in one candidate call.
    assert value(after, "ferryman_mirror_batch_size_count", endpoint="gated") == 2
    assert value(after, "ferryman_mirror_batch_size_sum", endpoint="gated") == 3
    assert (mirror.completed, mirror.failed) == (3, 0)
