"""Real concurrent processes never lose an update or duplicate a version number."""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from ferryman.config import Settings
from ferryman.registry import Registry

WORKERS = 4
PER_WORKER = 5


def _register_many(
    settings_blob: bytes, worker: int, barrier: multiprocessing.synchronize.Barrier
) -> None:
    settings = pickle.loads(settings_blob)
    model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    with Registry.from_settings(settings.model_copy(update={"user": f"w{worker}"})) as reg:
        barrier.wait(timeout=60)
        for _ in range(PER_WORKER):
            reg.register(model, name="churn")


def _move_alias(
    settings_blob: bytes, worker: int, barrier: multiprocessing.synchronize.Barrier
) -> None:
    settings = pickle.loads(settings_blob)
    with Registry.from_settings(settings.model_copy(update={"user": f"w{worker}"})) as reg:
        barrier.wait(timeout=60)
        for i in range(PER_WORKER):
            reg.set_alias("churn", "production", 1 + (worker + i) % 2)


def _run(target: object, settings: Settings) -> None:
    # fork: the workers start with Ferryman already imported (spawn re-imports it, seconds
    # per worker); each opens its own registry, so no connection crosses the fork.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WORKERS)
    blob = pickle.dumps(settings)
    procs = [ctx.Process(target=target, args=(blob, w, barrier)) for w in range(WORKERS)]  # type: ignore[arg-type]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS


@pytest.mark.slow
def test_concurrent_registrations_get_unique_consecutive_numbers(
    make_settings: object, tmp_path: Path
) -> None:
    settings = make_settings()  # type: ignore[operator]
    with Registry.from_settings(settings):
        pass  # apply migrations once, so workers race on data, not on schema
    _run(_register_many, settings)
    with Registry.from_settings(settings) as reg:
        numbers = [v.version for v in reg.list_versions("churn")]
        assert numbers == list(range(1, WORKERS * PER_WORKER + 1))
        assert reg.verify_audit().ok


@pytest.mark.slow
def test_concurrent_alias_moves_are_all_kept_in_order(make_settings: object) -> None:
    settings = make_settings()  # type: ignore[operator]
    model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    with Registry.from_settings(settings) as reg:
        reg.register(model, name="churn")
        reg.register(model, name="churn")
    _run(_move_alias, settings)
    with Registry.from_settings(settings) as reg:
        history = reg.alias_history("churn", "production")
        assert len(history) == WORKERS * PER_WORKER
        # Each move saw the previous one: no update was lost in between.
        for before, after in itertools.pairwise(history):
            assert after.previous_version == before.version
        assert reg.get_version("churn@production").version == history[-1].version
        assert reg.verify_audit().ok
