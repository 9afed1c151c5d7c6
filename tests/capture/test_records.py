"""Building prediction records: added a little at a time or all at once, the same tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.capture import PrivacyPolicy
from ferryman.capture._records import Grouped, Submission
from ferryman.flavors.base import Prediction

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CLASSES = ["no", "yes"]
NAMES = ("a", "b")


def _submission(number: int, shape: str, rows: int, value: Any, failed: bool) -> Submission:
    data: Any
    if shape == "array":
        data = np.full((rows, 2), float(number))
    elif shape == "columns":
        data = {"a": [value] * rows, "b": [number] * rows}
    else:
        data = [{"a": value, "c": number}] * rows
    prediction = None
    if not failed:
        probabilities = np.tile([0.25, 0.75], (rows, 1))
        prediction = Prediction(
            predictions=np.array(["yes"] * rows, dtype=object),
            probabilities=probabilities,
            classes=CLASSES,
        )
    return (
        T0 + number * 0.5,
        f"r{number}",
        "churn",
        "churn/1",
        "primary",
        data,
        prediction,
        1.5 + number,
        500 if failed else 200,
        ValueError(f"bad {number}") if failed else None,
        {"user": [f"u{number}"] * rows} if number % 3 == 0 else {},
        NAMES if shape == "array" else None,
    )


_SUBMISSIONS = st.lists(
    st.tuples(
        st.sampled_from(["array", "columns", "records"]),
        st.integers(1, 3),
        st.one_of(st.none(), st.integers(-5, 5), st.floats(-1, 1), st.text(max_size=3)),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


def _rows(grouped: Grouped) -> list[dict[str, Any]]:
    policy = PrivacyPolicy()
    return [row for _, table in grouped.tables(policy, None) for row in table.to_pylist()]


def _key(row: dict[str, Any]) -> tuple[str, int]:
    return row["request_id"], row["row"]


@settings(max_examples=60, deadline=None)
@given(specs=_SUBMISSIONS, cuts=st.lists(st.integers(1, 30), max_size=6))
def test_adding_in_passes_gives_the_records_of_adding_at_once(
    specs: list[tuple[str, int, Any, bool]], cuts: list[int]
) -> None:
    submissions = [
        _submission(number, shape, rows, value, failed)
        for number, (shape, rows, value, failed) in enumerate(specs)
    ]
    at_once, in_passes = Grouped(), Grouped()
    at_once.add(submissions)
    start = 0
    for cut in sorted(set(cuts)):
        in_passes.add(submissions[start:cut])
        start = max(start, cut)
    in_passes.add(submissions[start:])

    expected = sorted(_rows(at_once), key=_key)
    assert sorted(_rows(in_passes), key=_key) == expected
    assert in_passes.count == len(submissions)
    assert len(expected) == sum(spec[1] for spec in specs)


def test_passes_whose_column_types_differ_are_built_together() -> None:
    # The first pass's column "a" reads as integers, the second's as text: the chunks do
    # not join, and the group is built from its submissions at once instead.
    first = _submission(1, "columns", 1, 7, failed=False)
    second = _submission(2, "columns", 1, "seven", failed=False)
    grouped = Grouped()
    grouped.add([first])
    grouped.add([second])

    (_, table), *rest = grouped.tables(PrivacyPolicy(), None)

    assert rest == []
    assert table.column("inputs").type.field("a").type == pa.string()
    assert [row["inputs"]["a"] for row in table.to_pylist()] == ["7", "seven"]


def test_errors_and_their_codes_are_recorded_from_passes() -> None:
    grouped = Grouped()
    grouped.add([_submission(1, "array", 2, None, failed=False)])
    grouped.add([_submission(2, "array", 1, None, failed=True)])

    rows = sorted(_rows(grouped), key=_key)

    assert [(row["error"], row["error_code"]) for row in rows] == [
        (None, None),
        (None, None),
        ("bad 2", "ValueError"),
    ]
