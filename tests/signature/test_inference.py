"""infer_signature: column types, nullability, ranges, categories, tensors and outputs."""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ferryman.errors import InvalidInputError, SignatureInferenceError
from ferryman.flavors.base import Prediction
from ferryman.signature import MAX_CATEGORIES, MAX_CLASSES, ColumnSpec, OutputSpec, infer_signature

STR = pd.StringDtype(na_value=np.nan)


def only_column(values: pd.Series) -> ColumnSpec:
    return infer_signature(pd.DataFrame({"v": values})).columns[0]


DTYPE_TABLE = {
    "numpy-int8": (pd.Series([1, 2], dtype=np.int8), "int64", None),
    "numpy-uint32": (pd.Series([1, 2], dtype=np.uint32), "int64", None),
    "numpy-int64": (pd.Series([1, 2]), "int64", None),
    "pandas-Int64": (pd.Series([1, 2], dtype="Int64"), "int64", None),
    "pandas-UInt8": (pd.Series([1, 2], dtype="UInt8"), "int64", None),
    "arrow-int16": (pd.Series([1, 2], dtype="int16[pyarrow]"), "int64", None),
    "object-ints": (pd.Series([1, 2], dtype=object), "int64", None),
    "numpy-float16": (pd.Series([1.5, 2], dtype=np.float16), "float64", None),
    "numpy-float64": (pd.Series([1.5, 2.0]), "float64", None),
    "pandas-Float32": (pd.Series([1.5, 2.0], dtype="Float32"), "float64", None),
    "arrow-float": (pd.Series([1.5, 2.0], dtype="float[pyarrow]"), "float64", None),
    "object-ints-and-floats": (pd.Series([1, 2.5], dtype=object), "float64", None),
    "numpy-bool": (pd.Series([True, False]), "bool", None),
    "pandas-boolean": (pd.Series([True, False], dtype="boolean"), "bool", None),
    "arrow-bool": (pd.Series([True, False], dtype="bool[pyarrow]"), "bool", None),
    "object-bools": (pd.Series([True, False], dtype=object), "bool", None),
    "pandas-str": (pd.Series(["a", "b"], dtype=STR), "string", None),
    "pandas-string-python": (pd.Series(["a", "b"], dtype="string[python]"), "string", None),
    "pandas-string-pyarrow": (pd.Series(["a", "b"], dtype="string[pyarrow]"), "string", None),
    "object-strs": (pd.Series(["a", "b"], dtype=object), "string", None),
    "arrow-string": (pd.Series(["a", "b"], dtype=pd.ArrowDtype(pa.string())), "string", None),
    "pandas-category": (pd.Series(pd.Categorical(["a", "b"])), "category", None),
    "arrow-dictionary": (
        pd.Series(["a", "b"], dtype=pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))),
        "category",
        None,
    ),
    "numpy-datetime64-ns": (
        pd.Series(pd.to_datetime(["2024-01-01"]).as_unit("ns")),
        "datetime",
        None,
    ),
    "pandas-datetime-tz": (
        pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("Europe/Oslo")),
        "datetime",
        "Europe/Oslo",
    ),
    "arrow-timestamp-tz": (
        pd.Series(
            pd.to_datetime(["2024-01-01"]).tz_localize("UTC"), dtype="timestamp[s, UTC][pyarrow]"
        ),
        "datetime",
        "UTC",
    ),
    "object-datetimes": (
        pd.Series([datetime.datetime(2024, 1, 1)], dtype=object),
        "datetime",
        None,
    ),
    "object-aware-datetimes": (
        pd.Series([datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)], dtype=object),
        "datetime",
        "UTC",
    ),
    "object-dates": (pd.Series([datetime.date(2024, 1, 1)], dtype=object), "datetime", None),
}


@pytest.mark.parametrize(
    ("values", "dtype", "timezone"), list(DTYPE_TABLE.values()), ids=list(DTYPE_TABLE)
)
def test_infer_signature_maps_each_training_dtype_to_a_signature_type(
    values: pd.Series, dtype: str, timezone: str | None
) -> None:
    column = only_column(values)

    assert (column.dtype, column.timezone) == (dtype, timezone)


@pytest.mark.parametrize(
    ("arrow_type", "values", "dtype"),
    [
        (pa.int32(), [1, None], "int64"),
        (pa.float32(), [1.5, None], "float64"),
        (pa.bool_(), [True, None], "bool"),
        (pa.large_string(), ["a", None], "string"),
        (pa.dictionary(pa.int8(), pa.string()), ["a", None], "category"),
        (pa.timestamp("ms"), [datetime.datetime(2024, 1, 1), None], "datetime"),
        (pa.date32(), [datetime.date(2024, 1, 1), None], "datetime"),
    ],
    ids=["int32", "float32", "bool", "large-string", "dictionary", "timestamp", "date32"],
)
def test_infer_signature_reads_arrow_tables_with_nulls(
    arrow_type: pa.DataType, values: list[object], dtype: str
) -> None:
    column = infer_signature(pa.table({"v": pa.array(values, arrow_type)})).columns[0]

    assert (column.dtype, column.nullable) == (dtype, True)


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1.0, np.nan]),
        pd.Series([1, None], dtype="Int64"),
        pd.Series(["a", None], dtype=STR),
        pd.Series([True, None], dtype="boolean"),
        pd.Series(["2024-01-01", None], dtype="datetime64[us]"),
    ],
    ids=["float", "Int64", "str", "boolean", "datetime"],
)
def test_a_column_with_a_missing_value_is_nullable(values: pd.Series) -> None:
    assert only_column(values).nullable


def test_a_nullable_dtype_without_missing_values_is_not_nullable() -> None:
    assert not only_column(pd.Series([1, 2], dtype="Int64")).nullable


def test_numeric_ranges_come_from_finite_training_values() -> None:
    column = only_column(pd.Series([3.0, -np.inf, 1.5, np.nan, np.inf, 7.25]))

    assert (column.minimum, column.maximum) == (1.5, 7.25)


def test_a_numeric_column_without_finite_values_has_no_range() -> None:
    column = only_column(pd.Series([np.nan, np.inf]))

    assert (column.minimum, column.maximum) == (None, None)


def test_string_columns_list_their_sorted_distinct_values_as_categories() -> None:
    column = only_column(pd.Series(["Oslo", "Bergen", None, "Oslo"], dtype=STR))

    assert column.categories == ("Bergen", "Oslo")


def test_string_columns_with_many_distinct_values_list_no_categories() -> None:
    values = pd.Series([f"v{i}" for i in range(MAX_CATEGORIES + 1)], dtype=STR)

    assert only_column(values).categories is None


def test_string_columns_at_the_category_limit_list_their_categories() -> None:
    values = pd.Series([f"v{i:02d}" for i in range(MAX_CATEGORIES)], dtype=STR)

    assert only_column(values).categories == tuple(sorted(values))


def test_category_columns_keep_all_declared_categories_in_code_order() -> None:
    values = pd.Series(pd.Categorical(["b"], categories=["c", "b", "a"]))

    assert only_column(values).categories == ("c", "b", "a")


def test_category_columns_keep_integer_categories_as_integers() -> None:
    assert only_column(pd.Series(pd.Categorical([3, 1]))).categories == (1, 3)


def test_a_numpy_array_gives_a_tensor_signature_with_per_feature_columns() -> None:
    X = np.array([[1.0, 10.0], [np.nan, 20.0]], dtype=np.float32)

    signature = infer_signature(X)

    assert signature.kind == "tensor"
    assert signature.tensor is not None
    assert (signature.tensor.dtype, signature.tensor.shape) == ("float32", (-1, 2))
    assert [(c.name, c.dtype, c.nullable, c.minimum, c.maximum) for c in signature.columns] == [
        ("0", "float64", True, 1.0, 1.0),
        ("1", "float64", False, 10.0, 20.0),
    ]


@pytest.mark.parametrize(
    ("dtype", "column_dtype"),
    [(np.int16, "int64"), (np.uint8, "int64"), (np.bool_, "bool"), (np.float64, "float64")],
    ids=["int16", "uint8", "bool", "float64"],
)
def test_tensor_signatures_keep_the_array_dtype(dtype: type[np.generic], column_dtype: str) -> None:
    signature = infer_signature(np.zeros((2, 3), dtype=dtype))

    assert signature.tensor is not None
    assert signature.tensor.dtype == np.dtype(dtype).name
    assert {column.dtype for column in signature.columns} == {column_dtype}


def test_a_one_dimensional_array_is_refused_with_the_expected_shape() -> None:
    with pytest.raises(
        SignatureInferenceError,
        match=r"X must be 2-D with shape \(n_samples, n_features\), got shape \(3,\)\. "
        r"Use X\.reshape\(-1, 1\)",
    ):
        infer_signature(np.zeros(3))


def test_a_three_dimensional_array_is_refused() -> None:
    with pytest.raises(SignatureInferenceError, match=r"got shape \(2, 2, 2\)"):
        infer_signature(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "X",
    [np.array([["a", "b"]]), np.array([[1 + 2j]]), np.array([[{"a": 1}]], dtype=object)],
    ids=["unicode", "complex", "object"],
)
def test_a_non_numeric_array_is_refused(X: np.ndarray) -> None:
    with pytest.raises(SignatureInferenceError, match=rf"X has dtype {X.dtype}; a NumPy X must"):
        infer_signature(X)


@pytest.mark.parametrize(
    "X",
    [
        pd.DataFrame({"a": pd.Series([], dtype=float)}),
        pd.DataFrame(index=[0, 1]),
        np.zeros((0, 3)),
        pa.table({"a": pa.array([], pa.int64())}),
    ],
    ids=["no-rows", "no-columns", "empty-array", "empty-arrow-table"],
)
def test_empty_training_data_is_refused(X: object) -> None:
    with pytest.raises(SignatureInferenceError, match=r"Cannot infer a signature from empty"):
        infer_signature(X)  # type: ignore[arg-type, unused-ignore]


def test_training_data_of_an_unsupported_container_is_refused() -> None:
    with pytest.raises(SignatureInferenceError, match=r"X must be a pandas DataFrame, .* got list"):
        infer_signature([[1.0, 2.0]])  # type: ignore[arg-type, unused-ignore]


def test_y_of_another_length_is_refused_with_both_lengths() -> None:
    with pytest.raises(InvalidInputError, match=r"^X has 3 rows but y has 2;"):
        infer_signature(pd.DataFrame({"a": [1, 2, 3]}), np.array([0, 1]))


def test_predictions_of_another_length_are_refused_with_both_lengths() -> None:
    with pytest.raises(InvalidInputError, match=r"^X has 2 rows but predictions has 3;"):
        infer_signature(
            pd.DataFrame({"a": [1, 2]}), predictions=Prediction(predictions=np.zeros(3))
        )


UNSUPPORTED = {
    "dicts": (pd.Series([{"a": 1}, {"b": 2}]), r"holds values of unsupported type dict"),
    "lists": (pd.Series([[1], [2]]), r"holds values of unsupported type list"),
    "complex": (pd.Series([1 + 2j]), r"has unsupported type complex128"),
    "timedelta": (pd.Series(pd.to_timedelta([1], unit="s")), r"has unsupported type timedelta64"),
    "bytes": (pd.Series([b"x"]), r"holds values of unsupported type bytes"),
    "decimal": (pd.Series([decimal.Decimal("1.5")]), r"unsupported type Decimal"),
    "mixed": (pd.Series(["a", 1], dtype=object), r"holds values of mixed types str, int"),
    "all-missing": (pd.Series([None, None], dtype=object), r"holds only missing values"),
    "period": (
        pd.Series(pd.period_range("2024-01", periods=2, freq="M")),
        r"unsupported type period",
    ),
    "arrow-struct": (
        pd.Series([{"a": 1}], dtype=pd.ArrowDtype(pa.struct([("a", pa.int64())]))),
        r"holds values of unsupported type dict",
    ),
    "datetime-categories": (
        pd.Series(pd.Categorical(pd.to_datetime(["2024-01-01"]))),
        r"categorical with categories of type 'datetime64'",
    ),
}


@pytest.mark.parametrize(("values", "message"), list(UNSUPPORTED.values()), ids=list(UNSUPPORTED))
def test_unsupported_column_types_are_refused_naming_the_column(
    values: pd.Series, message: str
) -> None:
    with pytest.raises(SignatureInferenceError, match=rf"^Column 'v' .*{message}"):
        infer_signature(pd.DataFrame({"v": values}))


def test_non_string_column_names_are_refused() -> None:
    with pytest.raises(
        SignatureInferenceError, match=r"Column names must be strings, got 0 \(int\)"
    ):
        infer_signature(pd.DataFrame(np.zeros((2, 2))))


def test_repeated_column_names_are_refused() -> None:
    with pytest.raises(SignatureInferenceError, match=r"must be unique; repeated: \['a'\]"):
        infer_signature(pd.DataFrame(np.zeros((2, 2)), columns=["a", "a"]))


# --- outputs ------------------------------------------------------------------------

X2 = pd.DataFrame({"a": [1.0, 2.0, 3.0]})


def test_predictions_with_probabilities_give_a_probabilities_output() -> None:
    prediction = Prediction(
        predictions=np.array(["no", "yes", "no"]),
        probabilities=np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
        classes=["no", "yes"],
    )

    output = infer_signature(X2, predictions=prediction).output

    assert output == OutputSpec(kind="probabilities", dtype="string", classes=("no", "yes"))


def test_probability_classes_are_recovered_from_labels_when_missing() -> None:
    prediction = Prediction(predictions=np.array([1, 0, 1]), probabilities=np.full((3, 2), 0.5))

    output = infer_signature(X2, predictions=prediction).output

    assert output is not None
    assert output.classes == (0, 1)


def test_labels_with_classes_give_a_label_output() -> None:
    prediction = Prediction(predictions=np.array([0, 1, 0]), classes=[np.int64(0), np.int64(1)])

    output = infer_signature(X2, predictions=prediction).output

    assert output == OutputSpec(kind="label", dtype="int64", classes=(0, 1))


def test_float_predictions_give_a_value_output() -> None:
    output = infer_signature(
        X2, predictions=Prediction(predictions=np.array([0.5, 1.5, 2.0]))
    ).output

    assert output == OutputSpec(kind="value", dtype="float64")


def test_multi_output_predictions_count_their_outputs() -> None:
    output = infer_signature(X2, predictions=Prediction(predictions=np.zeros((3, 2)))).output

    assert output == OutputSpec(kind="value", dtype="float64", n_outputs=2)


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        (np.array([1.5, 2.0, 3.0]), OutputSpec(kind="value", dtype="float64")),
        (np.array([1, 0, 1]), OutputSpec(kind="label", dtype="int64", classes=(0, 1))),
        (pd.Series(["b", "a", "b"]), OutputSpec(kind="label", dtype="string", classes=("a", "b"))),
        (
            pd.Series([True, False, True]),
            OutputSpec(kind="label", dtype="bool", classes=(False, True)),
        ),
        ([2, 1, 2], OutputSpec(kind="label", dtype="int64", classes=(1, 2))),
    ],
    ids=["floats", "ints", "strings", "bools", "list"],
)
def test_without_predictions_the_output_is_inferred_from_y(y: object, expected: OutputSpec) -> None:
    assert infer_signature(X2, y).output == expected  # type: ignore[arg-type]


def test_predictions_take_precedence_over_y() -> None:
    output = infer_signature(
        X2, np.array([0, 1, 0]), predictions=Prediction(predictions=np.array([0.1, 0.2, 0.3]))
    ).output

    assert output is not None
    assert output.kind == "value"


def test_without_y_or_predictions_there_is_no_output() -> None:
    assert infer_signature(X2).output is None


def test_labels_beyond_the_class_limit_list_no_classes() -> None:
    X = pd.DataFrame({"a": np.zeros(MAX_CLASSES + 1)})

    output = infer_signature(X, np.arange(MAX_CLASSES + 1)).output

    assert output == OutputSpec(kind="label", dtype="int64", classes=None)
