"""The native JSON codec: both request layouts, passthrough columns, errors, responses."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from ferryman.errors import MalformedRequestError, SchemaValidationError
from ferryman.flavors import Prediction
from ferryman.serving.codecs import native
from tests.serving.conftest import MakeSchema

RECORD = {"age": 41, "income": 2.0, "city": "Oslo", "member": True}


def body(payload: object) -> bytes:
    return orjson.dumps(payload)


def test_records_validate_to_the_signature_frame(make_schema: MakeSchema) -> None:
    schema = make_schema()

    frame = schema.validate(native.decode(body({"instances": [RECORD, RECORD]}), schema).data)

    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["age", "income", "city", "member"]
    assert frame["age"].tolist() == [41, 41]


def test_split_layout_in_signature_order_passes_rows_through(make_schema: MakeSchema) -> None:
    schema = make_schema()
    rows = [[41, 2.0, "Oslo", True]]

    decoded = native.decode(
        body({"columns": ["age", "income", "city", "member"], "data": rows}), schema
    )

    assert decoded.data == rows


def test_split_layout_in_another_order_becomes_named_columns(make_schema: MakeSchema) -> None:
    schema = make_schema()
    payload = {"columns": ["city", "member", "age", "income"], "data": [["Bergen", False, 7, 1]]}

    frame = schema.validate(native.decode(body(payload), schema).data)

    assert isinstance(frame, pd.DataFrame)
    assert frame.iloc[0].tolist() == [7, 1.0, "Bergen", False]


def test_tensor_rows_validate_to_the_tensor_dtype(make_schema: MakeSchema) -> None:
    schema = make_schema("tensor")

    array = schema.validate(native.decode(body({"instances": [[1, 2, 3.5]]}), schema).data)

    assert isinstance(array, np.ndarray)
    assert array.dtype == np.float32
    assert array.tolist() == [[1.0, 2.0, 3.5]]


def test_passthrough_columns_are_taken_out_of_records(make_schema: MakeSchema) -> None:
    schema = make_schema(passthrough=["customer_id"])
    records = [{**RECORD, "customer_id": "c1"}, RECORD]

    decoded = native.decode(body({"instances": records}), schema)

    assert decoded.passthrough == {"customer_id": ["c1", None]}
    assert len(schema.validate(decoded.data)) == 2


def test_passthrough_columns_are_taken_out_of_the_split_layout(make_schema: MakeSchema) -> None:
    schema = make_schema(passthrough=["customer_id"])
    payload = {
        "columns": ["customer_id", "age", "income", "city", "member"],
        "data": [["c9", 41, 2.0, "Oslo", True]],
    }

    decoded = native.decode(body(payload), schema)

    assert decoded.passthrough == {"customer_id": ["c9"]}
    assert len(schema.validate(decoded.data)) == 1


def test_an_unknown_column_is_rejected_by_the_validator_naming_it(make_schema: MakeSchema) -> None:
    schema = make_schema()
    decoded = native.decode(body({"instances": [{**RECORD, "extra": 1}]}), schema)

    with pytest.raises(SchemaValidationError, match="'extra'") as caught:
        schema.validate(decoded.data)
    assert caught.value.column == "extra"


def test_an_unknown_column_is_dropped_when_the_endpoint_ignores_them(
    make_schema: MakeSchema,
) -> None:
    schema = make_schema(unknown_columns="ignore")
    decoded = native.decode(body({"instances": [{**RECORD, "extra": 1}]}), schema)
    frame = schema.validate(decoded.data)

    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["age", "income", "city", "member"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty request body"),
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object.*got an array"),
        (b'{"rows": []}', "got 'rows'"),
        (b'{"instances": {"age": 1}}', "'instances' must be an array.*got an object"),
        (b'{"instances": [], "extra": 1}', "unknown field 'extra'"),
        (b'{"columns": ["age"]}', "'columns' needs 'data'"),
        (b'{"data": [[1]]}', "'data' needs 'columns'"),
        (b'{"columns": "age", "data": [[1]]}', "'columns' must be an array of column names"),
        (b'{"columns": ["age"], "data": {"age": 1}}', "'data' must be an array of rows"),
    ],
    ids=[
        "empty",
        "not-json",
        "array",
        "no-layout",
        "instances-object",
        "unknown-field",
        "columns-only",
        "data-only",
        "columns-string",
        "data-object",
    ],
)
def test_malformed_bodies_are_refused_with_what_is_wrong(
    make_schema: MakeSchema, raw: bytes, message: str
) -> None:
    with pytest.raises(MalformedRequestError, match=message):
        native.decode(raw, make_schema())


def test_a_split_row_of_the_wrong_length_names_the_row(make_schema: MakeSchema) -> None:
    payload = {"columns": ["age", "income"], "data": [[1, 2.0], [3]]}

    with pytest.raises(SchemaValidationError, match="row 1: expected an array of 2 values") as e:
        native.decode(body(payload), make_schema())
    assert e.value.row == 1


def test_a_repeated_split_column_is_named(make_schema: MakeSchema) -> None:
    payload = {"columns": ["age", "age"], "data": [[1, 2]]}

    with pytest.raises(SchemaValidationError, match="'age' appears more than once"):
        native.decode(body(payload), make_schema())


def test_an_empty_batch_is_refused_by_the_validator(make_schema: MakeSchema) -> None:
    schema = make_schema()

    with pytest.raises(SchemaValidationError, match="empty batch"):
        schema.validate(native.decode(body({"instances": []}), schema).data)


def test_a_mistyped_value_names_column_row_and_expectation(make_schema: MakeSchema) -> None:
    schema = make_schema()
    records = [RECORD, {**RECORD, "age": "old"}]

    with pytest.raises(SchemaValidationError) as caught:
        schema.validate(native.decode(body({"instances": records}), schema).data)
    assert (caught.value.column, caught.value.row) == ("age", 1)
    assert caught.value.expected


def test_responses_carry_predictions_probabilities_classes_version_and_id() -> None:
    prediction = Prediction(
        predictions=np.array([1, 0]),
        probabilities=np.array([[0.25, 0.75], [0.5, 0.5]]),
        classes=[0, 1],
    )

    decoded = orjson.loads(native.encode(prediction, model_version="churn/3", request_id="r1"))

    assert decoded == {
        "predictions": [1, 0],
        "probabilities": [[0.25, 0.75], [0.5, 0.5]],
        "classes": [0, 1],
        "model_version": "churn/3",
        "request_id": "r1",
    }


def test_responses_write_text_labels_and_missing_values() -> None:
    prediction = Prediction(predictions=np.array(["yes", "no"], dtype=object))
    values = Prediction(predictions=np.array([1.5, np.nan]))

    labels = orjson.loads(native.encode(prediction, model_version="m/1", request_id="r"))
    numbers = orjson.loads(native.encode(values, model_version="m/1", request_id="r"))

    assert labels["predictions"] == ["yes", "no"]
    assert "probabilities" not in labels
    assert numbers["predictions"] == [1.5, None]
