"""Captured records for the diff report's tests, written the way the server writes them.

For every live request the server captures the stable version's answer as ``primary``
records and, during a shadow rollout, the candidate's answer to the same request as
``shadow`` records with the same request id and rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferryman.capture import CaptureWriter, EndpointCapture, LogStore, PrivacyPolicy
from ferryman.flavors.base import Prediction

#: When every test record is written unless a test moves the clock.
T0 = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
SECRET = b"diff-test-secret"
HOUR = dt.timedelta(hours=1)


class Clock:
    """A settable wall clock (seconds since the epoch)."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Ticks:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@dataclass(frozen=True)
class Capture:
    """The writer (never started: tests flush it) and the store of one log root."""

    writer: CaptureWriter
    store: LogStore


def open_log(root: Path, clock: Clock, privacy: dict[str, str] | None = None) -> Capture:
    """A writer and a store on ``root``; ``privacy`` is endpoint ``churn``'s policy."""
    writer = CaptureWriter(root=root, secret=SECRET, clock=clock)
    if privacy:
        writer.configure("churn", EndpointCapture(privacy=PrivacyPolicy.from_mapping(privacy)))
    return Capture(writer, LogStore(root=root, secret=SECRET, clock=clock))


def classified(labels: Sequence[Any], positive: Sequence[float]) -> Prediction:
    """A binary classifier's answer: labels and P(1), classes 0 and 1."""
    p = np.asarray(positive, dtype=np.float64)
    return Prediction(np.asarray(labels), np.column_stack([1 - p, p]), [0, 1])


def regressed(values: Sequence[float]) -> Prediction:
    """A regressor's answer."""
    return Prediction(np.asarray(values, dtype=np.float64))


def submit(
    writer: CaptureWriter,
    request_id: str,
    role: str,
    version: str,
    prediction: Prediction | None,
    *,
    inputs: Mapping[str, Any] | None = None,
    latency_ms: float = 1.0,
    status: int = 200,
    error: str | None = None,
    endpoint: str = "churn",
) -> None:
    """One request's records (one per row of ``inputs``)."""
    frame = pd.DataFrame(inputs if inputs is not None else {"age": [30.0]})
    writer.submit(request_id, endpoint, version, role, frame, prediction, latency_ms, status, error)
