"""Invariants over generated frames of every supported column type.

- validate(X) returns X unchanged when X already has the signature's dtypes, and every
  container (records, dict of lists, Arrow table) gives the same frame;
- infer_signature -> to_dict -> JSON -> from_dict is the identity;
- a frame with one corrupted cell is rejected naming exactly that column and row.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import SchemaValidationError
from ferryman.signature import Signature, infer_signature

STR = pd.StringDtype(na_value=np.nan)


@dataclass(frozen=True)
class Kind:
    """How to generate one column type, and a value that corrupts it."""

    values: st.SearchStrategy[object]
    build: Callable[[list[object]], pd.Series]
    corrupt: object
    needs_null: bool = False


TEXT = st.text(alphabet="abcxyz é", max_size=5)
MOMENTS = st.datetimes(
    min_value=datetime.datetime(1900, 1, 1), max_value=datetime.datetime(2200, 1, 1)
)
CATEGORIES = ["low", "mid", "high"]

KINDS: dict[str, Kind] = {
    "int64": Kind(st.integers(-(2**62), 2**62), lambda v: pd.Series(v, dtype=np.int64), "seven"),
    "float64": Kind(
        st.floats(allow_nan=True, allow_infinity=True) | st.none(),
        lambda v: pd.Series([np.nan if x is None else x for x in v], dtype=np.float64),
        "1.5",
    ),
    "bool": Kind(st.booleans(), lambda v: pd.Series(v, dtype=np.bool_), 1),
    "Int64": Kind(
        st.integers(-(2**62), 2**62) | st.none(),
        lambda v: pd.Series(v, dtype="Int64"),
        2.5,
        needs_null=True,
    ),
    "boolean": Kind(
        st.booleans() | st.none(), lambda v: pd.Series(v, dtype="boolean"), "yes", True
    ),
    "str": Kind(TEXT | st.none(), lambda v: pd.Series(v, dtype=STR), 12.5),
    "category": Kind(
        st.sampled_from(CATEGORIES),
        lambda v: pd.Series(pd.Categorical(v, categories=CATEGORIES)),
        3,
    ),
    "datetime": Kind(
        MOMENTS | st.none(),
        lambda v: pd.Series(v, dtype=object).astype("datetime64[us]"),
        "not a date",
    ),
    "datetime-utc": Kind(
        MOMENTS,
        lambda v: pd.Series(v, dtype=object).astype("datetime64[us]").dt.tz_localize("UTC"),
        True,
    ),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """DataFrames whose columns already have the dtypes validation returns."""
    rows = draw(st.integers(1, 6))
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5))
    columns = {}
    for position, name in enumerate(kinds):
        kind = KINDS[name]
        values = draw(st.lists(kind.values, min_size=rows, max_size=rows))
        if kind.needs_null:
            values[draw(st.integers(0, rows - 1))] = None
        columns[f"{name}_{position}"] = kind.build(values)
    return pd.DataFrame(columns)


def kind_of(column: str) -> Kind:
    return KINDS[column.rsplit("_", 1)[0]]


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(frames())
def test_validating_a_frame_of_signature_dtypes_returns_it_unchanged(frame: pd.DataFrame) -> None:
    result = infer_signature(frame).validate(frame)

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_frame_equal(result, frame, check_exact=True)


CONTAINERS: dict[str, Callable[[pd.DataFrame], object]] = {
    "records": lambda frame: frame.to_dict("records"),
    "dict-of-lists": lambda frame: {name: frame[name].tolist() for name in frame.columns},
    "arrow-table": lambda frame: pa.Table.from_pandas(frame, preserve_index=False),
}


@pytest.mark.parametrize("container", list(CONTAINERS.values()), ids=list(CONTAINERS))
@PROPERTY
@given(frame=frames())
def test_every_container_validates_to_the_same_frame(
    container: Callable[[pd.DataFrame], object], frame: pd.DataFrame
) -> None:
    result = infer_signature(frame).validate(container(frame))

    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_frame_equal(result, frame, check_exact=True)


@PROPERTY
@given(frames(), st.booleans())
def test_a_signature_survives_the_json_round_trip(frame: pd.DataFrame, as_array: bool) -> None:
    numeric = frame[[c for c in frame.columns if frame[c].dtype in (np.float64, np.int64)]]
    signature = infer_signature(numeric.to_numpy() if as_array and numeric.shape[1] else frame)

    text = json.dumps(signature.to_dict(), allow_nan=False)

    assert Signature.from_dict(json.loads(text)) == signature


@PROPERTY
@given(frames(), st.data())
def test_one_corrupted_cell_is_reported_at_its_column_and_row(
    frame: pd.DataFrame, data: st.DataObject
) -> None:
    signature = infer_signature(frame)
    column = data.draw(st.sampled_from(list(frame.columns)))
    row = data.draw(st.integers(0, len(frame) - 1))
    records = frame.to_dict("records")
    records[row][column] = kind_of(column).corrupt

    with pytest.raises(SchemaValidationError) as info:
        signature.validate(records)

    assert (info.value.column, info.value.row) == (column, row)
    assert str(info.value).startswith(f"column {column!r}, row {row}: expected ")
