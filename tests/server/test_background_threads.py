"""A server lowers the CPU priority of its bookkeeping threads, not of its event loop."""

from __future__ import annotations

import gc
import os
import sys
import threading

import pytest

from ferryman._background import background_niceness, set_background_niceness
from tests.server.conftest import ServeApp

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's"),
]


async def test_a_server_lowers_its_bookkeeping_threads_not_its_event_loop(
    serve_app: ServeApp,
) -> None:
    before = background_niceness()
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    wanted = min(19, main + 6)
    try:
        async with serve_app(background_niceness=wanted):
            by_name = {thread.name: thread for thread in threading.enumerate()}
            for name in ("ferryman-capture", "ferryman-metric-flusher", "ferryman-alerts"):
                native = by_name[name].native_id
                assert native is not None
                assert os.getpriority(os.PRIO_PROCESS, native) == wanted, name
            assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main
    finally:
        set_background_niceness(before)


async def test_a_server_shortens_the_gil_switch_interval_while_it_runs(
    serve_app: ServeApp,
) -> None:
    before = sys.getswitchinterval()
    async with serve_app(gil_switch_interval_ms=0.25):
        assert sys.getswitchinterval() == pytest.approx(0.00025)
    assert sys.getswitchinterval() == before


async def test_a_server_collects_young_garbage_less_often_while_it_runs(
    serve_app: ServeApp,
) -> None:
    before = gc.get_threshold()
    async with serve_app(gc_young_threshold=4_321):
        assert gc.get_threshold() == (4_321, *before[1:])
    assert gc.get_threshold() == before
