"""How a serving process keeps its own bookkeeping out of its requests' way.

Three settings: the CPU priority of its bookkeeping threads, below the threads that answer
requests; the GIL switch interval; and the garbage collector's young generation.

A serving process answers requests on its event loop (and model threads) and keeps its
books on background threads: the prediction log's writer and maintenance, the request
metrics' flusher, the alert engine and its webhooks, the drift monitor's scheduler. Much
of their work runs outside the GIL (Parquet encoding, SQLite and PostgreSQL calls, large
NumPy operations), so on a busy core the kernel shares the CPU between them and the event
loop at equal priority, and a request that arrives while one of them runs waits for its
time slice. Measured on the serving benchmark's micro-batched endpoint at a steady
1,600 requests/s on one core, three interleaved runs each: p99 latency 11-15 ms with
these threads at the default priority, 6.5-7 ms at niceness 10.

``ferryman serve`` therefore lowers each such thread to ``background_niceness`` (setting
``FERRYMAN_BACKGROUND_NICENESS``, default 10; 0 leaves them alone) as the thread starts.
Niceness 10 keeps about a tenth of a contended core for them, more than they need at the
benchmark's highest rates, and all of any idle time. Only Linux has per-thread niceness;
elsewhere this does nothing. A thread can lower its own priority but never raise it back
without privileges, so only dedicated threads call :func:`lower_this_thread`.

Their work *inside* the GIL is the other half: a thread running Python code keeps the
GIL until another has waited Python's switch interval for it (5 ms by default), so a
request that arrives while the capture writer converts records waits up to that long.
The server sets the interval to ``gil_switch_interval_ms`` (default 1 ms) while it runs
(:func:`switch_interval`). Same benchmark endpoint, 1,600 requests/s, four interleaved
15 s runs each: p99 5.0-5.7 ms at 5 ms, 3.6-4.6 ms at 1 ms, 3.4-4.2 ms at 0.5 ms;
closed-loop throughput within noise of each other at all three.

The cyclic garbage collector is the third: every request allocates a few hundred
containers (scope dicts, tasks, futures, frames), and Python runs a young-generation
collection every 700 allocations of them. With 64 requests in flight, each collection
walks their live objects and promotes the survivors, whose older-generation
collections then walk them again. The server raises that threshold to
``gc_young_threshold`` (default 10,000) while it runs (:func:`young_generation`): the
requests' objects are then mostly freed by reference counting before a collection sees
them. Measured on the serving benchmark's micro-batched endpoint, 64 concurrent one-row
requests driven in process under ``callgrind`` (instructions of the event loop's
thread, which are repeatable): 244,600 per request at 700, 230,200 at 5,000, 226,300
at 20,000 and 229,900 at 50,000, about 6-7 % fewer from 5,000 on (the default lies
within that range). Cyclic garbage waits at most that many allocations longer for its
collection.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

_niceness = 0


def set_background_niceness(niceness: int) -> None:
    """Set the niceness background threads take when they start (0: leave them alone).

    Raises:
        ValueError: ``niceness`` is not between 0 and 19.
    """
    if not 0 <= niceness <= 19:
        raise ValueError(f"background niceness must be between 0 and 19, got {niceness}")
    global _niceness
    _niceness = niceness


def background_niceness() -> int:
    """The niceness background threads take when they start."""
    return _niceness


def lower_this_thread() -> None:
    """Lower the calling thread to the background niceness (never raises its priority)."""
    if _niceness <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        # On Linux the nice value is per thread: PRIO_PROCESS with a thread id.
        if os.getpriority(os.PRIO_PROCESS, thread) < _niceness:
            os.setpriority(os.PRIO_PROCESS, thread, _niceness)
    except OSError as exc:  # a sandbox that forbids it: run at the default priority
        logger.debug("could not lower thread %s to niceness %s: %s", thread, _niceness, exc)


@contextmanager
def switch_interval(milliseconds: float) -> Iterator[None]:
    """Set Python's GIL switch interval for the block; restore the previous one after.

    Raises:
        ValueError: ``milliseconds`` is not positive.
    """
    if not milliseconds > 0:
        raise ValueError(f"the switch interval must be positive, got {milliseconds} ms")
    previous = sys.getswitchinterval()
    sys.setswitchinterval(milliseconds / 1000.0)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextmanager
def young_generation(threshold: int) -> Iterator[None]:
    """Collect the youngest garbage generation every ``threshold`` allocations in the block.

    The older generations keep their thresholds; all three are restored after the block.

    Raises:
        ValueError: ``threshold`` is below 1.
    """
    if threshold < 1:
        raise ValueError(f"the young generation's threshold must be at least 1, got {threshold}")
    previous = gc.get_threshold()
    gc.set_threshold(threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


__all__ = [
    "background_niceness",
    "lower_this_thread",
    "set_background_niceness",
    "switch_interval",
    "young_generation",
]
