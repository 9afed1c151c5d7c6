"""The warm-up row: typical values from the reference profile, else from the signature."""

from __future__ import annotations

import pandas as pd

from ferryman.serving._warmup import sample_row
from ferryman.signature import Signature, build_profile, infer_signature


def training_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20, 30, 40, 50, 60],
            "income": [1.0, 2.0, 3.0, 4.0, 100.0],
            "city": ["Oslo", "Oslo", "Oslo", "Bergen", "Tromsø"],
            "member": [True, True, False, True, True],
            "level": pd.Categorical(["b", "a", "b", "b", "c"]),
            "joined": pd.to_datetime(
                ["2020-01-01", "2021-01-01", "2022-01-01", "2023-01-01", "2024-01-01"]
            ),
        }
    )


def test_the_row_holds_medians_and_most_frequent_values_from_the_profile() -> None:
    frame = training_frame()
    signature = infer_signature(frame)

    row = sample_row(signature, build_profile(frame).to_dict())

    assert row == {
        "age": 40,
        "income": 3.0,
        "city": "Oslo",
        "member": True,
        "level": "b",
        "joined": "2022-01-01T00:00:00",
    }
    assert len(signature.validate([row])) == 1


def test_without_a_profile_the_row_comes_from_the_signature() -> None:
    signature = infer_signature(training_frame())

    row = sample_row(signature, None)

    assert row["age"] == 40  # the middle of the training range
    assert row["income"] == 50.5
    assert len(signature.validate([row])) == 1


def test_an_unreadable_profile_is_ignored() -> None:
    signature = infer_signature(training_frame())

    assert sample_row(signature, {"format_version": 99}) == sample_row(signature, None)


def test_a_tensor_signature_gets_one_value_per_feature() -> None:
    signature = Signature.from_dict(
        {
            "kind": "tensor",
            "columns": [
                {"name": "0", "dtype": "float64", "minimum": 0.0, "maximum": 2.0},
                {"name": "1", "dtype": "float64"},
            ],
            "tensor": {"dtype": "float32", "shape": [-1, 2]},
        }
    )

    row = sample_row(signature, None)

    assert row == {"0": 1.0, "1": 0.0}
    assert signature.validate([row]).shape == (1, 2)
