"""infer_signature: read a version's signature off its training data and predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import numpy as np
import pandas as pd
import pyarrow as pa

from ferryman.errors import InvalidInputError, SchemaValidationError, SignatureInferenceError
from ferryman.flavors.base import Prediction
from ferryman.signature._coercion import ColumnPlan, coerce_column
from ferryman.signature._dtypes import ColumnDType, column_dtype_of, series_from_arrow
from ferryman.signature._specs import (
    CategoryValue,
    ColumnSpec,
    OutputSpec,
    Signature,
    TensorDType,
    TensorSpec,
)

#: String columns with at most this many distinct training values list them as categories.
MAX_CATEGORIES = 50

#: Label outputs with at most this many distinct labels list them as classes.
MAX_CLASSES = 1000

_TENSOR_DTYPES: frozenset[str] = frozenset(get_args(TensorDType))

#: Training data as (name, column) pairs, plus the tensor layout for NumPy input.
TrainingColumns = tuple[list[tuple[str, pd.Series]], TensorSpec | None]


def infer_signature(
    X: pd.DataFrame | pa.Table | np.ndarray,
    y: pd.Series | pd.DataFrame | np.ndarray | Sequence[object] | None = None,
    *,
    predictions: Prediction | None = None,
) -> Signature:
    """Infer a model version's signature from its training data.

    Column types follow the table in :class:`ColumnSpec`; a column is nullable when it
    has a missing value in ``X``. The output is inferred from ``predictions`` when given,
    else from ``y``: probabilities make a ``"probabilities"`` output with the
    prediction's classes; float predictions (or a float ``y``) make a ``"value"``
    output; anything else (integers, strings, booleans, categories) a ``"label"``
    output. With neither, ``output`` is ``None``. The result is a starting point that
    users may edit (see :meth:`Signature.from_dict`).

    Args:
        X: Training features: a pandas DataFrame or pyarrow Table (string column names)
            for a ``"table"`` signature, or a 2-D NumPy array of numbers or booleans for
            a ``"tensor"`` signature.
        y: Training targets, one per row of ``X``.
        predictions: The model's predictions on ``X``.

    Returns:
        The inferred signature.

    Raises:
        SignatureInferenceError: ``X`` is empty, not 2-D, of an unsupported container
            type, has non-string or repeated column names, or has a column of an
            unsupported type (the message names the column and its type).
        InvalidInputError: ``y`` or ``predictions`` does not have one entry per row of
            ``X`` (the message gives both lengths).

    Example:
        >>> import pandas as pd
        >>> signature = infer_signature(pd.DataFrame({"age": [31, 45], "city": ["Oslo", None]}))
        >>> [(c.name, c.dtype, c.nullable) for c in signature.columns]
        [('age', 'int64', False), ('city', 'string', True)]
    """
    columns, tensor = training_columns(X)
    rows = len(columns[0][1])
    check_lengths(rows, y=y, predictions=predictions)
    specs = [infer_column(name, series) for name, series in columns]
    return Signature(
        kind="table" if tensor is None else "tensor",
        columns=tuple(specs),
        tensor=tensor,
        output=infer_output(y, predictions),
    )


def training_columns(X: object) -> TrainingColumns:
    """Split training data into named columns.

    Raises:
        SignatureInferenceError: See :func:`infer_signature`.
    """
    if isinstance(X, pd.DataFrame):
        _check_labels(list(X.columns))
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise _empty_error(X.shape)
        frame = X.set_axis(pd.RangeIndex(len(X)), axis=0)
        return [(str(name), frame.iloc[:, i]) for i, name in enumerate(X.columns)], None
    if isinstance(X, pa.Table):
        _check_labels(list(X.column_names))
        if X.num_rows == 0 or X.num_columns == 0:
            raise _empty_error((X.num_rows, X.num_columns))
        return [(name, series_from_arrow(X.column(name))) for name in X.column_names], None
    if isinstance(X, np.ndarray):
        return _array_columns(X)
    raise SignatureInferenceError(
        f"X must be a pandas DataFrame, a pyarrow Table or a 2-D NumPy array, "
        f"got {type(X).__name__}."
    )


def _array_columns(X: np.ndarray) -> TrainingColumns:
    if X.ndim != 2:
        hint = " Use X.reshape(-1, 1) for a single feature." if X.ndim == 1 else ""
        raise SignatureInferenceError(
            f"X must be 2-D with shape (n_samples, n_features), got shape {X.shape}.{hint}"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise _empty_error(X.shape)
    if X.dtype.name not in _TENSOR_DTYPES:
        raise SignatureInferenceError(
            f"X has dtype {X.dtype}; a NumPy X must hold numbers or booleans "
            f"({', '.join(sorted(_TENSOR_DTYPES))}). Pass a DataFrame for mixed-type data."
        )
    columns = [(str(i), pd.Series(X[:, i])) for i in range(X.shape[1])]
    return columns, TensorSpec(dtype=X.dtype.name, shape=(-1, X.shape[1]))


def _check_labels(labels: list[object]) -> None:
    for label in labels:
        if not isinstance(label, str):
            raise SignatureInferenceError(
                f"Column names must be strings, got {label!r} ({type(label).__name__}). "
                "Rename the columns, e.g. X.columns = X.columns.astype(str)."
            )
    if len(set(labels)) != len(labels):
        repeated = sorted({str(x) for x in labels if labels.count(x) > 1})
        raise SignatureInferenceError(f"Column names must be unique; repeated: {repeated}.")


def _empty_error(shape: tuple[int, ...]) -> SignatureInferenceError:
    return SignatureInferenceError(
        f"Cannot infer a signature from empty training data (shape {tuple(shape)}); "
        "pass the rows the model was trained on."
    )


def check_lengths(
    rows: int,
    *,
    y: object | None,
    predictions: Prediction | None,
) -> None:
    """Check that ``y`` and ``predictions`` have one entry per training row.

    Raises:
        InvalidInputError: A length differs; the message gives both.
    """
    if y is not None:
        y_rows = _length(y)
        if y_rows != rows:
            raise InvalidInputError(
                f"X has {rows} rows but y has {y_rows}; they must have the same length."
            )
    if predictions is not None:
        if len(predictions) != rows:
            raise InvalidInputError(
                f"X has {rows} rows but predictions has {len(predictions)}; they must "
                "have the same length."
            )
        probabilities = predictions.probabilities
        if probabilities is not None and probabilities.shape[0] != rows:
            raise InvalidInputError(
                f"X has {rows} rows but predictions.probabilities has "
                f"{probabilities.shape[0]}; they must have the same length."
            )


def _length(values: object) -> int:
    if isinstance(values, np.ndarray | pd.Series | pd.DataFrame):
        return int(values.shape[0])
    if isinstance(values, pa.Array | pa.ChunkedArray | Sequence):
        return len(values)
    raise InvalidInputError(
        f"y must be a NumPy array, pandas Series or DataFrame, or a list, got "
        f"{type(values).__name__}."
    )


def infer_column(name: str, series: pd.Series) -> ColumnSpec:
    """Infer one column's spec: type, nullability, range and categories.

    Raises:
        SignatureInferenceError: The column's type is not supported.
    """
    dtype, timezone = column_dtype_of(series, column=name)
    canonical = canonical_column(
        ColumnSpec(name=name, dtype=dtype, nullable=True, timezone=timezone), series
    )
    minimum = maximum = None
    categories: tuple[CategoryValue, ...] | None = None
    if dtype in ("int64", "float64"):
        values = canonical.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        if len(finite):
            minimum, maximum = float(finite.min()), float(finite.max())
    elif dtype == "string":
        distinct = canonical.dropna().unique()
        if len(distinct) <= MAX_CATEGORIES:
            categories = tuple(sorted(str(value) for value in distinct))
    elif dtype == "category":
        categories = tuple(canonical.cat.categories.tolist())
    return ColumnSpec(
        name=name,
        dtype=dtype,
        nullable=bool(canonical.isna().any()),
        minimum=minimum,
        maximum=maximum,
        categories=categories,
        timezone=timezone,
    )


def canonical_column(spec: ColumnSpec, series: pd.Series) -> pd.Series:
    """Convert a training column to the dtype validation returns for ``spec``.

    Raises:
        SignatureInferenceError: A value cannot be read as the column's type.
    """
    try:
        values = coerce_column(ColumnPlan(spec), series)
    except SchemaValidationError as exc:
        raise SignatureInferenceError(f"Cannot read training column: {exc}") from exc
    return values if isinstance(values, pd.Series) else pd.Series(values, copy=False)


def infer_output(y: object | None, predictions: Prediction | None) -> OutputSpec | None:
    """Infer the output spec from predictions (preferred) or from ``y``.

    Raises:
        SignatureInferenceError: Labels or classes have an unsupported type, or
            probabilities come without classes that can be recovered.
    """
    if predictions is not None:
        labels = np.asarray(predictions.predictions)
        n_outputs = 1 if labels.ndim == 1 else int(labels.shape[1])
        classes = predictions.classes
        if predictions.probabilities is not None:
            classes = classes if classes is not None else _classes_for(predictions)
            return OutputSpec(
                kind="probabilities",
                dtype=_label_dtype(pd.Series(list(classes))),
                classes=_json_scalars(classes),
                n_outputs=n_outputs,
            )
        if classes is not None:
            return OutputSpec(
                kind="label",
                dtype=_label_dtype(pd.Series(list(classes))),
                classes=_json_scalars(classes),
                n_outputs=n_outputs,
            )
        return _output_from_values(pd.Series(labels.reshape(-1)), n_outputs)
    if y is None:
        return None
    if isinstance(y, pd.DataFrame):
        return _output_from_values(pd.Series(y.to_numpy().reshape(-1)), int(y.shape[1]))
    if isinstance(y, pa.Array | pa.ChunkedArray):
        return _output_from_values(series_from_arrow(y), 1)
    if isinstance(y, pd.Series):
        return _output_from_values(y, 1)
    array = np.asarray(y)
    n_outputs = 1 if array.ndim == 1 else int(array.shape[1])
    return _output_from_values(pd.Series(array.reshape(-1)), n_outputs)


def _output_from_values(values: pd.Series, n_outputs: int) -> OutputSpec:
    dtype = _label_dtype(values)
    if dtype == "float64":
        return OutputSpec(kind="value", dtype="float64", n_outputs=n_outputs)
    distinct = pd.unique(values.dropna())
    classes = None
    if len(distinct) <= MAX_CLASSES:
        try:
            ordered = sorted(distinct.tolist())
        except TypeError:
            ordered = list(distinct)
        classes = _json_scalars(ordered)
    return OutputSpec(kind="label", dtype=dtype, classes=classes, n_outputs=n_outputs)


def _label_dtype(values: pd.Series) -> ColumnDType:
    try:
        dtype, _ = column_dtype_of(values, column="output")
    except SignatureInferenceError as exc:
        raise SignatureInferenceError(f"Cannot infer the output type: {exc}") from exc
    return dtype


def _classes_for(predictions: Prediction) -> list[object]:
    width = predictions.probabilities.shape[1]  # type: ignore[union-attr]
    labels = pd.unique(np.asarray(predictions.predictions).reshape(-1))
    if len(labels) != width:
        raise SignatureInferenceError(
            f"The predictions have {width} probability columns but no classes, and "
            f"{len(labels)} distinct labels; set Prediction.classes."
        )
    try:
        return sorted(labels.tolist())
    except TypeError:
        return list(labels)


def _json_scalars(values: Sequence[object] | np.ndarray) -> tuple[CategoryValue, ...]:
    scalars: list[CategoryValue] = []
    for value in values:
        plain = value.item() if isinstance(value, np.generic) else value
        if not isinstance(plain, bool | int | float | str):
            raise SignatureInferenceError(
                f"Class label {value!r} has unsupported type {type(value).__name__}; "
                "labels must be strings, integers, floats or booleans."
            )
        scalars.append(plain)
    return tuple(scalars)
