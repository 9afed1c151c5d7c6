"""count_out_of_range: values validation accepts but monitoring should count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferryman.errors import InvalidInputError
from ferryman.signature import ColumnSpec, Signature, count_out_of_range, infer_signature

SIGNATURE = Signature(
    kind="table",
    columns=(
        ColumnSpec(name="x", dtype="float64", nullable=True, minimum=0.0, maximum=10.0),
        ColumnSpec(name="n", dtype="int64", nullable=True, minimum=1.0),
        ColumnSpec(name="city", dtype="string", nullable=True, categories=("Bergen", "Oslo")),
        ColumnSpec(name="kind", dtype="category", categories=("a", "b")),
        ColumnSpec(name="free", dtype="float64"),
    ),
)


def test_values_outside_the_training_range_and_unseen_categories_are_counted() -> None:
    batch = SIGNATURE.validate(
        {
            "x": [-1.0, 5.0, 11.0, 12.0],
            "n": [0, 1, None, 2],
            "city": ["Oslo", "Paris", None, "Rome"],
            "kind": ["a", "c", "b", "a"],
            "free": [1e9, -1e9, 0.0, 0.0],
        }
    )

    assert count_out_of_range(SIGNATURE, batch) == {"x": 3, "n": 1, "city": 2, "kind": 1}


def test_a_batch_within_the_training_range_counts_nothing() -> None:
    batch = SIGNATURE.validate(
        {
            "x": [0.0, 10.0],
            "n": [1, 5],
            "city": ["Oslo", None],
            "kind": ["a", "b"],
            "free": [1.0, 2.0],
        }
    )

    assert count_out_of_range(SIGNATURE, batch) == {}


def test_missing_values_never_count_as_out_of_range() -> None:
    batch = SIGNATURE.validate(
        {"x": [np.nan], "n": [None], "city": [None], "kind": ["a"], "free": [0.0]}
    )

    assert count_out_of_range(SIGNATURE, batch) == {}


def test_tensor_batches_are_counted_per_feature() -> None:
    signature = infer_signature(np.array([[0.0, 1.0], [1.0, 2.0]]))
    batch = signature.validate(np.array([[2.0, 1.5], [-1.0, 3.0], [0.5, 5.0]]))
    assert isinstance(batch, np.ndarray)

    assert count_out_of_range(signature, batch) == {"0": 2, "1": 2}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            pd.DataFrame({"x": [1.0]}),
            r"lacks the signature columns \['n', 'city', 'kind', 'free'\]",
        ),
        (np.zeros((1, 2)), r"Expected a 2-D array with 5 columns, got shape \(1, 2\)"),
        ([{"x": 1.0}], r"Expected a DataFrame or ndarray from Signature\.validate, got list"),
    ],
    ids=["missing-columns", "wrong-width", "records"],
)
def test_count_out_of_range_needs_a_validated_batch(data: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        count_out_of_range(SIGNATURE, data)  # type: ignore[arg-type]
