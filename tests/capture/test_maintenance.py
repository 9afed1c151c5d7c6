"""Erasure across tables, retention by TTL, and compaction that keeps every row."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ferryman.capture import (
    CaptureWriter,
    EndpointCapture,
    EraseReport,
    LogStore,
    PredictionLog,
    PrivacyPolicy,
)
from ferryman.errors import QueryError
from tests.capture.conftest import SECRET, T0, Clock, submit_one

MakeWriter = Callable[..., CaptureWriter]
HOUR = 3600.0


def segments(root: Path, table: str = "predictions") -> list[Path]:
    return sorted((root / table).rglob("*.parquet"))


def test_erase_removes_a_subjects_records_from_every_table(
    make_writer: MakeWriter, store: LogStore, clock: Clock
) -> None:
    writer = make_writer()
    writer.configure(
        "churn", EndpointCapture(privacy=PrivacyPolicy.from_mapping({"user_id": "hash"}))
    )
    for index, user in enumerate(["123", "456", "123"]):
        submit_one(writer, f"r{index}", passthrough={"user_id": [user]})
        submit_one(writer, f"r{index}", version="churn/2", role="shadow", passthrough={})
        writer.flush()  # one segment each: the subject's records are spread over files
        clock.advance(HOUR)
    store.submit_feedback([{"request_id": f"r{i}", "label": 1} for i in range(3)])
    store.mark("churn", "r2", "wrong", reviewer="rev")
    store.mark("churn", "r1", "ok", reviewer="rev")

    report = store.erase("user_id = pii_hash('123')")

    assert report == EraseReport(predictions=4, feedback=2, reviews=1, request_ids=2)
    remaining = store.query(
        "SELECT 'p', request_id FROM predictions UNION ALL SELECT 'f', request_id FROM "
        "feedback_log UNION ALL SELECT 'r', request_id FROM reviews ORDER BY ALL"
    ).rows
    assert remaining == [("f", "r1"), ("p", "r1"), ("p", "r1"), ("r", "r1")]


def test_erase_deletes_files_left_empty_and_leaves_no_temporaries(
    make_writer: MakeWriter, store: LogStore, root: Path
) -> None:
    writer = make_writer()
    submit_one(writer, "only", passthrough={"user_id": ["9"]})
    writer.flush()

    store.erase("user_id = '9'")

    assert list(root.rglob("*.parquet")) == []
    assert [p for p in root.rglob("*") if p.is_file() and p.name != ".maintenance.lock"] == []


def test_erase_matching_nothing_changes_nothing(
    make_writer: MakeWriter, store: LogStore, root: Path
) -> None:
    writer = make_writer()
    submit_one(writer, "r")
    writer.flush()
    before = {p: p.stat().st_mtime_ns for p in segments(root)}

    report = store.erase("request_id = 'nobody'")

    assert report.to_dict() == {"predictions": 0, "feedback": 0, "reviews": 0, "request_ids": 0}
    assert {p: p.stat().st_mtime_ns for p in segments(root)} == before


def test_erase_flushes_the_writer_first(root: Path, clock: Clock) -> None:
    log = PredictionLog(root=root, secret=SECRET, clock=clock, maintenance_interval=None)
    submit_one(log.writer, "buffered", passthrough={"user_id": ["7"]})

    report = log.store.erase("user_id = '7'")

    assert report.predictions == 1
    assert log.store.query("SELECT count(*) FROM predictions").rows == [(0,)]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("nope = 1", 'Referenced column "nope" not found'),
        ("1 = 1); DROP TABLE x; SELECT (1", "exactly one SELECT statement, got 3"),
        ("user_id = ", "Parser Error"),
    ],
    ids=["column", "injection", "syntax"],
)
def test_erase_with_a_bad_condition_is_a_query_error(
    make_writer: MakeWriter, store: LogStore, where: str, message: str
) -> None:
    writer = make_writer()
    submit_one(writer, "r", passthrough={"user_id": ["1"]})
    writer.flush()

    with pytest.raises(QueryError, match=message):
        store.erase(where)


def test_retention_removes_records_older_than_the_endpoints_ttl(
    make_writer: MakeWriter, store: LogStore, clock: Clock, root: Path
) -> None:
    writer = make_writer()
    for day in range(5):
        submit_one(writer, f"churn-{day}")
        submit_one(writer, f"fraud-{day}", endpoint="fraud", version="fraud/1")
        writer.flush()
        clock.advance(86_400)
    store.submit_feedback([{"request_id": "churn-0", "label": 1}])

    report = store.apply_retention(
        {"churn": dt.timedelta(days=2)}, now=T0 + dt.timedelta(days=4, hours=1)
    )

    assert store.query(
        "SELECT endpoint, list_sort(list(request_id)) FROM predictions GROUP BY ALL ORDER BY ALL"
    ).rows == [
        ("churn", ["churn-3", "churn-4"]),
        ("fraud", [f"fraud-{day}" for day in range(5)]),
    ]
    assert report.rows == {"predictions": 3, "feedback": 0, "reviews": 0}
    dates = sorted(p.name for p in (root / "predictions" / "endpoint=churn").iterdir())
    assert dates == ["date=2026-03-17", "date=2026-03-18"]


def test_retention_cuts_rows_inside_the_boundary_hour(
    make_writer: MakeWriter, store: LogStore, clock: Clock
) -> None:
    writer = make_writer()
    for minute in range(4):
        submit_one(writer, f"m{minute}")
        clock.advance(60)
    writer.flush()

    store.apply_retention(
        {}, now=T0 + dt.timedelta(days=1, seconds=150), default=dt.timedelta(days=1)
    )

    assert store.query("SELECT request_id FROM predictions ORDER BY 1").rows == [("m3",)]


def test_retention_of_feedback_follows_when_it_was_received(
    make_writer: MakeWriter, store: LogStore, clock: Clock
) -> None:
    writer = make_writer()
    submit_one(writer, "r")
    writer.flush()
    clock.advance(10 * 86_400)
    store.submit_feedback([{"request_id": "r", "label": 1}])

    report = store.apply_retention({"churn": dt.timedelta(days=5)}, now=store.now())

    assert report.rows == {"predictions": 1, "feedback": 0, "reviews": 0}
    assert store.query("SELECT count(*) FROM feedback_log").rows == [(1,)]


def test_compaction_merges_finished_hours_and_keeps_every_row(
    make_writer: MakeWriter, store: LogStore, clock: Clock, root: Path
) -> None:
    writer = make_writer()
    for index in range(30):
        submit_one(writer, f"r{index:02d}")
        writer.flush()
        clock.advance(240)  # 15 segments per hour, two hours
    before = store.query("SELECT * FROM predictions ORDER BY request_id").rows
    current_hour = len([p for p in segments(root) if p.name.startswith(f"{(T0.hour + 2):02d}h")])

    report = store.compact(now=T0 + dt.timedelta(hours=2, minutes=30))

    after = store.query("SELECT * FROM predictions ORDER BY request_id").rows
    names = [p.name for p in segments(root)]
    assert after == before
    assert (report.merged, report.written, report.rows) == (30 - current_hour, 2, 30 - current_hour)
    assert sum("-compacted-" in name for name in names) == 2
    assert len(names) == 2 + current_hour


def test_compaction_skips_hours_that_may_still_receive_segments(
    make_writer: MakeWriter, store: LogStore, clock: Clock
) -> None:
    writer = make_writer()
    for index in range(3):
        submit_one(writer, f"r{index}")
        writer.flush()

    report = store.compact(now=T0 + dt.timedelta(minutes=55))

    assert (report.merged, report.written) == (0, 0)


def test_compaction_finishes_an_interrupted_one_without_duplicates(
    make_writer: MakeWriter, store: LogStore, root: Path
) -> None:
    writer = make_writer()
    for index in range(3):
        submit_one(writer, f"r{index}")
        writer.flush()
    originals = {p.name: pq.read_table(p) for p in segments(root)}
    store.compact(now=T0 + dt.timedelta(hours=3))
    (merged,) = segments(root)
    assert json.loads(pq.read_schema(merged).metadata[b"ferryman.replaces"]) == sorted(originals)
    for name, table in originals.items():  # a crash before the sources were deleted
        pq.write_table(table, merged.parent / name)

    store.compact(now=T0 + dt.timedelta(hours=3))

    assert [p.name for p in segments(root)] == [merged.name]
    assert store.query("SELECT count(*) FROM predictions").rows == [(3,)]


def test_maintain_runs_compaction_and_configured_retention(root: Path, clock: Clock) -> None:
    log = PredictionLog(root=root, secret=SECRET, clock=clock, maintenance_interval=None)
    log.configure("churn", EndpointCapture(retention=dt.timedelta(hours=1)))
    for index in range(2):
        submit_one(log.writer, f"r{index}")
        log.writer.flush()
    clock.advance(3 * HOUR)
    submit_one(log.writer, "fresh")
    log.writer.flush()

    compacted, removed = log.maintain()

    assert removed.rows["predictions"] == 2
    assert log.store.query("SELECT request_id FROM predictions").rows == [("fresh",)]
    assert compacted.skipped is False
