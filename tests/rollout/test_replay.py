"""Replay: captured traffic re-scored offline with a registered candidate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.config import Settings
from ferryman.errors import InvalidInputError, ModelNotFoundError
from ferryman.flavors.base import Prediction
from ferryman.registry import Registry
from ferryman.rollout.diff import ISOLATION_BUDGET, replay
from ferryman.serving import EndpointService
from tests.rollout.diff_records import HOUR, T0, Capture, Clock, Ticks, open_log, regressed
from tests.rollout.diff_records import submit as submit_records

SINCE, UNTIL = T0 - HOUR, T0 + HOUR

#: A candidate whose model raises on inputs it was not built for.
PICKY_CODE = """
import numpy as np

class Picky:
    def predict(self, frame):
        if (frame["a"] > 100).any():
            raise ValueError("a is too large for this model")
        return frame["a"].to_numpy() * 2.0
"""


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'home' / 'ferryman.db'}",
        user="alice",
    )
    with Registry.from_settings(settings) as opened:
        yield opened


@pytest.fixture
def training() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})


@pytest.fixture
def churn(registry: Registry, training: pd.DataFrame) -> str:
    """``churn/1``: a logistic regression over columns a and b."""
    y = (training["a"] + training["b"] > 0).astype(int)
    model = LogisticRegression().fit(training, y)
    return registry.register(model, name="churn", X=training, y=y).ref


def capture_served(
    capture: Capture,
    registry: Registry,
    ref: str,
    rows: pd.DataFrame,
    *,
    flip: frozenset[int] = frozenset(),
) -> None:
    """Capture each row as one request answered by ``ref`` (labels of ``flip`` rows flipped)."""
    model = registry.load(ref)
    for index in range(len(rows)):
        row = rows.iloc[[index]].reset_index(drop=True)
        answer = model.predict_batch(row)
        if index in flip:
            assert answer.probabilities is not None
            answer = Prediction(1 - answer.predictions, answer.probabilities[:, ::-1], [0, 1])
        capture.writer.submit(f"r{index}", "churn", ref, "primary", row, answer, 2.0)
    capture.writer.flush()


def test_replaying_the_served_version_agrees_completely(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    capture_served(capture, registry, churn, training.head(60))

    report = replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL)

    assert (report.source, report.kind, report.rows_compared) == ("replay", "classification", 60)
    assert report.agreement_rate == 1.0
    assert report.max_abs_diff == pytest.approx(0.0, abs=1e-12)
    assert (report.candidate.errors, report.warnings) == (0, ())
    assert all(d.agree for d in report.disagreements)


def test_replay_lists_the_rows_where_the_answers_differ_first(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    capture_served(capture, registry, churn, training.head(40), flip=frozenset({5, 31}))

    report = replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL, top=5)

    assert report.agreement_rate == pytest.approx(38 / 40)
    assert {d.request_id for d in report.disagreements[:2]} == {"r5", "r31"}
    assert not any(d.agree for d in report.disagreements[:2])
    first = report.disagreements[0]
    assert first.inputs is not None and set(first.inputs) == {"a", "b"}


def test_replay_times_the_candidate_per_request_with_the_given_clock(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    capture_served(capture, registry, churn, training.head(30))

    report = replay(
        capture.store,
        registry,
        "churn",
        churn,
        since=SINCE,
        until=UNTIL,
        latency_sample=10,
        clock=Ticks(0.004),
    )

    assert report.candidate.p50_latency_ms == pytest.approx(4.0)
    assert report.stable.p50_latency_ms == 2.0


def test_a_model_trained_on_an_array_is_replayed_from_its_logged_columns(
    tmp_path: Path, registry: Registry
) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    ref = registry.register(LogisticRegression().fit(X, y), name="churn", X=X, y=y).ref
    model = registry.load(ref)
    capture = open_log(tmp_path / "logs", Clock())
    for index in range(15):
        row = X[index : index + 1]
        answer = model.predict_batch(row)
        capture.writer.submit(f"r{index}", "churn", ref, "primary", row, answer, 1.0)
    capture.writer.flush()

    report = replay(capture.store, registry, "churn", ref, since=SINCE, until=UNTIL)

    assert (report.rows_compared, report.agreement_rate, report.candidate.errors) == (15, 1.0, 0)
    assert report.max_abs_diff == pytest.approx(0.0, abs=1e-12)


def test_rows_the_candidate_rejects_count_as_its_errors_with_the_reason(
    tmp_path: Path, registry: Registry, churn: str
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    for index, value in enumerate([0.5, np.nan, -0.2, np.nan, 1.0]):
        inputs = {"a": [value], "b": [0.3]}
        answer = regressed([0.0])
        submit_records(capture.writer, f"r{index}", "primary", churn, answer, inputs=inputs)
    capture.writer.flush()

    report = replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL)

    assert (report.candidate.errors, report.rows_compared) == (2, 3)
    assert report.candidate.error_reasons == (
        ("input rejected: column 'a': expected non-null float64", 2),
    )


def test_a_model_error_is_isolated_to_the_rows_that_caused_it(
    tmp_path: Path, registry: Registry
) -> None:
    code = tmp_path / "picky.py"
    code.write_text(PICKY_CODE)
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    ref = registry.register(
        None,
        name="churn",
        X=X,
        flavor="python",
        trusted=True,
        flavor_options={"code": str(code), "class_name": "Picky"},
    ).ref
    capture = open_log(tmp_path / "logs", Clock())
    for index in range(50):
        value = 1000.0 if index == 17 else float(index)
        answer = regressed([value * 2.0 + (0.5 if index == 40 else 0.0)])
        submit_records(capture.writer, f"r{index}", "primary", ref, answer, inputs={"a": [value]})
    capture.writer.flush()

    report = replay(capture.store, registry, "churn", ref, since=SINCE, until=UNTIL)

    assert (report.kind, report.candidate.errors, report.rows_compared) == ("regression", 1, 49)
    ((reason, rows),) = report.candidate.error_reasons
    assert rows == 1 and "a is too large for this model" in reason
    assert [d.request_id for d in report.disagreements] == ["r40"]
    assert report.max_abs_diff == 0.5


def test_a_column_the_privacy_policy_dropped_is_named_in_the_warnings(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    EndpointService(database=registry.database, user="alice").create(
        "churn", model=churn, privacy={"b": "drop"}
    )
    capture = open_log(tmp_path / "logs", Clock(), privacy={"b": "drop"})
    capture_served(capture, registry, churn, training.head(10))

    report = replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL)

    assert (report.rows_compared, report.candidate.errors) == (0, 10)
    (warning,) = report.warnings
    assert "Column 'b' is not in the captured inputs" in warning
    assert "privacy policy drops it" in warning
    assert report.candidate.error_reasons == (("input missing from the log: 'b'", 10),)


def test_a_hashed_numeric_column_is_named_and_its_rows_fail_together(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    capture = open_log(tmp_path / "logs", Clock(), privacy={"a": "hash"})
    capture_served(capture, registry, churn, training.head(ISOLATION_BUDGET + 20))

    report = replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL)

    assert report.rows_compared == 0
    assert report.candidate.errors == ISOLATION_BUDGET + 20
    assert any("Column 'a' holds keyed hashes" in w for w in report.warnings)
    assert any("upper bound" in w for w in report.warnings)
    (reason, _), *_ = report.candidate.error_reasons
    assert reason.startswith("input rejected: column 'a': expected float64")


def test_a_hashed_text_column_is_detected_without_knowing_the_policy(
    tmp_path: Path, registry: Registry
) -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "plan": ["basic", "pro", "basic", "pro"]})
    code = tmp_path / "plan.py"
    code.write_text(
        "class Plan:\n"
        "    def predict(self, frame):\n"
        "        return (frame['plan'] == 'pro').astype(int).to_numpy()\n"
    )
    ref = registry.register(
        None,
        name="churn",
        X=X,
        flavor="python",
        trusted=True,
        flavor_options={"code": str(code), "class_name": "Plan"},
    ).ref
    capture = open_log(tmp_path / "logs", Clock(), privacy={"plan": "hash"})
    for index in range(4):
        inputs = {"a": [1.0], "plan": [["basic", "pro"][index % 2]]}
        answer = Prediction(np.array([index % 2]))
        submit_records(capture.writer, f"r{index}", "primary", ref, answer, inputs=inputs)
    capture.writer.flush()

    report = replay(capture.store, registry, "churn", ref, since=SINCE, until=UNTIL)

    assert report.candidate.errors == 0
    assert report.agreement_rate == 0.5  # digests are never 'pro'
    assert any("Column 'plan' holds keyed hashes" in w for w in report.warnings)


def test_replay_keeps_the_latest_records_beyond_its_limit(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    capture_served(capture, registry, churn, training.head(12))
    report = replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL, limit=5)
    assert report.rows_compared == 5
    assert any("more than 5 successful records" in w for w in report.warnings)


def test_replay_without_captured_traffic_says_so(
    tmp_path: Path, registry: Registry, churn: str
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    with pytest.raises(InvalidInputError, match="No successful primary records of endpoint"):
        replay(capture.store, registry, "churn", churn, since=SINCE, until=UNTIL)


def test_replay_of_an_unknown_candidate_names_it(
    tmp_path: Path, registry: Registry, churn: str, training: pd.DataFrame
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    capture_served(capture, registry, churn, training.head(3))
    with pytest.raises(ModelNotFoundError, match="fraud"):
        replay(capture.store, registry, "churn", "fraud/1", since=SINCE, until=UNTIL)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("limit", 0, "limit must be a whole number >= 1"),
        ("chunk_size", 0, "chunk_size must be a whole number >= 1"),
        ("latency_sample", -1, "latency_sample must be a whole number >= 0"),
        ("top", -2, "top must be a whole number >= 0"),
    ],
    ids=["limit", "chunk-size", "latency-sample", "top"],
)
def test_replay_rejects_bad_counts(
    tmp_path: Path, registry: Registry, option: str, value: int, message: str
) -> None:
    capture = open_log(tmp_path / "logs", Clock())
    options: dict[str, Any] = {option: value}
    with pytest.raises(InvalidInputError, match=message):
        replay(capture.store, registry, "churn", "churn/1", since=SINCE, **options)
