"""The all-float64 fast route: the same batches and the same errors as the general route.

Codecs build one float64 matrix straight from JSON numbers when every column of a table
signature is float64 (``_float_matrix``). These tests pin that the route is taken for
plain numbers, and that whatever a request holds (nulls, booleans, strings, ints, nested
arrays, missing, extra or reordered keys and inputs) decoding and validating gives the
same frame or the same error as the general route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import MalformedRequestError, SchemaValidationError
from ferryman.serving.codecs import InputSchema, OutputLayout, native, oip_v2
from ferryman.serving.codecs._float_matrix import FEW_VALUES, float_matrix
from ferryman.signature import infer_signature

NAMES = ("a", "b", "c", "d", "e", "f", "g", "h")  # "h" is nullable
SIGNATURE = infer_signature(
    pd.DataFrame({**{name: [0.5, 1.5] for name in NAMES[:-1]}, "h": [0.5, np.nan]})
)
LAYOUT = OutputLayout(
    prediction_dtype=np.dtype(np.float64), prediction_width=None, n_classes=None, classes=None
)
#: Enough rows that a batch of records or rows takes the fast route.
MANY_ROWS = FEW_VALUES // len(NAMES) + 1


def schema(unknown_columns: str = "reject") -> InputSchema:
    return InputSchema(SIGNATURE, unknown_columns=unknown_columns)  # type: ignore[arg-type]


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a client would see: the validated frame, bit for bit, or the error."""
    try:
        frame = call()
    except (MalformedRequestError, SchemaValidationError) as error:
        where = (getattr(error, "column", None), getattr(error, "row", None))
        return type(error).__name__, str(error), where, getattr(error, "expected", None)
    return (
        type(frame).__name__,
        tuple(frame.columns),
        tuple(str(dtype) for dtype in frame.dtypes),
        type(frame.index).__name__,
        frame.to_numpy(dtype=np.float64).tobytes(),
    )


def rows_of(count: int, start: float = 0.25) -> list[list[float]]:
    return [[start + row + column / 10 for column in range(len(NAMES))] for row in range(count)]


# -- InputSchema -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("training", "float_only"),
    [
        (pd.DataFrame({"a": [0.5], "b": [np.nan]}), True),
        (pd.DataFrame({"a": [0.5], "n": [1]}), False),
        (np.array([[0.5, 1.5]]), False),
    ],
    ids=["float-table", "mixed-table", "float-tensor"],
)
def test_an_input_schema_knows_whether_every_column_is_float64(
    training: Any, float_only: bool
) -> None:
    assert InputSchema(infer_signature(training)).float_only is float_only


def test_an_input_schema_looks_up_columns_by_name() -> None:
    endpoint = schema()

    assert endpoint.positions == {name: position for position, name in enumerate(NAMES)}
    assert [spec.name for spec in endpoint.specs.values()] == list(NAMES)
    assert endpoint.specs["h"].nullable


# -- float_matrix ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nested",
    [
        [[1, 2.5, -0.0]],
        [[2**53 + 1, 2**63 - 1, -(2**63)], [0.1, 1e308, 5e-324]],
        [[float(row), 1, 0] for row in range(FEW_VALUES)],
        [[0.5 + row, 7, 1e-9] for row in range(FEW_VALUES)],
    ],
    ids=["one-row", "extreme-values", "many-zeros-and-ones", "many-values"],
)
def test_float_matrix_holds_what_numpy_reads_from_the_numbers(nested: list[list[Any]]) -> None:
    matrix = float_matrix(nested, (len(nested), len(nested[0])))

    assert matrix is not None
    assert matrix.dtype == np.float64
    assert matrix.tobytes() == np.array(nested, dtype=np.float64).tobytes()


MANY = [[0.5 + row, 2.5] for row in range(FEW_VALUES)]
NOT_NUMBERS = {
    "null": ([[1.0, None]], (1, 2)),
    "string": ([[1.0, "2.5"]], (1, 2)),
    "boolean": ([[1.0, True]], (1, 2)),
    "boolean-among-many": ([*MANY, [2.0, False]], (FEW_VALUES + 1, 2)),
    "boolean-among-many-ones": ([[1, 0]] * FEW_VALUES + [[True, 0.0]], (FEW_VALUES + 1, 2)),
    "nested-array": ([[1.0, [2.0]]], (1, 2)),
    "object": ([[1.0, {}]], (1, 2)),
    "int-beyond-float64": ([[1.0, 10**400]], (1, 2)),
    "short-row": ([[1.0, 2.0], [3.0]], (2, 2)),
    "long-row": ([[1.0, 2.0, 3.0]], (1, 2)),
    "missing-row": ([[1.0, 2.0]], (2, 2)),
    "number-for-row": ([1.0, 2.0], (2, 1)),
    "string-for-row": (["ab"], (1, 2)),
}


@pytest.mark.parametrize(("nested", "shape"), NOT_NUMBERS.values(), ids=NOT_NUMBERS.keys())
def test_float_matrix_steps_aside_for_anything_but_plain_numbers(
    nested: list[Any], shape: tuple[int, int]
) -> None:
    assert float_matrix(nested, shape) is None


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, 0.0, 1.0, -0.0]),
)
NOT_A_NUMBER = st.one_of(
    st.booleans(), st.none(), st.text(max_size=3), st.just([1.0]), st.just({"x": 1.0})
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 40),
    width=st.integers(1, 8),
    data=st.data(),
)
def test_float_matrix_is_numpy_on_numbers_and_steps_aside_otherwise(
    rows: int, width: int, data: st.DataObject
) -> None:
    row = st.lists(
        st.one_of(NUMBERS, NUMBERS, NUMBERS, NOT_A_NUMBER), min_size=width, max_size=width
    )
    nested = orjson.loads(orjson.dumps(data.draw(st.lists(row, min_size=rows, max_size=rows))))
    plain = all(type(value) in (int, float) for values in nested for value in values)

    matrix = float_matrix(nested, (rows, width))

    expected = np.array(nested, dtype=np.float64).tobytes() if plain else None
    assert (None if matrix is None else matrix.tobytes()) == expected


# -- native records and rows -------------------------------------------------------------


def test_records_of_plain_numbers_decode_to_one_float_matrix() -> None:
    rows = rows_of(MANY_ROWS)
    body = orjson.dumps({"instances": [dict(zip(NAMES, row, strict=True)) for row in rows]})

    decoded = native.decode(body, schema())

    assert isinstance(decoded.data, np.ndarray)
    assert decoded.data.tolist() == rows


def test_records_of_plain_numbers_validate_to_the_signature_frame() -> None:
    rows = rows_of(MANY_ROWS)
    body = orjson.dumps({"instances": [dict(zip(NAMES, row, strict=True)) for row in rows]})

    frame = schema().validate(native.decode(body, schema()).data)

    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(NAMES)
    assert frame.dtypes.tolist() == [np.dtype(np.float64)] * len(NAMES)
    assert frame.to_numpy().tolist() == rows


def test_records_without_the_passthrough_columns_still_carry_them_as_nulls() -> None:
    passing = InputSchema(SIGNATURE, passthrough=frozenset({"customer_id"}))
    rows = rows_of(MANY_ROWS)
    body = orjson.dumps({"instances": [dict(zip(NAMES, row, strict=True)) for row in rows]})

    decoded = native.decode(body, passing)

    assert decoded.passthrough == {"customer_id": [None] * MANY_ROWS}
    assert np.asarray(passing.validate(decoded.data)).tolist() == rows


def test_rows_of_plain_numbers_decode_to_one_float_matrix() -> None:
    rows = rows_of(MANY_ROWS)

    decoded = native.decode(orjson.dumps({"instances": rows}), schema())

    assert isinstance(decoded.data, np.ndarray)
    assert decoded.data.tolist() == rows


def test_a_boolean_among_many_records_is_refused_naming_column_and_row() -> None:
    records = [dict(zip(NAMES, row, strict=True)) for row in rows_of(MANY_ROWS)]
    records[5]["c"] = True

    with pytest.raises(SchemaValidationError, match="booleans are not numbers") as caught:
        schema().validate(native.decode(orjson.dumps({"instances": records}), schema()).data)
    assert (caught.value.column, caught.value.row) == ("c", 5)


@st.composite
def record_batches(draw: st.DrawFn) -> list[Any]:
    """Records of numbers, with now and then a value that is not one, or an odd record."""
    count = draw(st.integers(1, 2 * MANY_ROWS))
    numbers = draw(st.sampled_from([NUMBERS, st.sampled_from([0, 1, 0.0, 1.0, 0.5])]))
    row = st.lists(numbers, min_size=len(NAMES), max_size=len(NAMES))
    records: list[Any] = [
        dict(zip(NAMES, values, strict=True))
        for values in draw(st.lists(row, min_size=count, max_size=count))
    ]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        records[draw(st.integers(0, count - 1))][draw(st.sampled_from(NAMES))] = draw(NOT_A_NUMBER)
    at = draw(st.integers(0, count - 1))
    change = draw(st.sampled_from(["none"] * 5 + ["drop", "extra", "reorder", "as-row"]))
    if change == "drop":
        del records[at][draw(st.sampled_from(NAMES))]
    elif change == "extra":
        records[at]["zz"] = 1.0
    elif change == "reorder":
        records[at] = dict(reversed(records[at].items()))
    elif change == "as-row":
        records[at] = list(records[at].values())
    return records


@settings(max_examples=150, deadline=None)
@given(records=record_batches(), unknown_columns=st.sampled_from(["reject", "ignore"]))
def test_records_validate_as_the_general_route_validates_them(
    records: list[Any], unknown_columns: str
) -> None:
    endpoint = schema(unknown_columns)
    body = orjson.dumps({"instances": records})
    # The general route hands the decoded records to the validator as they are.
    general = orjson.loads(body)["instances"]

    fast = outcome(lambda: endpoint.validate(native.decode(body, endpoint).data))

    assert fast == outcome(lambda: endpoint.validate(general))


# -- native split layout -----------------------------------------------------------------


def test_split_rows_in_another_column_order_decode_to_the_signature_order() -> None:
    rows = rows_of(MANY_ROWS)
    columns = list(reversed(NAMES))
    body = orjson.dumps({"columns": columns, "data": [row[::-1] for row in rows]})

    decoded = native.decode(body, schema())

    assert isinstance(decoded.data, np.ndarray)
    assert decoded.data.tolist() == rows


@settings(max_examples=100, deadline=None)
@given(records=record_batches(), columns=st.permutations(NAMES))
def test_split_rows_validate_as_the_same_records(records: list[Any], columns: list[str]) -> None:
    endpoint = schema()
    data = [[record.get(name) for name in columns] for record in records if type(record) is dict]
    body = orjson.dumps({"columns": columns, "data": data})
    same_records = [dict(zip(columns, row, strict=True)) for row in orjson.loads(body)["data"]]

    fast = outcome(lambda: endpoint.validate(native.decode(body, endpoint).data))

    assert fast == outcome(lambda: endpoint.validate(same_records))


# -- Open Inference Protocol V2 ----------------------------------------------------------


def tensor(name: str, data: list[Any], datatype: str = "FP64", shape: Any = None) -> Any:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def column_inputs(rows: list[list[float]]) -> list[Any]:
    return [tensor(name, [row[i] for row in rows]) for i, name in enumerate(NAMES)]


def decode_v2(payload: Any, endpoint: InputSchema) -> Any:
    return oip_v2.decode_infer(orjson.dumps(payload), endpoint, LAYOUT).batch.data


@pytest.mark.parametrize("count", [1, MANY_ROWS], ids=["one-row", "many-rows"])
def test_one_tensor_per_float_column_decodes_to_one_float_matrix(count: int) -> None:
    rows = rows_of(count)

    data = decode_v2({"inputs": column_inputs(rows)}, schema())

    assert isinstance(data, np.ndarray)
    assert data.tolist() == rows


def test_tensors_in_another_order_decode_to_the_signature_order() -> None:
    rows = rows_of(3)

    data = decode_v2({"inputs": column_inputs(rows)[::-1]}, schema())

    assert isinstance(data, np.ndarray)
    assert data.tolist() == rows


def test_one_row_of_tensors_validates_to_the_signature_frame() -> None:
    rows = rows_of(1)

    frame = schema().validate(decode_v2({"inputs": column_inputs(rows)}, schema()))

    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(NAMES)
    assert frame.to_numpy().tolist() == rows


def with_first(**changes: Any) -> dict[str, Any]:
    inputs = column_inputs(rows_of(1))
    inputs[0] = {**inputs[0], **changes}
    return {"inputs": inputs}


FLOAT_MALFORMED = {
    "boolean": (with_first(data=[True]), "input 'a': datatype FP64 needs numbers, got a boolean"),
    "string": (with_first(data=["1.5"]), "input 'a': datatype FP64 needs numbers, got a string"),
    "nested-value": (with_first(data=[[1.5]]), "FP64 needs numbers, got an array"),
    "boolean-in-shape": (with_first(shape=[True]), "'shape' must be an array of non-negative"),
    "boolean-width": (with_first(shape=[1, True]), "'shape' must be an array of non-negative"),
    "float-shape": (with_first(shape=[1.0]), "'shape' must be an array of non-negative"),
    "count-mismatch": (with_first(data=[1.5, 2.5]), r"shape \[1\] holds 1 elements"),
    "parameters-list": (with_first(parameters=[]), "'parameters' of input 'a' must be an object"),
    "not-an-object": ({"inputs": [1, *column_inputs(rows_of(1))[1:]]}, r"inputs\[0\] must be"),
}


@pytest.mark.parametrize(
    ("payload", "message"), FLOAT_MALFORMED.values(), ids=FLOAT_MALFORMED.keys()
)
def test_malformed_float_tensors_are_refused_with_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(MalformedRequestError, match=message):
        decode_v2(payload, schema())


def test_a_null_in_a_float_tensor_is_refused_by_the_validator_naming_the_column() -> None:
    endpoint = schema()
    data = decode_v2(with_first(data=[None]), endpoint)

    with pytest.raises(
        SchemaValidationError, match="column 'a', row 0: expected non-null float64, got null"
    ) as e:
        endpoint.validate(data)
    assert (e.value.column, e.value.row) == ("a", 0)


def test_an_int_tensor_for_a_float_column_is_read_exactly() -> None:
    data = decode_v2(with_first(datatype="INT64", data=[2**53 + 1]), schema())

    assert schema().validate(data)["a"].tolist() == [float(2**53 + 1)]


@st.composite
def v2_requests(draw: st.DrawFn) -> list[Any]:
    """One tensor per column in any order, with now and then something unusual."""
    count = draw(st.integers(1, 2 * MANY_ROWS))
    numbers = draw(st.sampled_from([NUMBERS, st.sampled_from([0, 1, 0.0, 1.0, 0.5])]))
    inputs: list[Any] = []
    for name in draw(st.permutations(NAMES)):
        datatype = draw(st.sampled_from(["FP64"] * 12 + ["FP32", "FP16", "INT64"]))
        shape = draw(st.sampled_from([[count], [count], [count, 1]]))
        data = draw(st.lists(numbers, min_size=count, max_size=count))
        inputs.append(tensor(name, data, datatype, shape))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        item = inputs[draw(st.integers(0, len(NAMES) - 1))]
        item["data"][draw(st.integers(0, count - 1))] = draw(NOT_A_NUMBER)
    at = draw(st.integers(0, len(NAMES) - 1))
    changes = {
        "nested": {"data": [[value] for value in inputs[at]["data"]], "shape": [count, 1]},
        "short": {"data": inputs[at]["data"][1:]},
        "rows": {"data": [*inputs[at]["data"], 0.5], "shape": [count + 1]},
        "true-shape": {"shape": [count, True]},
        "parameters": {"parameters": draw(st.sampled_from([{}, {"x": 1}, [], "p", None]))},
        "extra-field": {"comment": "x"},
    }
    change = draw(st.sampled_from(["none"] * 6 + ["drop", "repeat", *changes]))
    if change == "drop":
        del inputs[at]
    elif change == "repeat":
        inputs.append(inputs[at])
    elif change != "none":
        inputs[at] = {**inputs[at], **changes[change]}
    return inputs


@settings(max_examples=200, deadline=None)
@given(inputs=v2_requests())
def test_tensors_validate_as_the_general_route_validates_them(inputs: list[Any]) -> None:
    endpoint = schema("ignore")
    # One more, ignored input keeps the request off the fast route and changes nothing
    # else: it comes last, is well formed, and inputs the endpoint ignores are skipped.
    general = {"inputs": [*inputs, tensor("zz-ignored", [0.0])]}

    fast = outcome(lambda: endpoint.validate(decode_v2({"inputs": inputs}, endpoint)))

    assert fast == outcome(lambda: endpoint.validate(decode_v2(general, endpoint)))
