"""Reading a CSV body into columns of typed values, guided by the signature.

The validator never parses strings as numbers, so CSV text is converted here, column by
column, to what the signature declares; an empty field is a missing value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from ferryman.errors import MalformedRequestError, SchemaValidationError
from ferryman.signature import ColumnSpec

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def read_csv(text: str, columns: tuple[ColumnSpec, ...]) -> dict[str, list[Any]]:
    """Parse CSV with a header row into a dict of column lists.

    Args:
        text: The decoded body.
        columns: The signature's columns; other columns are kept as strings.

    Raises:
        MalformedRequestError: No header row, or a row with the wrong number of fields.
        SchemaValidationError: A field cannot be read as its column's type.
    """
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise MalformedRequestError(f"malformed CSV: {exc}") from None
    rows = [row for row in rows if row]  # csv yields [] for blank lines
    if not rows:
        raise MalformedRequestError("empty CSV body: expected a header row of column names")
    header, data = rows[0], rows[1:]
    for number, row in enumerate(data):
        if len(row) != len(header):
            raise SchemaValidationError(
                f"row {number}: expected {len(header)} fields (one per header column), got "
                f"{len(row)}",
                row=number,
                expected=f"{len(header)} fields",
            )
    specs = {column.name: column for column in columns}
    result: dict[str, list[Any]] = {}
    for position, name in enumerate(header):
        values = [row[position] for row in data]
        spec = specs.get(name)
        result[name] = values if spec is None else _convert(spec, values)
    return result


def _convert(spec: ColumnSpec, values: list[str]) -> list[Any]:
    kind = _kind(spec)
    parse, expected = _PARSERS[kind]
    converted: list[Any] = []
    for row, text in enumerate(values):
        if text == "":
            converted.append(None)
            continue
        try:
            converted.append(parse(text))
        except ValueError:
            raise SchemaValidationError(
                f"column {spec.name!r}, row {row}: expected {expected}, got {text!r}",
                column=spec.name,
                row=row,
                expected=expected,
            ) from None
    return converted


def _kind(spec: ColumnSpec) -> str:
    if spec.dtype == "category" and spec.categories:
        first = spec.categories[0]
        if isinstance(first, bool):
            return "bool"
        if isinstance(first, int):
            return "int64"
        if isinstance(first, float):
            return "float64"
        return "string"
    if spec.dtype in ("int64", "float64", "bool"):
        return spec.dtype
    return "string"


def _integer(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)  # "3.0" is an integer; the validator refuses "3.5"


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int64": (_integer, "an integer"),
    "float64": (float, "a number"),
    "bool": (_boolean, "true or false"),
    "string": (str, "text"),
}
