"""The closed set of column types, and how pandas, pyarrow and NumPy types map onto it.

Every training column is mapped to one of six signature types. The mapping decides what
a column accepts at prediction time and which dtype :meth:`Signature.validate` returns,
so it lives in one place: this module.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from ferryman.errors import SignatureInferenceError

#: The type of a column in a signature.
ColumnDType = Literal["bool", "category", "datetime", "float64", "int64", "string"]

#: The Python type of the values of a categorical column.
CategoryKind = Literal["bool", "float", "int", "str"]

#: pandas' own text dtype ("str" in pandas 3): strings, with NaN for missing values.
STRING_DTYPE = pd.StringDtype(na_value=np.nan)

#: Resolution of validated datetime columns: microseconds, pandas' default since 3.0.
TIME_UNIT: Literal["us"] = "us"

_INT64_MAX = np.iinfo(np.int64).max

#: Names used in messages when a column's type is not supported.
SUPPORTED_TYPES = "integers, floats, booleans, strings, categoricals and datetimes"


def output_dtype(
    dtype: ColumnDType,
    *,
    nullable: bool,
    categories: tuple[object, ...] | None = None,
    timezone: str | None = None,
) -> np.dtype | pd.api.extensions.ExtensionDtype:
    """Return the pandas dtype that validated data has for one signature column.

    Args:
        dtype: The signature type of the column.
        nullable: Whether the column may hold missing values. Only changes ``int64``
            (``Int64``) and ``bool`` (``boolean``), which NumPy cannot mark as missing.
        categories: The known categories of a ``category`` column, in code order.
        timezone: The time zone of a ``datetime`` column, or ``None`` for naive times.

    Returns:
        A NumPy dtype or a pandas extension dtype.
    """
    if dtype == "int64":
        return pd.Int64Dtype() if nullable else np.dtype(np.int64)
    if dtype == "float64":
        return np.dtype(np.float64)
    if dtype == "bool":
        return pd.BooleanDtype() if nullable else np.dtype(np.bool_)
    if dtype == "string":
        return STRING_DTYPE
    if dtype == "category":
        return pd.CategoricalDtype(None if categories is None else list(categories))
    if timezone is None:
        return np.dtype(f"datetime64[{TIME_UNIT}]")
    return pd.DatetimeTZDtype(TIME_UNIT, timezone)


def arrow_types_mapper(arrow_type: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    """Map an Arrow type to the pandas dtype that keeps its values and nulls exactly.

    Used with ``to_pandas(types_mapper=...)``: integers become ``Int64`` (or ``UInt64``)
    instead of float64 when they hold nulls, booleans become ``boolean`` instead of
    object, strings become pandas' string dtype. Other types keep pyarrow's default.
    """
    if pa.types.is_unsigned_integer(arrow_type) and arrow_type.bit_width == 64:
        return pd.UInt64Dtype()
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        return STRING_DTYPE
    return None


def series_from_arrow(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Convert one Arrow column to a pandas Series with a zero-based RangeIndex."""
    series: pd.Series = values.to_pandas(types_mapper=arrow_types_mapper)
    return series


def without_arrow_dtype(series: pd.Series) -> pd.Series:
    """Return ``series`` with an ``ArrowDtype`` replaced by the matching pandas dtype."""
    if isinstance(series.dtype, pd.ArrowDtype):
        converted = series_from_arrow(pa.array(series.array))
        return converted.set_axis(series.index)
    return series


def category_kind(categories: pd.Index | tuple[object, ...], *, column: str) -> CategoryKind:
    """Tell which Python type the categories of a categorical column have.

    Args:
        categories: The declared categories (an empty set counts as strings).
        column: The column name, for the error message.

    Raises:
        SignatureInferenceError: The categories are not all strings, all integers, all
            floats or all booleans (datetime or mixed categories, for example).
    """
    index = pd.Index(categories)
    inferred = "string" if len(index) == 0 else pd.api.types.infer_dtype(index, skipna=False)
    kind = _CATEGORY_KINDS.get(inferred)
    if kind is None:
        raise SignatureInferenceError(
            f"Column {column!r} is categorical with categories of type {inferred!r}. "
            "Supported category types: strings, integers, floats, booleans. Convert the "
            "categories, for example with .cat.rename_categories(str)."
        )
    return kind


_CATEGORY_KINDS: dict[str, CategoryKind] = {
    "string": "str",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "boolean": "bool",
}


def column_dtype_of(series: pd.Series, *, column: str) -> tuple[ColumnDType, str | None]:
    """Map a training column's dtype to a signature type and, for datetimes, a time zone.

    See :class:`ferryman.signature.ColumnSpec` for the full table.

    Args:
        series: The training column (any pandas dtype, ArrowDtype included).
        column: The column name, for error messages.

    Returns:
        The signature type, and the time zone name for tz-aware datetimes (else None).

    Raises:
        SignatureInferenceError: The column's type is not supported (complex numbers,
            timedeltas, bytes, dicts or lists, mixed value types, only missing values).
    """
    series = without_arrow_dtype(series)
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        category_kind(dtype.categories, column=column)
        return "category", None
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime", str(dtype.tz)
    if isinstance(dtype, pd.StringDtype):
        return "string", None
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return _object_column_dtype(series, column=column)
        mapped = _NUMPY_KINDS.get(dtype.kind)
        if mapped is not None:
            if dtype == np.uint64 and len(series) and series.max() > _INT64_MAX:
                raise SignatureInferenceError(
                    f"Column {column!r} has uint64 values above the int64 maximum "
                    f"({_INT64_MAX}). Convert it to float64 before registering."
                )
            return mapped, None
    elif pd.api.types.is_bool_dtype(dtype):
        return "bool", None
    elif pd.api.types.is_integer_dtype(dtype):
        return "int64", None
    elif pd.api.types.is_float_dtype(dtype):
        return "float64", None
    raise SignatureInferenceError(
        f"Column {column!r} has unsupported type {dtype}. "
        f"Supported: {SUPPORTED_TYPES}. Convert or drop the column before registering."
    )


_NUMPY_KINDS: dict[str, ColumnDType] = {
    "i": "int64",
    "u": "int64",
    "f": "float64",
    "b": "bool",
    "M": "datetime",
    "U": "string",
}

_OBJECT_KINDS: dict[str, ColumnDType] = {
    "string": "string",
    "integer": "int64",
    "floating": "float64",
    "mixed-integer-float": "float64",
    "boolean": "bool",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


def _object_column_dtype(series: pd.Series, *, column: str) -> tuple[ColumnDType, str | None]:
    """Map an object column by the Python types of its values."""
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    mapped = _OBJECT_KINDS.get(inferred)
    if mapped == "datetime":
        first = series[series.notna()].iloc[0]
        aware = getattr(first, "tzinfo", None) is not None
        return "datetime", "UTC" if aware else None
    if mapped is not None:
        return mapped, None
    if inferred == "empty":
        raise SignatureInferenceError(
            f"Column {column!r} holds only missing values, so its type cannot be inferred. "
            "Give it a dtype (e.g. astype('float64')) or drop it."
        )
    values = series[series.notna()]
    type_names = list(dict.fromkeys(type(value).__name__ for value in values))
    first_row = int(np.flatnonzero(series.notna().to_numpy())[0])
    what = (
        f"values of unsupported type {type_names[0]} (first at row {first_row})"
        if len(type_names) == 1
        else f"values of mixed types {', '.join(type_names)}"
    )
    raise SignatureInferenceError(
        f"Column {column!r} (object dtype) holds {what}. Supported: {SUPPORTED_TYPES}. "
        "Convert or drop the column before registering."
    )
