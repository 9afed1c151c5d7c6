"""The MLflow scoring codec: the four JSON formats, CSV, content types and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from ferryman.errors import (
    MalformedRequestError,
    SchemaValidationError,
    UnsupportedMediaTypeError,
)
from ferryman.flavors import Prediction
from ferryman.serving.codecs import mlflow
from tests.serving.conftest import MakeSchema

JSON = "application/json"
RECORD = {"age": 41, "income": 2.0, "city": "Oslo", "member": True}
EXPECTED = [{"age": 41, "income": 2.0, "city": "Oslo", "member": True}]


def rows_of(schema: Any, payload: object) -> list[dict[str, Any]]:
    frame = schema.validate(mlflow.decode(orjson.dumps(payload), JSON, schema).data)
    assert isinstance(frame, pd.DataFrame)
    return [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": list(RECORD), "data": [list(RECORD.values())]}},
        {
            "dataframe_split": {
                "columns": list(RECORD),
                "data": [list(RECORD.values())],
                "index": [7],
            }
        },
        {"dataframe_split": {"data": [list(RECORD.values())]}},
        {"dataframe_records": [RECORD]},
        {"instances": [RECORD]},
        {"instances": [list(RECORD.values())]},
        {"inputs": {name: [value] for name, value in RECORD.items()}},
        {"inputs": [list(RECORD.values())], "params": {"threshold": 0.5}},
    ],
    ids=[
        "split",
        "split-with-index",
        "split-signature-order",
        "records",
        "instances-records",
        "instances-rows",
        "inputs-columns",
        "inputs-rows-with-params",
    ],
)
def test_every_json_format_gives_the_same_rows(make_schema: MakeSchema, payload: object) -> None:
    assert rows_of(make_schema(), payload) == EXPECTED


def test_instances_of_plain_values_feed_a_one_column_model() -> None:
    from ferryman.serving.codecs import InputSchema
    from ferryman.signature import infer_signature

    schema = InputSchema(infer_signature(pd.DataFrame({"x": [1.0, 2.0]})))

    assert rows_of(schema, {"instances": [3.0, 4.5]}) == [{"x": 3.0}, {"x": 4.5}]


def test_passthrough_columns_are_taken_out_of_records(make_schema: MakeSchema) -> None:
    schema = make_schema(passthrough=["customer_id"])
    raw = orjson.dumps({"dataframe_records": [{**RECORD, "customer_id": 5}]})

    decoded = mlflow.decode(raw, JSON, schema)

    assert decoded.passthrough == {"customer_id": [5]}


def test_csv_is_read_with_the_signatures_types(make_schema: MakeSchema) -> None:
    schema = make_schema()
    text = "age,income,city,member\n41,2,Oslo,true\n50,3.5,Bergen,0\n"

    frame = schema.validate(mlflow.decode(text.encode(), "text/csv", schema).data)

    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [
        EXPECTED[0],
        {"age": 50, "income": 3.5, "city": "Bergen", "member": False},
    ]


def test_an_empty_csv_field_is_a_missing_value(make_schema: MakeSchema) -> None:
    schema = make_schema()
    text = "age,income,city,member\n41,,Oslo,true\n"

    with pytest.raises(SchemaValidationError, match="'income', row 0") as caught:
        schema.validate(mlflow.decode(text.encode(), "text/csv", schema).data)
    assert caught.value.column == "income"


def test_a_csv_field_that_is_not_its_columns_type_names_column_and_row(
    make_schema: MakeSchema,
) -> None:
    text = "age,income,city,member\n41,2,Oslo,true\nold,2,Oslo,true\n"

    with pytest.raises(SchemaValidationError, match="column 'age', row 1: expected an integer"):
        mlflow.decode(text.encode(), "text/csv", make_schema())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty CSV body"),
        ("age,income\n1\n", "row 0: expected 2 fields"),
    ],
    ids=["empty", "short-row"],
)
def test_malformed_csv_is_refused(make_schema: MakeSchema, text: str, message: str) -> None:
    with pytest.raises((MalformedRequestError, SchemaValidationError), match=message):
        mlflow.decode(text.encode(), "text/csv", make_schema())


@pytest.mark.parametrize(
    "content_type",
    [JSON, "application/json; charset=utf-8", "Application/JSON;charset=UTF-8", "text/csv"],
)
def test_json_and_csv_in_utf8_are_accepted(content_type: str) -> None:
    assert mlflow.media_type(content_type) in ("json", "csv")


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "missing Content-Type"),
        ("text/plain", "unsupported Content-Type 'text/plain'"),
        ("application/json; charset=latin-1", "only UTF-8"),
        ("application/x-www-form-urlencoded", "accepts application/json or text/csv"),
    ],
    ids=["missing", "text", "latin-1", "form"],
)
def test_other_content_types_are_refused(content_type: str | None, message: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=message):
        mlflow.media_type(content_type)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"nope", "malformed JSON"),
        (b"[]", "expected a JSON object"),
        (b"{}", "exactly one of dataframe_split, dataframe_records, instances, inputs; got no"),
        (b'{"records": []}', "exactly one of.*got 'records'"),
        (
            b'{"instances": [], "inputs": []}',
            "exactly one of.*got instances, inputs",
        ),
        (b'{"instances": [], "params": 1}', "'params' must be an object"),
        (b'{"dataframe_split": []}', "'dataframe_split' must be an object"),
        (b'{"dataframe_split": {"columns": []}}', "'dataframe_split' needs 'data'"),
        (b'{"dataframe_split": {"data": [], "x": 1}}', "unknown field 'x' in 'dataframe_split'"),
        (b'{"dataframe_records": {}}', "'dataframe_records' must be an array"),
        (b'{"instances": 3}', "'instances' must be an array"),
        (b'{"inputs": "x"}', "'inputs' must be an array of rows or an object"),
    ],
    ids=[
        "not-json",
        "array",
        "no-format",
        "unknown-format",
        "two-formats",
        "params-number",
        "split-array",
        "split-no-data",
        "split-unknown-field",
        "records-object",
        "instances-number",
        "inputs-string",
    ],
)
def test_malformed_json_bodies_are_refused(
    make_schema: MakeSchema, payload: bytes, message: str
) -> None:
    with pytest.raises(MalformedRequestError, match=message):
        mlflow.decode(payload, JSON, make_schema())


def test_responses_hold_the_predictions() -> None:
    prediction = Prediction(predictions=np.array([[1.0, 2.0], [3.0, 4.0]]))

    assert orjson.loads(mlflow.encode(prediction)) == {"predictions": [[1.0, 2.0], [3.0, 4.0]]}
