"""Micro-batching and the direct runner, with a fake model and an injected clock.

The fake model can hold its first call until the test releases it, so "a batch is
running" is a fact the test controls; no test measures time by sleeping.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ferryman.errors import PredictionError, SchemaValidationError
from ferryman.flavors import Prediction
from ferryman.flavors.base import ModelInput
from ferryman.serving import DirectRunner, MicroBatcher, TimedPrediction
from ferryman.serving._threads import DaemonThreadExecutor

pytestmark = pytest.mark.anyio

WAIT = 10.0  # seconds: a bound on every await, never a timing assertion


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    """Doubles ``x``; raises for negative ``x``; records each call's size.

    Args:
        clock: Advanced by ``compute_seconds`` during each call.
        compute_seconds: Simulated compute time per call.
        hold_first: Block the first call until :meth:`release`.
    """

    def __init__(
        self, clock: ManualClock, *, compute_seconds: float = 0.005, hold_first: bool = False
    ) -> None:
        self.clock = clock
        self.compute_seconds = compute_seconds
        self.calls: list[int] = []
        self.started = threading.Event()
        self._gate = threading.Event()
        self._hold_first = hold_first

    def release(self) -> None:
        self._gate.set()

    def predict(self, data: ModelInput) -> Prediction:
        assert isinstance(data, pd.DataFrame)
        self.calls.append(len(data))
        self.started.set()
        if self._hold_first and len(self.calls) == 1 and not self._gate.wait(WAIT):
            raise AssertionError("the test never released the model")
        self.clock.now += self.compute_seconds
        x = data["x"].to_numpy()
        if (x < 0).any():
            raise PredictionError("negative x")
        probabilities = np.column_stack([1 / (1 + x), x / (1 + x)])
        return Prediction(predictions=x * 2, probabilities=probabilities, classes=[0, 1])


def rows(*values: float) -> pd.DataFrame:
    return pd.DataFrame({"x": np.array(values, dtype=np.float64)})


@pytest.fixture
def executor() -> Iterator[DaemonThreadExecutor]:
    pool = DaemonThreadExecutor(max_workers=2, name="test-model")
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def batcher(
    model: FakeModel,
    executor: DaemonThreadExecutor,
    clock: ManualClock,
    *,
    max_batch_size: int = 64,
    max_latency_ms: float = 60_000.0,
    max_concurrency: int = 1,
    initial_compute_ms: float | None = None,
    inline_ms: float = 0.0,
    **options: Any,
) -> MicroBatcher:
    return MicroBatcher(
        predict=model.predict,
        executor=executor,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        max_concurrency=max_concurrency,
        initial_compute_ms=initial_compute_ms,
        clock=clock,
        inline_ms=inline_ms,
        cpu_clock=clock,
        **options,
    )


async def wait_started(model: FakeModel) -> None:
    assert await asyncio.to_thread(model.started.wait, WAIT)


async def gather(*futures: asyncio.Future[TimedPrediction]) -> list[TimedPrediction]:
    return list(await asyncio.wait_for(asyncio.gather(*futures), WAIT))


async def test_an_idle_batcher_sends_a_request_straight_to_the_model(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    # A 60 s latency budget: if the batcher waited for companions, this would time out.
    model = FakeModel(clock)
    runner = batcher(model, executor, clock, max_latency_ms=60_000.0, max_concurrency=2)

    timed = await asyncio.wait_for(runner.submit(rows(1.0)), WAIT)

    assert model.calls == [1]
    assert timed.queue_ms == 0.0
    assert timed.compute_ms == pytest.approx(5.0)


async def test_requests_arriving_while_the_model_is_busy_share_one_call(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = batcher(model, executor, clock)
    first = runner.submit(rows(1.0))
    await wait_started(model)

    later = [runner.submit(rows(float(i), float(i) + 0.5)) for i in range(2, 6)]
    model.release()
    results = await gather(first, *later)

    assert model.calls == [1, 8]
    assert [r.batch_rows for r in results] == [1, 8, 8, 8, 8]
    assert [r.leads for r in results] == [True, True, False, False, False]  # one per call


async def test_merged_predictions_equal_unbatched_ones_row_for_row(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = batcher(model, executor, clock)
    inputs = [rows(0.5), rows(1.0, 2.0, 3.0), rows(4.0), rows(5.0, 6.0)]
    first = runner.submit(rows(9.0))
    await wait_started(model)

    later = [runner.submit(frame) for frame in inputs]
    model.release()
    _, *results = await gather(first, *later)

    assert model.calls == [1, 7]
    for frame, result in zip(inputs, results, strict=True):
        alone = model.predict(frame)
        np.testing.assert_array_equal(result.prediction.predictions, alone.predictions)
        assert result.prediction.probabilities is not None
        np.testing.assert_array_equal(result.prediction.probabilities, alone.probabilities)
        assert result.prediction.classes == [0, 1]


async def test_only_the_culprit_fails_when_a_merged_call_raises(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = batcher(model, executor, clock)
    first = runner.submit(rows(1.0))
    await wait_started(model)

    good, bad, also_good = (runner.submit(rows(x)) for x in (2.0, -1.0, 3.0))
    model.release()
    await gather(first)
    done = await asyncio.wait_for(
        asyncio.gather(good, bad, also_good, return_exceptions=True), WAIT
    )

    assert model.calls == [1, 3, 1, 1, 1]  # the merged call, then each member alone
    assert isinstance(done[1], PredictionError)
    assert [r.prediction.predictions.tolist() for r in (done[0], done[2])] == [[4.0], [6.0]]  # type: ignore[union-attr]
    assert [r.leads for r in (done[0], done[2])] == [True, False]  # type: ignore[union-attr]


async def test_a_batch_holds_at_most_max_batch_size_rows(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = batcher(model, executor, clock, max_batch_size=4)
    first = runner.submit(rows(1.0))
    await wait_started(model)

    later = [runner.submit(rows(1.0, 2.0)) for _ in range(5)]
    model.release()
    await gather(first, *later)

    assert model.calls == [1, 4, 4, 2]


async def test_a_request_larger_than_max_batch_size_runs_alone_and_whole(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock)
    runner = batcher(model, executor, clock, max_batch_size=4)

    timed = await asyncio.wait_for(runner.submit(rows(*range(10))), WAIT)

    assert model.calls == [10]
    assert len(timed.prediction) == 10


async def test_a_request_cancelled_while_queued_is_never_computed(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = batcher(model, executor, clock)
    first = runner.submit(rows(1.0))
    await wait_started(model)

    abandoned = runner.submit(rows(2.0, 2.0, 2.0))
    kept = runner.submit(rows(3.0))
    abandoned.cancel()
    model.release()
    await gather(first, kept)

    assert model.calls == [1, 1]


async def test_queue_time_counts_from_submission_to_the_start_of_the_call(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True, compute_seconds=0.007)
    runner = batcher(model, executor, clock)
    first = runner.submit(rows(1.0))
    await wait_started(model)

    second = runner.submit(rows(2.0))
    model.release()
    one, two = await gather(first, second)

    assert (one.queue_ms, one.compute_ms) == pytest.approx((0.0, 7.0))
    assert (two.queue_ms, two.compute_ms) == pytest.approx((7.0, 7.0))


async def test_with_a_free_slot_requests_wait_at_most_the_latency_budget(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    # One call is running and a second slot is free: the queued request goes after the
    # window, min(max_latency_ms, observed compute), without waiting for the first call.
    model = FakeModel(clock, hold_first=True)
    runner = batcher(model, executor, clock, max_latency_ms=1.0, max_concurrency=2)
    first = runner.submit(rows(1.0))
    await wait_started(model)

    second = runner.submit(rows(2.0))
    assert runner.window_ms == 1.0
    done, _ = await asyncio.wait({first, second}, timeout=WAIT, return_when="FIRST_COMPLETED")

    assert done == {second}
    model.release()
    await gather(first)


async def test_the_window_follows_the_observed_compute_time(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, compute_seconds=0.002)
    runner = batcher(model, executor, clock, max_latency_ms=50.0, initial_compute_ms=40.0)
    assert runner.window_ms == 40.0

    for _ in range(40):
        await asyncio.wait_for(runner.submit(rows(1.0)), WAIT)

    assert runner.window_ms == pytest.approx(2.0, abs=0.01)


async def test_the_window_never_exceeds_max_latency(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, compute_seconds=0.5)
    runner = batcher(model, executor, clock, max_latency_ms=20.0)

    await asyncio.wait_for(runner.submit(rows(1.0)), WAIT)

    assert runner.window_ms == 20.0


@pytest.mark.parametrize(
    ("parts", "mergeable"),
    [
        ([pd.DataFrame({"x": [1.0]}), pd.DataFrame({"x": [2.0]})], True),
        (
            [
                pd.DataFrame({"c": pd.Categorical(["a"], categories=["a", "b"])}),
                pd.DataFrame({"c": pd.Categorical(["z"], categories=["a", "b", "z"])}),
            ],
            False,
        ),
        ([np.ones((1, 2), np.float32), np.ones((2, 2), np.float32)], True),
        ([np.ones((1, 2), np.float32), np.ones((1, 2), np.float64)], False),
    ],
    ids=["frames", "different-categories", "arrays", "different-dtypes"],
)
def test_batches_merge_only_when_concatenation_keeps_what_the_model_sees(
    parts: list[ModelInput], mergeable: bool
) -> None:
    from ferryman.serving.batching import merge

    merged = merge(parts)

    assert (merged is not None) == mergeable
    if merged is not None:
        assert len(merged) == sum(len(part) for part in parts)


async def test_unmergeable_members_are_answered_one_by_one(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    calls: list[int] = []
    started, gate = threading.Event(), threading.Event()

    def predict(data: ModelInput) -> Prediction:
        calls.append(len(data))
        started.set()
        if len(calls) == 1:
            gate.wait(WAIT)
        return Prediction(predictions=np.zeros(len(data)))

    runner = MicroBatcher(
        predict=predict, executor=executor, max_batch_size=8, max_latency_ms=5.0, clock=clock
    )
    first = runner.submit(pd.DataFrame({"c": pd.Categorical(["a"])}))
    assert await asyncio.to_thread(started.wait, WAIT)
    second = runner.submit(pd.DataFrame({"c": pd.Categorical(["a"], categories=["a", "b"])}))
    third = runner.submit(pd.DataFrame({"c": pd.Categorical(["b"], categories=["b"])}))
    gate.set()
    results = await gather(first, second, third)

    assert calls == [1, 1, 1]
    assert [r.batch_rows for r in results] == [1, 2, 2]


async def test_the_direct_runner_calls_the_model_once_per_request(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, compute_seconds=0.003)
    runner = DirectRunner(predict=model.predict, executor=executor, clock=clock)

    results = await gather(runner.submit(rows(1.0)), runner.submit(rows(2.0, 3.0)))

    assert sorted(model.calls) == [1, 2]
    assert [r.prediction.predictions.tolist() for r in results] == [[2.0], [4.0, 6.0]]
    assert all(r.compute_ms > 0 for r in results)


async def test_the_direct_runner_passes_the_models_error_on(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    runner = DirectRunner(predict=FakeModel(clock).predict, executor=executor, clock=clock)

    with pytest.raises(PredictionError, match="negative x"):
        await asyncio.wait_for(runner.submit(rows(-1.0)), WAIT)


class ThreadRecorder(FakeModel):
    """A FakeModel that also records which thread ran each call.

    Args:
        cpu: A CPU clock advanced by ``cpu_seconds`` during each call (the clock
            advances by ``compute_seconds``: the difference is time spent waiting).
    """

    def __init__(
        self,
        clock: ManualClock,
        compute_seconds: float,
        *,
        cpu: ManualClock | None = None,
        cpu_seconds: float = 0.0,
    ) -> None:
        super().__init__(clock, compute_seconds=compute_seconds)
        self.threads: list[str] = []
        self.cpu = cpu
        self.cpu_seconds = cpu_seconds

    def predict(self, data: ModelInput) -> Prediction:
        self.threads.append(threading.current_thread().name)
        if self.cpu is not None:
            self.cpu.now += self.cpu_seconds
        return super().predict(data)


async def test_short_calls_run_inline_and_a_slow_size_moves_to_the_executor(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = ThreadRecorder(clock, compute_seconds=0.0001)  # 0.1 ms a call
    runner = DirectRunner(
        predict=model.predict, executor=executor, clock=clock, inline_ms=0.5, cpu_clock=clock
    )
    loop_thread = threading.current_thread().name

    first = runner.submit(rows(1.0))
    assert first.done() and first.result().queue_ms == 0.0  # ran on the loop, at once
    assert (await first).prediction.predictions.tolist() == [2.0]

    model.compute_seconds = 0.004  # 4 ms: eight times the budget
    slow = runner.submit(rows(1.0))
    assert slow.done()  # this size was fast until now, so it ran inline once more
    after = runner.submit(rows(1.0))
    assert not after.done()  # now it goes to a model thread
    await asyncio.wait_for(after, WAIT)

    assert model.threads[:2] == [loop_thread, loop_thread]
    assert model.threads[2] != loop_thread


async def test_a_size_whose_thread_calls_waited_but_computed_little_comes_back_inline(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    # 4 ms from start to end, of which 0.1 ms computing: the rest was waiting for the GIL.
    cpu = ManualClock()
    model = ThreadRecorder(clock, compute_seconds=0.004, cpu=cpu, cpu_seconds=0.0001)
    runner = DirectRunner(
        predict=model.predict, executor=executor, clock=clock, inline_ms=0.5, cpu_clock=cpu
    )
    big = runner.submit(rows(*range(100)))  # unseen and over INLINE_TRIAL_ROWS: a thread
    assert not big.done()
    assert (await asyncio.wait_for(big, WAIT)).compute_ms == pytest.approx(4.0)

    again = runner.submit(rows(*range(100)))

    assert again.done()  # judged by its 0.1 ms of CPU, not its 4 ms on the clock
    assert model.threads[1] == threading.current_thread().name


async def test_large_unseen_requests_and_a_zero_budget_use_the_executor(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = ThreadRecorder(clock, compute_seconds=0.0001)
    inline = DirectRunner(predict=model.predict, executor=executor, clock=clock, inline_ms=0.5)
    never = DirectRunner(predict=model.predict, executor=executor, clock=clock)

    big = inline.submit(rows(*range(100)))  # more than INLINE_TRIAL_ROWS, never timed
    small = never.submit(rows(1.0))

    assert not big.done() and not small.done()
    await asyncio.wait_for(asyncio.gather(big, small), WAIT)
    assert threading.current_thread().name not in model.threads


async def test_an_inline_call_passes_the_models_error_on(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    runner = DirectRunner(
        predict=FakeModel(clock, compute_seconds=0.0).predict,
        executor=executor,
        clock=clock,
        inline_ms=0.5,
    )
    failed = runner.submit(rows(-1.0))

    assert failed.done()
    with pytest.raises(PredictionError, match="negative x"):
        await failed


def inline_batcher(
    model: FakeModel, executor: DaemonThreadExecutor, clock: ManualClock, max_batch_size: int = 64
) -> MicroBatcher:
    """A batcher that runs batches averaging under 5 ms on the loop; 1 ms assumed at first."""
    return batcher(
        model,
        executor,
        clock,
        max_batch_size=max_batch_size,
        inline_ms=5.0,
        initial_compute_ms=1.0,
    )


async def test_short_batches_run_inline_with_every_request_of_the_loop_pass(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = ThreadRecorder(clock, compute_seconds=0.001)  # 1 ms a call
    runner = inline_batcher(model, executor, clock)
    loop_thread = threading.current_thread().name

    # Submitted in one pass of the loop, as requests read together from the sockets are.
    futures = [runner.submit(rows(float(i))) for i in range(5)]
    assert not any(future.done() for future in futures)  # the call waits for the pass to end
    timed = await gather(*futures)

    assert model.calls == [5]
    assert model.threads == [loop_thread]
    assert [t.prediction.predictions.tolist() for t in timed] == [[0.0], [2.0], [4.0], [6.0], [8.0]]
    assert all(t.batch_rows == 5 and t.compute_ms == pytest.approx(1.0) for t in timed)


async def test_inline_batches_keep_max_batch_size_and_serve_the_rest_next(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = ThreadRecorder(clock, compute_seconds=0.001)
    runner = inline_batcher(model, executor, clock, max_batch_size=3)

    timed = await gather(*(runner.submit(rows(float(i))) for i in range(7)))

    assert model.calls == [3, 3, 1]
    assert [t.prediction.predictions.tolist() for t in timed] == [[2.0 * i] for i in range(7)]


async def test_slow_batches_and_oversized_requests_leave_the_loop_for_the_executor(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = ThreadRecorder(clock, compute_seconds=0.001)
    runner = inline_batcher(model, executor, clock, max_batch_size=4)
    loop_thread = threading.current_thread().name

    await gather(runner.submit(rows(*range(6))))  # more than max_batch_size rows
    await gather(runner.submit(rows(1.0)))  # inline, then the model turns slow
    model.compute_seconds = 0.1
    await gather(runner.submit(rows(1.0)))  # inline: 1 ms was the average so far
    await gather(runner.submit(rows(1.0)))  # the average is over 5 ms now

    assert model.threads[0] != loop_thread
    assert model.threads[1:3] == [loop_thread, loop_thread]
    assert model.threads[3] != loop_thread


async def test_batches_that_waited_on_a_thread_but_computed_little_return_to_the_loop(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    # 10 ms from start to end, of which 0.1 ms computing: the rest was waiting for the GIL.
    cpu = ManualClock()
    model = ThreadRecorder(clock, compute_seconds=0.01, cpu=cpu, cpu_seconds=0.0001)
    runner = MicroBatcher(
        predict=model.predict,
        executor=executor,
        max_batch_size=64,
        max_latency_ms=60_000.0,
        initial_compute_ms=10.0,
        clock=clock,
        inline_ms=5.0,
        cpu_clock=cpu,
    )
    for _ in range(5):
        await gather(runner.submit(rows(1.0)))

    # The CPU average: 10 ms assumed, then 8.0, 6.4, 5.2 and 4.2 ms after each call.
    loop_thread = threading.current_thread().name
    assert loop_thread not in model.threads[:4] and model.threads[4] == loop_thread
    assert runner.window_ms > 5.0  # the wait for companions still follows the clock


async def test_only_the_culprit_fails_in_an_inline_batch(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    runner = inline_batcher(FakeModel(clock, compute_seconds=0.0), executor, clock)

    good, bad = runner.submit(rows(1.0)), runner.submit(rows(-1.0))
    done = await asyncio.wait_for(asyncio.gather(good, bad, return_exceptions=True), WAIT)

    assert isinstance(done[0], TimedPrediction) and done[0].prediction.predictions.tolist() == [2.0]
    assert isinstance(done[1], PredictionError)


class Late(Exception):
    """The timeout error of the batchers below."""


def timed_batcher(
    model: FakeModel, executor: DaemonThreadExecutor, clock: ManualClock
) -> MicroBatcher:
    # The timer waits 50 ms of real time, then reads the manual clock: a request fails
    # only once the test has moved the clock past its deadline.
    return batcher(model, executor, clock, max_latency_ms=1.0, timeout_ms=50.0, timeout_error=Late)


async def test_requests_past_the_timeout_fail_and_queued_ones_are_never_computed(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = timed_batcher(model, executor, clock)
    running = runner.submit(rows(1.0))
    await wait_started(model)
    queued = runner.submit(rows(2.0))

    clock.now += 1.0
    for future in (running, queued):
        with pytest.raises(Late):
            await asyncio.wait_for(future, WAIT)
    model.release()
    later = await asyncio.wait_for(runner.submit(rows(3.0)), WAIT)

    assert later.prediction.predictions.tolist() == [6.0]
    assert model.calls == [1, 1]  # the running call finished unobserved; `queued` never ran


async def test_a_request_fails_at_its_own_deadline_not_an_older_ones(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model = FakeModel(clock, hold_first=True)
    runner = timed_batcher(model, executor, clock)
    old = runner.submit(rows(1.0))
    await wait_started(model)
    clock.now += 1.0
    young = runner.submit(rows(2.0))  # submitted after the clock moved: not expired

    with pytest.raises(Late):
        await asyncio.wait_for(old, WAIT)
    model.release()
    answered = await asyncio.wait_for(young, WAIT)
    clock.now += 1.0  # an answered request stays answered
    await asyncio.sleep(0.2)

    assert answered.prediction.predictions.tolist() == [4.0]
    assert young.result() is answered


class ArrayModel(FakeModel):
    """:class:`FakeModel` on the (rows, 1) arrays :class:`RowValidator` makes."""

    def predict(self, data: ModelInput) -> Prediction:
        assert isinstance(data, np.ndarray)
        return super().predict(pd.DataFrame({"x": data[:, 0]}))


class RowValidator:
    """Records ``{"x": float}`` to a (rows, 1) float array; counts its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, records: list[dict[str, object]]) -> np.ndarray:
        self.calls.append(len(records))
        for row, record in enumerate(records):
            if not isinstance(record["x"], float):
                raise SchemaValidationError(f"column 'x', row {row}: expected a float", row=row)
        return np.array([[record["x"]] for record in records])


def records(*values: object) -> list[dict[str, object]]:
    return [{"x": value} for value in values]


def validating_batcher(
    model: FakeModel, executor: DaemonThreadExecutor, clock: ManualClock, validate: RowValidator
) -> MicroBatcher:
    return batcher(model, executor, clock, validate=validate)


async def test_unvalidated_requests_are_validated_together_with_their_batch(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model, validate = ArrayModel(clock, hold_first=True), RowValidator()
    runner = validating_batcher(model, executor, clock, validate)
    first = runner.submit(records(1.0), validated=False)
    await wait_started(model)
    waiting = [runner.submit(records(*xs), validated=False) for xs in ([2.0, 3.0], [4.0], [5.0])]
    model.release()
    answers = await gather(first, *waiting)

    assert validate.calls == [1, 4]  # the first alone, then the other three in one call
    assert model.calls == [1, 4]
    assert [a.prediction.predictions.tolist() for a in answers] == [
        [2.0],
        [4.0, 6.0],
        [8.0],
        [10.0],
    ]
    assert [a.inputs.tolist() for a in answers] == [[[1.0]], [[2.0], [3.0]], [[4.0]], [[5.0]]]


async def test_an_invalid_request_fails_alone_with_its_own_rows_error(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model, validate = ArrayModel(clock, hold_first=True), RowValidator()
    runner = validating_batcher(model, executor, clock, validate)
    first = runner.submit(records(1.0), validated=False)
    await wait_started(model)
    good = runner.submit(records(2.0), validated=False)
    bad = runner.submit(records(3.0, "four"), validated=False)
    also_good = runner.submit(records(5.0), validated=False)
    model.release()
    answers = await gather(first, good, also_good)
    with pytest.raises(SchemaValidationError, match="row 1"):  # its own row, not the batch's
        await asyncio.wait_for(bad, WAIT)

    assert [a.prediction.predictions.tolist() for a in answers] == [[2.0], [4.0], [10.0]]
    assert model.calls == [1, 2]  # the valid two merged; the invalid one never computed
    assert validate.calls == [1, 4, 1, 2, 1]  # together, then one by one


async def test_validated_and_unvalidated_requests_share_a_call(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    model, validate = ArrayModel(clock, hold_first=True), RowValidator()
    runner = validating_batcher(model, executor, clock, validate)
    first = runner.submit(np.array([[1.0]]))
    await wait_started(model)
    raw = runner.submit(records(2.0), validated=False)
    ready = runner.submit(np.array([[3.0], [4.0]]))
    model.release()
    answers = await gather(first, raw, ready)

    assert [a.prediction.predictions.tolist() for a in answers] == [[2.0], [4.0], [6.0, 8.0]]
    assert model.calls == [1, 3]
    assert validate.calls == [1]


async def test_unvalidated_rows_need_a_validator(
    executor: DaemonThreadExecutor, clock: ManualClock
) -> None:
    runner = batcher(FakeModel(clock), executor, clock)
    with pytest.raises(ValueError, match="validate function"):
        runner.submit(records(1.0), validated=False)


@pytest.mark.parametrize("data", [[], np.array([[1.0]])], ids=["empty", "array"])
async def test_unvalidated_rows_must_be_a_non_empty_list(
    executor: DaemonThreadExecutor, clock: ManualClock, data: object
) -> None:
    runner = validating_batcher(ArrayModel(clock), executor, clock, RowValidator())
    with pytest.raises(ValueError, match="non-empty list"):
        runner.submit(data, validated=False)


@pytest.mark.parametrize(
    ("max_batch_size", "max_concurrency", "message"),
    [(0, 1, "max_batch_size must be at least 1"), (2, 0, "max_concurrency must be at least 1")],
)
def test_bad_batcher_settings_are_refused(
    executor: DaemonThreadExecutor, max_batch_size: int, max_concurrency: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MicroBatcher(
            predict=FakeModel(ManualClock()).predict,
            executor=executor,
            max_batch_size=max_batch_size,
            max_latency_ms=1.0,
            max_concurrency=max_concurrency,
        )
