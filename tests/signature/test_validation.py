"""Signature.validate: every accepted container, every dtype path, every error."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ferryman.errors import InvalidInputError, SchemaValidationError
from ferryman.signature import ColumnSpec, Signature, TensorSpec

STR = pd.StringDtype(na_value=np.nan)


def table(*columns: ColumnSpec) -> Signature:
    return Signature(kind="table", columns=columns)


def frame_of(result: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """Narrow a table signature's result for the type checker."""
    assert isinstance(result, pd.DataFrame)
    return result


def tensor(dtype: str, width: int, *, nullable: bool = False) -> Signature:
    column_dtype = {"f": "float64", "b": "bool"}.get(np.dtype(dtype).kind, "int64")
    columns = tuple(
        ColumnSpec(name=str(i), dtype=column_dtype, nullable=nullable) for i in range(width)
    )
    return Signature(
        kind="tensor",
        columns=columns,
        tensor=TensorSpec(dtype=dtype, shape=(-1, width)),
    )


MIXED = table(
    ColumnSpec(name="age", dtype="int64"),
    ColumnSpec(name="income", dtype="float64", nullable=True),
    ColumnSpec(name="city", dtype="string", categories=("Bergen", "Oslo")),
    ColumnSpec(name="member", dtype="bool"),
)

MIXED_FRAME = pd.DataFrame(
    {
        "age": np.array([31, 45], dtype=np.int64),
        "income": [52000.5, np.nan],
        "city": pd.Series(["Oslo", "Bergen"], dtype=STR),
        "member": [True, False],
    }
)

NUMERIC = table(
    ColumnSpec(name="a", dtype="float64"),
    ColumnSpec(name="b", dtype="float64"),
    ColumnSpec(name="c", dtype="float64"),
)
NUMERIC_FRAME = pd.DataFrame({"a": [1.0, 4.0], "b": [2.0, 5.0], "c": [3.0, 6.0]})


# --- containers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_input",
    [
        lambda frame: frame,
        lambda frame: pa.Table.from_pandas(frame, preserve_index=False),
        lambda frame: frame.to_dict("records"),
        lambda frame: {name: frame[name].tolist() for name in frame.columns},
        lambda frame: frame[list(reversed(frame.columns))],
        lambda frame: frame.set_axis([10, 20]),
    ],
    ids=["dataframe", "arrow-table", "records", "dict-of-lists", "reordered", "other-index"],
)
def test_validate_returns_signature_columns_and_dtypes_for_every_container(
    make_input: Callable[[pd.DataFrame], object],
) -> None:
    result = MIXED.validate(make_input(MIXED_FRAME))

    pd.testing.assert_frame_equal(frame_of(result), MIXED_FRAME)


@pytest.mark.parametrize(
    "data",
    [
        np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32),
        [[1.0, 2.0, 3.0], [4, 5, 6]],
        [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)],
        {"a": [1.0, 4.0], "b": [2.0, 5.0], "c": [3.0, 6.0]},
        {"a": np.array([1.0, 4.0]), "b": pd.Series([2.0, 5.0]), "c": (3, 6)},
        [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 4, "b": 5, "c": 6}],
        NUMERIC_FRAME,
        NUMERIC_FRAME.astype(np.float32),
    ],
    ids=[
        "float-array",
        "int-array",
        "list-of-lists",
        "list-of-tuples",
        "dict-of-lists",
        "dict-of-arrays",
        "records",
        "dataframe",
        "float32-dataframe",
    ],
)
def test_validate_accepts_numeric_batches_in_signature_column_order(data: object) -> None:
    result = NUMERIC.validate(data)

    pd.testing.assert_frame_equal(frame_of(result), NUMERIC_FRAME)


def test_validate_accepts_an_array_for_a_mixed_table_signature_in_column_order() -> None:
    array = np.array([[31, 52000.5, "Oslo", True], [45, None, "Bergen", False]], dtype=object)

    result = MIXED.validate(array)

    pd.testing.assert_frame_equal(frame_of(result), MIXED_FRAME)


def test_validate_returns_a_range_index_when_the_input_frame_has_another_index() -> None:
    result = NUMERIC.validate(NUMERIC_FRAME.set_axis(["x", "y"]))

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_index_equal(result.index, pd.RangeIndex(2))


def test_validate_drops_unknown_columns_when_told_to_ignore_them() -> None:
    frame = MIXED_FRAME.assign(extra=[1, 2])

    result = MIXED.validate(frame, unknown_columns="ignore")

    pd.testing.assert_frame_equal(frame_of(result), MIXED_FRAME)


def test_validate_drops_unknown_record_keys_when_told_to_ignore_them() -> None:
    records = [{**record, "extra": 1} for record in MIXED_FRAME.to_dict("records")]

    result = MIXED.validate(records, unknown_columns="ignore")

    pd.testing.assert_frame_equal(frame_of(result), MIXED_FRAME)


def test_validate_leaves_the_input_unchanged() -> None:
    frame = MIXED_FRAME.set_axis([5, 6])
    before = frame.copy()

    MIXED.validate(frame)

    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(
    "make_input",
    [
        lambda frame: frame,
        lambda frame: pa.Table.from_pandas(frame, preserve_index=False),
        lambda frame: frame.to_dict("records"),
    ],
    ids=["dataframe", "arrow-table", "records"],
)
def test_validated_frames_can_be_modified_in_place(
    make_input: Callable[[pd.DataFrame], object],
) -> None:
    signature = table(
        ColumnSpec(name="x", dtype="float64"),
        ColumnSpec(name="c", dtype="category", categories=("a", "b")),
    )
    frame = pd.DataFrame({"x": [1.0, 2.0], "c": pd.Categorical(["a", "b"])})
    result = signature.validate(make_input(frame))
    assert isinstance(result, pd.DataFrame)

    result.iloc[0, 0] = 9.0
    result.iloc[0, 1] = "b"

    assert result.iloc[0].tolist() == [9.0, "b"]
    assert frame.iloc[0].tolist() == [1.0, "a"]


def test_a_frame_already_in_signature_dtypes_is_still_checked_for_nulls() -> None:
    frame = MIXED_FRAME.assign(city=pd.Series(["Oslo", None], dtype=STR))

    with pytest.raises(SchemaValidationError, match=r"^column 'city', row 1: expected non-null"):
        MIXED.validate(frame)


# --- dtype paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "values", "expected"),
    [
        (ColumnSpec(name="v", dtype="int64"), [1, 2], pd.Series([1, 2], dtype=np.int64)),
        (
            ColumnSpec(name="v", dtype="int64", nullable=True),
            [1, None],
            pd.Series([1, None], dtype="Int64"),
        ),
        (ColumnSpec(name="v", dtype="float64"), [1, 2.5], pd.Series([1.0, 2.5])),
        (ColumnSpec(name="v", dtype="bool"), [True, False], pd.Series([True, False])),
        (
            ColumnSpec(name="v", dtype="bool", nullable=True),
            [True, None],
            pd.Series([True, None], dtype="boolean"),
        ),
        (
            ColumnSpec(name="v", dtype="string", nullable=True),
            ["a", None],
            pd.Series(["a", None], dtype=STR),
        ),
        (
            ColumnSpec(name="v", dtype="category", categories=("x", "y")),
            ["y", "x"],
            pd.Series(pd.Categorical(["y", "x"], categories=["x", "y"])),
        ),
        (
            ColumnSpec(name="v", dtype="datetime"),
            ["2024-01-31T12:00:00"],
            pd.Series(pd.to_datetime(["2024-01-31T12:00:00"]).as_unit("us")),
        ),
        (
            ColumnSpec(name="v", dtype="datetime", timezone="Europe/Oslo"),
            ["2024-01-31T12:00:00Z"],
            pd.Series(
                pd.to_datetime(["2024-01-31T13:00:00"]).tz_localize("Europe/Oslo")
            ).dt.as_unit("us"),
        ),
    ],
    ids=[
        "int64",
        "nullable-int64",
        "float64",
        "bool",
        "nullable-bool",
        "string",
        "category",
        "datetime",
        "datetime-tz",
    ],
)
def test_validate_returns_the_documented_dtype_for_each_column_type(
    spec: ColumnSpec, values: list[object], expected: pd.Series
) -> None:
    result = table(spec).validate({"v": values})

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_series_equal(result["v"], expected, check_names=False)


FLOAT_INPUTS = {
    "numpy-int8": pd.Series([1, 2], dtype=np.int8),
    "numpy-int64": pd.Series([1, 2], dtype=np.int64),
    "numpy-uint64": pd.Series([1, 2], dtype=np.uint64),
    "numpy-float32": pd.Series([1.0, 2.0], dtype=np.float32),
    "pandas-Int64": pd.Series([1, 2], dtype="Int64"),
    "pandas-Float64": pd.Series([1.0, 2.0], dtype="Float64"),
    "arrow-int32": pd.Series([1, 2], dtype="int32[pyarrow]"),
    "arrow-double": pd.Series([1.0, 2.0], dtype="double[pyarrow]"),
    "object-ints": pd.Series([1, 2], dtype=object),
    "object-numpy-scalars": pd.Series([np.int32(1), np.float32(2.0)], dtype=object),
}


@pytest.mark.parametrize("values", list(FLOAT_INPUTS.values()), ids=list(FLOAT_INPUTS))
def test_float_columns_accept_every_numeric_dtype(values: pd.Series) -> None:
    result = table(ColumnSpec(name="v", dtype="float64")).validate(pd.DataFrame({"v": values}))

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_series_equal(result["v"], pd.Series([1.0, 2.0], name="v"))


INT_INPUTS = {
    "numpy-int32": pd.Series([1, 2], dtype=np.int32),
    "numpy-uint8": pd.Series([1, 2], dtype=np.uint8),
    "numpy-whole-floats": pd.Series([1.0, 2.0]),
    "pandas-Int64": pd.Series([1, 2], dtype="Int64"),
    "pandas-UInt64": pd.Series([1, 2], dtype="UInt64"),
    "arrow-int64": pd.Series([1, 2], dtype="int64[pyarrow]"),
    "object-ints": pd.Series([1, 2.0], dtype=object),
}


@pytest.mark.parametrize("values", list(INT_INPUTS.values()), ids=list(INT_INPUTS))
def test_int_columns_accept_integers_and_whole_floats(values: pd.Series) -> None:
    result = table(ColumnSpec(name="v", dtype="int64")).validate(pd.DataFrame({"v": values}))

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_series_equal(result["v"], pd.Series([1, 2], name="v"))


BOOL_INPUTS = {
    "numpy-bool": pd.Series([True, False]),
    "pandas-boolean": pd.Series([True, False], dtype="boolean"),
    "arrow-bool": pd.Series([True, False], dtype="bool[pyarrow]"),
    "object-bools": pd.Series([True, np.False_], dtype=object),
}


@pytest.mark.parametrize("values", list(BOOL_INPUTS.values()), ids=list(BOOL_INPUTS))
def test_bool_columns_accept_every_boolean_dtype(values: pd.Series) -> None:
    result = table(ColumnSpec(name="v", dtype="bool")).validate(pd.DataFrame({"v": values}))

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_series_equal(result["v"], pd.Series([True, False], name="v"))


STRING_INPUTS = {
    "pandas-str": pd.Series(["a", "b"], dtype=STR),
    "pandas-string-python": pd.Series(["a", "b"], dtype="string[python]"),
    "pandas-string-pyarrow": pd.Series(["a", "b"], dtype="string[pyarrow]"),
    "object-strs": pd.Series(["a", "b"], dtype=object),
    "arrow-string": pd.Series(["a", "b"], dtype="large_string[pyarrow]"),
    "category-of-str": pd.Series(pd.Categorical(["a", "b"])),
}


@pytest.mark.parametrize("values", list(STRING_INPUTS.values()), ids=list(STRING_INPUTS))
def test_string_columns_accept_every_string_dtype(values: pd.Series) -> None:
    result = table(ColumnSpec(name="v", dtype="string")).validate(pd.DataFrame({"v": values}))

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_series_equal(result["v"], pd.Series(["a", "b"], dtype=STR, name="v"))


def test_string_columns_accept_a_numpy_unicode_array() -> None:
    signature = table(ColumnSpec(name="v", dtype="string"))

    result = signature.validate(np.array([["a"], ["b"]]))

    assert isinstance(result, pd.DataFrame)
    assert result["v"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(pd.Categorical(["b", "a"], categories=["b", "a"])),
        pd.Series(["b", "a"], dtype=STR),
        pd.Series(["b", "a"], dtype=pd.ArrowDtype(pa.dictionary(pa.int8(), pa.string()))),
    ],
    ids=["category-other-order", "strings", "arrow-dictionary"],
)
def test_category_columns_use_the_signature_category_order(values: pd.Series) -> None:
    signature = table(ColumnSpec(name="v", dtype="category", categories=("a", "b")))

    result = signature.validate(pd.DataFrame({"v": values}))

    assert isinstance(result, pd.DataFrame)
    assert result["v"].cat.categories.tolist() == ["a", "b"]
    assert result["v"].cat.codes.tolist() == [1, 0]


def test_category_columns_accept_unseen_categories_after_the_known_ones() -> None:
    signature = table(ColumnSpec(name="v", dtype="category", categories=("a", "b")))

    result = signature.validate([{"v": "z"}, {"v": "a"}])

    assert isinstance(result, pd.DataFrame)
    assert result["v"].cat.categories.tolist() == ["a", "b", "z"]


def test_category_columns_with_integer_categories_accept_integers() -> None:
    signature = table(ColumnSpec(name="v", dtype="category", categories=(1, 2, 3)))

    result = signature.validate({"v": [3, 1]})

    assert isinstance(result, pd.DataFrame)
    assert result["v"].cat.codes.tolist() == [2, 0]


DATETIME_INPUTS = {
    "numpy-ns": pd.Series(pd.to_datetime(["2024-01-31 12:00"]).as_unit("ns")),
    "tz-aware": pd.Series(pd.to_datetime(["2024-01-31 13:00"]).tz_localize("Europe/Oslo")),
    "iso-string": pd.Series(["2024-01-31T12:00:00Z"], dtype=object),
    "python-datetime": pd.Series([datetime.datetime(2024, 1, 31, 12)], dtype=object),
    "arrow-timestamp": pd.Series(
        pd.to_datetime(["2024-01-31 12:00"]), dtype="timestamp[ms][pyarrow]"
    ),
}


@pytest.mark.parametrize("values", list(DATETIME_INPUTS.values()), ids=list(DATETIME_INPUTS))
def test_datetime_columns_accept_datetimes_and_iso_strings(values: pd.Series) -> None:
    signature = table(ColumnSpec(name="v", dtype="datetime"))

    result = signature.validate(pd.DataFrame({"v": values}))

    assert isinstance(result, pd.DataFrame)
    assert result["v"].tolist() == [pd.Timestamp("2024-01-31 12:00")]
    assert str(result["v"].dtype) == "datetime64[us]"


def test_datetime_columns_read_python_dates_as_midnight() -> None:
    signature = table(ColumnSpec(name="v", dtype="datetime"))

    result = signature.validate({"v": [datetime.date(2024, 1, 31)]})

    assert isinstance(result, pd.DataFrame)
    assert result["v"].tolist() == [pd.Timestamp("2024-01-31")]


def test_nullable_columns_accept_every_spelling_of_missing() -> None:
    signature = table(ColumnSpec(name="v", dtype="float64", nullable=True))

    result = signature.validate({"v": [None, float("nan"), pd.NA, np.nan, 1.0]})

    assert isinstance(result, pd.DataFrame)
    assert result["v"].isna().tolist() == [True, True, True, True, False]


def test_an_all_missing_batch_is_valid_for_a_nullable_column() -> None:
    signature = table(ColumnSpec(name="v", dtype="bool", nullable=True))

    result = signature.validate({"v": [None, None]})

    assert isinstance(result, pd.DataFrame)
    assert str(result["v"].dtype) == "boolean"
    assert result["v"].isna().all()


# --- value errors -------------------------------------------------------------------


VALUE_ERRORS = [
    ("string-in-float", "float64", False, "abc", r"expected float64, got 'abc'", "float64"),
    (
        "numeric-string-in-float",
        "float64",
        False,
        "1.5",
        r"got '1\.5' \(strings are not",
        "float64",
    ),
    ("bool-in-float", "float64", False, True, r"got True \(booleans are not numbers\)", "float64"),
    ("bool-in-int", "int64", False, False, r"expected int64, got False \(booleans", "int64"),
    ("fraction-in-int", "int64", False, 2.5, r"got 2\.5 \(int64 columns take whole", "int64"),
    ("huge-int", "int64", False, 2**70, r"outside the int64 range", "int64"),
    ("int-in-bool", "bool", False, 1, r"expected bool, got 1$", "bool"),
    ("string-in-bool", "bool", False, "true", r"expected bool, got 'true'", "bool"),
    ("number-in-string", "string", False, 12345, r"expected string, got 12345", "string"),
    ("dict-in-float", "float64", False, {"a": 1}, r"got \{'a': 1\}", "float64"),
    (
        "null-in-float",
        "float64",
        False,
        None,
        r"expected non-null float64, got null",
        "non-null float64",
    ),
    ("nan-in-float", "float64", False, float("nan"), r"got null \(nan\)", "non-null float64"),
    ("null-in-int", "int64", False, None, r"not nullable", "non-null int64"),
    (
        "bad-datetime",
        "datetime",
        False,
        "31/01/2024",
        r"expected datetime, got '31/01/2024'",
        "datetime",
    ),
    ("number-in-datetime", "datetime", False, 1706700000, r"got 1706700000$", "datetime"),
    ("string-in-nullable-int", "int64", True, "7", r"expected int64, got '7'", "int64"),
]


@pytest.mark.parametrize(
    ("dtype", "nullable", "bad", "message", "expected"),
    [case[1:] for case in VALUE_ERRORS],
    ids=[case[0] for case in VALUE_ERRORS],
)
def test_validate_names_column_row_and_expectation_of_a_bad_value(
    dtype: str, nullable: bool, bad: object, message: str, expected: str
) -> None:
    good = {"float64": 1.0, "int64": 1, "bool": True, "string": "a", "datetime": "2024-01-01"}
    signature = table(ColumnSpec(name="v", dtype=dtype, nullable=nullable))
    records = [{"v": good[dtype]}, {"v": good[dtype]}, {"v": bad}, {"v": bad}]

    with pytest.raises(SchemaValidationError, match=rf"^column 'v', row 2: .*{message}") as info:
        signature.validate(records)

    assert (info.value.column, info.value.row, info.value.expected) == ("v", 2, expected)


TYPED_ERRORS = [
    ("bool-dtype-in-float", "float64", pd.Series([True, False]), 0, r"got True \(booleans"),
    ("nan-in-float", "float64", pd.Series([1.0, np.nan]), 1, r"non-null float64, got null"),
    ("na-in-Int64", "int64", pd.Series([1, None], dtype="Int64"), 1, r"non-null int64, got null"),
    ("fraction-in-float-dtype", "int64", pd.Series([1.0, 1.5]), 1, r"got 1\.5 \(int64"),
    ("inf-in-int", "int64", pd.Series([np.inf]), 0, r"got inf \(outside the int64 range\)"),
    ("uint64-overflow", "int64", pd.Series([2**64 - 1], dtype=np.uint64), 0, r"outside the int64"),
    ("ints-in-bool", "bool", pd.Series([0, 1]), 0, r"expected bool, got 0"),
    ("str-dtype-in-float", "float64", pd.Series(["1"], dtype=STR), 0, r"got '1'"),
    ("category-in-float", "float64", pd.Series(pd.Categorical(["a"])), 0, r"got 'a'"),
    (
        "datetime-in-float",
        "float64",
        pd.Series(pd.to_datetime(["2024-01-01"])),
        0,
        r"got Timestamp",
    ),
    ("complex-in-float", "float64", pd.Series([1 + 2j]), 0, r"got \(1\+2j\)"),
    (
        "timedelta-in-datetime",
        "datetime",
        pd.Series(pd.to_timedelta([1], "s")),
        0,
        r"got Timedelta",
    ),
    ("float-in-datetime", "datetime", pd.Series([1.5]), 0, r"expected datetime, got 1\.5"),
    ("ints-in-string", "string", pd.Series([1]), 0, r"expected string, got 1"),
]


@pytest.mark.parametrize(
    ("dtype", "values", "row", "message"),
    [case[1:] for case in TYPED_ERRORS],
    ids=[case[0] for case in TYPED_ERRORS],
)
def test_validate_rejects_typed_columns_of_the_wrong_kind(
    dtype: str, values: pd.Series, row: int, message: str
) -> None:
    signature = table(ColumnSpec(name="v", dtype=dtype))

    with pytest.raises(
        SchemaValidationError, match=rf"^column 'v', row {row}: .*{message}"
    ) as info:
        signature.validate(pd.DataFrame({"v": values}))

    assert (info.value.column, info.value.row) == ("v", row)


def test_category_columns_reject_values_of_another_type() -> None:
    signature = table(ColumnSpec(name="v", dtype="category", categories=("a", "b")))

    with pytest.raises(
        SchemaValidationError, match=r"^column 'v', row 1: expected category of str values, got 3"
    ):
        signature.validate({"v": ["a", 3]})


def test_validate_reports_the_first_bad_column_in_signature_order() -> None:
    records = [{"age": "x", "income": 1.0, "city": 5, "member": True}]

    with pytest.raises(SchemaValidationError, match=r"^column 'age', row 0") as info:
        MIXED.validate(list(reversed(records)))

    assert info.value.column == "age"


def test_validate_reports_a_null_before_a_later_bad_value_in_the_same_column() -> None:
    signature = table(ColumnSpec(name="v", dtype="int64"))

    with pytest.raises(SchemaValidationError, match=r"^column 'v', row 1: expected non-null"):
        signature.validate(pd.DataFrame({"v": [1.0, np.nan, 2.5]}))


# --- batch errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_input",
    [
        lambda frame: frame.drop(columns=["city"]),
        lambda frame: pa.Table.from_pandas(frame.drop(columns=["city"]), preserve_index=False),
        lambda frame: {name: frame[name].tolist() for name in ("age", "income", "member")},
    ],
    ids=["dataframe", "arrow-table", "dict-of-lists"],
)
def test_validate_rejects_a_missing_column(make_input: Callable[[pd.DataFrame], object]) -> None:
    with pytest.raises(
        SchemaValidationError, match=r"^column 'city': missing; expected columns age, income"
    ) as info:
        MIXED.validate(make_input(MIXED_FRAME))

    assert (info.value.column, info.value.row, info.value.expected) == (
        "city",
        None,
        "column 'city'",
    )


def test_validate_names_the_first_record_lacking_a_column() -> None:
    records = MIXED_FRAME.to_dict("records")
    del records[1]["city"]

    with pytest.raises(SchemaValidationError, match=r"^column 'city', row 1: missing") as info:
        MIXED.validate(records)

    assert (info.value.column, info.value.row) == ("city", 1)


def test_validate_rejects_an_unknown_column_by_default() -> None:
    with pytest.raises(
        SchemaValidationError,
        match=r"^column 'extra': unknown column; .*unknown_columns='ignore'",
    ) as info:
        MIXED.validate(MIXED_FRAME.assign(extra=1))

    assert (info.value.column, info.value.row, info.value.expected) == (
        "extra",
        None,
        "only signature columns",
    )


def test_validate_names_the_first_record_with_an_unknown_key() -> None:
    records = MIXED_FRAME.to_dict("records")
    records[1]["extra"] = 1

    with pytest.raises(SchemaValidationError, match=r"^column 'extra', row 1: unknown column"):
        MIXED.validate(records)


def test_validate_rejects_repeated_column_names() -> None:
    frame = pd.concat([NUMERIC_FRAME, NUMERIC_FRAME[["a"]]], axis=1)

    with pytest.raises(SchemaValidationError, match=r"^column 'a' appears more than once"):
        NUMERIC.validate(frame)


@pytest.mark.parametrize(
    "data",
    [
        [],
        NUMERIC_FRAME.iloc[:0],
        np.empty((0, 3)),
        {"a": [], "b": [], "c": []},
        pa.table({"a": pa.array([], pa.float64()), "b": [], "c": []}),
    ],
    ids=["empty-list", "empty-dataframe", "empty-array", "empty-dict", "empty-arrow-table"],
)
def test_validate_rejects_an_empty_batch(data: object) -> None:
    with pytest.raises(
        SchemaValidationError, match=r"^empty batch: expected at least one row$"
    ) as info:
        NUMERIC.validate(data)

    assert (info.value.column, info.value.row, info.value.expected) == (
        None,
        None,
        "at least one row",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.ones((2, 4)), r"expected a 2-D array with 3 columns \(a, b, c\), got 4 columns"),
        (np.ones(3), r"got shape \(3,\) \(for one row, use x\.reshape\(1, -1\)\)"),
        (np.ones((1, 1, 3)), r"got shape \(1, 1, 3\)$"),
    ],
    ids=["wrong-width", "one-dimensional", "three-dimensional"],
)
def test_validate_rejects_arrays_of_the_wrong_shape(data: np.ndarray, message: str) -> None:
    with pytest.raises(SchemaValidationError, match=message) as info:
        NUMERIC.validate(data)

    assert info.value.expected == "a 2-D array with 3 columns"


def test_validate_rejects_a_row_of_the_wrong_length() -> None:
    with pytest.raises(
        SchemaValidationError,
        match=r"^row 1: expected a list of 3 values \(a, b, c\), got 2 values",
    ) as info:
        NUMERIC.validate([[1.0, 2.0, 3.0], [1.0, 2.0]])

    assert (info.value.row, info.value.expected) == (1, "3 values")


def test_validate_rejects_a_list_of_scalars() -> None:
    with pytest.raises(SchemaValidationError, match=r"^row 0: expected a record \(dict\) or a row"):
        NUMERIC.validate([1.0, 2.0, 3.0])


def test_validate_rejects_a_record_list_with_a_non_record() -> None:
    with pytest.raises(SchemaValidationError, match=r"^row 1: expected a record .*got list"):
        NUMERIC.validate([{"a": 1.0, "b": 2.0, "c": 3.0}, [1.0, 2.0, 3.0]])


def test_validate_rejects_columns_of_different_lengths() -> None:
    with pytest.raises(
        SchemaValidationError, match=r"^column 'b' has 1 values but column 'a' has 2"
    ) as info:
        NUMERIC.validate({"a": [1.0, 2.0], "b": [1.0], "c": [1.0, 2.0]})

    assert (info.value.column, info.value.expected) == ("b", "2 values")


def test_validate_rejects_a_scalar_where_a_column_of_values_is_expected() -> None:
    with pytest.raises(SchemaValidationError, match=r"^column 'a': expected a list of values"):
        NUMERIC.validate({"a": 1.0, "b": 2.0, "c": 3.0})


@pytest.mark.parametrize("data", ["a,b,c", pd.Series([1.0]), 3.0], ids=["str", "series", "float"])
def test_validate_rejects_unsupported_containers(data: object) -> None:
    with pytest.raises(SchemaValidationError, match=r"^Cannot validate a \w+: expected a pandas"):
        NUMERIC.validate(data)


def test_validate_rejects_an_unknown_unknown_columns_policy() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown_columns must be 'reject' or 'ignore'"):
        NUMERIC.validate(NUMERIC_FRAME, unknown_columns="drop")  # type: ignore[arg-type]


# --- fast and general routes agree --------------------------------------------------


@pytest.mark.parametrize(
    "records",
    [
        [{"a": 1.0, "b": None, "c": 3}],
        [{"a": 1.0, "b": np.float32(2.5), "c": 3}],
        [{"a": 1.0, "b": 2.5, "c": 3}],
    ],
    ids=["null", "numpy-scalar", "plain"],
)
def test_the_fast_and_general_routes_give_the_same_frame(records: list[dict[str, object]]) -> None:
    signature = table(
        ColumnSpec(name="a", dtype="float64"),
        ColumnSpec(name="b", dtype="float64", nullable=True),
        ColumnSpec(name="c", dtype="int64"),
    )
    frame = pd.DataFrame(records).astype({"b": np.float64})

    result = signature.validate(records)

    pd.testing.assert_frame_equal(frame_of(result), frame.astype({"a": np.float64, "c": np.int64}))


def test_a_mixed_signature_converts_float_columns_together_with_the_others() -> None:
    names = [f"f{i}" for i in range(10)]
    signature = table(
        *(ColumnSpec(name=n, dtype="float64") for n in names), ColumnSpec(name="s", dtype="string")
    )
    records = [{**{n: float(i) for i, n in enumerate(names)}, "s": "x"}]

    result = signature.validate(records)

    assert isinstance(result, pd.DataFrame)
    assert list(result.columns) == [*names, "s"]
    assert result.iloc[0].tolist() == [*map(float, range(10)), "x"]


def test_a_mixed_signature_reports_a_bad_float_with_its_row() -> None:
    names = [f"f{i}" for i in range(10)]
    signature = table(
        *(ColumnSpec(name=n, dtype="float64") for n in names), ColumnSpec(name="s", dtype="string")
    )
    records = [{**{n: 1.0 for n in names}, "s": "x"} for _ in range(3)]
    records[2]["f7"] = "oops"

    with pytest.raises(SchemaValidationError, match=r"^column 'f7', row 2: expected float64"):
        signature.validate(records)


# --- tensors ------------------------------------------------------------------------


def test_tensor_signatures_return_an_array_of_the_tensor_dtype() -> None:
    signature = tensor("float32", 3)

    result = signature.validate([[1, 2, 3]])

    assert isinstance(result, np.ndarray)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, [[1.0, 2.0, 3.0]])


def test_tensor_signatures_return_the_input_array_when_it_already_matches() -> None:
    array = np.ones((2, 3), dtype=np.float32)

    assert tensor("float32", 3).validate(array) is array


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame(np.ones((1, 3))),
        [{"0": 1.0, "1": 1.0, "2": 1.0}],
        {"0": [1.0], "1": [1.0], "2": [1.0]},
    ],
    ids=["dataframe", "records", "dict-of-lists"],
)
def test_tensor_signatures_accept_columns_named_by_position(data: object) -> None:
    result = tensor("float64", 3).validate(data)

    np.testing.assert_array_equal(result, np.ones((1, 3)))


def test_int_tensor_signatures_accept_whole_floats() -> None:
    result = tensor("int32", 2).validate(np.array([[1.0, 2.0]]))

    assert isinstance(result, np.ndarray)
    assert result.dtype == np.int32


def test_bool_tensor_signatures_accept_bool_arrays() -> None:
    array = np.array([[True, False]])

    assert tensor("bool", 2).validate(array) is array


@pytest.mark.parametrize(
    ("signature", "data", "message"),
    [
        (tensor("int8", 3), np.array([[1, 2, 300]]), r"^column '2', row 0: expected int8, got 300"),
        (tensor("int8", 3), [[1, 2, 300]], r"^column '2', row 0: expected int8, got 300"),
        (
            tensor("float32", 2),
            np.array([[1.0, 1e300]]),
            r"got 1e\+300 \(outside the float32 range",
        ),
        (
            tensor("int64", 2),
            np.array([[1.0, 1.5]]),
            r"^column '1', row 0: expected int64, got 1\.5",
        ),
        (tensor("float64", 2), np.array([[1.0, np.nan]]), r"^column '1', row 0: expected non-null"),
        (tensor("float64", 2), np.array([[True, False]]), r"^column '0', row 0: .*got True"),
        (tensor("bool", 2), np.array([[1, 0]]), r"^column '0', row 0: expected bool, got 1"),
        (tensor("float64", 2), [[1.0, "x"]], r"^column '1', row 0: expected float64, got 'x'"),
    ],
    ids=[
        "int8-overflow-array",
        "int8-overflow-rows",
        "float32-overflow",
        "fraction-in-int",
        "nan-not-nullable",
        "bool-in-float",
        "int-in-bool",
        "string-in-float",
    ],
)
def test_tensor_signatures_reject_values_the_dtype_cannot_hold(
    signature: Signature, data: object, message: str
) -> None:
    with pytest.raises(SchemaValidationError, match=message):
        signature.validate(data)


def test_nullable_float_tensors_accept_nan() -> None:
    result = tensor("float64", 2, nullable=True).validate(np.array([[1.0, np.nan]]))

    assert isinstance(result, np.ndarray)
    assert np.isnan(result[0, 1])
