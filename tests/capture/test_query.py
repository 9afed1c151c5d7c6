"""Queries over the log: scope isolation, DuckDB errors, tail filters, exports."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ferryman.capture import CaptureWriter, LogStore, QueryResult
from ferryman.errors import InvalidInputError, QueryError
from tests.capture.conftest import T0, Clock, submit_one

MakeWriter = Callable[..., CaptureWriter]


@pytest.fixture
def two_endpoints(make_writer: MakeWriter, clock: Clock) -> CaptureWriter:
    writer = make_writer()
    for index in range(3):
        submit_one(writer, f"churn-{index}", endpoint="churn")
        clock.advance(1.0)
    submit_one(writer, "fraud-0", endpoint="fraud", version="fraud/1")
    writer.flush()
    return writer


def test_unscoped_query_sees_every_endpoint(two_endpoints: CaptureWriter, store: LogStore) -> None:
    rows = store.query(
        "SELECT endpoint, count(*) FROM predictions GROUP BY endpoint ORDER BY endpoint"
    ).rows

    assert rows == [("churn", 3), ("fraud", 1)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{root}/predictions/endpoint=fraud/**/*.parquet')",
        "SELECT * FROM '{fraud_file}'",
        "SELECT * FROM read_parquet('{fraud_file}')",
        "SELECT * FROM read_csv('/etc/hostname')",
        "SELECT * FROM glob('{root}/**')",
        "SELECT * FROM predictions WHERE endpoint = 'fraud' UNION ALL "
        "SELECT * FROM read_parquet('{root}/**/*.parquet', union_by_name=true)",
    ],
    ids=["read-parquet-glob", "from-path", "read-parquet-file", "read-csv", "glob", "union"],
)
def test_scoped_query_cannot_reach_another_endpoints_files(
    two_endpoints: CaptureWriter, store: LogStore, root: Path, sql: str
) -> None:
    fraud_file = next((root / "predictions" / "endpoint=fraud").rglob("*.parquet"))

    with pytest.raises(QueryError, match=r"Permission Error|disabled by configuration"):
        store.query(sql.format(root=root, fraud_file=fraud_file), endpoint="churn")


def test_scoped_views_hold_only_that_endpoint(
    two_endpoints: CaptureWriter, store: LogStore
) -> None:
    rows = store.query(
        "SELECT DISTINCT endpoint FROM predictions "
        "UNION ALL SELECT DISTINCT endpoint FROM feedback",
        endpoint="churn",
    ).rows

    assert rows == [("churn",)]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY predictions TO '/tmp/out.csv'", "Only SELECT queries are allowed.*COPY"),
        ("ATTACH 'x.db'", "Only SELECT queries are allowed"),
        ("SET enable_external_access = true", "Only SELECT queries are allowed"),
        ("SELECT 1; SELECT 2", "exactly one SELECT statement, got 2"),
        ("", "The query is empty"),
        ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
        ("SELECT nope FROM predictions", 'Referenced column "nope" not found'),
        ("SELECT * FROM nowhere", "Table with name nowhere does not exist"),
        ("SELECT 1/0::INTEGER + 'x'::INTEGER", "Could not convert string 'x'"),
    ],
    ids=["copy", "attach", "set", "two", "empty", "syntax", "column", "table", "conversion"],
)
def test_duckdb_errors_become_query_errors_with_duckdbs_message(
    two_endpoints: CaptureWriter, store: LogStore, sql: str, message: str
) -> None:
    with pytest.raises(QueryError, match=message) as caught:
        store.query(sql, endpoint="churn")

    assert isinstance(caught.value, InvalidInputError)


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "SET python_enable_replacements = true",
    ],
    ids=["external-access", "allowed-directories", "replacements"],
)
def test_the_connection_itself_refuses_to_unlock(
    two_endpoints: CaptureWriter, store: LogStore, statement: str
) -> None:
    import duckdb

    with (
        store.reader.connection(["churn"]) as connection,
        pytest.raises(duckdb.Error, match="configuration has been locked"),
    ):
        connection.execute(statement)


def test_query_scoped_outside_the_allowed_endpoints_is_refused(store: LogStore) -> None:
    with pytest.raises(InvalidInputError, match="outside the allowed scope"):
        store.query("SELECT 1", endpoint="fraud", allowed=["churn"])


def test_query_on_an_empty_log_has_the_base_columns(store: LogStore) -> None:
    result = store.query("SELECT * FROM predictions")

    assert result.rows == []
    assert result.columns[:4] == ["request_id", "row", "time", "model_version"]


def test_query_rows_are_capped_and_reported_truncated(
    two_endpoints: CaptureWriter, store: LogStore
) -> None:
    result = store.query("SELECT request_id FROM predictions ORDER BY request_id", limit=2)

    assert result == QueryResult(["request_id"], [("churn-0",), ("churn-1",)], truncated=True)


def test_tail_is_newest_first_and_filters(
    make_writer: MakeWriter, store: LogStore, clock: Clock
) -> None:
    writer = make_writer()
    submit_one(writer, "a", version="churn/1")
    clock.advance(60)
    submit_one(writer, "b", version="churn/2", role="shadow")
    clock.advance(60)
    submit_one(writer, "c", version="churn/2", status=503)
    writer.flush()

    def ids(**filters: object) -> list[str]:
        return [r["request_id"] for r in store.tail("churn", 10, **filters).records()]  # type: ignore[arg-type]

    assert ids() == ["c", "b", "a"]
    assert store.tail("churn", 1).records()[0]["request_id"] == "c"
    assert ids(version="churn/2") == ["c", "b"]
    assert ids(role="shadow") == ["b"]
    assert ids(status=503) == ["c"]
    assert ids(since=T0 + dt.timedelta(seconds=30)) == ["c", "b"]
    assert ids(until=T0 + dt.timedelta(seconds=30)) == ["a"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.tail("churn", 0), "n must be between 1 and 10000"),
        (lambda s: s.tail("../etc", 1), "Invalid endpoint name"),
        (lambda s: s.tail("churn", since=dt.datetime(2026, 1, 1)), "naive datetime"),
        (
            lambda s: s.tail("churn", since=T0, until=T0),
            "The window is empty",
        ),
        (lambda s: s.export("churn", "x", format="xlsx"), "Unknown export format 'xlsx'"),
    ],
    ids=["n", "endpoint", "naive", "empty-window", "format"],
)
def test_bad_read_arguments_are_refused(
    store: LogStore, call: Callable[[LogStore], object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call(store)


def test_export_parquet_joins_the_latest_feedback(
    two_endpoints: CaptureWriter, store: LogStore, tmp_path: Path
) -> None:
    store.submit_feedback([{"request_id": "churn-1", "label": 0}])
    store.submit_feedback([{"request_id": "churn-1", "label": 1, "outcome": 9.5}])
    out = tmp_path / "out" / "train.parquet"

    written = store.export("churn", out)

    table = pq.read_table(out)
    assert written == 3 == table.num_rows
    assert table.column("request_id").to_pylist() == ["churn-0", "churn-1", "churn-2"]
    assert table.column("label").to_pylist() == [None, "1", None]
    assert table.column("outcome").to_pylist() == [None, 9.5, None]
    assert "endpoint" not in table.column_names


def test_export_csv_flattens_inputs_and_writes_probabilities_as_json(
    two_endpoints: CaptureWriter, store: LogStore, tmp_path: Path
) -> None:
    out = tmp_path / "train.csv"

    store.export("churn", out, format="csv", since=T0 + dt.timedelta(seconds=1))

    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["request_id"] for row in rows] == ["churn-1", "churn-2"]
    assert rows[0]["inputs.age"] == "30"
    assert rows[0]["inputs.plan"] == "basic"
    assert json.loads(rows[0]["probabilities"]) == {"0": pytest.approx(0.1), "1": 0.9}
