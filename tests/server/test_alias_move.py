"""Moving an alias under load: every request succeeds, and the new version takes over."""

from __future__ import annotations

import asyncio

import pytest

from ferryman.registry import Registry
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio

WORKERS = 8
REQUESTS_PER_WORKER = 60


@pytest.mark.parametrize("max_batch_size", [1, 8], ids=["unbatched", "micro-batched"])
async def test_requests_during_alias_moves_all_succeed(
    serve_app: ServeApp, registry: Registry, max_batch_size: int
) -> None:
    from ferryman.serving import EndpointService

    EndpointService(database=registry.database, user="alice").update(
        "toy", max_batch_size=max_batch_size
    )
    statuses: list[int] = []
    versions: list[str] = []
    async with serve_app() as served:

        async def hammer(worker: int) -> None:
            for i in range(REQUESTS_PER_WORKER):
                response = await served.client.post(
                    "/v1/endpoints/toy/predict",
                    json={"instances": [{"x": float(worker + i), "delay": 0.001}]},
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.append(response.json()["model_version"])

        async def move_aliases() -> None:
            for version in (2, 1, 2):
                await asyncio.to_thread(registry.set_alias, "toy", "production", version)
                await served.pool.refresh()
                await asyncio.sleep(0.02)

        await asyncio.wait_for(
            asyncio.gather(move_aliases(), *(hammer(w) for w in range(WORKERS))), 60
        )
        final = served.pool.get("toy").ready().version.ref

    assert statuses == [200] * WORKERS * REQUESTS_PER_WORKER
    assert set(versions) == {"toy/1", "toy/2"}
    assert final == "toy/2"
