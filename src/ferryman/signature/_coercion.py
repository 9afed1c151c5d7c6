"""Check one input column against its ColumnSpec and convert it to the signature's dtype.

A column arrives as a pandas Series (from a DataFrame or an Arrow table) or as a 1-D
NumPy array (a column of a 2-D array, or an object array built from JSON records). Each
conversion is vectorised; Python-level loops run only to locate the first offending
row once a vectorised check has failed.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ferryman.errors import SchemaValidationError
from ferryman.signature._dtypes import (
    STRING_DTYPE,
    TIME_UNIT,
    CategoryKind,
    output_dtype,
    without_arrow_dtype,
)

if TYPE_CHECKING:
    from ferryman.signature._specs import ColumnSpec

#: A converted column, ready to be put into the output DataFrame.
Column = np.ndarray | pd.api.extensions.ExtensionArray | pd.Series

_INT64_MIN = -(2**63)
_INT64_LIMIT = 2**63  # exclusive upper bound
_FLOAT_INT64_LIMIT = float(2**63)

_MAX_SHOWN = 60


def _is_bool_type(kind: type) -> bool:
    return issubclass(kind, bool | np.bool_)


def _is_int_type(kind: type) -> bool:
    return issubclass(kind, int | np.integer) and not _is_bool_type(kind)


def _is_number_type(kind: type) -> bool:
    return issubclass(kind, int | float | np.integer | np.floating) and not _is_bool_type(kind)


def _is_str_type(kind: type) -> bool:
    return issubclass(kind, str)


def _is_datetime_type(kind: type) -> bool:
    return issubclass(kind, str | datetime.date | np.datetime64)


def _is_scalar_type(kind: type) -> bool:
    return _is_str_type(kind) or _is_number_type(kind) or _is_bool_type(kind)


_CATEGORY_ACCEPTS: dict[CategoryKind, Callable[[type], bool]] = {
    "str": _is_str_type,
    "int": _is_int_type,
    "float": _is_number_type,
    "bool": _is_bool_type,
}


def _category_kind_of(categories: tuple[object, ...]) -> CategoryKind | None:
    if not categories:
        return None
    first = type(categories[0])
    if _is_bool_type(first):
        return "bool"
    if _is_str_type(first):
        return "str"
    return "float" if any(isinstance(value, float) for value in categories) else "int"


class ColumnPlan:
    """What validation needs to know about one column, computed once per signature."""

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.nullable = spec.nullable
        self.categories: tuple[object, ...] | None = spec.categories
        #: Category to code, in the signature's order (also the membership test).
        self.category_codes = {value: code for code, value in enumerate(spec.categories or ())}
        self.target = output_dtype(
            spec.dtype,
            nullable=spec.nullable,
            categories=spec.categories,
            timezone=spec.timezone,
        )
        kind = _category_kind_of(spec.categories) if spec.categories else None
        self.accepts: Callable[[type], bool] = {
            "float64": _is_number_type,
            "int64": _is_number_type,  # floats pass here; their fractional part is checked
            "bool": _is_bool_type,
            "string": _is_str_type,
            "category": _is_scalar_type if kind is None else _CATEGORY_ACCEPTS[kind],
            "datetime": _is_datetime_type,
        }[spec.dtype]
        if spec.dtype == "category" and kind is not None:
            self.expected = f"category of {kind} values"
        else:
            self.expected = spec.dtype


# --- errors -------------------------------------------------------------------------


def _show(value: object) -> str:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.timedelta64):
        value = pd.Timedelta(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "null"
    text = repr(value)
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return f"null ({text})"
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def value_error(plan: ColumnPlan, row: int, value: object, hint: str = "") -> SchemaValidationError:
    """Build the error for a value of the wrong type or out of the representable range."""
    return SchemaValidationError(
        f"column {plan.name!r}, row {row}: expected {plan.expected}, got {_show(value)}{hint}",
        column=plan.name,
        row=row,
        expected=plan.expected,
    )


def null_error(plan: ColumnPlan, row: int, value: object) -> SchemaValidationError:
    """Build the error for a missing value in a column that is not nullable."""
    expected = f"non-null {plan.expected}"
    return SchemaValidationError(
        f"column {plan.name!r}, row {row}: expected {expected}, got {_show(value)}; the "
        "column is not nullable (send a value, or set nullable to true in the signature)",
        column=plan.name,
        row=row,
        expected=expected,
    )


def _hint(plan: ColumnPlan, value: object) -> str:
    kind = type(value)
    if plan.spec.dtype in ("float64", "int64") and _is_bool_type(kind):
        return " (booleans are not numbers)"
    if plan.spec.dtype in ("float64", "int64") and _is_str_type(kind):
        return " (strings are not read as numbers)"
    if plan.spec.dtype == "datetime" and _is_str_type(kind):
        return " (expected ISO 8601 such as '2024-01-31T12:00:00Z')"
    return ""


def _check_nulls(plan: ColumnPlan, null: np.ndarray | None, values: object = None) -> None:
    """Raise for the first missing value if the column is not nullable.

    ``values`` is indexed only to show the offending value; ``None`` shows it as null.
    """
    if plan.nullable or null is None or not null.any():
        return
    row = int(np.argmax(null))
    if isinstance(values, pd.Series):
        value = values.iloc[row]
    else:
        value = None if values is None else values[row]  # type: ignore[index]
    raise null_error(plan, row, value)


def _first_non_null_error(plan: ColumnPlan, values: np.ndarray, null: np.ndarray | None) -> None:
    """Raise for the first non-null value: its type is wrong for the column."""
    rows = np.flatnonzero(~null) if null is not None else np.arange(len(values))
    if len(rows):
        row = int(rows[0])
        value = values[row]
        raise value_error(
            plan, row, value, _hint(plan, value.item() if isinstance(value, np.generic) else value)
        )


def _all_null(plan: ColumnPlan, values: np.ndarray, null: np.ndarray) -> Column:
    """Return an all-missing column of the target dtype (only reached when nullable)."""
    _check_nulls(plan, null, values)
    return pd.Series(np.full(len(values), None, dtype=object)).astype(plan.target)


# --- entry point --------------------------------------------------------------------


def coerce_column(plan: ColumnPlan, values: pd.Series | np.ndarray) -> Column:
    """Check one input column and convert it to the signature's dtype.

    Args:
        plan: The column's validation plan.
        values: A Series with a zero-based RangeIndex, or a 1-D array.

    Returns:
        The converted column: a fresh array, or ``values`` itself (a Series, which
        pandas' copy-on-write protects) when it already has the target dtype.

    Raises:
        SchemaValidationError: A value has the wrong type, or is missing in a column that
            is not nullable; the error names the first offending row.
    """
    if isinstance(values, pd.Series):
        return _coerce_series(plan, values)
    return _coerce_array(plan, values, None)


def _coerce_series(plan: ColumnPlan, series: pd.Series) -> Column:
    series = without_arrow_dtype(series)
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype == plan.target and dtype.kind in "fiub":
            if dtype.kind == "f":
                _check_nulls(plan, np.isnan(series.to_numpy()), series)
            return series
        return _coerce_array(plan, series.to_numpy(), None)
    if isinstance(dtype, pd.CategoricalDtype):
        return _coerce_categorical(plan, series, dtype)
    if isinstance(dtype, pd.StringDtype) and plan.spec.dtype == "string":
        _check_nulls(plan, series.isna().to_numpy(), series)
        return series if dtype == STRING_DTYPE else series.astype(STRING_DTYPE)
    if isinstance(dtype, pd.DatetimeTZDtype):
        if plan.spec.dtype == "datetime":
            return _convert_datetimes(plan, pd.DatetimeIndex(series))
        objects = series.to_numpy(dtype=object)
        null = series.isna().to_numpy()
        _first_non_null_error(plan, objects, null)
        return _all_null(plan, objects, null)
    if dtype == plan.target:
        _check_nulls(plan, series.isna().to_numpy())
        return series
    values = _masked_values(series)
    if values is not None:
        return _coerce_array(plan, values, series.isna().to_numpy())
    return _coerce_objects(plan, series.to_numpy(dtype=object))


def _masked_values(series: pd.Series) -> np.ndarray | None:
    """For pandas' nullable Int/UInt/Float/boolean dtypes: the values, nulls filled."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=np.bool_, na_value=False)
    if pd.api.types.is_unsigned_integer_dtype(dtype):
        return series.to_numpy(dtype=np.uint64, na_value=0)
    if pd.api.types.is_integer_dtype(dtype):
        return series.to_numpy(dtype=np.int64, na_value=0)
    if pd.api.types.is_float_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return None


# --- typed NumPy arrays -------------------------------------------------------------


def _coerce_array(plan: ColumnPlan, values: np.ndarray, mask: np.ndarray | None) -> Column:
    """Convert a typed 1-D array; ``mask`` marks missing entries of masked arrays."""
    kind = values.dtype.kind
    if kind == "O":
        return _coerce_objects(plan, values)
    target = plan.spec.dtype
    null = mask
    if kind == "f":
        nan = np.isnan(values)
        null = nan if mask is None else nan | mask
    if target == "float64" and kind in "fiu":
        out = values.astype(np.float64)
        if mask is not None:
            out[mask] = np.nan
        _check_nulls(plan, null, out)
        return out
    if target == "int64" and kind in "fiu":
        return _integers_from_array(plan, values, null)
    if target == "bool" and kind == "b":
        return _finish_masked(plan, values.copy(), null, pd.arrays.BooleanArray)
    if target == "datetime" and kind == "M":
        return _convert_datetimes(plan, pd.DatetimeIndex(values))
    if target in ("string", "category", "datetime") and kind in "fiubU":
        objects = values.astype(object)
        if null is not None:
            objects[null] = None
        return _coerce_objects(plan, objects)
    _first_non_null_error(plan, values, null)
    return _all_null(plan, values, null if null is not None else np.ones(len(values), bool))


def _integers_from_array(plan: ColumnPlan, values: np.ndarray, null: np.ndarray | None) -> Column:
    kind = values.dtype.kind
    if kind == "f":
        valid = ~null if null is not None else np.ones(len(values), bool)
        whole = np.isfinite(values) & (values == np.trunc(values))
        in_range = (values >= -_FLOAT_INT64_LIMIT) & (values < _FLOAT_INT64_LIMIT)
        bad = valid & ~(whole & in_range)
        if bad.any():
            row = int(np.argmax(bad))
            value = float(values[row])
            hint = (
                " (int64 columns take whole numbers only)"
                if math.isfinite(value) and value != math.trunc(value)
                else " (outside the int64 range)"
            )
            if not plan.nullable and null is not None and null[:row].any():
                _check_nulls(plan, null)
            raise value_error(plan, row, value, hint)
        out = np.where(valid, values, 0).astype(np.int64)
    else:
        if values.dtype == np.uint64:
            too_big = values > np.uint64(_INT64_LIMIT - 1)
            if null is not None:
                too_big &= ~null
            if too_big.any():
                row = int(np.argmax(too_big))
                if not plan.nullable and null is not None and null[:row].any():
                    _check_nulls(plan, null)
                raise value_error(plan, row, int(values[row]), " (outside the int64 range)")
        out = values.astype(np.int64)
    return _finish_masked(plan, out, null, pd.arrays.IntegerArray)


def _finish_masked(
    plan: ColumnPlan,
    out: np.ndarray,
    null: np.ndarray | None,
    masked: Callable[[np.ndarray, np.ndarray], pd.api.extensions.ExtensionArray],
) -> Column:
    """Return ``out`` as a NumPy array, or as a masked array when the column is nullable."""
    _check_nulls(plan, null)
    if not plan.nullable:
        return out
    return masked(out, null if null is not None else np.zeros(len(out), bool))


# --- object arrays (JSON values, object columns) -----------------------------------


def _coerce_objects(plan: ColumnPlan, values: np.ndarray) -> Column:
    """Convert an object array of Python scalars, checking each value's type."""
    null = pd.isna(values)
    has_null = bool(null.any())
    present = values[~null] if has_null else values
    types = set(map(type, present))
    if not all(plan.accepts(kind) for kind in types):
        _raise_first_problem(plan, values, null)
    if has_null:
        _check_nulls(plan, null, values)
        if len(present) == 0:
            return _all_null(plan, values, null)
    build = _BUILDERS[plan.spec.dtype]
    return build(plan, values, present, null)


def _raise_first_problem(plan: ColumnPlan, values: np.ndarray, null: np.ndarray) -> None:
    for row in range(len(values)):
        value = values[row]
        if null[row]:
            if not plan.nullable:
                raise null_error(plan, row, value)
        elif not plan.accepts(type(value)):
            raise value_error(plan, row, value, _hint(plan, value))


def _build_floats(
    plan: ColumnPlan, values: np.ndarray, present: np.ndarray, null: np.ndarray
) -> Column:
    out = np.full(len(values), np.nan)
    try:
        out[~null] = present.astype(np.float64)
    except OverflowError:
        for row, value in enumerate(values):
            if not null[row] and not _fits_float(value):
                raise value_error(plan, row, value, " (outside the float64 range)") from None
        raise
    return out


def _fits_float(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except OverflowError:
        return False
    return True


def _build_integers(
    plan: ColumnPlan, values: np.ndarray, present: np.ndarray, null: np.ndarray
) -> Column:
    out = np.zeros(len(values), np.int64)
    try:
        if not all(_is_int_type(kind) for kind in set(map(type, present))):
            raise OverflowError  # floats: check each for a fractional part below
        out[~null] = present.astype(np.int64)
    except OverflowError:
        rows = np.flatnonzero(~null)
        out[rows] = [_whole_number(plan, int(row), values[row]) for row in rows]
    return _finish_masked(plan, out, null, pd.arrays.IntegerArray)


def _whole_number(plan: ColumnPlan, row: int, value: float | int | np.number) -> int:
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            raise value_error(plan, row, value, " (outside the int64 range)")
        if number != math.trunc(number):
            raise value_error(plan, row, value, " (int64 columns take whole numbers only)")
        whole = int(number)
    else:
        whole = int(value)
    if not _INT64_MIN <= whole < _INT64_LIMIT:
        raise value_error(plan, row, value, " (outside the int64 range)")
    return whole


def _build_bools(
    plan: ColumnPlan, values: np.ndarray, present: np.ndarray, null: np.ndarray
) -> Column:
    out = np.zeros(len(values), np.bool_)
    out[~null] = present.astype(np.bool_)
    return _finish_masked(plan, out, null, pd.arrays.BooleanArray)


def _build_strings(
    plan: ColumnPlan, values: np.ndarray, present: np.ndarray, null: np.ndarray
) -> Column:
    return pd.array(values, dtype=STRING_DTYPE)


def _build_categories(
    plan: ColumnPlan, values: np.ndarray, present: np.ndarray, null: np.ndarray
) -> Column:
    if plan.categories is None or not isinstance(plan.target, pd.CategoricalDtype):
        return pd.Categorical(values)
    # Codes straight from a dict: pd.Categorical(values, categories=...) costs ~100x more
    # on small batches, because it rebuilds and revalidates the categories every time.
    codes = np.fromiter(
        (plan.category_codes.get(value, -1) for value in values), dtype=np.int64, count=len(values)
    )
    codes[null] = -1
    if (codes[~null] < 0).any():
        unseen = [value for value in pd.unique(present) if value not in plan.category_codes]
        return pd.Categorical(values, categories=[*plan.categories, *unseen])
    return pd.Categorical.from_codes(codes, dtype=plan.target, validate=False)


def _build_datetimes(
    plan: ColumnPlan, values: np.ndarray, present: np.ndarray, null: np.ndarray
) -> Column:
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        parsed = None
    if parsed is None or bool((parsed.isna() & ~null).any()):
        for row in np.flatnonzero(~null):
            try:
                single = pd.to_datetime([values[row]], utc=True, format="ISO8601")
            except (ValueError, TypeError, OverflowError):
                single = None
            if single is None or single.isna()[0]:
                raise value_error(plan, int(row), values[row], _hint(plan, values[row])) from None
        raise SchemaValidationError(  # unreachable in practice: every value parsed alone
            f"column {plan.name!r}: could not read the values as datetimes",
            column=plan.name,
            expected=plan.expected,
        )
    return _convert_datetimes(plan, parsed)


_BUILDERS: dict[str, Callable[[ColumnPlan, np.ndarray, np.ndarray, np.ndarray], Column]] = {
    "float64": _build_floats,
    "int64": _build_integers,
    "bool": _build_bools,
    "string": _build_strings,
    "category": _build_categories,
    "datetime": _build_datetimes,
}


# --- categoricals and datetimes -----------------------------------------------------


def _coerce_categorical(plan: ColumnPlan, series: pd.Series, dtype: pd.CategoricalDtype) -> Column:
    source_categories = tuple(dtype.categories)
    if plan.spec.dtype == "category" and all(plan.accepts(type(c)) for c in source_categories):
        _check_nulls(plan, series.isna().to_numpy())
        if plan.categories is None:
            return series
        unseen = [c for c in source_categories if c not in plan.category_codes]
        wanted = [*plan.categories, *unseen]
        if list(source_categories) == wanted:
            return series
        return series.cat.set_categories(wanted)
    if plan.spec.dtype == "string" and all(_is_str_type(type(c)) for c in source_categories):
        _check_nulls(plan, series.isna().to_numpy())
        return series.astype(STRING_DTYPE)
    return _coerce_objects(plan, series.to_numpy(dtype=object))


def _convert_datetimes(plan: ColumnPlan, index: pd.DatetimeIndex) -> Column:
    """Bring datetimes to the column's time zone (naive input is read as UTC) and unit."""
    timezone = plan.spec.timezone
    if timezone is not None:
        index = (index.tz_localize("UTC") if index.tz is None else index).tz_convert(timezone)
    elif index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    _check_nulls(plan, np.asarray(index.isna()), index)
    return index.as_unit(TIME_UNIT).array.copy()
