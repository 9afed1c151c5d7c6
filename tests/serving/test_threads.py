"""The daemon thread pool that runs model calls."""

from __future__ import annotations

import threading

import pytest

from ferryman.serving._threads import DaemonThreadExecutor

WAIT = 10.0


def test_calls_run_on_daemon_threads_and_return_their_result() -> None:
    executor = DaemonThreadExecutor(max_workers=2)

    future = executor.submit(lambda: threading.current_thread().daemon)

    assert future.result(WAIT) is True
    executor.shutdown()


def test_exceptions_reach_the_caller() -> None:
    executor = DaemonThreadExecutor(max_workers=1)

    future = executor.submit(lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        future.result(WAIT)
    executor.shutdown()


def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    executor = DaemonThreadExecutor(max_workers=1)
    gate, ran = threading.Event(), threading.Event()
    blocker = executor.submit(gate.wait, WAIT)

    queued = executor.submit(ran.set)
    assert queued.cancel()
    gate.set()
    blocker.result(WAIT)
    executor.shutdown()

    assert not ran.is_set()


def test_at_most_max_workers_calls_run_at_once() -> None:
    executor = DaemonThreadExecutor(max_workers=2)
    gate = threading.Event()
    running: list[int] = []
    lock = threading.Lock()
    peak: list[int] = []

    def work() -> None:
        with lock:
            running.append(1)
            peak.append(len(running))
        gate.wait(WAIT)
        with lock:
            running.pop()

    futures = [executor.submit(work) for _ in range(6)]
    gate.set()
    for future in futures:
        future.result(WAIT)
    executor.shutdown()

    assert max(peak) <= 2


def test_no_calls_are_taken_after_shutdown() -> None:
    executor = DaemonThreadExecutor(max_workers=1, name="ferryman-test")
    executor.shutdown()

    with pytest.raises(RuntimeError, match="after ferryman-test shut down"):
        executor.submit(print)


def test_shutdown_can_cancel_calls_that_have_not_started() -> None:
    executor = DaemonThreadExecutor(max_workers=1)
    gate = threading.Event()
    executor.submit(gate.wait, WAIT)
    queued = executor.submit(print)

    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()

    assert queued.cancelled()


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_workers must be at least 1, got 0"):
        DaemonThreadExecutor(max_workers=0)
