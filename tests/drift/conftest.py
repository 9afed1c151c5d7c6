"""Shared fixtures of the drift tests: seeded synthetic datasets and their profiles."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest

from ferryman.signature import ReferenceProfile, build_profile
from tests.drift.synthetic import DriftDataset, make_drift_dataset


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
