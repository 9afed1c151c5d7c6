"""The shadow mirror: queued copies share candidate calls, yet each gets its own answer.

The candidate is the prepared store's ``toy`` endpoint (toy/1: predicts x * 2, raises for
x < 0), loaded by a real runtime pool. Copies are submitted with no ``await`` in between,
so the mirror's task finds them all queued when it first runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest

from ferryman.flavors import Prediction
from ferryman.registry import Registry
from ferryman.serving import EndpointService, RuntimePool, TimedPrediction
from ferryman.serving.codecs import DecodedBatch
from ferryman.serving.mirror import Mirror, MirroredRequest, MirrorResult
from ferryman.serving.runtime import Deployment
from tests.serving._store import WAIT

pytestmark = pytest.mark.anyio

PRIMARY = TimedPrediction(Prediction(predictions=np.array([0.0])), 0.0, 0.0, 1)


@asynccontextmanager
async def toy_candidate(
    registry: Registry, endpoints: EndpointService
) -> AsyncIterator[Deployment]:
    pool = RuntimePool(registry=registry, endpoints=endpoints, refresh_seconds=3600.0)
    await pool.start()
    try:
        await asyncio.wait_for(pool.wait_loaded(), WAIT)
        yield pool.get("toy").ready()
    finally:
        await pool.stop()


def rows(*xs: float) -> DecodedBatch:
    return DecodedBatch([{"x": x, "delay": 0.0} for x in xs])


def copy(candidate: Deployment, *xs: float, validated: bool = True) -> MirroredRequest:
    """A copy of a request for rows ``xs``; with ``validated``, carrying the stable rows."""
    batch = rows(*xs)
    return MirroredRequest(
        endpoint="toy",
        request_id=f"r-{xs}",
        candidate=candidate,
        decode=lambda target: rows(*xs),
        primary=PRIMARY,
        primary_version="toy/1",
        decoded=batch if validated else None,
        validated=candidate.validate(batch) if validated else None,
    )


class Recorder:
    """Collects a mirror's results and its model calls (copies per call)."""

    def __init__(self) -> None:
        self.results: list[MirrorResult] = []
        self.calls: list[int] = []
        self.drops: list[str] = []

    def mirror(self, *, capacity: int = 1000, max_batch_rows: int = 256) -> Mirror:
        return Mirror(
            capacity=capacity,
            max_batch_rows=max_batch_rows,
            on_result=self.results.append,
            on_batch=lambda endpoint, copies: self.calls.append(copies),
            on_drop=self.drops.append,
        )

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.results) < count:
                await asyncio.sleep(0.01)

    async def serve_all(
        self, copies: list[MirroredRequest], **options: int
    ) -> tuple[Mirror, list[tuple[str, object]]]:
        """Queue ``copies`` at once, wait for their results, then serve each alone.

        Returns:
            The stopped mirror, and what each copy gives served alone (for comparison).
        """
        mirror = self.mirror(**options)
        mirror.start()
        for request in copies:
            mirror.submit(request)
        await self.wait_for(len(copies))
        expected = await alone(mirror, copies)
        await mirror.stop()
        return mirror, expected


def outcome(result: MirrorResult) -> tuple[str, list[float] | str]:
    """What a caller of the candidate would have seen: the predictions or the error."""
    if result.shadow is not None:
        return result.request.request_id, result.shadow.prediction.predictions.tolist()
    return result.request.request_id, f"{type(result.error).__name__}: {result.error}"


async def alone(mirror: Mirror, copies: list[MirroredRequest]) -> list[tuple[str, object]]:
    return [outcome(await mirror.serve(request)) for request in copies]


async def test_queued_copies_share_one_candidate_call_with_the_same_answers_as_alone(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    recorder = Recorder()
    async with toy_candidate(store_registry, store_endpoints) as candidate:
        copies = [copy(candidate, 1.0), copy(candidate, 2.0, 3.0), copy(candidate, 4.0)]
        mirror, expected = await recorder.serve_all(copies)

    assert recorder.calls == [3]
    assert [outcome(r) for r in recorder.results] == expected
    assert expected[1] == ("r-(2.0, 3.0)", [4.0, 6.0])
    assert [r.shadow.batch_rows for r in recorder.results if r.shadow] == [4, 4, 4]
    assert (mirror.completed, mirror.failed) == (3, 0)


async def test_a_copy_that_fails_in_the_middle_of_a_batch_fails_alone(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    recorder = Recorder()
    async with toy_candidate(store_registry, store_endpoints) as candidate:
        copies = [copy(candidate, x) for x in (1.0, 2.0, -1.0, 4.0)]
        mirror, expected = await recorder.serve_all(copies)

    assert [outcome(r) for r in recorder.results] == expected
    assert [r.error is None for r in recorder.results] == [True, True, False, True]
    assert "x must not be negative" in str(recorder.results[2].error)
    assert recorder.calls == [1, 1, 1, 1]  # the merged call failed: each copy alone
    assert (mirror.completed, mirror.failed) == (3, 1)


async def test_copies_decoded_for_the_candidate_are_served_alone_in_queue_order(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    recorder = Recorder()
    async with toy_candidate(store_registry, store_endpoints) as candidate:
        copies = [
            copy(candidate, 1.0),
            copy(candidate, 5.0, validated=False),
            copy(candidate, 2.0),
            copy(candidate, -3.0, validated=False),
        ]
        _, expected = await recorder.serve_all(copies)

    assert [outcome(r) for r in recorder.results] == expected
    assert [r.request for r in recorder.results] == copies
    assert recorder.calls == [2, 1, 1]
    assert recorder.results[1].batch is not None  # decoded with the candidate's schema


async def test_the_mirror_takes_at_most_max_batch_rows_rows_at_once(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    recorder = Recorder()
    async with toy_candidate(store_registry, store_endpoints) as candidate:
        copies = [copy(candidate, float(x)) for x in range(5)] + [copy(candidate, 9.0, 9.0, 9.0)]
        mirror = recorder.mirror(max_batch_rows=2)
        mirror.start()
        for request in copies:
            mirror.submit(request)
        await recorder.wait_for(6)
        await mirror.stop()

    assert recorder.calls == [2, 2, 1, 1]  # the 3-row copy exceeds the bound: alone
    assert [outcome(r)[1] for r in recorder.results] == [
        [0.0],
        [2.0],
        [4.0],
        [6.0],
        [8.0],
        [18.0, 18.0, 18.0],
    ]


async def test_a_full_queue_drops_and_reports_copies_per_endpoint(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    recorder = Recorder()
    async with toy_candidate(store_registry, store_endpoints) as candidate:
        mirror = recorder.mirror(capacity=2)
        mirror.start()
        queued = [mirror.submit(copy(candidate, x)) for x in (1.0, 2.0, 3.0)]
        waiting = (mirror.depth, mirror.depths())
        await recorder.wait_for(2)
        drained = (mirror.depth, mirror.depths())
        await mirror.stop()

    assert queued == [True, True, False]
    assert recorder.drops == ["toy"]
    assert waiting == (2, {"toy": 2})
    assert drained == (0, {"toy": 0})
    assert (mirror.submitted, mirror.dropped, mirror.completed) == (3, 1, 2)


async def test_the_mirror_rests_so_that_its_rounds_fill_at_most_max_share(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    ticks = iter(range(1000))
    rests: list[float] = []

    async def rest(seconds: float) -> None:
        rests.append(seconds)
        await asyncio.sleep(0)

    recorder = Recorder()
    async with toy_candidate(store_registry, store_endpoints) as candidate:
        mirror = Mirror(
            max_batch_rows=1,
            max_share=0.2,
            on_result=recorder.results.append,
            clock=lambda: float(next(ticks)) / 100,  # every reading 10 ms after the last
            sleep=rest,
        )
        mirror.start()
        for x in (1.0, 2.0, 3.0):
            mirror.submit(copy(candidate, x))
        await recorder.wait_for(3)
        await mirror.stop()

    assert len(rests) == 3  # one rest per round (one copy per round here)
    # A round's span on the clock is an integer number of 10 ms ticks; at a share of 0.2
    # the rest is four times the span, so the round filled exactly 20 % of the time.
    for seconds in rests:
        span = seconds / 4
        assert span > 0 and round(span * 100, 9).is_integer()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"capacity": 0}, "capacity must be >= 1, got 0"),
        ({"max_batch_rows": 0}, "max_batch_rows must be >= 1, got 0"),
        ({"max_share": 0.0}, r"max_share must be in \(0, 1\], got 0.0"),
        ({"max_share": 1.5}, r"max_share must be in \(0, 1\], got 1.5"),
    ],
    ids=["capacity", "max_batch_rows", "share-zero", "share-above-one"],
)
def test_bad_mirror_settings_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Mirror(**options)  # type: ignore[arg-type]
