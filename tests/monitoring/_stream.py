"""A known stream of serving observations, played into two simulated server processes.

The ``churn`` model was trained on 100 rows: ``age`` (Int64, 20..69, one missing),
``income`` (float, 1000..99000, one missing), ``plan`` (``basic``/``pro``, one missing),
with positive-class scores 0.005, 0.015, ..., 0.995, so its reference profile's decile
cells each hold 10 training rows. ``churn/1`` serves as primary, ``churn/2`` as shadow
(same signature and profile). ``price`` is a regressor served without a binding.

Bucket 1 (``T0``..``T0+10``), process A:

- a1: ``churn/1`` primary, 200 in 2 ms, rows ``(30, 5000, basic)`` and
  ``(95, missing, gold)``: classes 0, 1, scores 0.2, 0.7;
- a2: 500 in 10 ms; a3: 504 in 1000 ms; a4: 404 in 0.5 ms (no rows);
- a5: rejected by the signature on ``age``, 1 ms;
- p1: ``price/1`` primary, 200 in 3 ms, predictions 1.0, NaN, 3.0.

Bucket 1, process B:

- b1: ``churn/1`` primary, 200 in 4 ms, row ``(missing, 2e6, pro)``: class 1, score 0.9;
- b2: ``churn/2`` shadow, 200 in 3 ms, a1's rows: classes 0, 0, scores 0.3, 0.4;
- b3: the comparison of b2 with a1: one of two rows agrees, diffs 0.1 and 0.3.

Bucket 2 (``T0+10``..``T0+20``), process A:

- a6: ``churn/1`` primary, 200 in 8 ms, row ``(40, 2000, pro)``: class 0, score 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from ferryman.flavors.base import Prediction
from ferryman.monitoring import MonitoringRecorder, WindowSelector
from ferryman.signature import ReferenceProfile, Signature, build_profile, infer_signature

#: Start of bucket 1 (a multiple of 10 s).
T0 = 1_800_000_000
START = datetime.fromtimestamp(T0, UTC)
ENDPOINT = "churn"


@dataclass
class Clock:
    """A settable clock (Unix seconds)."""

    now: float = T0 + 1.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Churn:
    """The ``churn`` model's signature and reference profile."""

    signature: Signature
    profile: ReferenceProfile


def churn_model() -> Churn:
    rows = 100
    train = pd.DataFrame(
        {
            "age": pd.array([None] + [20 + i % 50 for i in range(1, rows)], dtype="Int64"),
            "income": [np.nan] + [1000.0 * i for i in range(1, rows)],
            "plan": [None] + [("basic", "pro")[i % 2] for i in range(1, rows)],
        }
    )
    scores = 0.005 + 0.01 * np.arange(rows)
    prediction = Prediction(
        (scores > 0.5).astype(np.int64), np.column_stack([1 - scores, scores]), [0, 1]
    )
    return Churn(
        signature=infer_signature(train, predictions=prediction),
        profile=build_profile(train, predictions=prediction),
    )


def classified(labels: list[int], scores: list[float]) -> Prediction:
    positive = np.asarray(scores)
    return Prediction(
        np.asarray(labels, dtype=np.int64), np.column_stack([1 - positive, positive]), [0, 1]
    )


def bind(recorder: MonitoringRecorder, model: Churn) -> None:
    for version in ("churn/1", "churn/2"):
        recorder.bind_version(ENDPOINT, version, signature=model.signature, profile=model.profile)


def play(a: MonitoringRecorder, b: MonitoringRecorder, clock: Clock, model: Churn) -> None:
    """Play the stream: ``a`` and ``b`` are the two processes' recorders sharing ``clock``."""
    validate = model.signature.validate
    clock.now = T0 + 1.0
    a1_rows = validate(
        [
            {"age": 30, "income": 5000.0, "plan": "basic"},
            {"age": 95, "income": None, "plan": "gold"},
        ]
    )
    a1 = classified([0, 1], [0.2, 0.7])
    a.observe_prediction(ENDPOINT, "churn/1", "primary", 200, 2.0, a1_rows, a1)
    a.observe_prediction(ENDPOINT, "churn/1", "primary", 500, 10.0)
    a.observe_prediction(ENDPOINT, "churn/1", "primary", 504, 1000.0)
    a.observe_prediction(ENDPOINT, "churn/1", "primary", 404, 0.5)
    a.observe_rejected(ENDPOINT, "churn/1", "schema_violation", feature="age", latency_ms=1.0)
    a.observe_prediction(
        "price", "price/1", "primary", 200, 3.0, None, Prediction(np.array([1.0, np.nan, 3.0]))
    )
    b1_rows = validate([{"age": None, "income": 2e6, "plan": "pro"}])
    b.observe_prediction(ENDPOINT, "churn/1", "primary", 200, 4.0, b1_rows, classified([1], [0.9]))
    b2 = classified([0, 0], [0.3, 0.4])
    b.observe_prediction(ENDPOINT, "churn/2", "shadow", 200, 3.0, a1_rows, b2)
    b.observe_comparison(ENDPOINT, "churn/2", a1, b2)
    clock.now = T0 + 12.0
    a6_rows = validate([{"age": 40, "income": 2000.0, "plan": "pro"}])
    a.observe_prediction(ENDPOINT, "churn/1", "primary", 200, 8.0, a6_rows, classified([0], [0.05]))


def window(
    seconds: int = 10,
    *,
    version: str | None = None,
    role: str | None = None,
    endpoint: str = ENDPOINT,
) -> WindowSelector:
    return WindowSelector(
        endpoint=endpoint,
        since=START,
        until=START + timedelta(seconds=seconds),
        version=version,
        role=role,
    )
