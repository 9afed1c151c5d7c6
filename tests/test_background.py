"""Bookkeeping threads lower their own CPU priority; the server's process settings restore."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterator

import pytest

from ferryman._background import (
    background_niceness,
    lower_this_thread,
    set_background_niceness,
    switch_interval,
    young_generation,
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = background_niceness()
    yield
    set_background_niceness(before)


def _niceness_seen_by_a_thread() -> tuple[int, int]:
    """Start a thread that calls ``lower_this_thread``; its niceness before and after."""
    seen: list[int] = []

    def work() -> None:
        tid = threading.get_native_id()
        seen.append(os.getpriority(os.PRIO_PROCESS, tid))
        lower_this_thread()
        seen.append(os.getpriority(os.PRIO_PROCESS, tid))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return seen[0], seen[1]


@linux_only
def test_a_background_thread_lowers_only_itself() -> None:
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    set_background_niceness(min(19, main + 7))
    before, after = _niceness_seen_by_a_thread()
    assert before == main
    assert after == min(19, main + 7)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


@linux_only
def test_zero_leaves_threads_alone_and_priority_is_never_raised() -> None:
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    set_background_niceness(0)
    assert _niceness_seen_by_a_thread() == (main, main)
    if main < 19:
        set_background_niceness(main + 1)

        def lowered_then_asked_for_less() -> None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            lower_this_thread()
            assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 19

        thread = threading.Thread(target=lowered_then_asked_for_less)
        thread.start()
        thread.join()


@linux_only
def test_a_refusal_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError("not here")

    monkeypatch.setattr(os, "setpriority", refuse)
    set_background_niceness(19)
    lower_this_thread()  # logs, runs on at the default priority


@pytest.mark.parametrize("value", [-1, 20])
def test_niceness_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 19"):
        set_background_niceness(value)


def test_the_switch_interval_is_restored_and_must_be_positive() -> None:
    before = sys.getswitchinterval()
    with switch_interval(2.0):
        assert sys.getswitchinterval() == pytest.approx(0.002)
    assert sys.getswitchinterval() == before
    with pytest.raises(ValueError, match="positive"), switch_interval(0.0):
        pass
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("value", [0, -1, 101])
def test_a_switch_interval_setting_out_of_range_is_refused_by_name(value: float) -> None:
    from pydantic import ValidationError

    from ferryman.config import Settings

    with pytest.raises(ValidationError, match="gil_switch_interval_ms"):
        Settings(gil_switch_interval_ms=value)


def test_the_young_generation_threshold_is_set_then_restored() -> None:
    before = gc.get_threshold()
    with young_generation(12_345):
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before
    with pytest.raises(ValueError, match="at least 1"), young_generation(0):
        pass
    assert gc.get_threshold() == before


@pytest.mark.parametrize("value", [0, 10_000_001])
def test_a_young_generation_setting_out_of_range_is_refused_by_name(value: int) -> None:
    from pydantic import ValidationError

    from ferryman.config import Settings

    with pytest.raises(ValidationError, match="gc_young_threshold"):
        Settings(gc_young_threshold=value)


def test_the_young_generation_threshold_is_restored_when_the_block_raises() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="boom"), young_generation(54_321):
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
