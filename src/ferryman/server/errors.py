"""The one table from exception classes to HTTP status codes, and each protocol's error body.

Domain code raises Ferryman errors and knows nothing about HTTP; this module decides the
status (the first class in an exception's MRO found in :data:`STATUS`) and renders the
body in the shape of the protocol the request used:

- native: ``{"error": message, "code": stable code, "request_id": ..., "column"?, "row"?,
  "expected"?, "error_id"?}``
- Open Inference Protocol V2: ``{"error": message, "error_id"?}``
- MLflow: ``{"error_code": "BAD_REQUEST" | ..., "message": message, "error_id"?}``

A 5xx that is the server's own failure (a model that raised, an unexpected bug) gets an
``error_id``, logged with the traceback, so a user can quote it and an operator find it.
Unexpected exceptions are answered with a generic message, never their text.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from typing import Any

from starlette.responses import Response

from ferryman.errors import (
    AlreadyExistsError,
    EndpointNotReadyError,
    FerrymanError,
    InvalidInputError,
    InvalidReferenceError,
    InvalidTransitionError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PredictionError,
    PredictionTimeoutError,
    SchemaValidationError,
    StoreUnavailableError,
    UnsupportedMediaTypeError,
)
from ferryman.serving.codecs.base import dumps

logger = logging.getLogger("ferryman.server")


class Protocol(StrEnum):
    """The protocol a route speaks, which decides the shape of its error bodies."""

    NATIVE = "native"
    OIP_V2 = "oip_v2"
    MLFLOW = "mlflow"


#: Exception class -> (HTTP status, MLflow error code). Looked up along the MRO.
STATUS: dict[type[BaseException], tuple[int, str]] = {
    MalformedRequestError: (400, "BAD_REQUEST"),
    SchemaValidationError: (400, "INVALID_PARAMETER_VALUE"),
    InvalidReferenceError: (400, "INVALID_PARAMETER_VALUE"),
    InvalidInputError: (400, "INVALID_PARAMETER_VALUE"),
    NotFoundError: (404, "RESOURCE_DOES_NOT_EXIST"),
    AlreadyExistsError: (409, "RESOURCE_ALREADY_EXISTS"),
    InvalidTransitionError: (409, "INVALID_STATE"),
    PayloadTooLargeError: (413, "REQUEST_LIMIT_EXCEEDED"),
    UnsupportedMediaTypeError: (415, "BAD_REQUEST"),
    PredictionError: (500, "INTERNAL_ERROR"),
    EndpointNotReadyError: (503, "TEMPORARILY_UNAVAILABLE"),
    StoreUnavailableError: (503, "TEMPORARILY_UNAVAILABLE"),
    PredictionTimeoutError: (504, "DEADLINE_EXCEEDED"),
}
_INTERNAL = (500, "INTERNAL_ERROR")


def status_of(exc: BaseException) -> tuple[int, str]:
    """Return the HTTP status and MLflow error code for an exception (500 if unknown)."""
    for cls in type(exc).__mro__:
        found = STATUS.get(cls)
        if found is not None:
            return found
    return _INTERNAL


def error_response(
    exc: BaseException, *, protocol: Protocol, request_id: str, endpoint: str | None = None
) -> Response:
    """Render ``exc`` as an error response in the shape of ``protocol``.

    Args:
        exc: The exception a route caught.
        protocol: The protocol of the route.
        request_id: The request's id, echoed in native bodies.
        endpoint: The endpoint concerned, for the log line of a 5xx.
    """
    status, mlflow_code = status_of(exc)
    known = (isinstance(exc, FerrymanError) and status != 500) or isinstance(exc, PredictionError)
    message = str(exc) if known else "internal server error"
    error_id: str | None = None
    if status == 500:
        error_id = uuid.uuid4().hex
        logger.error(
            "error_id=%s request_id=%s endpoint=%s: %s",
            error_id,
            request_id,
            endpoint,
            exc,
            exc_info=exc,
        )
        if not known:
            message = f"internal server error; quote error id {error_id} to the operator"
    headers = {}
    if isinstance(exc, EndpointNotReadyError):
        headers["retry-after"] = str(exc.retry_after)
    elif status == 503:
        headers["retry-after"] = "1"
    body: dict[str, Any]
    if protocol is Protocol.MLFLOW:
        body = {"error_code": mlflow_code, "message": message}
    elif protocol is Protocol.OIP_V2:
        body = {"error": message}
    else:
        code = exc.code if isinstance(exc, FerrymanError) else "internal_error"
        body = {"error": message, "code": code, "request_id": request_id}
        if isinstance(exc, SchemaValidationError):
            for key in ("column", "row", "expected"):
                value = getattr(exc, key)
                if value is not None:
                    body[key] = value
    if error_id is not None:
        body["error_id"] = error_id
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)
