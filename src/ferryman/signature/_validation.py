"""Signature.validate: unpack any accepted container, check it, return the model's layout.

Three routes lead to the same result:

- all-numeric: when every column is float64/int64 and the batch is a dense array, a
  list of rows, a list of records or a dict of lists, one conversion (``struct`` for
  Python floats), a handful of vectorised checks and one DataFrame block;
- float block: for JSON batches of mixed signatures, the float64 columns are converted
  together as one block and the other columns one by one;
- general: column by column (see ``_coercion``).

Whenever a faster route meets anything unusual (a string, a null, a boolean, a fraction
in an int column) it steps aside, and the general route produces the precise error, so
errors never depend on the route taken.
"""

from __future__ import annotations

import itertools
import operator
import struct
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from ferryman.errors import InvalidInputError, SchemaValidationError
from ferryman.signature._coercion import Column, ColumnPlan, coerce_column
from ferryman.signature._dtypes import series_from_arrow
from ferryman.signature._tensors import cast_tensor, tensor_from_array

if TYPE_CHECKING:
    from ferryman.signature._specs import ColumnSpec, Signature, TensorSpec

_ACCEPTED = (
    "a pandas DataFrame, a pyarrow Table, a list of records (dicts), a dict of column "
    "lists, or a 2-D array or list of rows in signature column order"
)
_NUMBER_TYPES = frozenset({int, float})
_INT_TYPES = frozenset({int})
_FLOAT_EXACT_INT_LIMIT = float(2**53)
#: Up to this many Python numbers, np.array converts them faster than struct.
_FEW_NUMBERS = 64


class ValidationPlan:
    """Lookups and fast-path facts about a signature, computed once and cached on it."""

    def __init__(self, signature: Signature) -> None:
        self.columns: tuple[ColumnSpec, ...] = signature.columns
        self.tensor: TensorSpec | None = signature.tensor
        self.names = tuple(column.name for column in signature.columns)
        self.index = pd.Index(self.names)
        self.name_set = frozenset(self.names)
        self.width = len(self.names)
        self.column_plans = tuple(ColumnPlan(column) for column in signature.columns)
        self.targets = [column.target for column in self.column_plans]
        self.record_values: Callable[[Mapping[str, object]], tuple[object, ...]] = (
            operator.itemgetter(*self.names) if self.width > 1 else _OneItemGetter(self.names[0])
        )
        dtypes = {column.dtype for column in signature.columns}
        nullable_int = any(c.dtype == "int64" and c.nullable for c in signature.columns)
        #: "float", "int" or "mixed" when every column is float64/int64 (non-null ints).
        self.numeric: Literal["float", "int", "mixed"] | None = None
        if dtypes <= {"float64", "int64"} and not nullable_int:
            self.numeric = (
                "float" if dtypes == {"float64"} else "int" if dtypes == {"int64"} else "mixed"
            )
        self.not_null = np.array([not column.nullable for column in signature.columns])
        self.any_not_null = bool(self.not_null.any())
        self.int_positions = np.flatnonzero([c.dtype == "int64" for c in signature.columns])
        # Float block for mixed signatures: float64 columns convert together.
        is_float = [column.dtype == "float64" for column in signature.columns]
        self.float_positions = tuple(p for p in range(self.width) if is_float[p])
        self.other_positions = tuple(p for p in range(self.width) if not is_float[p])
        self.float_slots = [-1] * self.width
        for slot, position in enumerate(self.float_positions):
            self.float_slots[position] = slot
        self.float_index = pd.Index([self.names[p] for p in self.float_positions])
        self.float_not_null = self.not_null[list(self.float_positions)]
        self.insert_into_block = len(self.other_positions) * 8 <= len(self.float_positions)
        self.tensor_dtype = None if signature.tensor is None else np.dtype(signature.tensor.dtype)
        # For count_out_of_range: numeric columns with a known range, and categories.
        ranged = [
            (position, column)
            for position, column in enumerate(signature.columns)
            if column.dtype in ("int64", "float64")
            and (column.minimum is not None or column.maximum is not None)
        ]
        self.range_positions = np.array([position for position, _ in ranged], dtype=np.intp)
        self.range_names = tuple(column.name for _, column in ranged)
        self.range_index = pd.Index(self.range_names)
        self.range_lows = np.array(
            [-np.inf if c.minimum is None else c.minimum for _, c in ranged], dtype=np.float64
        )
        self.range_highs = np.array(
            [np.inf if c.maximum is None else c.maximum for _, c in ranged], dtype=np.float64
        )
        self.category_columns = tuple(
            (column.name, list(column.categories))
            for column in signature.columns
            if column.categories is not None
        )


class _OneItemGetter:
    """``itemgetter(name)`` that returns a 1-tuple, as ``itemgetter(a, b)`` returns tuples."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, record: Mapping[str, object]) -> tuple[object, ...]:
        return (record[self.name],)


def validate(
    signature: Signature,
    data: object,
    *,
    unknown_columns: Literal["reject", "ignore"],
    as_array: bool = False,
) -> pd.DataFrame | np.ndarray:
    """Validate ``data`` against ``signature``; see :meth:`Signature.validate`."""
    if unknown_columns not in ("reject", "ignore"):
        raise InvalidInputError(
            f"unknown_columns must be 'reject' or 'ignore', got {unknown_columns!r}."
        )
    plan = signature._validation_plan()
    reject = unknown_columns == "reject"
    if isinstance(data, list | tuple):
        rows = _list_rows(plan, data, reject=reject)
        matrix = _numeric_from_python(plan, rows, by_column=False)
        if matrix is not None:
            return _from_matrix(plan, matrix, as_array=as_array)
        return _from_lists(plan, list(zip(*rows, strict=True)))
    if isinstance(data, np.ndarray):
        _check_array_shape(plan, data)
        if plan.tensor_dtype is not None:
            tensor = tensor_from_array(
                data, dtype=plan.tensor_dtype, not_null=plan.not_null, names=plan.names
            )
            if tensor is not None:
                return tensor
        matrix = _numeric_matrix(plan, data)
        if matrix is not None:
            return _from_matrix(plan, matrix, as_array=as_array)
        return _from_columns(plan, [data[:, position] for position in range(plan.width)])
    if isinstance(data, pd.DataFrame):
        return _from_frame(plan, data, reject=reject)
    if isinstance(data, pa.Table):
        return _from_columns(plan, _table_columns(plan, data, reject=reject))
    if isinstance(data, Mapping):
        lists, arrays = _dict_columns(plan, data, reject=reject)
        if lists is not None:
            return _from_lists(plan, lists, as_array=as_array)
        return _from_columns(plan, arrays)
    raise SchemaValidationError(
        f"Cannot validate a {type(data).__name__}: expected {_ACCEPTED}.",
        expected=_ACCEPTED,
    )


def _from_columns(
    plan: ValidationPlan,
    columns: Sequence[pd.Series | np.ndarray],
    block: np.ndarray | None = None,
) -> pd.DataFrame | np.ndarray:
    """Convert column by column, except float columns already converted in ``block``."""
    converted: list[Column] = []
    for position, (column_plan, values) in enumerate(zip(plan.column_plans, columns, strict=True)):
        slot = plan.float_slots[position] if block is not None else -1
        converted.append(block[slot] if slot >= 0 else coerce_column(column_plan, values))  # type: ignore[index]
    if plan.tensor_dtype is not None:
        stacked = np.column_stack([np.asarray(column) for column in converted])
        return cast_tensor(stacked, dtype=plan.tensor_dtype, names=plan.names)
    # Every converted column is a fresh array or a copy-on-write Series, so pandas need
    # not copy again; the default index is the zero-based RangeIndex.
    if block is not None and plan.insert_into_block:
        # One float block plus a few inserted columns builds much faster than a
        # DataFrame from a dict, whose cost grows with every column.
        frame = pd.DataFrame(block.T, columns=plan.float_index, copy=False)
        for position in plan.other_positions:
            frame.insert(position, plan.names[position], converted[position])  # type: ignore[arg-type]
        return frame
    return pd.DataFrame(dict(zip(plan.names, converted, strict=True)), copy=False)


def _from_lists(
    plan: ValidationPlan, lists: Sequence[Sequence[object]], *, as_array: bool = False
) -> pd.DataFrame | np.ndarray:
    """Convert columns of Python values (from JSON): all-numeric, float block, or general."""
    matrix = _numeric_from_python(plan, lists, by_column=True)
    if matrix is not None:
        return _from_matrix(plan, matrix, as_array=as_array)
    block = None
    if len(plan.float_positions) > 1:
        block = _float_block_from_lists(plan, [lists[p] for p in plan.float_positions])
    length = len(lists[0])
    unused = np.empty(0, dtype=object)  # float columns come from the block
    objects = [
        np.fromiter(values, dtype=object, count=length)
        if block is None or plan.float_slots[position] < 0
        else unused
        for position, values in enumerate(lists)
    ]
    return _from_columns(plan, objects, block)


# --- batch-level errors -------------------------------------------------------------


def _empty_batch_error() -> SchemaValidationError:
    return SchemaValidationError(
        "empty batch: expected at least one row", expected="at least one row"
    )


def _shown_names(plan: ValidationPlan) -> str:
    shown = ", ".join(plan.names[:8])
    return shown + (", ..." if plan.width > 8 else "")


def _check_names(plan: ValidationPlan, names: Sequence[str], *, reject: bool) -> None:
    """Raise for the first duplicate, missing or (when rejecting) unknown column name."""
    present = set(names)
    if len(present) != len(names):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise SchemaValidationError(
                    f"column {name!r} appears more than once; expected each column once",
                    column=name,
                    expected="unique column names",
                )
            seen.add(name)
    for name in plan.names:
        if name not in present:
            raise _missing_error(plan, name, None)
    if reject and len(present) != plan.width:
        unknown = next(name for name in names if name not in plan.name_set)
        raise _unknown_error(plan, unknown, None)


def _missing_error(plan: ValidationPlan, name: str, row: int | None) -> SchemaValidationError:
    where = f"column {name!r}" if row is None else f"column {name!r}, row {row}"
    return SchemaValidationError(
        f"{where}: missing; expected columns {_shown_names(plan)}",
        column=name,
        row=row,
        expected=f"column {name!r}",
    )


def _unknown_error(plan: ValidationPlan, name: object, row: int | None) -> SchemaValidationError:
    where = f"column {name!r}" if row is None else f"column {name!r}, row {row}"
    return SchemaValidationError(
        f"{where}: unknown column; expected only {_shown_names(plan)} "
        "(pass unknown_columns='ignore' to drop extra columns)",
        column=str(name),
        row=row,
        expected="only signature columns",
    )


def _check_array_shape(plan: ValidationPlan, data: np.ndarray) -> None:
    expected = f"a 2-D array with {plan.width} columns"
    if data.ndim != 2:
        hint = " (for one row, use x.reshape(1, -1))" if data.ndim == 1 else ""
        raise SchemaValidationError(
            f"expected {expected} ({_shown_names(plan)}), got shape {data.shape}{hint}",
            expected=expected,
        )
    if data.shape[0] == 0:
        raise _empty_batch_error()
    if data.shape[1] != plan.width:
        raise SchemaValidationError(
            f"expected {expected} ({_shown_names(plan)}), got {data.shape[1]} columns",
            expected=expected,
        )


# --- containers ---------------------------------------------------------------------


def _from_frame(
    plan: ValidationPlan, frame: pd.DataFrame, *, reject: bool
) -> pd.DataFrame | np.ndarray:
    labels = frame.columns.tolist()  # much faster than iterating an Arrow-backed Index
    if not all(type(label) is str for label in labels):
        labels = [str(label) for label in labels]
        frame = frame.set_axis(labels, axis=1)
    if len(frame) == 0:
        raise _empty_batch_error()
    _check_names(plan, labels, reject=reject)
    in_order = tuple(labels) == plan.names
    if plan.numeric in ("float", "int") and in_order:
        # to_numpy gives float64/int64 only when every column is a plain number column.
        matrix = _numeric_matrix(plan, frame.to_numpy())
        if matrix is not None:
            return _from_matrix(plan, matrix)
    index = frame.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        frame = frame.set_axis(pd.RangeIndex(len(frame)), axis=0)
    selected = frame if in_order else frame[plan.index]
    if plan.tensor_dtype is None and _has_dtypes(selected, plan.targets):
        # Already in the signature's dtypes (the usual Python-API case): check nulls in
        # one call and hand back a copy-on-write view, without touching each column.
        present = selected.notna().to_numpy()
        if present[:, plan.not_null].all():
            return selected.copy(deep=False) if selected is frame else selected
    return _from_columns(plan, [selected[name] for name in plan.names])


def _has_dtypes(frame: pd.DataFrame, targets: Sequence[object]) -> bool:
    """Tell whether each column has exactly its target dtype (categories in order)."""
    for dtype, target in zip(frame.dtypes.tolist(), targets, strict=True):
        # Unordered categoricals compare equal whatever their category order, which
        # decides the codes a model sees: compare the categories themselves too.
        if dtype != target or (
            isinstance(target, pd.CategoricalDtype)
            and target.categories is not None
            and not dtype.categories.equals(target.categories)
        ):
            return False
    return True


def _table_columns(plan: ValidationPlan, table: pa.Table, *, reject: bool) -> list[pd.Series]:
    names = [str(name) for name in table.column_names]
    if table.num_rows == 0:
        raise _empty_batch_error()
    _check_names(plan, names, reject=reject)
    return [_writable(series_from_arrow(table.column(name))) for name in plan.names]


def _writable(series: pd.Series) -> pd.Series:
    """Copy Arrow's zero-copy (read-only) buffers that validation would pass through."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or (
        isinstance(dtype, np.dtype) and dtype.kind in "fiub"
    ):
        return series.copy(deep=True)
    return series


def _dict_columns(
    plan: ValidationPlan, data: Mapping[object, object], *, reject: bool
) -> tuple[list[list[object]] | None, list[pd.Series | np.ndarray]]:
    """Unpack a dict of columns: plain lists (JSON) or, failing that, array sources."""
    names = [name if isinstance(name, str) else str(name) for name in data]
    _check_names(plan, names, reject=reject)
    by_name = dict(zip(names, data.values(), strict=True))
    values = [by_name[name] for name in plan.names]
    if all(type(column) is list for column in values):
        lengths = set(map(len, values))  # type: ignore[arg-type]
        if len(lengths) == 1:
            if not lengths.pop():
                raise _empty_batch_error()
            return values, []  # type: ignore[return-value]
    length = None
    for name, column in zip(plan.names, values, strict=True):
        if not isinstance(column, Sequence | np.ndarray | pd.Series) or isinstance(column, str):
            raise SchemaValidationError(
                f"column {name!r}: expected a list of values, got {type(column).__name__} "
                "(to send one row, wrap each value in a list, or send a list of records)",
                column=name,
                expected="a list of values",
            )
        if length is None:
            length = len(column)
        elif len(column) != length:
            raise SchemaValidationError(
                f"column {name!r} has {len(column)} values but column {plan.names[0]!r} "
                f"has {length}; expected {length} values",
                column=name,
                expected=f"{length} values",
            )
    if not length:
        raise _empty_batch_error()
    return None, [_column_source(column, length) for column in values]


def _column_source(values: object, length: int) -> pd.Series | np.ndarray:
    if isinstance(values, pd.Series):
        return values.set_axis(pd.RangeIndex(length))
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    objects: np.ndarray = np.fromiter(values, dtype=object, count=length)  # type: ignore[call-overload]
    return objects


def _list_rows(
    plan: ValidationPlan, data: list[object] | tuple[object, ...], *, reject: bool
) -> Sequence[Sequence[object]]:
    """Unpack a list of records or of rows into rows of values in signature order."""
    if not data:
        raise _empty_batch_error()
    first = data[0]
    rows: Sequence[Sequence[object]]
    if isinstance(first, Mapping):
        rows = _record_rows(plan, data, reject=reject)  # type: ignore[arg-type]
    elif isinstance(first, list | tuple | np.ndarray):
        rows = _check_rows(plan, data)
    else:
        raise SchemaValidationError(
            f"row 0: expected a record (dict) or a row (list), got {type(first).__name__}; "
            f"the batch must be {_ACCEPTED}",
            row=0,
            expected="a record or a row",
        )
    return rows


def _record_rows(
    plan: ValidationPlan, records: Sequence[Mapping[str, object]], *, reject: bool
) -> list[tuple[object, ...]]:
    try:
        rows = list(map(plan.record_values, records))
    except (KeyError, TypeError):
        _raise_record_problem(plan, records)
        raise
    if reject:
        width = plan.width
        for row, record in enumerate(records):
            if len(record) != width:
                unknown = next(key for key in record if key not in plan.name_set)
                raise _unknown_error(plan, unknown, row)
    return rows


def _raise_record_problem(plan: ValidationPlan, records: Sequence[object]) -> None:
    for row, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise SchemaValidationError(
                f"row {row}: expected a record (dict of column to value), got "
                f"{type(record).__name__}",
                row=row,
                expected="a record",
            )
        for name in plan.names:
            if name not in record:
                raise _missing_error(plan, name, row)


def _check_rows(plan: ValidationPlan, rows: Sequence[object]) -> Sequence[Sequence[object]]:
    width = plan.width
    for row, values in enumerate(rows):
        if not isinstance(values, list | tuple | np.ndarray) or len(values) != width:
            got = f"{len(values)} values" if isinstance(values, Sized) else type(values).__name__
            raise SchemaValidationError(
                f"row {row}: expected a list of {width} values ({_shown_names(plan)}), got {got}",
                row=row,
                expected=f"{width} values",
            )
    return rows  # type: ignore[return-value]


# --- the fast route -----------------------------------------------------------------


def _numeric_from_python(
    plan: ValidationPlan, nested: Sequence[Sequence[object]], *, by_column: bool
) -> np.ndarray | None:
    """Convert plain Python ints/floats of an all-numeric signature in one go.

    Args:
        plan: The validation plan.
        nested: Rows of values, or columns of values when ``by_column``.
        by_column: Whether ``nested`` holds columns rather than rows.

    Returns:
        A (rows, columns) matrix, or None to step aside for the general route.
    """
    if plan.numeric is None:
        return None
    types = set(map(type, itertools.chain.from_iterable(nested)))
    try:
        if plan.numeric == "int" and types <= _INT_TYPES:
            matrix = np.array(nested, dtype=np.int64)
            return matrix.T if by_column else matrix
    except (ValueError, OverflowError):
        return None
    if not types <= _NUMBER_TYPES:
        return None
    floats = _float64_matrix(nested)
    if floats is None:
        return None
    return _checked_numeric(plan, floats.T if by_column else floats)


def _float64_matrix(nested: Sequence[Sequence[object]]) -> np.ndarray | None:
    """Convert equally long sequences of Python ints and floats into a fresh float64 matrix.

    ``struct`` converts each number in C several times faster than ``np.array`` does
    from nested lists, with the same rounding of ints, but costs more to set up: below
    :data:`_FEW_NUMBERS` numbers, ``np.array`` is quicker. Returns ``None`` for an int
    beyond the float64 range.
    """
    shape = (len(nested), len(nested[0]))
    if shape[0] * shape[1] <= _FEW_NUMBERS:
        try:
            return np.array(nested, dtype=np.float64)
        except (ValueError, OverflowError):
            return None
    matrix = np.empty(shape, dtype=np.float64)
    try:
        struct.pack_into(f"{matrix.size}d", matrix.data, 0, *itertools.chain.from_iterable(nested))
    except (struct.error, OverflowError):
        return None
    return matrix


def _float_block_from_lists(
    plan: ValidationPlan, lists: Sequence[Sequence[object]]
) -> np.ndarray | None:
    """Convert the float64 columns of a mixed signature as one (columns, rows) block."""
    if not set(map(type, itertools.chain.from_iterable(lists))) <= _NUMBER_TYPES:
        return None
    block = _float64_matrix(lists)
    if block is None:
        return None
    if plan.float_not_null.any():
        nan = np.isnan(block)
        if nan.any() and (nan & plan.float_not_null[:, np.newaxis]).any():
            return None
    return block


def _numeric_matrix(plan: ValidationPlan, data: np.ndarray) -> np.ndarray | None:
    """Take a dense numeric array as it is when every column is float64/int64."""
    if plan.numeric is None or data.dtype.kind not in "fiu":
        return None
    if plan.numeric == "int" and data.dtype.kind in "iu":
        if data.dtype == np.uint64 and data.max() > np.iinfo(np.int64).max:
            return None
        return data.astype(np.int64)
    if data.dtype.kind in "iu" and plan.numeric == "mixed":
        return None  # keep large ints exact: go column by column
    return _checked_numeric(plan, data.astype(np.float64))


def _checked_numeric(plan: ValidationPlan, matrix: np.ndarray) -> np.ndarray | None:
    """Return ``matrix`` if it has no null in a non-nullable column and whole ints."""
    if matrix.dtype.kind == "f":
        if plan.any_not_null:
            nan = np.isnan(matrix)
            if nan.any() and (nan & plan.not_null).any():
                return None
        if plan.int_positions.size:
            ints = matrix[:, plan.int_positions]
            whole = ints == np.trunc(ints)
            if not whole.all() or not (np.abs(ints) <= _FLOAT_EXACT_INT_LIMIT).all():
                return None
            if plan.numeric == "int":
                return ints.astype(np.int64)
    return matrix


def _from_matrix(
    plan: ValidationPlan, matrix: np.ndarray, *, as_array: bool = False
) -> pd.DataFrame | np.ndarray:
    if plan.tensor_dtype is not None:
        return cast_tensor(matrix, dtype=plan.tensor_dtype, names=plan.names)
    if as_array and plan.numeric in ("float", "int"):
        return matrix  # fresh and checked, with the one dtype the DataFrame would hold
    # ``matrix`` is always a fresh array here (see the callers), so pandas need not copy.
    if plan.numeric == "mixed":
        data = {
            name: matrix[:, position].astype(
                np.int64 if column.spec.dtype == "int64" else np.float64
            )
            for position, (name, column) in enumerate(
                zip(plan.names, plan.column_plans, strict=True)
            )
        }
        return pd.DataFrame(data, copy=False)
    return pd.DataFrame(matrix, columns=plan.index, copy=False)
