"""CaptureWriter: what a submission becomes on disk, sampling, the bounded buffer, failures."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferryman.capture import CaptureWriter, EndpointCapture, LogStore, sampled
from ferryman.errors import InvalidInputError, SchemaValidationError
from ferryman.flavors.base import Prediction
from tests.capture.conftest import T0, Clock, classified, frame, regressed, submit_one

MakeWriter = Callable[..., CaptureWriter]


def types(store: LogStore, endpoint: str = "churn") -> dict[str, str]:
    rows = store.query("DESCRIBE SELECT * FROM predictions", endpoint=endpoint).rows
    return {row[0]: row[1] for row in rows}


def test_one_row_classification_round_trips_with_types(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    writer.submit(
        "r1",
        "churn",
        "churn/3",
        "primary",
        frame(age=[41.5], visits=[7], plan=["gold"], active=[True]),
        classified(["yes"], [[0.2, 0.8]], ["no", "yes"]),
        2.5,
        200,
        None,
        {"user_id": ["u-17"]},
    )
    assert writer.flush() == 1

    record = store.tail("churn", 1).records()[0]

    assert record == {
        "request_id": "r1",
        "row": 0,
        "time": T0,
        "model_version": "churn/3",
        "role": "primary",
        "status": 200,
        "error": None,
        "error_code": None,
        "latency_ms": 2.5,
        "inputs": {"age": 41.5, "visits": 7, "plan": "gold", "active": True},
        "user_id": "u-17",
        "prediction": "yes",
        "probabilities": {"no": 0.2, "yes": 0.8},
    }
    assert types(store) == {
        "request_id": "VARCHAR",
        "row": "INTEGER",
        "time": "TIMESTAMP WITH TIME ZONE",
        "model_version": "VARCHAR",
        "role": "VARCHAR",
        "status": "INTEGER",
        "error": "VARCHAR",
        "error_code": "VARCHAR",
        "latency_ms": "DOUBLE",
        "prediction": "VARCHAR",
        "probabilities": "MAP(VARCHAR, DOUBLE)",
        "inputs": "STRUCT(age DOUBLE, visits BIGINT, plan VARCHAR, active BOOLEAN)",
        "user_id": "VARCHAR",
        "endpoint": "VARCHAR",
        "date": "DATE",
    }


def test_many_row_request_becomes_one_record_per_row(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    writer.submit(
        "batch-1",
        "churn",
        "churn/1",
        "primary",
        frame(age=[20.0, 30.0, 40.0], plan=["a", "b", "c"]),
        classified([0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]], [0, 1]),
        5.0,
        passthrough={"user_id": ["u1", "u2", None]},
    )
    writer.flush()

    rows = store.query(
        "SELECT \"row\", inputs.age, inputs.plan, user_id, prediction, probabilities['1'] "
        'FROM predictions ORDER BY "row"'
    ).rows

    assert rows == [
        (0, 20.0, "a", "u1", 0, 0.1),
        (1, 30.0, "b", "u2", 1, 0.6),
        (2, 40.0, "c", None, 1, 0.7),
    ]


def test_segments_dictionary_encode_text_columns_only(make_writer: MakeWriter, root: Path) -> None:
    writer = make_writer()
    submit_one(writer, "r1", label="yes")
    submit_one(writer, "r2", age=41.0, label="no")
    writer.flush()
    (segment,) = root.rglob("*.parquet")
    metadata = pq.ParquetFile(segment).metadata.row_group(0)
    encodings = {
        metadata.column(i).path_in_schema: metadata.column(i).encodings
        for i in range(metadata.num_columns)
    }

    dictionary = {path for path, found in encodings.items() if "RLE_DICTIONARY" in found}
    assert {"request_id", "model_version", "role", "inputs.plan", "prediction"} <= dictionary
    assert not dictionary & {"inputs.age", "latency_ms", "time"}


def test_array_inputs_and_regression_round_trip(make_writer: MakeWriter, store: LogStore) -> None:
    writer = make_writer()
    for index in range(3):
        writer.submit(
            f"t{index}",
            "prices",
            "prices/2",
            "primary",
            np.array([[float(index), 2.0 * index]]),
            regressed([10.0 + index]),
            0.5,
            columns=("area", "rooms"),
        )
    writer.flush()

    rows = store.query(
        "SELECT request_id, inputs.area, inputs.rooms, prediction, probabilities "
        "FROM predictions ORDER BY request_id"
    ).rows

    assert rows == [
        ("t0", 0.0, 0.0, 10.0, None),
        ("t1", 1.0, 2.0, 11.0, None),
        ("t2", 2.0, 4.0, 12.0, None),
    ]
    assert types(store, "prices")["prediction"] == "DOUBLE"


def test_array_without_column_names_gets_positional_names(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    writer.submit("t", "img", "img/1", "primary", np.array([[1, 2, 3]]), regressed([0.5]), 1.0)
    writer.flush()

    assert store.query("SELECT inputs FROM predictions").rows == [({"x0": 1, "x1": 2, "x2": 3},)]


def test_thousands_of_one_row_frames_keep_their_order_and_values(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    columns = pd.Index(["a", "b"])
    for index in range(2000):
        data = pd.DataFrame(np.array([[index, -index]], dtype=np.float64), columns=columns)
        writer.submit(f"r{index:05d}", "churn", "churn/1", "primary", data, regressed([index]), 1.0)
    writer.flush()

    table = store.reader.arrow(
        "SELECT request_id, inputs.a AS a, inputs.b AS b, prediction FROM predictions "
        "ORDER BY request_id"
    )

    assert table.column("a").to_pylist() == [float(i) for i in range(2000)]
    assert table.column("b").to_pylist() == [float(-i) for i in range(2000)]
    assert table.column("prediction").to_pylist() == [float(i) for i in range(2000)]


def test_failed_request_is_recorded_with_its_raw_inputs_and_error(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    error = SchemaValidationError("column 'age', row 0: expected a number, got 'old'")
    writer.submit(
        "bad", "churn", "churn/1", "primary", [{"age": "old", "plan": "a"}], None, 0.3, 400, error
    )
    writer.submit("boom", "churn", "churn/1", "primary", None, None, 7.0, 500, "model crashed")
    writer.flush()

    rows = store.query(
        "SELECT request_id, status, error, error_code, inputs, prediction FROM predictions "
        "ORDER BY request_id"
    ).rows

    assert rows == [
        ("bad", 400, str(error), "schema_validation", {"age": "old", "plan": "a"}, None),
        ("boom", 500, "model crashed", None, None, None),
    ]


def test_multi_output_predictions_are_lists(make_writer: MakeWriter, store: LogStore) -> None:
    writer = make_writer()
    output = Prediction(np.array([[1.0, 2.0], [3.0, 4.0]]))
    writer.submit("m", "multi", "multi/1", "primary", frame(x=[1.0, 2.0]), output, 1.0)
    writer.flush()

    assert store.query('SELECT prediction FROM predictions ORDER BY "row"').rows == [
        ([1.0, 2.0],),
        ([3.0, 4.0],),
    ]


def test_schema_change_between_versions_reads_as_one_table(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    submit_one(writer, "old")
    writer.flush()
    writer.submit(
        "new", "churn", "churn/2", "primary", frame(age=[5.0], region=["eu"]), regressed([0.5]), 1.0
    )
    writer.flush()

    rows = store.query(
        "SELECT request_id, inputs.age, inputs.plan, inputs.region FROM predictions "
        "ORDER BY request_id"
    ).rows

    assert rows == [("new", 5.0, None, "eu"), ("old", 30.0, "basic", None)]


def test_records_of_two_hours_go_to_two_segments(
    make_writer: MakeWriter, store: LogStore, clock: Clock, root: Path
) -> None:
    writer = make_writer()
    clock.now = dt.datetime(2026, 3, 14, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    submit_one(writer, "before")
    clock.advance(2.0)
    submit_one(writer, "after")
    writer.flush()

    names = sorted(p.relative_to(root).as_posix()[:50] for p in root.rglob("*.parquet"))

    assert [name.rsplit("/", 1)[0] for name in names] == [
        "predictions/endpoint=churn/date=2026-03-14",
        "predictions/endpoint=churn/date=2026-03-15",
    ]
    assert [name.rsplit("/", 1)[1][:3] for name in names] == ["23h", "00h"]
    assert store.query("SELECT count(*) FROM predictions").rows == [(2,)]


def test_stop_writes_everything_accepted(make_writer: MakeWriter, store: LogStore) -> None:
    writer = make_writer(flush_interval=3600.0)
    writer.start()
    for index in range(500):
        submit_one(writer, f"r{index}")
    writer.stop()

    assert writer.records_written == 500
    assert store.query("SELECT count(DISTINCT request_id) FROM predictions").rows == [(500,)]


def test_background_thread_flushes_without_being_asked(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer(flush_interval=0.02)
    writer.start()
    submit_one(writer, "r1")
    for _ in range(1000):  # bounded wait for the background flush; never a time assertion
        if writer.records_written:
            break
        time.sleep(0.01)

    assert writer.records_written == 1
    assert store.query("SELECT request_id FROM predictions").rows == [("r1",)]


def test_conversions_between_writes_are_written_as_one_segment(
    make_writer: MakeWriter, store: LogStore, root: Path
) -> None:
    writer = make_writer(flush_interval=3600.0, convert_interval=0.01)
    writer.start()
    submit_one(writer, "first")
    for _ in range(1000):  # bounded wait until the thread has converted, not written
        if not writer._pending and writer.pending == 1:
            break
        time.sleep(0.01)
    submit_one(writer, "second", age=41.0)
    converted_before_write = (writer.records_written, writer.pending)
    writer.stop()

    assert converted_before_write == (0, 2)  # converted or buffered, none written yet
    assert len(list(root.rglob("*.parquet"))) == 1
    rows = store.query("SELECT request_id, inputs.age FROM predictions ORDER BY request_id")
    assert rows.rows == [("first", 30.0), ("second", 41.0)]


def test_full_buffer_drops_and_counts_instead_of_blocking(make_writer: MakeWriter) -> None:
    writer = make_writer(max_pending=2)
    for index in range(5):
        submit_one(writer, f"r{index}")

    assert (writer.pending, writer.records_dropped) == (2, 3)
    assert writer.flush() == 2


def test_submissions_after_stop_are_dropped(make_writer: MakeWriter) -> None:
    writer = make_writer()
    writer.start()
    writer.stop()
    submit_one(writer, "late")

    assert (writer.records_dropped, writer.pending) == (1, 0)


def test_sampling_keeps_a_requests_primary_and_shadow_together(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    writer.configure("churn", EndpointCapture(sample_rate=0.25))
    ids = [f"req-{index}" for index in range(400)]
    for request_id in ids:
        submit_one(writer, request_id, role="primary")
        submit_one(writer, request_id, version="churn/2", role="shadow")
    writer.flush()

    kept = store.query(
        "SELECT role, list_sort(list(request_id)) FROM predictions GROUP BY role ORDER BY role"
    ).rows
    expected = sorted(i for i in ids if sampled(i, 0.25))

    assert kept == [("primary", expected), ("shadow", expected)]
    assert writer.records_sampled_out == 2 * (len(ids) - len(expected))
    assert 60 < len(expected) < 140


@given(request_id=st.text(max_size=40), low=st.floats(0, 1), high=st.floats(0, 1))
def test_a_request_kept_at_some_rate_is_kept_at_every_higher_rate(
    request_id: str, low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    if sampled(request_id, low):
        assert sampled(request_id, high)


def test_write_failure_is_counted_logged_once_and_serving_resumes(
    make_writer: MakeWriter, store: LogStore, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer()
    submit_one(writer, "ok-1")
    writer.flush()
    partition = root / "predictions" / "endpoint=churn"
    shutil.rmtree(partition)
    partition.write_text("not a directory")  # the partition can no longer be created

    with caplog.at_level(logging.ERROR, logger="ferryman.capture"):
        for batch in range(3):
            submit_one(writer, f"lost-{batch}")
            assert writer.flush() == 0

    partition.unlink()
    submit_one(writer, "ok-2")
    writer.flush()

    assert (writer.records_written, writer.records_lost, writer.failed_writes) == (2, 3, 3)
    assert len(caplog.records) == 1
    assert "records_lost" in caplog.records[0].getMessage()
    assert store.query("SELECT request_id FROM predictions").rows == [("ok-2",)]


class _Unreadable(Mapping[str, Any]):
    """Inputs whose columns cannot even be listed."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("unreadable")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("unreadable")

    def __len__(self) -> int:
        return 1


def test_submissions_that_cannot_be_recorded_are_lost_alone(
    make_writer: MakeWriter, store: LogStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer()
    submit_one(writer, "ok-1")
    # Unreadable when grouped: its inputs cannot be listed.
    writer.submit("unreadable", "churn", "churn/1", "primary", _Unreadable(), None, 1.0)
    submit_one(writer, "ok-2")
    writer.flush()  # grouped and written in one go
    submit_one(writer, "ok-3")
    # Unconvertible when written: a latency that is not a number.
    writer.submit("bad-latency", "churn", "churn/1", "primary", None, None, "slow")  # type: ignore[arg-type]
    submit_one(writer, "ok-4")
    with caplog.at_level(logging.ERROR, logger="ferryman.capture"):
        writer._convert_pending()  # grouped between writes, as the thread does
        submit_one(writer, "ok-5")
        writer.flush()

    assert (writer.records_written, writer.records_lost, writer.pending) == (5, 2, 0)
    ids = store.query("SELECT request_id FROM predictions ORDER BY request_id").rows
    assert ids == [(f"ok-{i}",) for i in range(1, 6)]
    assert "could not be converted (ValueError); 1 lost" in caplog.text
    assert "slow" not in caplog.text  # the error's text may quote inputs: only its type


def test_root_that_cannot_be_created_loses_records_without_raising(
    tmp_path: Path, clock: Clock
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    writer = CaptureWriter(root=blocker / "logs", clock=clock)
    submit_one(writer, "r1")

    assert writer.flush() == 0
    assert (writer.records_lost, writer.records_written) == (1, 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flush_interval": 0}, "flush_interval must be positive"),
        ({"convert_interval": -1}, "convert_interval must be positive, got -1"),
        ({"max_pending": 0}, "at least 1"),
    ],
    ids=["interval", "convert-interval", "buffer"],
)
def test_writer_rejects_bad_settings(
    tmp_path: Path, options: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        CaptureWriter(root=tmp_path, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 1.5}, r"sample_rate must be a fraction in \[0, 1\], got 1.5"),
        ({"retention": dt.timedelta(0)}, "retention must be positive"),
    ],
    ids=["rate", "retention"],
)
def test_endpoint_capture_rejects_bad_values(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        EndpointCapture(**options)  # type: ignore[arg-type]


def test_configure_rejects_an_endpoint_name_that_is_not_a_path_component(
    make_writer: MakeWriter,
) -> None:
    with pytest.raises(InvalidInputError, match=r"Invalid endpoint name '\.\./x'"):
        make_writer().configure("../x", EndpointCapture())


def test_an_fsspec_url_root_works_end_to_end(clock: Clock) -> None:
    import uuid

    import fsspec

    root = f"memory://ferryman-test-{uuid.uuid4().hex}/logs"
    try:
        writer = CaptureWriter(root=root, secret=b"k", clock=clock)
        for index in range(2):
            submit_one(writer, f"r{index}", passthrough={"user_id": [str(index)]})
        writer.flush()
        store = LogStore(root=root, secret=b"k", clock=clock)

        store.submit_feedback([{"request_id": "r1", "label": 1}])
        erased = store.erase("user_id = '0'")

        assert erased.predictions == 1
        assert store.query(
            "SELECT p.request_id, f.label FROM predictions p JOIN feedback f USING (request_id)"
        ).rows == [("r1", "1")]
    finally:
        fsspec.filesystem("memory").rm(root.rsplit("/", 1)[0], recursive=True)


def test_dicts_of_column_arrays_keep_their_dtypes(make_writer: MakeWriter, store: LogStore) -> None:
    writer = make_writer()
    for index in range(3):
        columns = {
            "age": np.array([1.5 * index]),
            "plan": np.array([f"p{index}"], dtype=object),
            "visits": np.array([index]),
        }
        writer.submit(f"c{index}", "churn", "churn/1", "primary", columns, regressed([1.0]), 1.0)
    writer.flush()

    rows = store.query("SELECT inputs FROM predictions ORDER BY request_id").rows

    assert [row[0] for row in rows] == [
        {"age": 0.0, "plan": "p0", "visits": 0},
        {"age": 1.5, "plan": "p1", "visits": 1},
        {"age": 3.0, "plan": "p2", "visits": 2},
    ]
    assert types(store)["inputs"] == "STRUCT(age DOUBLE, plan VARCHAR, visits BIGINT)"
