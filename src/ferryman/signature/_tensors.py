"""Tensor signatures: bring a validated matrix to the tensor dtype, refusing what it cannot hold.

A tensor signature's columns are checked like table columns (float64, int64 or bool);
this module then casts the matrix to the array dtype the model was trained on
(``float32``, ``int8``, ...), which may be narrower, and reports values that do not fit.
"""

from __future__ import annotations

import numpy as np

from ferryman.errors import SchemaValidationError


def tensor_from_array(
    data: np.ndarray, *, dtype: np.dtype, not_null: np.ndarray, names: tuple[str, ...]
) -> np.ndarray | None:
    """Check and cast a dense numeric array in one go.

    Args:
        data: A 2-D array with one column per feature.
        dtype: The tensor dtype.
        not_null: One flag per column: true where NaN is not allowed.
        names: The column names, for errors.

    Returns:
        The array in the tensor dtype (``data`` itself when it already has it), or
        None when it needs column-by-column checks (wrong kind, NaN where not allowed,
        floats for an integer tensor).

    Raises:
        SchemaValidationError: A value does not fit the tensor dtype.
    """
    kind = data.dtype.kind
    if dtype.kind == "b":
        return data if kind == "b" else None
    if kind not in "fiu" or (dtype.kind in "iu" and kind == "f"):
        return None
    if kind == "f" and not_null.any():
        nan = np.isnan(data)
        if nan.any() and (nan & not_null).any():
            return None
    return cast_tensor(data, dtype=dtype, names=names)


def cast_tensor(matrix: np.ndarray, *, dtype: np.dtype, names: tuple[str, ...]) -> np.ndarray:
    """Cast a checked matrix to the tensor dtype.

    Returns:
        ``matrix`` itself when it has the dtype already, else a C-contiguous copy.

    Raises:
        SchemaValidationError: A value is outside the range of the tensor dtype; the
            first such value, scanning columns in order, is reported.
    """
    if matrix.dtype == dtype:
        return matrix
    if dtype.kind in "iu" and matrix.dtype.kind in "iu":
        info = np.iinfo(dtype)
        _refuse(matrix, (matrix < info.min) | (matrix > info.max), dtype, names)
    if dtype.kind == "f" and matrix.dtype.kind == "f":
        with np.errstate(over="ignore"):
            cast = np.ascontiguousarray(matrix, dtype=dtype)
        _refuse(matrix, np.isinf(cast) & ~np.isinf(matrix), dtype, names)
        return cast
    return np.ascontiguousarray(matrix, dtype=dtype)


def _refuse(matrix: np.ndarray, bad: np.ndarray, dtype: np.dtype, names: tuple[str, ...]) -> None:
    if not bad.any():
        return
    position = int(np.argmax(bad.any(axis=0)))
    row = int(np.argmax(bad[:, position]))
    expected = str(dtype)
    raise SchemaValidationError(
        f"column {names[position]!r}, row {row}: expected {expected}, got "
        f"{matrix[row, position].item()!r} (outside the {expected} range)",
        column=names[position],
        row=row,
        expected=expected,
    )
