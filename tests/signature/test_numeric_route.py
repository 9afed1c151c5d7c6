"""The all-numeric route of Signature.validate: Python numbers read exactly as NumPy reads them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import SchemaValidationError
from ferryman.signature import infer_signature

NAMES = ("x", "y", "z")
FLOATS = infer_signature(pd.DataFrame({name: [0.5, 1.5] for name in NAMES}))
MIXED = infer_signature(pd.DataFrame({"x": [0.5, 1.5], "y": [1, 2], "z": [0.5, 2.5]}))
TENSOR = infer_signature(np.array([[0.5, 1.5, 2.5]]))

#: Ints and floats as JSON and Python callers send them, ints well beyond 2**53.
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, -0.0, 2**53 + 1, 2**63 - 1]),
)

CONTAINERS: dict[str, Callable[[list[list[Any]]], object]] = {
    "rows": lambda rows: rows,
    "records": lambda rows: [dict(zip(NAMES, row, strict=True)) for row in rows],
    "dict-of-lists": lambda rows: {n: [row[i] for row in rows] for i, n in enumerate(NAMES)},
}
ROWS = st.lists(st.lists(NUMBERS, min_size=3, max_size=3), min_size=1, max_size=40)


@pytest.mark.parametrize("container", CONTAINERS.values(), ids=CONTAINERS.keys())
@settings(max_examples=80, deadline=None)
@given(rows=ROWS)
def test_python_numbers_validate_to_the_floats_numpy_reads(
    container: Callable[[list[list[Any]]], object], rows: list[list[Any]]
) -> None:
    frame = FLOATS.validate(container(rows))

    assert isinstance(frame, pd.DataFrame)
    assert frame.to_numpy().tobytes() == np.array(rows, dtype=np.float64).tobytes()


@settings(max_examples=80, deadline=None)
@given(rows=ROWS)
def test_python_numbers_validate_to_the_tensor_numpy_reads(rows: list[list[Any]]) -> None:
    array = TENSOR.validate(rows)

    assert isinstance(array, np.ndarray)
    assert array.tobytes() == np.array(rows, dtype=np.float64).tobytes()


def test_the_float_columns_of_a_mixed_signature_are_read_exactly() -> None:
    frame = MIXED.validate([{"x": 2**53 + 1, "y": 3, "z": 0.1}, {"x": 7, "y": 4, "z": -0.0}])

    assert isinstance(frame, pd.DataFrame)
    assert frame["x"].tolist() == [float(2**53 + 1), 7.0]
    assert frame["y"].tolist() == [3, 4]
    assert np.signbit(frame["z"].to_numpy()).tolist() == [False, True]


@pytest.mark.parametrize("container", CONTAINERS.values(), ids=CONTAINERS.keys())
def test_a_validated_batch_can_be_changed_in_place_by_the_model(
    container: Callable[[list[list[Any]]], object],
) -> None:
    frame = FLOATS.validate(container([[1, 2.5, 3.5], [4.5, 5, 6]]))
    assert isinstance(frame, pd.DataFrame)

    frame.iloc[0, 0] = -1.0
    frame["y"] *= 2

    assert frame.to_numpy().tolist() == [[-1.0, 5.0, 3.5], [4.5, 10.0, 6.0]]


def test_an_int_beyond_float64_is_refused_naming_column_and_row() -> None:
    with pytest.raises(ValueError, match=r"column 'y', row 1: .*outside the float64 range") as e:
        FLOATS.validate([[1.0, 2.0, 3.0], [1.0, 10**400, 3.0]])
    assert (getattr(e.value, "column", None), getattr(e.value, "row", None)) == ("y", 1)


def test_as_array_returns_the_checked_array_where_the_frame_would_hold_one_dtype() -> None:
    array = np.array([[0.5, 1.0, 2.0], [1.5, 2.0, 3.0]])

    checked = FLOATS.validate(array, as_array=True)

    assert isinstance(checked, np.ndarray) and checked.dtype == np.float64
    np.testing.assert_array_equal(checked, FLOATS.validate(array).to_numpy())
    assert checked is not array  # a fresh array: the caller's is never shared
    assert isinstance(MIXED.validate(array, as_array=True), pd.DataFrame)  # two dtypes
    for container in CONTAINERS.values():
        from_python = FLOATS.validate(container(array.tolist()), as_array=True)
        assert isinstance(from_python, np.ndarray)
        np.testing.assert_array_equal(from_python, checked)
    frame = pd.DataFrame(array, columns=list(NAMES))
    assert isinstance(FLOATS.validate(frame, as_array=True), pd.DataFrame)


def test_as_array_refuses_a_null_in_a_column_that_is_not_nullable() -> None:
    with_nan = np.array([[0.5, np.nan, 2.0]])

    with pytest.raises(SchemaValidationError) as frame_route:
        FLOATS.validate(with_nan)
    with pytest.raises(SchemaValidationError) as array_route:
        FLOATS.validate(with_nan, as_array=True)

    assert str(array_route.value) == str(frame_route.value)
    assert array_route.value.column == "y"
