"""Shadow traffic: copies of live requests sent to a candidate, fire and forget.

The request path hands a copy to :meth:`Mirror.submit` after the caller's answer is
ready; ``submit`` never waits: when the bounded queue is full the copy is dropped and
counted. A background task decodes each copy with the candidate's own schema, runs it
on the candidate's model thread (never the stable version's), and reports the pair of
answers to ``on_result`` (metrics, the prediction log). A slow or failing candidate
therefore never slows or fails a caller: at worst its copies are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ferryman.flavors.base import ModelInput
from ferryman.serving.batching import TimedPrediction
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


@dataclass(frozen=True)
class MirrorResult:
    """What the candidate did with one mirrored request.

    Attributes:
        request: The mirrored request.
        batch: The request decoded with the candidate's schema (``None`` if it failed).
        shadow: The candidate's answer, or ``None`` when it failed.
        error: The failure, or ``None``.
        latency_ms: Milliseconds the candidate took (decode, validation and model).
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
        on_result: Called on the event loop with each :class:`MirrorResult`.
        clock: Seconds from a monotonic clock.
    """

    def __init__(
        self,
        *,
        capacity: int = 1000,
        on_result: Callable[[MirrorResult], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        import time

        self.capacity = capacity
        self.on_result = on_result
        self.clock = clock or time.perf_counter
        self.submitted = 0
        self.dropped = 0
        self.completed = 0
        self.failed = 0
        self._queue: asyncio.Queue[MirroredRequest] | None = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Mirror(capacity={self.capacity})"

    @property
    def depth(self) -> int:
        """Copies waiting now."""
        return self._queue.qsize() if self._queue is not None else 0

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
            self.dropped += self._queue.qsize()
            self._queue = None

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
            return False
        return True

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            request = await queue.get()
            result = await self.serve(request)
            if result.error is None:
                self.completed += 1
            else:
                self.failed += 1
            if self.on_result is not None:
                try:
                    self.on_result(result)
                except Exception:
                    logger.exception("Recording a shadow result failed")

    async def serve(self, request: MirroredRequest) -> MirrorResult:
        """Run one copy on the candidate; never raises."""
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
