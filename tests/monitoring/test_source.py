"""Windowed metrics across processes: two recorders flush to one store, read back exactly.

The stream is described in ``tests/monitoring/_stream.py``; every catalogue metric is
checked against values worked out by hand, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ferryman.errors import InvalidInputError, StoreUnavailableError, UnknownMetricError
from ferryman.monitoring import (
    METRIC_CATALOGUE,
    Measurement,
    MetricFlusher,
    MetricSource,
    MonitoringRecorder,
    StoreMetricSource,
)
from ferryman.monitoring.window import LATENCY_BOUNDS_MS, PSI_FLOOR
from ferryman.store import Database
from ferryman.store._tables import MetricWindowRow
from tests.conftest import PG_DSN, PG_URL, _postgres_error
from tests.monitoring._stream import T0, Clock, bind, churn_model, play, window

# The two slowest latencies of bucket 1 are 1000 ms (alone in the bucket closed by
# LATENCY_BOUNDS_MS[44]) and 10 ms; quantiles past the fifth of six requests interpolate
# from LATENCY_BOUNDS_MS[43] to the largest latency seen, 1000 ms.
_SLOW = LATENCY_BOUNDS_MS[43]


def _tail(rank: float) -> float:
    return _SLOW + (1000.0 - _SLOW) * (rank - 5)


# Scores 0.2, 0.7 and 0.9 fall in three of the ten decile cells that hold 10 % of the
# training scores each; the other seven cells are empty (floored at PSI_FLOOR).
_PSI = 3 * (1 / 3 - 0.1) * math.log((1 / 3) / 0.1) + 7 * (PSI_FLOOR - 0.1) * math.log(
    PSI_FLOOR / 0.1
)


def _shares_psi(current: list[float], reference: list[int]) -> float:
    """PSI of current shares against reference counts, shares floored at PSI_FLOOR."""
    total = sum(reference)
    return sum(
        (max(c, PSI_FLOOR) - max(r / total, PSI_FLOOR))
        * math.log(max(c, PSI_FLOOR) / max(r / total, PSI_FLOOR))
        for c, r in zip(current, reference, strict=True)
    )


# Feature histograms of churn/1's window: age 30 and 95 (one missing, left out) in the
# training deciles 25, 30, 35, 40, 45, 49.8, 54.6, 59.4, 64.2 (cells of 11, 10, 10, 10,
# 10, 8, 10, 10, 10, 10 rows); income 5000 and 2e6 in the deciles 10800, 20600, ...,
# 89200 (cells of 10 rows but the sixth, 9); plan basic, gold (other) and pro against
# the training counts pro 50, basic 49, other 0.
_AGE_PSI = _shares_psi([0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.5], [11, 10, 10, 10, 10, 8, 10, 10, 10, 10])
_INCOME_PSI = _shares_psi([0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.5], [10] * 5 + [9] + [10] * 4)
_PLAN_PSI = _shares_psi([1 / 3, 1 / 3, 1 / 3], [50, 49, 0])

V1: dict[str, Any] = {"version": "churn/1", "role": "primary"}
SHADOW: dict[str, Any] = {"version": "churn/2", "role": "shadow"}

# metric, labels, selector (window seconds and filters), value, samples
EXPECTED: list[tuple[str, dict[str, str], dict[str, Any], float | None, int]] = [
    ("request_count", {}, V1, 6.0, 6),
    ("request_count", {}, {}, 7.0, 7),
    ("request_count", {}, {"seconds": 20, **V1}, 7.0, 7),
    ("error_count", {}, V1, 2.0, 6),
    ("error_rate", {}, V1, 2 / 6, 6),
    ("client_error_rate", {}, V1, 2 / 6, 6),
    ("schema_violation_rate", {}, V1, 1 / 6, 6),
    ("p50_latency_ms", {}, V1, LATENCY_BOUNDS_MS[17], 6),
    ("p90_latency_ms", {}, V1, _tail(5.4), 6),
    ("p95_latency_ms", {}, V1, _tail(5.7), 6),
    ("p99_latency_ms", {}, V1, _tail(5.94), 6),
    ("mean_latency_ms", {}, V1, 1017.5 / 6, 6),
    ("null_rate", {}, V1, 0.0, 3),
    ("mean_prediction", {}, V1, 0.6, 3),
    ("mean_prediction", {}, {"seconds": 20, **V1}, 1.85 / 4, 4),
    ("prediction_psi", {}, V1, _PSI, 3),
    ("class_share", {"class": "1"}, V1, 2 / 3, 3),
    ("class_share", {"class": "0"}, V1, 1 / 3, 3),
    ("missing_rate", {"feature": "age"}, V1, 1 / 3, 3),
    ("missing_rate", {"feature": "income"}, V1, 1 / 3, 3),
    ("missing_rate", {"feature": "plan"}, V1, 0.0, 3),
    ("out_of_range_rate", {"feature": "age"}, V1, 1 / 3, 3),
    ("out_of_range_rate", {"feature": "income"}, V1, 1 / 3, 3),
    ("unseen_category_rate", {"feature": "plan"}, V1, 1 / 3, 3),
    ("missing_rate", {"feature": "income"}, {}, 2 / 5, 5),
    ("feature_psi", {"feature": "age"}, V1, _AGE_PSI, 2),
    ("feature_psi", {"feature": "income"}, V1, _INCOME_PSI, 2),
    ("feature_psi", {"feature": "plan"}, V1, _PLAN_PSI, 3),
    ("max_feature_psi", {}, V1, max(_AGE_PSI, _INCOME_PSI, _PLAN_PSI), 2),
    ("agreement", {}, SHADOW, 0.5, 2),
    ("agreement", {}, {}, 0.5, 2),
    ("mean_abs_diff", {}, SHADOW, 0.2, 2),
    ("max_abs_diff", {}, SHADOW, 0.3, 2),
    ("null_rate", {}, {"endpoint": "price"}, 1 / 3, 3),
    ("mean_prediction", {}, {"endpoint": "price"}, 2.0, 2),
]


def _id(case: tuple[str, dict[str, str], dict[str, Any], float | None, int]) -> str:
    metric, labels, selector, _, _ = case
    parts = [metric, *labels.values(), *(f"{k}={v}" for k, v in selector.items())]
    return "-".join(parts)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One fresh database per backend for the read-only tests of this module."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("metrics") / "ferryman.db"
        database = Database(url=f"sqlite:///{path}").open()
        yield database
        database.close()
        return
    reason = _postgres_error()
    if reason is not None:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {reason}")
    import psycopg

    schema = f"ft_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    database = Database(url=f"{PG_URL}?options=-csearch_path%3D{schema}").open()
    try:
        yield database
    finally:
        database.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _play_into(database: Database) -> None:
    clock = Clock()
    model = churn_model()
    a, b = MonitoringRecorder(clock=clock), MonitoringRecorder(clock=clock)
    bind(a, model)
    bind(b, model)
    play(a, b, clock, model)
    for recorder, process in ((a, "host-a:101:aaaa"), (b, "host-b:202:bbbb")):
        MetricFlusher(database=database, recorder=recorder, process=process, clock=clock).flush()


@pytest.fixture(scope="module")
def played(module_database: Database) -> StoreMetricSource:
    _play_into(module_database)
    return StoreMetricSource(module_database)


@pytest.mark.parametrize("case", EXPECTED, ids=[_id(case) for case in EXPECTED])
def test_every_catalogue_metric_has_its_exact_value_over_both_processes(
    played: StoreMetricSource,
    case: tuple[str, dict[str, str], dict[str, Any], float | None, int],
) -> None:
    metric, labels, selector, value, samples = case

    measured = played.measure(metric, labels, window(**selector))

    assert measured.samples == samples
    assert measured.value == pytest.approx(value, rel=1e-12, abs=1e-12)


def test_the_expected_table_covers_the_whole_catalogue() -> None:
    assert {case[0] for case in EXPECTED} == set(METRIC_CATALOGUE)


def test_each_process_writes_its_own_rows(played: StoreMetricSource) -> None:
    with played.database.read() as session:
        rows = session.execute(
            select(MetricWindowRow.process, func.count()).group_by(MetricWindowRow.process)
        ).all()

    # A: churn/1 primary and price/1 in bucket 1, churn/1 in bucket 2; B: churn/1, churn/2.
    assert sorted(rows) == [("host-a:101:aaaa", 3), ("host-b:202:bbbb", 2)]


def test_a_window_without_data_has_no_value_and_zero_counts(played: StoreMetricSource) -> None:
    empty = window(version="churn/9")

    assert played.measure("error_rate", {}, empty) == Measurement(None, 0)
    assert played.measure("p99_latency_ms", {}, empty) == Measurement(None, 0)
    assert played.measure("request_count", {}, empty) == Measurement(0.0, 0)
    assert played.measure("missing_rate", {"feature": "age"}, empty) == Measurement(None, 0)
    assert played.measure("prediction_psi", {}, empty) == Measurement(None, 0)


def test_a_window_takes_the_buckets_that_start_inside_it(played: StoreMetricSource) -> None:
    straddling = window(seconds=15, **V1)  # bucket 2 starts at T0+10 < T0+15: taken whole
    late = window(seconds=20, **V1)
    after_start = type(late)(
        endpoint="churn", since=late.since + timedelta(seconds=5), until=late.until, **V1
    )

    assert played.measure("request_count", {}, straddling).value == 7
    assert played.measure("request_count", {}, after_start).value == 1  # bucket 1 left out


def test_unknown_metric_names_list_the_catalogue(played: StoreMetricSource) -> None:
    with pytest.raises(UnknownMetricError, match=r"Unknown metric 'eror_rate'\. Available: .*"):
        played.measure("eror_rate", {}, window())


def test_a_missing_label_names_the_label_and_shows_an_example(played: StoreMetricSource) -> None:
    with pytest.raises(
        UnknownMetricError,
        match=r"Metric 'missing_rate' needs the label\(s\) feature, "
        r'e\.g\. missing_rate\{feature="\.\.\."\}',
    ):
        played.measure("missing_rate", {}, window())


def test_an_unexpected_label_is_refused(played: StoreMetricSource) -> None:
    with pytest.raises(UnknownMetricError, match=r"does not take the label\(s\) feature"):
        played.measure("error_rate", {"feature": "age"}, window())


def test_an_unknown_feature_lists_the_features(played: StoreMetricSource) -> None:
    with pytest.raises(
        UnknownMetricError, match=r"No feature 'aeg' .* Features: age, income, plan\."
    ):
        played.measure("missing_rate", {"feature": "aeg"}, window(**V1))


def test_an_unknown_class_lists_the_classes(played: StoreMetricSource) -> None:
    with pytest.raises(UnknownMetricError, match=r"No class '2' .* Classes: 0, 1\."):
        played.measure("class_share", {"class": "2"}, window(**V1))


def test_unknown_metric_error_is_an_invalid_input_error() -> None:
    assert issubclass(UnknownMetricError, InvalidInputError)


def test_the_store_source_follows_the_metric_source_protocol(played: StoreMetricSource) -> None:
    assert isinstance(played, MetricSource)
    assert played.metric_names() == sorted(METRIC_CATALOGUE)


# -- flushing, on a fresh database per test ----------------------------------------------


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    opened = Database(url=database_url).open()
    yield opened
    opened.close()


def test_flushing_again_overwrites_a_bucket_with_its_cumulative_counts(
    database: Database,
) -> None:
    clock = Clock()
    recorder = MonitoringRecorder(clock=clock)
    flusher = MetricFlusher(database=database, recorder=recorder, process="p", clock=clock)
    source = StoreMetricSource(database)

    recorder.observe_prediction("churn", "churn/1", "primary", 200, 1.0)
    first = flusher.flush()
    recorder.observe_prediction("churn", "churn/1", "primary", 500, 1.0)
    second = flusher.flush()
    third = flusher.flush()

    assert (first, second, third) == (1, 1, 0)  # nothing changed for the third
    assert source.measure("request_count", {}, window()).value == 2
    assert source.measure("error_rate", {}, window()).value == 0.5


def test_stop_flushes_what_the_thread_has_not_written_yet(database: Database) -> None:
    clock = Clock()
    recorder = MonitoringRecorder(clock=clock)
    flusher = MetricFlusher(
        database=database, recorder=recorder, interval_seconds=3600, process="p", clock=clock
    )

    flusher.start()
    running = flusher.is_running
    recorder.observe_prediction("churn", "churn/1", "primary", 200, 1.0)
    flusher.stop()

    assert running
    assert not flusher.is_running
    assert StoreMetricSource(database).measure("request_count", {}, window()).value == 1


def test_the_thread_drains_the_recorder_between_two_writes(database: Database) -> None:
    clock = Clock()
    recorder = MonitoringRecorder(clock=clock)
    flusher = MetricFlusher(
        database=database,
        recorder=recorder,
        interval_seconds=3600,
        drain_interval_seconds=0.01,
        process="p",
        clock=clock,
    )
    recorder.observe_prediction("churn", "churn/1", "primary", 200, 1.0)
    queued = recorder.pending

    flusher.start()
    try:
        deadline = time.monotonic() + 10
        while recorder.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        drained = recorder.pending
        written = StoreMetricSource(database).measure("request_count", {}, window()).value
    finally:
        flusher.stop()

    assert (queued, drained) == (1, 0)  # applied to the buckets in memory...
    assert not written  # ...and not written before the interval (nor the stop)
    assert StoreMetricSource(database).measure("request_count", {}, window()).value == 1


def test_buckets_older_than_the_retention_are_pruned(database: Database) -> None:
    clock = Clock()
    model = churn_model()
    a, b = MonitoringRecorder(clock=clock), MonitoringRecorder(clock=clock)
    play(a, b, clock, model)
    flusher = MetricFlusher(
        database=database, recorder=a, retention=timedelta(hours=48), process="a", clock=clock
    )
    flusher.flush()

    clock.now = T0 + 48 * 3600 + 5  # bucket 1 (T0) is now too old, bucket 2 (T0+10) is not
    deleted = flusher.prune()

    source = StoreMetricSource(database)
    assert deleted == 2  # churn/1 and price/1 of bucket 1
    assert source.measure("request_count", {}, window(seconds=20)).value == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"interval_seconds": 0}, r"intervals must be positive seconds"),
        ({"drain_interval_seconds": -1}, r"drain_interval_seconds=-1"),
        ({"retention": timedelta(0)}, r"retention must be positive"),
        ({"process": ""}, r"process must be 1 to 100 characters"),
    ],
    ids=["interval", "drain-interval", "retention", "process"],
)
def test_flusher_rejects_bad_settings(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    database = Database(url=f"sqlite:///{tmp_path / 'x.db'}")

    with pytest.raises(InvalidInputError, match=message):
        MetricFlusher(database=database, recorder=MonitoringRecorder(), **arguments)


def test_a_flush_the_store_refuses_keeps_the_buckets_for_the_next_flush() -> None:
    unreachable = Database(url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    recorder = MonitoringRecorder(clock=Clock())
    flusher = MetricFlusher(database=unreachable, recorder=recorder, process="p")
    recorder.observe_prediction("churn", "churn/1", "primary", 200, 1.0)

    with pytest.raises(StoreUnavailableError, match=r"Cannot reach the metadata store"):
        flusher.flush()

    assert [snapshot.data["requests"] for snapshot in recorder.collect()] == [1]
