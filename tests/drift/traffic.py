"""Captured traffic for the online drift tests, written the way the server writes it.

A churn-like model: ``age``, ``income``, ``plan`` and ``email`` in, a binary class and its
probabilities out. The score depends on ``income`` only, so shifting ``age`` moves the
inputs and not the outputs, and shifting the score moves the outputs and not the inputs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from ferryman.capture import CaptureWriter
from ferryman.flavors.base import Prediction
from ferryman.signature import ReferenceProfile, build_profile

#: When test records are written unless a test moves the clock.
T0 = dt.datetime(2026, 3, 14, 15, 0, tzinfo=dt.UTC)
SECRET = b"drift-monitor-secret"
PLANS = ("basic", "plus", "pro")
#: The features of :func:`traffic`, in order.
FEATURES = ("age", "income", "plan", "email")


class Clock:
    """A settable wall clock (seconds since the epoch)."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: dt.datetime) -> None:
        self.now = moment.timestamp()


@dataclass(frozen=True)
class Traffic:
    """Requests' inputs and the model's answers, one row each."""

    inputs: pd.DataFrame
    prediction: Prediction


def traffic(
    rows: int,
    *,
    seed: int,
    age_shift: float = 0.0,
    score_shift: float = 0.0,
    classes: tuple[object, object] = (0, 1),
) -> Traffic:
    """Seeded traffic; ``age_shift`` moves age (in sd), ``score_shift`` the model's score."""
    rng = np.random.default_rng(seed)
    inputs = pd.DataFrame(
        {
            "age": rng.normal(40.0 + 10.0 * age_shift, 10.0, rows),
            "income": rng.normal(50.0, 5.0, rows),
            "plan": rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2]),
            "email": [f"user{i}@example.org" for i in rng.integers(0, 40, rows)],
        }
    )
    score = 1.0 / (1.0 + np.exp(-(inputs["income"].to_numpy() - 50.0) / 5.0 - score_shift))
    labels = np.asarray(classes, dtype=object)[(score > 0.5).astype(np.int64)]
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        labels = labels.astype(np.int64)
    elif all(isinstance(c, bool) for c in classes):
        labels = labels.astype(bool)
    probabilities = np.column_stack([1.0 - score, score])
    return Traffic(inputs, Prediction(labels, probabilities, list(classes)))


@cache
def reference_profile(classes: tuple[object, object] = (0, 1)) -> ReferenceProfile:
    """The training profile: 5,000 rows of unshifted traffic, with the model's answers."""
    training = traffic(5000, seed=0, classes=classes)
    return build_profile(training.inputs, predictions=training.prediction)


def capture(
    writer: CaptureWriter,
    data: Traffic,
    *,
    endpoint: str = "churn",
    version: str = "churn/1",
    role: str = "primary",
    status: int = 200,
    prefix: str = "r",
    chunk: int = 500,
) -> None:
    """Submit ``data`` as requests of ``chunk`` rows and write them."""
    answer = data.prediction
    for start in range(0, len(data.inputs), chunk):
        rows = slice(start, start + chunk)
        probabilities = None if answer.probabilities is None else answer.probabilities[rows]
        writer.submit(
            f"{prefix}-{start}",
            endpoint,
            version,
            role,
            data.inputs.iloc[rows].reset_index(drop=True),
            Prediction(answer.predictions[rows], probabilities, answer.classes),
            1.0,
            status,
            None,
        )
    writer.flush()
