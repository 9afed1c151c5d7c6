"""Signature JSON: the round trip, and errors that name the field of an edited document."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from ferryman.signature import ColumnSpec, Signature, infer_signature

FRAME = pd.DataFrame(
    {
        "age": [31, 45],
        "income": [52000.5, np.nan],
        "city": pd.Series(["Oslo", None], dtype="str"),
        "segment": pd.Categorical(["a", "b"], categories=["b", "a"]),
        "seen": pd.to_datetime(["2024-01-01", "2024-02-01"]).tz_localize("UTC"),
        "member": [True, False],
    }
)
TABLE = infer_signature(
    FRAME,
    predictions=Prediction(
        predictions=np.array([1, 0]),
        probabilities=np.array([[0.2, 0.8], [0.7, 0.3]]),
        classes=[0, 1],
    ),
)
TENSOR = infer_signature(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), np.array([0.5, 1.0]))


@pytest.mark.parametrize("signature", [TABLE, TENSOR], ids=["table", "tensor"])
def test_to_dict_is_json_safe_and_from_dict_restores_the_signature(signature: Signature) -> None:
    text = json.dumps(signature.to_dict(), allow_nan=False)

    assert Signature.from_dict(json.loads(text)) == signature


def test_to_dict_has_the_documented_shape() -> None:
    data = TABLE.to_dict()

    assert list(data) == ["format_version", "kind", "columns", "tensor", "output"]
    assert data["columns"][0] == {  # type: ignore[index]
        "name": "age",
        "dtype": "int64",
        "nullable": False,
        "minimum": 31.0,
        "maximum": 45.0,
        "categories": None,
        "timezone": None,
    }
    assert data["output"] == {
        "kind": "probabilities",
        "dtype": "int64",
        "classes": [0, 1],
        "n_outputs": 1,
    }


def test_tensor_signatures_serialise_dtype_and_shape() -> None:
    assert TENSOR.to_dict()["tensor"] == {"dtype": "float32", "shape": [-1, 2]}


def test_from_dict_accepts_a_document_without_optional_fields() -> None:
    signature = Signature.from_dict(
        {"kind": "table", "columns": [{"name": "x", "dtype": "float64"}]}
    )

    assert signature.columns == (ColumnSpec(name="x", dtype="float64"),)


def edit(change: Callable[[dict[str, object]], None]) -> dict[str, object]:
    data = copy.deepcopy(TABLE.to_dict())
    change(data)
    return data


def set_column(position: int, key: str, value: object) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        data["columns"][position][key] = value  # type: ignore[index]

    return change


MALFORMED = {
    "unknown-dtype": (set_column(0, "dtype", "float32"), r"columns\.0\.dtype: Input should be"),
    "misspelt-key": (set_column(1, "nulable", True), r"columns\.1\.nulable: Extra inputs"),
    "missing-kind": (lambda d: d.pop("kind"), r"kind: Field required"),
    "min-above-max": (
        set_column(0, "minimum", 99.0),
        r"columns\.0: column 'age': minimum 99\.0 is greater than maximum 45\.0",
    ),
    "categories-on-int": (set_column(0, "categories", ["a"]), r"columns\.0: categories apply only"),
    "repeated-category": (set_column(3, "categories", ["a", "a"]), r"must not repeat"),
    "mixed-categories": (set_column(3, "categories", ["a", 1]), r"must all have one type"),
    "bad-timezone": (
        set_column(4, "timezone", "Mars/Olympus"),
        r"unknown time zone 'Mars/Olympus'",
    ),
    "timezone-on-float": (set_column(1, "timezone", "UTC"), r"timezone applies only to datetime"),
    "infinite-maximum": (set_column(1, "maximum", float("inf")), r"columns\.1\.maximum: .*finite"),
    "repeated-name": (set_column(1, "name", "age"), r"column names must be unique; repeated: age"),
    "no-columns": (lambda d: d.update(columns=[]), r"columns: .*at least 1"),
    "future-version": (lambda d: d.update(format_version=2), r"format_version: Input should be 1"),
    "tensor-without-spec": (lambda d: d.update(kind="tensor"), r"'tensor' must be set exactly"),
    "probabilities-without-classes": (
        lambda d: d["output"].update(classes=None),
        r"output: a 'probabilities' output needs its classes",
    ),
}


@pytest.mark.parametrize(("change", "message"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_from_dict_names_the_field_of_a_malformed_document(
    change: Callable[[dict[str, object]], None], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=rf"^Invalid signature: .*{message}"):
        Signature.from_dict(edit(change))


def test_from_dict_refuses_a_document_that_is_not_an_object() -> None:
    with pytest.raises(
        InvalidInputError, match=r"^Invalid signature: expected a JSON object, got list"
    ):
        Signature.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([{"name": "a", "dtype": "float64"}], r"tensor columns are named by position"),
        ([{"name": "0", "dtype": "int64"}], r"must have dtype float64, not int64"),
        ([{"name": "0", "dtype": "float64"}, {"name": "1", "dtype": "float64"}], r"does not match"),
    ],
    ids=["named", "wrong-dtype", "wrong-width"],
)
def test_from_dict_checks_tensor_columns_against_the_tensor(
    columns: list[dict[str, object]], message: str
) -> None:
    data = {"kind": "tensor", "columns": columns, "tensor": {"dtype": "float32", "shape": [-1, 1]}}

    with pytest.raises(InvalidInputError, match=message):
        Signature.from_dict(data)


def test_integer_tensor_columns_cannot_be_nullable() -> None:
    data = {
        "kind": "tensor",
        "columns": [{"name": "0", "dtype": "int64", "nullable": True}],
        "tensor": {"dtype": "int32", "shape": [-1, 1]},
    }

    with pytest.raises(InvalidInputError, match=r"int32 tensor cannot be nullable"):
        Signature.from_dict(data)


def test_column_names_lists_the_columns_in_order() -> None:
    assert TABLE.column_names == ("age", "income", "city", "segment", "seen", "member")


def test_an_edited_copy_validates_with_its_own_columns() -> None:
    TABLE.validate(FRAME)
    edited = TABLE.model_copy(update={"columns": TABLE.columns[:1]})

    result = edited.validate({"age": [1]})

    assert isinstance(result, pd.DataFrame)
    assert edited.column_names == ("age",)
    assert list(result.columns) == ["age"]


def test_signatures_compare_equal_whether_or_not_they_have_validated() -> None:
    fresh = Signature.from_dict(TABLE.to_dict())
    TABLE.validate(FRAME)

    assert fresh == TABLE
    assert hash(fresh) == hash(TABLE)


def test_float_categories_absorb_integer_ones() -> None:
    column = ColumnSpec(name="v", dtype="category", categories=(1, 2.5))

    assert column.categories == (1.0, 2.5)


PICKLE_CASES = {
    "table": (TABLE, FRAME),
    "tensor": (TENSOR, np.ones((1, 2), dtype=np.float32)),
    "one-column": (infer_signature(FRAME[["age"]]), [{"age": 1}]),
}


@pytest.mark.parametrize(
    ("signature", "batch"), list(PICKLE_CASES.values()), ids=list(PICKLE_CASES)
)
def test_a_signature_pickles_after_validating(signature: Signature, batch: object) -> None:
    expected = signature.validate(batch)

    restored = pickle.loads(pickle.dumps(signature))

    assert restored == signature
    assert repr(restored.validate(batch)) == repr(expected)
