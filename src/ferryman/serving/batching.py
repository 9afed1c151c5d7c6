"""Running model calls off the event loop, one request at a time or micro-batched.

Both runners hand a validated batch to a thread pool (or, for calls of a few tenths of a
millisecond, run it inline: see :class:`DirectRunner`) and return an asyncio future of a
:class:`TimedPrediction`, which carries the time the request queued and the time the
model computed (the server reports both as ``X-Queue-Time-Ms`` and
``X-Compute-Time-Ms``). Cancelling the future (or the batcher's own timeout, below)
withdraws a request that has not started; one that has started runs to the end,
unobserved.

Micro-batching policy (:class:`MicroBatcher`), designed to be honest about latency:

1. **Idle: no waiting.** When no batch is running, a request goes to the model at once,
   alone (with anything already queued). At low load batching adds no delay.
2. **Busy, a slot free: a short window.** When a batch is running and another may start
   (``max_concurrency`` > running batches), queued requests wait for companions for at
   most ``min(max_latency_ms, observed batch compute time)`` from the oldest one's
   arrival, or until ``max_batch_size`` rows are queued. Waiting about one compute time
   is what it costs to merge with the requests that arrive meanwhile; never more than
   the configured latency budget.
3. **Busy, no slot free: the queue fills by itself.** Requests wait for a running batch
   to finish (unavoidable), then everything queued, up to ``max_batch_size`` rows, goes
   in the next call at once.

**Short merged calls run on the event loop** when ``inline_ms`` allows it (models of
bounded pure computation whose average batch takes less, e.g. a compiled scikit-learn
model): handing a 0.3 ms call to a thread costs its members more than the call, since
the thread must then win the GIL back from the loop. Such calls run one at a time. A
request that finds the batcher idle does not run at once but at the end of the loop's
current pass (``call_soon``), so the requests read from the sockets in the same pass
join it; while the call runs nothing else does, and the requests that arrived meanwhile
make up the next batch. A batch of more than ``max_batch_size`` rows (one big request)
still goes to a thread, as does everything once the average batch grows slower.

**Timeouts without a timer per request.** Given ``timeout_ms``, the batcher fails a
request that is still unanswered that long after its submission with
``timeout_error()`` (the endpoint's 504), whether it is queued (it is then never
computed) or in a running call (which runs to the end, its answer unobserved). One
timer serves every request: it is armed for the oldest unanswered request's deadline,
and when it fires it fails whatever has expired and re-arms for the next; requests
are answered in about the order they came, so the oldest is at the front of a queue
that stays as short as the requests in flight. A timer per request (one ``call_later``
and one ``cancel`` each) was a few percent of a micro-batched one-row prediction.

**Validation with the batch.** Validating a request's one row costs about what validating
thirty does (the validator's fixed cost dominates), so a batcher given a row-by-row
``validate`` function also takes decoded rows unvalidated (``submit(rows,
validated=False)``) and validates a merged call's rows in one go. If that fails, each
member is validated alone: only the invalid ones fail, each with its own error (row
numbers its own), exactly as if it had been validated on arrival; the rest go to the
model. The server does this for endpoints whose signature is all float64 columns and
whose model takes an array (where validation is row by row by construction).

Requests are never split: one larger than ``max_batch_size`` rows runs alone. Merged
batches keep input order, and each request receives exactly its own rows of the
output: the same predictions as unbatched (for models whose arithmetic is row by row,
bit for bit; BLAS-backed models such as linear ones may differ in the last bits of a
probability, as they do between any two batch sizes). If a merged call raises, every
member is retried alone, so only the request that causes the failure fails. Members
whose validated inputs have different column dtypes (categoricals with different
unseen categories, say) are not merged, since concatenation would change what the
model sees.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from ferryman.flavors.base import ModelInput, Prediction

#: Weight of the newest batch in the moving average of compute time.
_EWMA_WEIGHT = 0.2

#: Largest request (rows) tried inline before this runner has timed a call of its size.
INLINE_TRIAL_ROWS = 64


@dataclass(frozen=True, slots=True)
class TimedPrediction:
    """A request's prediction and where its time went.

    Attributes:
        prediction: The model's output for exactly the request's rows.
        queue_ms: Milliseconds from submission until its model call started.
        compute_ms: Milliseconds the model call took (the whole merged batch's call).
        batch_rows: Rows in the model call that served the request.
        inputs: The request's rows as the model saw them: what was submitted, or, for
            rows the batcher validated itself (see :meth:`MicroBatcher.submit`), the
            validator's output; ``None`` from the direct runner.
        leads: Whether this request is the one its model call is counted for: the first
            member answered by a merged call, every request of the direct runner. The
            server observes ``ferryman_batch_size`` for leading requests only, so that
            the histogram counts model calls, not requests.
    """

    prediction: Prediction
    queue_ms: float
    compute_ms: float
    batch_rows: int
    inputs: ModelInput | None = None
    leads: bool = True


class Runner(Protocol):
    """Something that runs a validated batch through a model and times it."""

    def submit(self, data: ModelInput) -> asyncio.Future[TimedPrediction]:
        """Schedule a prediction; must be called on the event loop."""
        ...


class DirectRunner:
    """Call the model once per request: no batching.

    The call normally runs on the executor, so a slow model never holds up the event
    loop. A model whose calls are known to take a few tenths of a millisecond (a linear
    model on a few dozen rows) runs *inline* instead, on the event loop, when
    ``inline_ms`` allows it: handing such a call to a thread and back costs more than
    the call, and every hand-over of the GIL lets a background thread in. The decision
    is per request, from a moving average of the CPU time of this runner's calls for
    requests of about the same size (same power of two of rows; CPU time of the calling
    thread, so a call on a model thread that waited for the GIL does not look slow and
    keep its size off the loop for good): inline only below ``inline_ms``,
    which only models of bounded pure computation get (see ``Deployment``). A request
    of a size not seen yet runs inline up to ``INLINE_TRIAL_ROWS`` rows, on the
    executor beyond; one slow call moves its size to the executor from then on.

    Args:
        predict: The model's batch predict function.
        executor: The threads for model calls.
        clock: Seconds from a monotonic clock; injectable for tests.
        inline_ms: Largest average CPU time (milliseconds) of a call run inline; 0 runs
            every call on the executor.
        cpu_clock: CPU seconds of the calling thread; injectable for tests.
    """

    def __init__(
        self,
        *,
        predict: Callable[[ModelInput], Prediction],
        executor: Executor,
        clock: Callable[[], float] = time.perf_counter,
        inline_ms: float = 0.0,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.clock = clock
        self.inline_ms = inline_ms
        self.cpu_clock = cpu_clock
        self._cost_ms: dict[int, float] = {}  # moving average by rows.bit_length()

    def __repr__(self) -> str:
        return f"DirectRunner(executor={self.executor!r}, inline_ms={self.inline_ms})"

    def submit(self, data: ModelInput) -> asyncio.Future[TimedPrediction]:
        """Run ``predict(data)`` inline (a finished future) or schedule it on the executor."""
        loop = asyncio.get_running_loop()
        if self.inline_ms > 0.0:
            rows = len(data)
            cost = self._cost_ms.get(rows.bit_length())
            if rows <= INLINE_TRIAL_ROWS if cost is None else cost < self.inline_ms:
                return _called_now(loop, self._call, data, self.clock())
        return loop.run_in_executor(self.executor, self._call, data, self.clock())

    def _call(self, data: ModelInput, queued: float) -> TimedPrediction:
        clock, cpu_clock = self.clock, self.cpu_clock
        start, cpu_start = clock(), cpu_clock()
        prediction = self.predict(data)
        end, cpu_ms = clock(), (cpu_clock() - cpu_start) * 1000.0
        compute_ms = (end - start) * 1000.0
        rows = len(prediction)
        bucket = rows.bit_length()
        # Written from the model thread or the loop; a lost update only delays the average.
        previous = self._cost_ms.get(bucket)
        self._cost_ms[bucket] = (
            cpu_ms if previous is None else previous + _EWMA_WEIGHT * (cpu_ms - previous)
        )
        return TimedPrediction(prediction, (start - queued) * 1000.0, compute_ms, rows)


class _Pending:
    __slots__ = ("data", "future", "queued", "rows", "validated")

    def __init__(
        self,
        data: Any,
        future: asyncio.Future[TimedPrediction],
        queued: float,
        validated: bool = True,
    ) -> None:
        self.data = data
        self.rows = len(data)
        self.future = future
        self.queued = queued
        self.validated = validated


_Outcome = Prediction | Exception
_Input = ModelInput | Exception  # a member's validated rows, or why they are invalid
_R = TypeVar("_R")

#: A merged call's start and end (clock seconds), CPU seconds, rows (in the model call),
#: each member's outcome and each member's validated rows.
_BatchRun = tuple[float, float, float, int, list[_Outcome], list[_Input]]


class MicroBatcher:
    """Merge concurrent requests into shared model calls; see the module for the policy.

    Args:
        predict: The model's batch predict function (runs on the executor's threads).
        executor: The threads for model calls.
        max_batch_size: Most rows in one merged call (a bigger request runs alone).
        max_latency_ms: Longest time (milliseconds) a request waits for companions
            while a free slot exists.
        max_concurrency: Most model calls in flight at once; match the executor's threads.
        initial_compute_ms: Compute time assumed before any batch was observed, e.g. the
            warm-up prediction's.
        clock: Seconds from a monotonic clock; injectable for tests.
        inline_ms: Run a merged call on the event loop, not the executor, while the
            moving average of a batch's CPU time (as for ``DirectRunner``) is below
            this (milliseconds) and the batch is at most ``max_batch_size`` rows; 0
            never does. See the module.
        cpu_clock: CPU seconds of the calling thread; injectable for tests.
        timeout_ms: Fail a request still unanswered this long (milliseconds) after its
            submission with ``timeout_error()``; 0 never does. See the module.
        timeout_error: Makes the exception an expired request fails with.
        validate: Turns a request's decoded rows into model input, raising for invalid
            ones; needed to submit rows unvalidated (see :meth:`submit`). It must
            validate row by row: validating two lists of rows together must give the
            concatenation of validating each (true of all-float64 signatures).
    """

    def __init__(
        self,
        *,
        predict: Callable[[ModelInput], Prediction],
        executor: Executor,
        max_batch_size: int,
        max_latency_ms: float,
        max_concurrency: int = 1,
        initial_compute_ms: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        inline_ms: float = 0.0,
        cpu_clock: Callable[[], float] = time.thread_time,
        timeout_ms: float = 0.0,
        timeout_error: Callable[[], BaseException] = TimeoutError,
        validate: Callable[[Any], ModelInput] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.predict = predict
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_latency_ms = max_latency_ms
        self.max_concurrency = max_concurrency
        self.initial_compute_ms = initial_compute_ms
        self.clock = clock
        self.inline_ms = inline_ms
        self.cpu_clock = cpu_clock
        if not timeout_ms >= 0.0:
            raise ValueError(f"timeout_ms must be 0 or more, got {timeout_ms}")
        self.timeout_ms = timeout_ms
        self.timeout_error = timeout_error
        self.validate = validate
        self._outstanding: deque[_Pending] = deque()  # unanswered, oldest first
        self._expiry: asyncio.TimerHandle | None = None
        self._flush: asyncio.Handle | None = None
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._compute_s = (
            initial_compute_ms if initial_compute_ms is not None else max_latency_ms
        ) / 1000.0
        self._cpu_s = self._compute_s  # the same average, of CPU time: decides inline calls

    def __repr__(self) -> str:
        return (
            f"MicroBatcher(max_batch_size={self.max_batch_size}, "
            f"max_latency_ms={self.max_latency_ms}, max_concurrency={self.max_concurrency}, "
            f"inline_ms={self.inline_ms})"
        )

    @property
    def queued(self) -> int:
        """Requests waiting for a model call."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Model calls in flight."""
        return self._running

    @property
    def window_ms(self) -> float:
        """How long queued requests wait for companions while a slot is free."""
        return min(self.max_latency_ms, self._compute_s * 1000.0)

    def submit(self, data: Any, *, validated: bool = True) -> asyncio.Future[TimedPrediction]:
        """Queue a batch; the future resolves with exactly its rows' output.

        Args:
            data: Validated rows, or with ``validated=False`` a non-empty list of decoded
                rows (records or lists of values) for the batcher's ``validate``.
            validated: Whether ``data`` is validated already. Rows submitted
                unvalidated are validated with the rest of their batch in one call when
                they all pass (validating a request costs about as much as validating
                thirty rows): a request whose rows do not pass fails alone with the
                validator's error, and its :class:`TimedPrediction` carries the
                validated rows as ``inputs``.

        Raises:
            ValueError: ``validated=False`` without a ``validate`` function, or for
                anything but a non-empty list.
        """
        if not validated and (self.validate is None or not isinstance(data, list) or not data):
            raise ValueError(
                "unvalidated rows need the batcher's validate function and a non-empty list"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TimedPrediction] = loop.create_future()
        item = _Pending(data, future, self.clock(), validated)
        self._queue.append(item)
        self._queued_rows += item.rows
        if self.timeout_ms > 0.0:
            self._outstanding.append(item)
            if self._expiry is None:
                self._arm_expiry(loop)
        self._schedule(loop)
        return future

    # -- dispatching (on the event loop) -------------------------------------------------

    def _inline(self) -> bool:
        return self._cpu_s * 1000.0 < self.inline_ms

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._inline():
            # Calls on the loop run one at a time, so they never overlap a running
            # batch: the next one starts once the requests that are ready to run (this
            # loop pass's arrivals) have queued behind the first.
            if self._queue and self._flush is None and not self._running:
                self._flush = loop.call_soon(self._on_flush, loop)
            return
        while self._queue and self._running < self.max_concurrency:
            if self._running and self._queued_rows < self.max_batch_size:
                self._arm_timer(loop)
                return
            if not self._dispatch(loop):
                return

    def _on_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush = None
        if self._queue and not self._running:
            self._dispatch(loop)
        self._schedule(loop)

    def _arm_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            return
        delay = self._queue[0].queued + self.window_ms / 1000.0 - self.clock()
        self._timer = loop.call_later(max(delay, 0.0), self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._queue and self._running < self.max_concurrency:
            self._dispatch(loop)
        self._schedule(loop)

    def _arm_expiry(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm the timeout timer for the oldest unanswered request, if any."""
        outstanding = self._drop_answered()
        if not outstanding:
            self._expiry = None
            return
        delay = outstanding[0].queued + self.timeout_ms / 1000.0 - self.clock()
        self._expiry = loop.call_later(max(delay, 0.0), self._on_expiry, loop)

    def _drop_answered(self) -> deque[_Pending]:
        """Forget the answered requests at the front of the unanswered ones; return them."""
        outstanding = self._outstanding
        while outstanding and outstanding[0].future.done():
            outstanding.popleft()
        return outstanding

    def _on_expiry(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail every request past its deadline, then re-arm for the next one."""
        oldest_alive = self.clock() - self.timeout_ms / 1000.0
        outstanding = self._outstanding
        while outstanding:
            item = outstanding[0]
            if not item.future.done():
                if item.queued > oldest_alive:
                    break
                item.future.set_exception(self.timeout_error())
            outstanding.popleft()
        self._arm_expiry(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Start one model call with the queue's head; return whether one started."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch: list[_Pending] = []
        rows = 0
        queue = self._queue
        while queue:
            item = queue[0]
            if item.future.done():  # timed out or cancelled while queued
                queue.popleft()
                self._queued_rows -= item.rows
                continue
            if batch and rows + item.rows > self.max_batch_size:
                break
            queue.popleft()
            self._queued_rows -= item.rows
            batch.append(item)
            rows += item.rows
        if not batch:
            return False
        self._running += 1
        if rows <= self.max_batch_size and self._inline():
            self._finished(loop, batch, _called_now(loop, self._run, batch))
            return True
        call = loop.run_in_executor(self.executor, self._run, batch)
        call.add_done_callback(partial(self._finished, loop, batch))
        return True

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending],
        call: asyncio.Future[_BatchRun],
    ) -> None:
        self._running -= 1
        if call.cancelled():
            for item in batch:
                item.future.cancel()
        elif (error := call.exception()) is not None:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
        else:
            start, end, cpu_s, rows, outcomes, inputs = call.result()
            compute_ms = (end - start) * 1000.0
            self._compute_s += _EWMA_WEIGHT * ((end - start) - self._compute_s)
            self._cpu_s += _EWMA_WEIGHT * (cpu_s - self._cpu_s)
            leads = True
            for item, outcome, data in zip(batch, outcomes, inputs, strict=True):
                if item.future.done():
                    continue
                if isinstance(outcome, Exception):
                    item.future.set_exception(outcome)
                else:
                    queue_ms = (start - item.queued) * 1000.0
                    seen = None if isinstance(data, Exception) else data
                    item.future.set_result(
                        TimedPrediction(outcome, queue_ms, compute_ms, rows, seen, leads)
                    )
                    leads = False
        self._drop_answered()
        self._schedule(loop)

    # -- the model call (on an executor thread) -------------------------------------------

    def _run(self, batch: list[_Pending]) -> _BatchRun:
        start, cpu_start = self.clock(), self.cpu_clock()
        inputs, merged = self._inputs(batch)
        datas = [data for data in inputs if not isinstance(data, Exception)]
        if merged is None and datas:
            try:
                merged = merge(datas) if len(datas) > 1 else datas[0]
            except Exception:  # anything pandas refuses to concatenate: call one by one
                merged = None
        outcomes: list[_Outcome]
        if merged is None:
            outcomes = [self._call(data) for data in inputs]
        else:
            try:
                prediction = self.predict(merged)
            except Exception as exc:
                # Find the culprit: each member alone; only the failing ones fail.
                outcomes = [exc] if len(inputs) == 1 else [self._call(data) for data in inputs]
            else:
                pieces = iter(split(prediction, [len(data) for data in datas]))
                outcomes = [
                    data if isinstance(data, Exception) else next(pieces) for data in inputs
                ]
        end, cpu_s = self.clock(), self.cpu_clock() - cpu_start
        return start, end, cpu_s, sum(len(data) for data in datas), outcomes, inputs

    def _inputs(self, batch: list[_Pending]) -> tuple[list[_Input], ModelInput | None]:
        """Each member's validated rows (or its error), and all of them merged if at hand.

        Members submitted unvalidated are validated together, in one call, when all of
        the batch was; the merged result then serves as the model's input as it is.
        When that call fails, or only some members need validating, each is validated
        alone, so that only invalid ones fail.
        """
        if all(item.validated for item in batch):
            return [item.data for item in batch], None
        validate = self.validate
        assert validate is not None  # submit() refuses unvalidated rows without it
        if len(batch) > 1 and not any(item.validated for item in batch):
            try:
                merged = validate([row for item in batch for row in item.data])
            except Exception:
                pass  # some member is invalid: find which, one by one below
            else:
                inputs: list[_Input] = []
                start = 0
                for item in batch:
                    inputs.append(merged[start : start + item.rows])
                    start += item.rows
                return inputs, merged
        return [
            item.data if item.validated else _validated(validate, item.data) for item in batch
        ], None

    def _call(self, data: _Input) -> _Outcome:
        if isinstance(data, Exception):
            return data
        try:
            return self.predict(data)
        except Exception as exc:
            return exc


def _validated(validate: Callable[[Any], ModelInput], data: Any) -> _Input:
    try:
        return validate(data)
    except Exception as exc:  # the request's own error, delivered to it alone
        return exc


def _called_now(
    loop: asyncio.AbstractEventLoop, call: Callable[..., _R], *args: Any
) -> asyncio.Future[_R]:
    """Run ``call(*args)`` on the loop now: a finished future, as an executor's would be."""
    future: asyncio.Future[_R] = loop.create_future()
    try:
        future.set_result(call(*args))
    except Exception as exc:  # delivered to the awaiting requests, as from a thread
        future.set_exception(exc)
    return future


def merge(parts: Sequence[ModelInput]) -> ModelInput | None:
    """Concatenate validated batches, or return ``None`` when they cannot be merged exactly.

    Args:
        parts: DataFrames (table signatures) or 2-D arrays (tensor signatures, and table
            signatures validated as arrays) from the same signature.
    """
    first = parts[0]
    if isinstance(first, np.ndarray):
        if not all(isinstance(p, np.ndarray) and p.dtype == first.dtype for p in parts):
            return None
        return np.concatenate(parts)
    dtypes = first.dtypes
    if not all(isinstance(p, pd.DataFrame) and p.dtypes.equals(dtypes) for p in parts):
        return None
    merged: pd.DataFrame = pd.concat(parts, ignore_index=True)  # type: ignore[arg-type]
    return merged


def split(prediction: Prediction, sizes: Sequence[int]) -> list[Prediction | Exception]:
    """Cut a merged prediction back into one prediction per request, in order."""
    pieces: list[Prediction | Exception] = []
    start = 0
    probabilities = prediction.probabilities
    for size in sizes:
        end = start + size
        pieces.append(
            Prediction(
                predictions=prediction.predictions[start:end],
                probabilities=None if probabilities is None else probabilities[start:end],
                classes=prediction.classes,
            )
        )
        start = end
    return pieces
