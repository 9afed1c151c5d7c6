"""What the serving path hands the recorder and the capture writer: the float matrix if any.

For all-float64 signatures the codecs decode plain-number requests straight into one
float64 matrix; validation only checks it. The capture writer turns a matrix into
Parquet columns (and the recorder checks it) several times faster than a DataFrame, so
the serving path hands them the matrix, which must hold exactly the validated values,
in the signature's column order.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from ferryman.server._serving import _observed_rows
from ferryman.serving.codecs import InputSchema, OutputLayout, native, oip_v2
from ferryman.signature import infer_signature

COLUMNS = ("a", "b", "c")
FLOATS = InputSchema(infer_signature(pd.DataFrame({name: [0.5, 1.5] for name in COLUMNS})))
LAYOUT = OutputLayout(
    prediction_dtype=np.dtype(np.float64), prediction_width=None, n_classes=None, classes=None
)


def rows(count: int) -> list[list[float]]:
    return [[row + column / 10 for column in range(len(COLUMNS))] for row in range(count)]


@pytest.mark.parametrize("shape", ["records", "rows", "split"])
def test_native_batches_hand_over_the_validated_matrix(shape: str) -> None:
    values = rows(60)
    if shape == "records":
        body = {"instances": [dict(zip(COLUMNS, row, strict=True)) for row in values]}
    elif shape == "rows":
        body = {"instances": values}
    else:  # columns in another order than the signature's: the matrix follows the signature
        body = {"columns": list(reversed(COLUMNS)), "data": [row[::-1] for row in values]}
    batch = native.decode(orjson.dumps(body), FLOATS)
    validated = FLOATS.validate(batch.data)
    captured = _observed_rows(batch, validated, FLOATS.columns)
    assert isinstance(captured, np.ndarray) and captured is batch.data
    assert list(validated.columns) == list(COLUMNS)
    np.testing.assert_array_equal(captured, validated.to_numpy())
    np.testing.assert_array_equal(captured, np.array(values))


def test_v2_tensors_hand_over_the_validated_matrix() -> None:
    body = {
        "inputs": [
            {"name": name, "shape": [4], "datatype": "FP64", "data": [j + i / 10 for j in range(4)]}
            for i, name in enumerate(reversed(COLUMNS))
        ]
    }
    request = oip_v2.decode_infer(orjson.dumps(body), FLOATS, LAYOUT)
    validated = FLOATS.validate(request.batch.data)
    captured = _observed_rows(request.batch, validated, FLOATS.columns)
    assert isinstance(captured, np.ndarray)
    np.testing.assert_array_equal(captured, validated.to_numpy())


def test_requests_off_the_float_route_hand_over_the_validated_frame() -> None:
    few = native.decode(orjson.dumps({"instances": rows(1)}), FLOATS)  # too few for the route
    reordered = [dict(zip(reversed(COLUMNS), reversed(row), strict=True)) for row in rows(60)]
    other_order = native.decode(orjson.dumps({"instances": reordered}), FLOATS)
    for batch in (few, other_order):
        validated = FLOATS.validate(batch.data)
        assert not isinstance(batch.data, np.ndarray)
        assert _observed_rows(batch, validated, FLOATS.columns) is validated
