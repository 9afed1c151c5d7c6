"""Ferryman's native JSON protocol: ``POST /v1/endpoints/{endpoint}/predict``.

Request bodies take one of two layouts::

    {"instances": [{"age": 42, "city": "Oslo"}, ...]}        records (or rows, for tensors)
    {"columns": ["age", "city"], "data": [[42, "Oslo"], ...]}  split

Responses::

    {"predictions": [...], "probabilities": [[...], ...], "classes": [...],
     "model_version": "churn/3", "request_id": "..."}

``probabilities`` appears when the model has them, ``classes`` when they are known.
"""

from __future__ import annotations

from typing import Any

from ferryman.errors import MalformedRequestError
from ferryman.flavors.base import Prediction
from ferryman.serving.codecs.base import (
    DecodedBatch,
    InputSchema,
    check_keys,
    dumps,
    from_columns_and_data,
    from_records_or_rows,
    json_type,
    loads,
)

_LAYOUTS = '{"instances": [...]} or {"columns": [...], "data": [[...], ...]}'


def decode(body: bytes, schema: InputSchema) -> DecodedBatch:
    """Decode a native request body.

    Args:
        body: The raw JSON body.
        schema: What the endpoint accepts.

    Raises:
        MalformedRequestError: The body is not JSON, or not one of the two layouts.
        SchemaValidationError: A split row has the wrong number of values.
    """
    payload = loads(body)
    if not isinstance(payload, dict):
        raise MalformedRequestError(f"expected a JSON object, {_LAYOUTS}; got {json_type(payload)}")
    if "instances" in payload:
        check_keys(payload, ("instances",), what="a request with 'instances'")
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise MalformedRequestError(
                f"'instances' must be an array of records or rows, got {json_type(instances)}"
            )
        return from_records_or_rows(instances, schema)
    if "columns" in payload or "data" in payload:
        check_keys(payload, ("columns", "data"), what="a request with 'columns' and 'data'")
        if "columns" not in payload:
            raise MalformedRequestError("'data' needs 'columns', the names of its values")
        if "data" not in payload:
            raise MalformedRequestError("'columns' needs 'data', the rows of values")
        return from_columns_and_data(payload["columns"], payload["data"], schema)
    fields = ", ".join(repr(key) for key in payload) or "no fields"
    raise MalformedRequestError(f"expected {_LAYOUTS}; got {fields}")


def encode(prediction: Prediction, *, model_version: str, request_id: str) -> bytes:
    """Encode a prediction as a native response body.

    Args:
        prediction: The model's output for the request's rows.
        model_version: The version that served, ``name/N``.
        request_id: The request's id.
    """
    payload: dict[str, Any] = {"predictions": prediction.predictions}
    if prediction.probabilities is not None:
        payload["probabilities"] = prediction.probabilities
    if prediction.classes is not None:
        payload["classes"] = prediction.classes
    payload["model_version"] = model_version
    payload["request_id"] = request_id
    return dumps(payload)
