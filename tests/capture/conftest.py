"""Shared fixtures for the prediction log: a root under tmp_path, a fixed clock, factories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ferryman.capture import CaptureWriter, LogStore
from ferryman.flavors.base import Prediction

#: The time every test record is stamped with unless a test moves the clock.
T0 = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
SECRET = b"test-secret-key"


class Clock:
    """A settable wall clock (seconds since the epoch)."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The log's root, under a FERRYMAN_HOME of its own."""
    return tmp_path / "home" / "logs"


@pytest.fixture
def make_writer(root: Path, clock: Clock) -> Iterator[Callable[..., CaptureWriter]]:
    """Writers on ``root`` (not started), stopped after the test."""
    made: list[CaptureWriter] = []

    def make(**options: Any) -> CaptureWriter:
        values: dict[str, Any] = {"root": root, "secret": SECRET, "clock": clock}
        values.update(options)
        writer = CaptureWriter(**values)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.stop()


@pytest.fixture
def store(root: Path, clock: Clock) -> LogStore:
    return LogStore(root=root, secret=SECRET, clock=clock)


def frame(**columns: list[Any]) -> pd.DataFrame:
    """A validated-input DataFrame."""
    return pd.DataFrame(columns)


def classified(
    labels: list[Any], probabilities: list[list[float]], classes: list[Any]
) -> Prediction:
    """A classifier's output with probabilities."""
    return Prediction(np.asarray(labels), np.asarray(probabilities, dtype=np.float64), classes)


def regressed(values: list[float]) -> Prediction:
    """A regressor's output."""
    return Prediction(np.asarray(values, dtype=np.float64))


def submit_one(
    writer: CaptureWriter,
    request_id: str,
    *,
    endpoint: str = "churn",
    version: str = "churn/1",
    role: str = "primary",
    age: float = 30.0,
    label: Any = 1,
    proba: float = 0.9,
    status: int = 200,
    passthrough: dict[str, list[Any]] | None = None,
) -> None:
    """One successful one-row binary classification."""
    writer.submit(
        request_id,
        endpoint,
        version,
        role,
        frame(age=[age], plan=["basic"]),
        classified([label], [[1 - proba, proba]], [0, 1]),
        1.25,
        status,
        None,
        passthrough or {},
    )
