"""The MLflow scoring protocol: ``POST /invocations`` (also the SageMaker container contract).

JSON bodies (``application/json``, UTF-8) hold exactly one of:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...], "index"?: [...]}``
- ``dataframe_records``: ``[{"age": 42, ...}, ...]``
- ``instances``: rows or records; for a one-column model, a list of plain values
- ``inputs``: rows (a tensor), or a dict of column name to list of values

and optionally ``params`` (accepted and not used). ``text/csv`` bodies have a header row.
Responses are ``{"predictions": [...]}``.
"""

from __future__ import annotations

from typing import Any

from ferryman.errors import MalformedRequestError, UnsupportedMediaTypeError
from ferryman.flavors.base import Prediction
from ferryman.serving.codecs._csv import read_csv
from ferryman.serving.codecs.base import (
    DecodedBatch,
    InputSchema,
    dumps,
    from_column_lists,
    from_columns_and_data,
    from_records_or_rows,
    json_type,
    loads,
)

#: The JSON body formats, exactly one of which a request must use.
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_CONTENT_TYPES = "application/json or text/csv"


def media_type(content_type: str | None) -> str:
    """Return ``"json"`` or ``"csv"`` for a Content-Type header.

    Raises:
        UnsupportedMediaTypeError: Another media type, a charset other than UTF-8, or none.
    """
    if not content_type:
        raise UnsupportedMediaTypeError(
            f"missing Content-Type; this endpoint accepts {_CONTENT_TYPES}"
        )
    kind, *parameters = (part.strip() for part in content_type.split(";"))
    kind = kind.lower()
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaTypeError(
                f"unsupported charset in Content-Type {content_type!r}; only UTF-8 is accepted"
            )
    if kind == "application/json":
        return "json"
    if kind == "text/csv":
        return "csv"
    raise UnsupportedMediaTypeError(
        f"unsupported Content-Type {content_type!r}; this endpoint accepts {_CONTENT_TYPES}"
    )


def decode(body: bytes, content_type: str | None, schema: InputSchema) -> DecodedBatch:
    """Decode an ``/invocations`` body.

    Args:
        body: The raw body.
        content_type: The request's Content-Type header.
        schema: What the endpoint accepts.

    Raises:
        UnsupportedMediaTypeError: The content type is not JSON or CSV in UTF-8.
        MalformedRequestError: Malformed JSON or CSV, or not exactly one format.
        SchemaValidationError: A row or column problem found while decoding.
    """
    if media_type(content_type) == "csv":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedRequestError(f"the CSV body is not valid UTF-8: {exc}") from None
        return from_column_lists(read_csv(text, schema.signature.columns), schema)
    payload = loads(body)
    if not isinstance(payload, dict):
        raise MalformedRequestError(
            f"expected a JSON object with one of {', '.join(FORMATS)}; got {json_type(payload)}"
        )
    present = [name for name in FORMATS if name in payload]
    if len(present) != 1:
        got = ", ".join(present) if present else ", ".join(map(repr, payload)) or "no fields"
        raise MalformedRequestError(
            f"the JSON object must have exactly one of {', '.join(FORMATS)}; got {got}"
        )
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise MalformedRequestError(f"'params' must be an object, got {json_type(params)}")
    name = present[0]
    return _DECODERS[name](payload[name], schema)


def encode(prediction: Prediction) -> bytes:
    """Encode a prediction as ``{"predictions": [...]}``."""
    return dumps({"predictions": prediction.predictions})


def _dataframe_split(value: Any, schema: InputSchema) -> DecodedBatch:
    if not isinstance(value, dict):
        raise MalformedRequestError(
            f"'dataframe_split' must be an object with 'columns' and 'data', got {json_type(value)}"
        )
    for key in value:
        if key not in ("columns", "data", "index"):
            raise MalformedRequestError(
                f"unknown field {key!r} in 'dataframe_split'; expected 'columns', 'data' and "
                "optionally 'index'"
            )
    if "data" not in value:
        raise MalformedRequestError("'dataframe_split' needs 'data', the rows of values")
    return from_columns_and_data(value.get("columns"), value["data"], schema)


def _dataframe_records(value: Any, schema: InputSchema) -> DecodedBatch:
    if not isinstance(value, list):
        raise MalformedRequestError(
            f"'dataframe_records' must be an array of records, got {json_type(value)}"
        )
    return from_records_or_rows(value, schema)


def _instances(value: Any, schema: InputSchema) -> DecodedBatch:
    if isinstance(value, dict):
        return from_column_lists(value, schema)
    if not isinstance(value, list):
        raise MalformedRequestError(
            f"'instances' must be an array of rows or records, got {json_type(value)}"
        )
    if value and len(schema.columns) == 1 and not isinstance(value[0], dict | list):
        return DecodedBatch([[item] for item in value])  # one plain value per row
    return from_records_or_rows(value, schema)


def _inputs(value: Any, schema: InputSchema) -> DecodedBatch:
    if isinstance(value, dict):
        return from_column_lists(value, schema)
    if isinstance(value, list):
        return _instances(value, schema)
    raise MalformedRequestError(
        f"'inputs' must be an array of rows or an object of named columns, got {json_type(value)}"
    )


_DECODERS = {
    "dataframe_split": _dataframe_split,
    "dataframe_records": _dataframe_records,
    "instances": _instances,
    "inputs": _inputs,
}
