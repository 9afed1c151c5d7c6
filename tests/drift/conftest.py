"""Shared fixtures of the drift tests: seeded synthetic datasets and their profiles, and a
prediction log (writer, store, settable clock) with drift gauges for the online tests."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from ferryman.capture import CaptureWriter, LogStore
from ferryman.drift.monitor import DriftMetrics
from ferryman.signature import ReferenceProfile, build_profile
from tests.drift.synthetic import DriftDataset, make_drift_dataset
from tests.drift.traffic import SECRET, Clock


@cache
def dataset(rows: int) -> DriftDataset:
    """The synthetic dataset of ``rows`` rows (made once per process)."""
    return make_drift_dataset(rows, seed=0)


@cache
def profile(rows: int) -> ReferenceProfile:
    """The stored profile of the synthetic reference, round-tripped through its dict."""
    return ReferenceProfile.from_dict(build_profile(dataset(rows).reference).to_dict())


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, fresh for each test."""
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True, scope="session")
def _one_openmp_thread() -> Iterator[None]:
    """Isolation: two test workers on two cores must not each spin two OpenMP threads.

    scikit-learn's gradient boosting (the domain classifier) busy-waits in OpenMP;
    oversubscribed, a one-second fit takes thirty.
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture
def clock() -> Clock:
    """The settable clock of the log's writer and store, at ``T0``."""
    return Clock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def writer(root: Path, clock: Clock) -> CaptureWriter:
    return CaptureWriter(root=root, secret=SECRET, clock=clock)


@pytest.fixture
def store(root: Path, clock: Clock) -> LogStore:
    return LogStore(root=root, secret=SECRET, clock=clock)


@pytest.fixture
def gauges() -> tuple[CollectorRegistry, DriftMetrics]:
    registry = CollectorRegistry()
    return registry, DriftMetrics.create(registry)
