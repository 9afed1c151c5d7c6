"""Shadow traffic: copies of live requests sent to a candidate, fire and forget.

The request path hands a copy to :meth:`Mirror.submit` after the caller's answer is
ready; ``submit`` never waits: when the bounded queue is full the copy is dropped and
counted. A background task serves the copies on the candidate's model thread (never the
stable version's) and reports the pair of answers to ``on_result`` (metrics, the
prediction log). A slow or failing candidate therefore never slows or fails a caller: at
worst its copies are dropped.

Batching of copies: each time the task wakes it takes everything queued, up to
``max_batch_rows`` rows. Copies that carry the stable version's validated rows (the
candidate has the same signature) are concatenated per candidate into one model call
(:func:`~ferryman.serving.batching.merge`), whose prediction is cut back per copy
(:func:`~ferryman.serving.batching.split`), exactly as micro-batching does for callers.
Copies that must be decoded with the candidate's own schema, copies whose rows cannot be
merged exactly (different column dtypes), and every member of a merged call that failed
are served alone, one after another, so a bad copy fails alone and every copy gets the
answer it would have got by itself. Results are reported in the order copies were queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ferryman.flavors.base import ModelInput
from ferryman.serving.batching import TimedPrediction, merge, split
from ferryman.serving.codecs.base import DecodedBatch
from ferryman.serving.runtime import Deployment

logger = logging.getLogger("ferryman.serving")


@dataclass(frozen=True)
class MirroredRequest:
    """One copy of a live request, waiting for the candidate.

    Attributes:
        endpoint: The endpoint's name.
        request_id: The live request's id.
        candidate: The candidate's deployment.
        decode: Decodes the request's body with a deployment's schema.
        primary: The stable version's answer, as the caller received it.
        primary_version: The stable version's reference.
        decoded: The request as the stable version decoded it, when ``validated`` is set.
        validated: The stable version's validated rows, when the candidate has the same
            signature (then they are the candidate's rows too, and are not decoded or
            validated again). Models must not change their input in place.
    """

    endpoint: str
    request_id: str
    candidate: Deployment
    decode: Callable[[Deployment], DecodedBatch]
    primary: TimedPrediction
    primary_version: str
    decoded: DecodedBatch | None = None
    validated: ModelInput | None = None

    @property
    def rows(self) -> int:
        """Rows of the copy when they are already validated, else 1 (not decoded yet)."""
        return len(self.validated) if self.validated is not None else 1


@dataclass(frozen=True)
class MirrorResult:
    """What the candidate did with one mirrored request.

    Attributes:
        request: The mirrored request.
        batch: The request decoded with the candidate's schema (``None`` if it failed).
        shadow: The candidate's answer, or ``None`` when it failed.
        error: The failure, or ``None``.
        latency_ms: Milliseconds the candidate took (decode, validation and model); for
            a copy served in a merged call, the call's time times the copy's share of
            its rows.
    """

    request: MirroredRequest
    batch: DecodedBatch | None
    shadow: TimedPrediction | None
    error: BaseException | None
    latency_ms: float


class Mirror:
    """A bounded queue of mirrored requests and the task that serves them.

    Args:
        capacity: Copies that may wait at once; more are dropped (and counted).
        max_batch_rows: Most rows the task takes from the queue at once, and so the most
            rows in one merged model call (a bigger copy is served alone).
        on_result: Called on the event loop with each :class:`MirrorResult`.
        on_drop: Called with the endpoint's name when a copy is dropped because the
            queue is full (copies dropped at shutdown or before :meth:`start` are not).
        on_batch: Called with the endpoint's name and the number of copies after each
            model call made for copies (1 for a copy served alone).
        clock: Seconds from a monotonic clock.
        max_share: The most of the process's time shadow copies may take: after each
            round (the copies taken at once, their model call and their reports) the task
            rests so that rounds fill at most this share of the time. Copies arriving
            meanwhile wait and are served together in the next round; when the queue is
            full they are dropped (and counted). 1.0 never rests.
        sleep: How the task rests (``asyncio.sleep``; tests pass their own).

    Raises:
        ValueError: ``capacity`` or ``max_batch_rows`` is below 1, or ``max_share`` is
            not in (0, 1].
    """

    def __init__(
        self,
        *,
        capacity: int = 1000,
        max_batch_rows: int = 256,
        on_result: Callable[[MirrorResult], None] | None = None,
        on_drop: Callable[[str], None] | None = None,
        on_batch: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] | None = None,
        max_share: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not 0.0 < max_share <= 1.0:
            raise ValueError(f"max_share must be in (0, 1], got {max_share}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be >= 1, got {max_batch_rows}")
        self.capacity = capacity
        self.max_batch_rows = max_batch_rows
        self.on_result = on_result
        self.on_drop = on_drop
        self.on_batch = on_batch
        self.clock = clock or time.perf_counter
        self.max_share = max_share
        self._sleep = sleep or asyncio.sleep
        self.submitted = 0
        self.dropped = 0
        self.completed = 0
        self.failed = 0
        self._queue: asyncio.Queue[MirroredRequest] | None = None
        self._task: asyncio.Task[None] | None = None
        self._held: MirroredRequest | None = None
        self._waiting: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"Mirror(capacity={self.capacity}, max_batch_rows={self.max_batch_rows}, "
            f"max_share={self.max_share})"
        )

    @property
    def depth(self) -> int:
        """Copies waiting now."""
        queued = self._queue.qsize() if self._queue is not None else 0
        return queued + (self._held is not None)

    def depths(self) -> dict[str, int]:
        """Copies waiting now, per endpoint (endpoints that had copies queued, even 0)."""
        return dict(self._waiting)

    def start(self) -> None:
        """Start serving copies (call from the event loop)."""
        if self._task is None:
            self._queue = asyncio.Queue(self.capacity)
            self._task = asyncio.create_task(self._run(), name="ferryman-mirror")

    async def stop(self) -> None:
        """Stop; copies still waiting are dropped (they were never owed to anyone)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue is not None:
            self.dropped += self.depth
            self._queue = None
        self._held = None
        self._waiting = dict.fromkeys(self._waiting, 0)

    def submit(self, request: MirroredRequest) -> bool:
        """Queue a copy without waiting; return whether it was queued (else dropped)."""
        self.submitted += 1
        queue = self._queue
        if queue is None:
            self.dropped += 1
            return False
        try:
            queue.put_nowait(request)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(request.endpoint)
            return False
        waiting = self._waiting
        waiting[request.endpoint] = waiting.get(request.endpoint, 0) + 1
        return True

    async def _run(self) -> None:
        queue = self._queue
        if queue is None:
            raise RuntimeError("Mirror._run needs the queue that start() creates.")
        waiting = self._waiting
        while True:
            first = self._held if self._held is not None else await queue.get()
            self._held = None
            taken = [first]
            rows = first.rows
            while not queue.empty():
                request = queue.get_nowait()
                if rows + request.rows > self.max_batch_rows:
                    self._held = request  # first of the next round; still waiting
                    break
                taken.append(request)
                rows += request.rows
            for request in taken:
                waiting[request.endpoint] -= 1
            started = self.clock()
            for result in await self.serve_many(taken):
                self._report(result)
            await self._rest(self.clock() - started)

    async def _rest(self, spent: float) -> None:
        """Wait so that a round that took ``spent`` seconds fills at most ``max_share``.

        The round's time is measured on the wall clock, so it also holds what the event
        loop did for callers while the candidate computed: the share shadow work really
        takes is at most ``max_share``, usually less.
        """
        if self.max_share < 1.0 and spent > 0.0:
            await self._sleep(spent * (1.0 - self.max_share) / self.max_share)

    def _report(self, result: MirrorResult) -> None:
        if result.error is None:
            self.completed += 1
        else:
            self.failed += 1
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                logger.exception("Recording a shadow result failed")

    async def serve_many(self, requests: Sequence[MirroredRequest]) -> list[MirrorResult]:
        """Serve copies, merging those that can share a model call; never raises.

        Returns:
            One result per copy, in the order of ``requests``; each is what
            :meth:`serve` gives for the copy alone.
        """
        results: list[MirrorResult | None] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            if request.validated is not None and request.decoded is not None:
                groups.setdefault(id(request.candidate), []).append(index)
        for members in groups.values():
            if len(members) > 1:
                merged = await self._serve_merged([requests[i] for i in members])
                for index, result in zip(members, merged, strict=True):
                    results[index] = result
        served: list[MirrorResult] = []
        for index, request in enumerate(requests):
            result = results[index]
            if result is None:
                result = await self.serve(request)
                self._observe_batch(request.endpoint, 1)
            served.append(result)
        return served

    async def _serve_merged(self, requests: Sequence[MirroredRequest]) -> list[MirrorResult | None]:
        """One model call for copies with validated rows; ``None`` for copies to serve alone."""
        datas = [request.validated for request in requests if request.validated is not None]
        sizes = [len(data) for data in datas]
        start = self.clock()
        try:
            merged = merge(datas)
        except Exception:  # anything pandas refuses to concatenate: serve one by one
            merged = None
        if merged is None:
            return [None] * len(requests)
        candidate = requests[0].candidate
        try:
            timed = await candidate.run(merged)
        except Exception:  # find the culprit: each copy alone, only the failing ones fail
            return [None] * len(requests)
        total = sum(sizes)
        if len(timed.prediction) != total:
            return [None] * len(requests)  # the model broke the row count: judge each alone
        elapsed_ms = (self.clock() - start) * 1000.0
        self._observe_batch(requests[0].endpoint, len(requests))
        pieces = split(timed.prediction, sizes)
        results: list[MirrorResult | None] = []
        for request, size, piece in zip(requests, sizes, pieces, strict=True):
            if isinstance(piece, Exception):  # split never produces one; kept for typing
                results.append(None)
                continue
            shadow = TimedPrediction(piece, timed.queue_ms, timed.compute_ms, timed.batch_rows)
            share = elapsed_ms * size / total if total else 0.0
            results.append(MirrorResult(request, request.decoded, shadow, None, share))
        return results

    def _observe_batch(self, endpoint: str, copies: int) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(endpoint, copies)
            except Exception:
                logger.exception("Recording a shadow batch failed")

    async def serve(self, request: MirroredRequest) -> MirrorResult:
        """Run one copy on the candidate, alone; never raises."""
        start = self.clock()
        batch: DecodedBatch | None = None
        try:
            if request.validated is not None and request.decoded is not None:
                batch = request.decoded
                shadow = await request.candidate.run(request.validated)
            else:
                batch = request.decode(request.candidate)
                shadow = await request.candidate.predict(batch)
        except Exception as exc:
            return MirrorResult(request, batch, None, exc, (self.clock() - start) * 1000.0)
        return MirrorResult(request, batch, shadow, None, (self.clock() - start) * 1000.0)


__all__ = ["Mirror", "MirrorResult", "MirroredRequest"]
