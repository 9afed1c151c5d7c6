"""The columns of the three log tables, and merging the schemas of many segments.

Segments written by different model versions differ: a feature appears, a column turns
from integers into text. Readers see one table per kind through :func:`unify`, which
widens types the way Arrow's permissive promotion does (integers to floats, null to
anything, struct fields merged by name) and, where two types have no common type, falls
back to text.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ferryman.capture._layout import LogTable

TIMESTAMP = pa.timestamp("us", tz="UTC")
PROBABILITIES = pa.map_(pa.string(), pa.float64())

#: Columns every prediction segment has, in order; then ``inputs``, passthrough columns,
#: ``prediction`` and ``probabilities`` when there are any.
PREDICTION_FIELDS = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("time", TIMESTAMP),
        ("model_version", pa.string()),
        ("role", pa.string()),
        ("status", pa.int32()),
        ("error", pa.string()),
        ("error_code", pa.string()),
        ("latency_ms", pa.float64()),
    ]
)

#: The columns readers can always count on, even before anything was written.
BASE_SCHEMAS: dict[LogTable, pa.Schema] = {
    "predictions": pa.schema(
        [*PREDICTION_FIELDS, ("prediction", pa.null()), ("probabilities", PROBABILITIES)]
    ),
    "feedback": pa.schema(
        [
            ("request_id", pa.string()),
            ("row", pa.int32()),
            ("label", pa.string()),
            ("outcome", pa.float64()),
            ("time", TIMESTAMP),
            ("received_at", TIMESTAMP),
            ("sequence", pa.int64()),
        ]
    ),
    "reviews": pa.schema(
        [
            ("request_id", pa.string()),
            ("row", pa.int32()),
            ("time", TIMESTAMP),
            ("verdict", pa.string()),
            ("comment", pa.string()),
            ("reviewer", pa.string()),
        ]
    ),
}

#: Names a passthrough column cannot take; such a column is stored as ``passthrough_<name>``.
RESERVED_COLUMNS = frozenset(
    {*PREDICTION_FIELDS.names, "inputs", "prediction", "probabilities", "endpoint", "date"}
)


def unify(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """Merge schemas by column name; conflicting types become text.

    Raises:
        ValueError: ``schemas`` is empty.
    """
    if not schemas:
        raise ValueError("unify needs at least one schema")
    plain = [schema.remove_metadata() for schema in schemas]
    try:
        return pa.unify_schemas(plain, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    merged: dict[str, pa.DataType] = {}
    for schema in plain:
        for field in schema:
            known = merged.get(field.name)
            merged[field.name] = field.type if known is None else _merge_types(known, field.type)
    return pa.schema(list(merged.items()))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns: cast, or null where missing."""
    columns: list[pa.Array | pa.ChunkedArray] = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(cast_to(table.column(field.name), field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables of different schemas (see :func:`unify`)."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        schema = unify([table.schema for table in tables])
        return pa.concat_tables([conform(table, schema) for table in tables])


def cast_to(values: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """Cast a column to ``target``, through text when Arrow has no direct cast."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type == target:
        return values
    if pa.types.is_struct(target) and pa.types.is_struct(values.type):
        children = []
        for field in target:
            index = values.type.get_field_index(field.name)
            child = (
                pa.nulls(len(values), field.type)
                if index < 0
                else cast_to(values.field(index), field.type)
            )
            children.append(child)
        return pa.StructArray.from_arrays(
            children, fields=list(target), mask=values.is_null() if values.null_count else None
        )
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if pa.types.is_string(target):
            return as_text(values)
        raise


def as_text(values: pa.Array) -> pa.Array:
    """Every value as text: Arrow's cast where it has one, else its Python ``str``."""
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())


def _merge_types(left: pa.DataType, right: pa.DataType) -> pa.DataType:
    if left == right:
        return left
    if pa.types.is_null(left):
        return right
    if pa.types.is_null(right):
        return left
    if pa.types.is_struct(left) and pa.types.is_struct(right):
        fields: dict[str, pa.DataType] = {field.name: field.type for field in left}
        for field in right:
            known = fields.get(field.name)
            fields[field.name] = field.type if known is None else _merge_types(known, field.type)
        return pa.struct(list(fields.items()))
    try:
        merged = pa.unify_schemas(
            [pa.schema([("x", left)]), pa.schema([("x", right)])], promote_options="permissive"
        )
        return merged.field("x").type
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.string()
