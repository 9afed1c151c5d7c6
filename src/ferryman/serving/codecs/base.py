"""What every protocol codec shares: the input schema, the decoded batch, the output layout.

A codec turns a request body into a :class:`DecodedBatch` (a container that
:meth:`ferryman.signature.Signature.validate` accepts, with passthrough columns taken
out) and a :class:`~ferryman.flavors.Prediction` into response bytes. Codecs are pure
functions: no I/O, no HTTP, no state. Structural problems (malformed JSON, a field of the
wrong type, a tensor whose shape does not match its data) raise
:class:`~ferryman.errors.MalformedRequestError`; problems with rows and columns raise
:class:`~ferryman.errors.SchemaValidationError`, as the validator does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from ferryman.errors import MalformedRequestError, SchemaValidationError
from ferryman.flavors.base import ModelInput, Prediction
from ferryman.serving.codecs._float_matrix import FEW_VALUES, float_matrix
from ferryman.signature import ColumnSpec, Signature

#: What the validator does with input columns the signature does not name.
UnknownColumns = Literal["reject", "ignore"]

_EMPTY: Mapping[str, list[Any]] = {}


@dataclass(frozen=True, eq=False)
class InputSchema:
    """What one endpoint accepts: its model's signature plus the endpoint's column policy.

    Besides its arguments, it keeps lookups the codecs use on every request, computed
    once per served version.

    Args:
        signature: The served version's signature.
        unknown_columns: ``"reject"`` or ``"ignore"`` columns the signature does not name.
        passthrough: Columns a request may carry that are taken out before validation.
        as_array: Validate all-float (or all-int) array batches into the checked array
            rather than a DataFrame, for models that take arrays (see
            :meth:`Signature.validate <ferryman.signature.Signature.validate>`).

    Attributes:
        columns: The signature's column names, in signature order.
        is_tensor: Whether the signature is a tensor signature.
        positions: Column name to its position in :attr:`columns`.
        specs: Column name to its :class:`~ferryman.signature.ColumnSpec`.
        float_only: Whether this is a table signature whose columns are all ``float64``:
            the codecs then build requests of plain JSON numbers straight into one
            float64 matrix (see ``_float_matrix``), with the same result.
    """

    signature: Signature
    unknown_columns: UnknownColumns = "reject"
    passthrough: frozenset[str] = frozenset()
    as_array: bool = False
    columns: tuple[str, ...] = field(init=False)
    is_tensor: bool = field(init=False)
    positions: Mapping[str, int] = field(init=False, repr=False)
    specs: Mapping[str, ColumnSpec] = field(init=False, repr=False)
    float_only: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        columns = self.signature.column_names
        set_ = object.__setattr__
        set_(self, "columns", columns)
        set_(self, "is_tensor", self.signature.kind == "tensor")
        set_(self, "positions", {name: position for position, name in enumerate(columns)})
        set_(self, "specs", {column.name: column for column in self.signature.columns})
        set_(
            self,
            "float_only",
            not self.is_tensor and all(c.dtype == "float64" for c in self.signature.columns),
        )

    def validate(self, data: object) -> ModelInput:
        """Validate a decoded batch with the one validator; return the model's input.

        Raises:
            SchemaValidationError: The batch does not match the signature.
        """
        return self.signature.validate(
            data, unknown_columns=self.unknown_columns, as_array=self.as_array
        )


@dataclass(frozen=True)
class DecodedBatch:
    """A request's rows, ready for :meth:`InputSchema.validate`.

    Attributes:
        data: Records, rows in signature order, a dict of column lists, or an array
            (model payload).
        passthrough: The values of the passthrough columns the request carried, one
            list per column with one value per row (``None`` where a row had none).
    """

    data: Any
    passthrough: Mapping[str, list[Any]] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class OutputLayout:
    """The shape of a version's outputs, learnt from its warm-up prediction.

    Attributes:
        prediction_dtype: The NumPy dtype of the predictions.
        prediction_width: Number of prediction columns of a multi-output model, or
            ``None`` when predictions are one value per row.
        n_classes: Number of probability columns, or ``None`` without probabilities.
        classes: The class labels, when known.
    """

    prediction_dtype: np.dtype[Any]
    prediction_width: int | None
    n_classes: int | None
    classes: tuple[Any, ...] | None

    @classmethod
    def from_prediction(cls, prediction: Prediction) -> OutputLayout:
        """Describe the outputs of ``prediction``."""
        values = prediction.predictions
        probabilities = prediction.probabilities
        return cls(
            prediction_dtype=values.dtype,
            prediction_width=int(values.shape[1]) if values.ndim == 2 else None,
            n_classes=None if probabilities is None else int(probabilities.shape[1]),
            classes=None if prediction.classes is None else tuple(prediction.classes),
        )


def loads(body: bytes) -> Any:
    """Parse a JSON body.

    Raises:
        MalformedRequestError: The body is empty or not valid JSON.
    """
    if not body:
        raise MalformedRequestError("empty request body: expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"malformed JSON: {exc}") from None


def dumps(payload: object) -> bytes:
    """Serialise a response payload; NumPy arrays and scalars become JSON values."""
    return orjson.dumps(payload, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_default(value: object) -> object:
    # orjson hands over what it cannot write natively: object/str arrays, NumPy scalars.
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def json_type(value: object) -> str:
    """Name the JSON type of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def check_keys(payload: Mapping[str, Any], allowed: Sequence[str], *, what: str) -> None:
    """Raise for the first key of ``payload`` outside ``allowed``."""
    for key in payload:
        if key not in allowed:
            names = ", ".join(repr(name) for name in allowed)
            raise MalformedRequestError(f"unknown field {key!r} in {what}; expected {names}")


def from_records_or_rows(instances: list[Any], schema: InputSchema) -> DecodedBatch:
    """Take the passthrough columns out of records; rows pass through unchanged.

    For an all-float64 signature (:attr:`InputSchema.float_only`), records that hold
    exactly the signature's columns (in any order), or rows of one value per column, of
    plain numbers become one float64 matrix; the validator then returns what it would
    have returned for the records or rows.
    """
    if schema.float_only and len(instances) * len(schema.columns) > FEW_VALUES:
        matrix = _float_records_or_rows(instances, schema)
        if matrix is not None:
            if not schema.passthrough or type(instances[0]) is not dict:
                return DecodedBatch(matrix)
            rows = len(instances)  # records without the passthrough columns: all None
            return DecodedBatch(matrix, {name: [None] * rows for name in schema.passthrough})
    if not schema.passthrough or not instances or not isinstance(instances[0], dict):
        return DecodedBatch(instances)
    names = schema.passthrough
    values: dict[str, list[Any]] = {name: [] for name in names}
    records: list[Any] = []
    for record in instances:
        if not isinstance(record, dict):
            return DecodedBatch(instances)  # mixed records and rows: the validator says so
        for name in names:
            values[name].append(record.get(name))
        if not names.isdisjoint(record):
            record = {key: value for key, value in record.items() if key not in names}
        records.append(record)
    return DecodedBatch(records, values)


def from_columns_and_data(columns: object, data: object, schema: InputSchema) -> DecodedBatch:
    """Decode the split layout: column names plus rows of values in that order.

    Args:
        columns: The decoded ``columns`` field, or ``None`` for signature order.
        data: The decoded ``data`` field.
        schema: What the endpoint accepts.

    Raises:
        MalformedRequestError: ``columns`` is not a list of names or ``data`` not a list.
        SchemaValidationError: A name repeats or a row has the wrong number of values.
    """
    if not isinstance(data, list):
        raise MalformedRequestError(f"'data' must be an array of rows, got {json_type(data)}")
    if columns is None:
        return DecodedBatch(data)
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise MalformedRequestError("'columns' must be an array of column names (strings)")
    width = len(columns)
    if len(set(columns)) != width:
        repeated = next(name for name in columns if columns.count(name) > 1)
        raise SchemaValidationError(
            f"column {repeated!r} appears more than once in 'columns'; expected each once",
            column=repeated,
            expected="unique column names",
        )
    for row, values in enumerate(data):
        if type(values) is not list or len(values) != width:
            got = f"{len(values)} values" if isinstance(values, list) else json_type(values)
            raise SchemaValidationError(
                f"row {row}: expected an array of {width} values (one per name in 'columns'), "
                f"got {got}",
                row=row,
                expected=f"{width} values",
            )
    if schema.float_only and len(data) * width > FEW_VALUES and width == len(schema.columns):
        matrix = _float_split(columns, data, schema)
        if matrix is not None:
            return DecodedBatch(matrix)
    if not schema.passthrough and tuple(columns) == schema.columns:
        return DecodedBatch(data)  # already rows in signature order: the fastest route
    lists = [list(values) for values in zip(*data, strict=True)] if data else [[] for _ in columns]
    by_name = dict(zip(columns, lists, strict=True))
    passthrough = {name: by_name.pop(name) for name in schema.passthrough if name in by_name}
    return DecodedBatch(by_name, passthrough or _EMPTY)


def from_column_lists(columns: Mapping[str, Any], schema: InputSchema) -> DecodedBatch:
    """Take the passthrough columns out of a dict of column lists."""
    if not schema.passthrough or schema.passthrough.isdisjoint(columns):
        return DecodedBatch(columns)
    kept = {name: values for name, values in columns.items() if name not in schema.passthrough}
    passthrough = {
        name: list(values) if isinstance(values, list) else [values]
        for name, values in columns.items()
        if name in schema.passthrough
    }
    return DecodedBatch(kept, passthrough)


def _float_records_or_rows(instances: list[Any], schema: InputSchema) -> np.ndarray | None:
    """The float64 matrix of an all-float64 batch of records or rows, or ``None``."""
    rows: list[Any] = instances
    if type(instances[0]) is dict:
        # Clients write a record's keys in signature order (the order the signature and
        # the V2 metadata list them), and orjson shares one key object across the rows:
        # comparing the key tuples is then a cheap identity check. Any other order, a
        # missing or an extra key takes the general route.
        names = tuple(instances[0])
        if names != schema.columns:
            return None
        try:
            if not all(map(names.__eq__, map(tuple, instances))):
                return None
            rows = list(map(dict.values, instances))
        except TypeError:
            return None  # a row that is not a record
    return float_matrix(rows, (len(rows), len(schema.columns)))


def _float_split(columns: list[str], data: list[Any], schema: InputSchema) -> np.ndarray | None:
    """The float64 matrix of an all-float64 split batch, columns in any order, or ``None``.

    ``columns`` holds distinct names and each row of ``data`` one value per name.
    """
    in_order = tuple(columns) == schema.columns
    if not in_order and not schema.positions.keys() >= set(columns):
        return None  # unknown or passthrough columns, or missing ones
    matrix = float_matrix(data, (len(data), len(columns)))
    if matrix is None or in_order:
        return matrix
    where = {name: position for position, name in enumerate(columns)}
    return matrix[:, [where[name] for name in schema.columns]]
