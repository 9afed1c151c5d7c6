"""A small thread pool of daemon threads for model calls.

The standard library's ``ThreadPoolExecutor`` joins its worker threads when the
interpreter exits, so one model call that never returns (the very case an endpoint's
timeout exists for) would keep a server process from exiting after SIGTERM. Threads
here are daemons: the process exits once its own work is done, whatever a model does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


class DaemonThreadExecutor(Executor):
    """Run submitted calls on up to ``max_workers`` daemon threads, started on demand.

    Args:
        max_workers: Most calls running at once.
        name: Thread name prefix, shown in stack dumps and profilers.
    """

    def __init__(self, *, max_workers: int, name: str = "ferryman-model") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._shutdown = False

    def __repr__(self) -> str:
        return f"DaemonThreadExecutor(max_workers={self.max_workers}, name={self.name!r})"

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)``; the future can be cancelled until it starts.

        Raises:
            RuntimeError: The executor was shut down.
        """
        future: Future[_T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"cannot schedule new calls after {self.name} shut down")
            self._work.put((future, lambda: fn(*args, **kwargs)))
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; let queued calls run (or cancel them) and stop the threads.

        Args:
            wait: Wait for the running calls to finish.
            cancel_futures: Cancel calls that have not started.
        """
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._work.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:  # delivered to the awaiting request
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, call, item
            with self._lock:
                self._idle += 1
