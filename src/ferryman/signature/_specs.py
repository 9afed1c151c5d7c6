"""The signature models: which columns a model version accepts and what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ferryman.signature import _validation
from ferryman.signature._dtypes import TIME_UNIT, ColumnDType
from ferryman.signature._serialization import model_from_dict

#: One category or class label: signatures keep them as JSON scalars.
CategoryValue = bool | int | float | str

#: NumPy dtypes a tensor signature can have.
TensorDType = Literal[
    "bool",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
]

#: What :meth:`Signature.validate` does with input columns the signature does not name.
UnknownColumns = Literal["reject", "ignore"]

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ColumnSpec(BaseModel):
    """One input column of a signature.

    Inference maps each training dtype to one of six signature types, and validation
    returns each column with one fixed pandas dtype:

    ================================================  ============  ==========================
    Training dtype                                    ``dtype``     validated pandas dtype
    ================================================  ============  ==========================
    NumPy int8..int64, uint8..uint64; pandas          ``int64``     ``int64``; ``Int64`` when
    Int8..UInt64; Arrow int*, uint*; object of ints                 ``nullable``
    NumPy float16..float64; pandas Float32/Float64;   ``float64``   ``float64`` (NaN missing)
    Arrow float*; object of floats (or ints+floats)
    NumPy bool; pandas boolean; Arrow bool;           ``bool``      ``bool``; ``boolean`` when
    object of bools                                                 ``nullable``
    pandas str/string (python or pyarrow storage);    ``string``    ``str`` (pandas'
    object of str; NumPy U; Arrow string,                           ``StringDtype``, NaN
    large_string, string_view                                       missing)
    pandas category; Arrow dictionary                 ``category``  ``category``: training
                                                                    categories first
    NumPy datetime64[any unit]; pandas                ``datetime``  ``datetime64[us]`` or
    datetime64[unit, tz]; Arrow timestamp, date32,                  ``datetime64[us, tz]``
    date64; object of datetime, date or Timestamp
    ================================================  ============  ==========================

    Anything else (complex numbers, timedeltas, bytes, decimals, periods, intervals,
    lists, dicts, structs, object columns mixing value types, columns holding only
    missing values) is refused at inference with :class:`SignatureInferenceError`.
    Integer widths and float widths are not kept: the flavor casts if its framework
    needs a narrower type. Tensor signatures keep the array dtype in :class:`TensorSpec`.

    Attributes:
        name: The column name.
        dtype: The signature type; see the table above.
        nullable: Whether missing values (None, NaN, NA, NaT) are accepted. Inferred as
            true when the training column had at least one missing value.
        minimum: The smallest finite training value of an ``int64`` or ``float64``
            column. Values outside ``[minimum, maximum]`` are accepted at prediction
            time and counted by :func:`count_out_of_range`.
        maximum: The largest finite training value, see ``minimum``.
        categories: For ``string`` columns with at most :data:`MAX_CATEGORIES` distinct
            training values, those values, sorted. For ``category`` columns, the
            declared categories in code order, however many (they define the codes a
            model sees). Unseen values are accepted and counted by
            :func:`count_out_of_range`.
        timezone: For ``datetime`` columns, the IANA or fixed-offset time zone
            (``"UTC"``, ``"Europe/Oslo"``, ``"UTC+01:00"``), or ``None`` for naive times.
    """

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1)
    dtype: ColumnDType
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[CategoryValue, ...] | None = None
    timezone: str | None = None

    @field_validator("categories")
    @classmethod
    def _check_categories(
        cls, categories: tuple[CategoryValue, ...] | None
    ) -> tuple[CategoryValue, ...] | None:
        if categories is None:
            return None
        types = {type(value) for value in categories}
        if types == {int, float}:
            return tuple(float(value) for value in categories)
        if len(types) > 1:
            names = ", ".join(sorted(t.__name__ for t in types))
            raise ValueError(f"categories must all have one type, got {names}")
        if len(set(categories)) != len(categories):
            raise ValueError("categories must not repeat a value")
        return categories

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        numeric = self.dtype in ("int64", "float64")
        if not numeric and (self.minimum is not None or self.maximum is not None):
            raise ValueError(
                f"minimum and maximum apply only to int64 and float64 columns, "
                f"not to {self.dtype} column {self.name!r}"
            )
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(
                f"column {self.name!r}: minimum {self.minimum} is greater than "
                f"maximum {self.maximum}"
            )
        if self.categories is not None:
            if self.dtype not in ("string", "category"):
                raise ValueError(
                    f"categories apply only to string and category columns, "
                    f"not to {self.dtype} column {self.name!r}"
                )
            if self.dtype == "string" and not all(isinstance(c, str) for c in self.categories):
                raise ValueError(f"string column {self.name!r} needs string categories")
        if self.timezone is not None:
            if self.dtype != "datetime":
                raise ValueError(
                    f"timezone applies only to datetime columns, not to {self.dtype} "
                    f"column {self.name!r}"
                )
            try:
                pd.DatetimeTZDtype(TIME_UNIT, self.timezone)
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(
                    f"column {self.name!r}: unknown time zone {self.timezone!r}; use an "
                    "IANA name such as 'UTC' or 'Europe/Oslo', or an offset like '+01:00'"
                ) from exc
        return self


class TensorSpec(BaseModel):
    """The array a tensor signature accepts: a NumPy dtype and a 2-D shape.

    Attributes:
        dtype: The NumPy dtype the model was trained on; validation casts to it.
        shape: ``(-1, n_features)``: any number of rows, a fixed number of features.
    """

    model_config = _MODEL_CONFIG

    dtype: TensorDType
    shape: tuple[Literal[-1], int]

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, shape: tuple[int, int]) -> tuple[int, int]:
        if shape[1] < 1:
            raise ValueError(f"shape must be (-1, n_features) with n_features >= 1, got {shape}")
        return shape


class OutputSpec(BaseModel):
    """What a model version returns.

    Attributes:
        kind: ``"label"`` for classifiers that return class labels only,
            ``"probabilities"`` for classifiers that also return class probabilities,
            ``"value"`` for regressors and other numeric outputs.
        dtype: The type of the labels (for ``label`` and ``probabilities``) or of the
            values (``float64`` for ``value``).
        classes: The class labels, in the order of the probability columns for
            ``probabilities``; for ``label`` the known labels, or ``None`` when there
            were more than :data:`MAX_CLASSES`; always ``None`` for ``value``.
        n_outputs: Number of output columns: 1, or k for multi-output models.
    """

    model_config = _MODEL_CONFIG

    kind: Literal["label", "probabilities", "value"]
    dtype: ColumnDType
    classes: tuple[CategoryValue, ...] | None = None
    n_outputs: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_classes(self) -> Self:
        if self.kind == "probabilities" and not self.classes:
            raise ValueError("a 'probabilities' output needs its classes")
        if self.kind == "value" and self.classes is not None:
            raise ValueError("a 'value' output has no classes")
        return self


class Signature(BaseModel):
    """The input columns and the output of a model version, enforced on every prediction.

    A signature is inferred at registration by :func:`infer_signature`, stored as JSON
    with the version (:meth:`to_dict`), can be edited by users (:meth:`from_dict`), and
    is applied to each batch by :meth:`validate` before the model sees it.

    Example of :meth:`to_dict` for a table signature::

        {"format_version": 1, "kind": "table",
         "columns": [{"name": "age", "dtype": "int64", "nullable": false,
                      "minimum": 18.0, "maximum": 90.0, "categories": null,
                      "timezone": null},
                     {"name": "city", "dtype": "string", "nullable": true,
                      "minimum": null, "maximum": null,
                      "categories": ["Bergen", "Oslo"], "timezone": null}],
         "tensor": null,
         "output": {"kind": "probabilities", "dtype": "int64", "classes": [0, 1],
                    "n_outputs": 1}}

    Attributes:
        format_version: Version of this JSON layout; 1.
        kind: ``"table"`` for DataFrame/Arrow training data, ``"tensor"`` for a NumPy
            array. Tensor signatures also have one column per feature, named ``"0"``,
            ``"1"``, ..., so that monitoring treats both kinds alike.
        columns: The input columns, in the order the model expects them.
        tensor: The array dtype and shape for ``tensor`` signatures, else ``None``.
        output: What the model returns, or ``None`` when it was not inferred.
    """

    model_config = _MODEL_CONFIG

    format_version: Literal[1] = 1
    kind: Literal["table", "tensor"]
    columns: tuple[ColumnSpec, ...] = Field(min_length=1)
    tensor: TensorSpec | None = None
    output: OutputSpec | None = None

    @model_validator(mode="after")
    def _check_columns(self) -> Self:
        names = [column.name for column in self.columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"column names must be unique; repeated: {', '.join(repeated)}")
        if (self.kind == "tensor") != (self.tensor is not None):
            raise ValueError("'tensor' must be set exactly when kind is 'tensor'")
        if self.tensor is not None:
            self._check_tensor_columns(self.tensor)
        return self

    def _check_tensor_columns(self, tensor: TensorSpec) -> None:
        if tensor.shape[1] != len(self.columns):
            raise ValueError(
                f"tensor shape {tensor.shape} does not match the {len(self.columns)} columns"
            )
        kind = np.dtype(tensor.dtype).kind
        expected_dtype: ColumnDType = {"b": "bool", "f": "float64"}.get(kind, "int64")  # type: ignore[assignment]
        for position, column in enumerate(self.columns):
            if column.name != str(position):
                raise ValueError(
                    f"tensor columns are named by position: expected {str(position)!r}, "
                    f"got {column.name!r}"
                )
            if column.dtype != expected_dtype:
                raise ValueError(
                    f"column {column.name!r} of a {tensor.dtype} tensor must have dtype "
                    f"{expected_dtype}, not {column.dtype}"
                )
            if column.nullable and kind != "f":
                raise ValueError(
                    f"column {column.name!r} of a {tensor.dtype} tensor cannot be nullable"
                )

    @property
    def column_names(self) -> tuple[str, ...]:
        """The input column names, in signature order."""
        return self._validation_plan().names

    def _validation_plan(self) -> _validation.ValidationPlan:
        # Precomputed lookups for the serving hot path, cached on the instance. The cache
        # remembers which columns it was built from, so a model_copy(update=...) that
        # replaces the columns never reuses a stale plan.
        plan = self.__dict__.get("_plan")
        if (
            not isinstance(plan, _validation.ValidationPlan)
            or plan.columns is not self.columns
            or plan.tensor is not self.tensor
        ):
            plan = _validation.ValidationPlan(self)
            self.__dict__["_plan"] = plan
        return plan

    def __getstate__(self) -> dict[Any, Any]:
        # Pickle the fields only; the validation plan is a cache, rebuilt on first use.
        state = super().__getstate__()
        state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k != "_plan"}
        return state

    def to_dict(self) -> dict[str, object]:
        """Return the signature as a JSON-safe dict (only str, int, float, bool, None)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Signature:
        """Rebuild a signature from :meth:`to_dict` output, possibly edited by a user.

        Args:
            data: The decoded JSON object.

        Returns:
            The signature.

        Raises:
            InvalidInputError: ``data`` is malformed; the message names the field, for
                example ``columns.2.dtype``.
        """
        return model_from_dict(cls, data, what="signature")

    def validate(  # type: ignore[override]  # replaces pydantic's deprecated v1 classmethod
        self, data: object, *, unknown_columns: UnknownColumns = "reject", as_array: bool = False
    ) -> pd.DataFrame | np.ndarray:
        """Check a batch against the signature and return it in the model's layout.

        This is the one validator: the Python API, HTTP serving and batch scoring all
        call it. Accepted inputs: a pandas DataFrame, a pyarrow Table, a list of record
        dicts, a dict of column name to list of values, or a 2-D NumPy array or list of
        rows whose columns are in signature order (for table signatures the number of
        columns must match exactly).

        Rules: integers are accepted where floats are expected, and floats without a
        fractional part where integers are; booleans are never numbers; strings are
        never parsed as numbers; datetimes accept ISO 8601 strings (naive ones are read
        as UTC when the column has a time zone). Out-of-range values and unseen
        categories are accepted (count them with :func:`count_out_of_range`).

        Args:
            data: The batch.
            unknown_columns: ``"reject"`` raises on input columns the signature does not
                name; ``"ignore"`` drops them.
            as_array: For a table signature whose columns are all float64 (or all
                int64), return the checked rows as a 2-D array (columns in signature
                order) instead of a DataFrame, except for a DataFrame or Arrow input:
                for models that take arrays, it saves building a DataFrame they would
                only turn back into one.

        Returns:
            For table signatures a DataFrame with a zero-based RangeIndex, the
            signature's columns in order, each with the dtype listed in
            :class:`ColumnSpec`. For tensor signatures an ndarray of the tensor dtype
            (the input array itself when it already has that dtype). The input is never
            modified; a result may share memory with a DataFrame input through pandas'
            copy-on-write, so changing one never changes the other.

        Raises:
            SchemaValidationError: The batch does not match. ``column``, ``row`` (zero
                based) and ``expected`` locate the first problem: batch-level problems
                first (empty batch, wrong shape, missing or unknown column), then values
                column by column in signature order, reporting the first offending row
                of the first offending column.

        Example:
            >>> import pandas as pd
            >>> from ferryman.signature import infer_signature
            >>> signature = infer_signature(pd.DataFrame({"age": [31, 45], "income": [1.5, 2.0]}))
            >>> signature.validate([{"age": 40, "income": 3}]).dtypes.tolist()
            [dtype('int64'), dtype('float64')]
            >>> signature.validate([{"age": 40, "income": 3}, {"age": "forty", "income": 1}])
            Traceback (most recent call last):
            ...
            ferryman.errors.SchemaValidationError: column 'age', row 1: expected int64, got ...
        """
        return _validation.validate(self, data, unknown_columns=unknown_columns, as_array=as_array)
