"""The OpenAPI 3.1 document served at ``/openapi.json``, written by hand.

It describes every route with its request and response schemas, for every status a
route can answer. Request schemas describe the protocols' structure (any signature's
rows fit them); the row-level rules come from each model's signature and are checked by
the server. The ``endpoint``/``name`` path parameters list the endpoints that exist when
the document is fetched as examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferryman._version import __version__
from ferryman.server import control
from ferryman.server._context import ServerContext
from ferryman.serving.codecs.oip_v2 import DATATYPES
from ferryman.serving.runtime import RuntimePool

_JSON = "application/json"
_REF = "#/components/schemas/"

_REQUEST_ID_HEADER = {
    "description": "The request's id: the client's X-Request-ID, or a generated one.",
    "required": True,
    "schema": {"type": "string"},
}
_TIMING_HEADERS = {
    "X-Queue-Time-Ms": {
        "description": "Milliseconds the request waited before its model call started.",
        "schema": {"type": "string"},
    },
    "X-Compute-Time-Ms": {
        "description": "Milliseconds the model call took (the whole micro-batch's).",
        "schema": {"type": "string"},
    },
}

_ANY_ROW = {"oneOf": [{"type": "object"}, {"type": "array"}]}
_SCALARS = {"type": ["string", "number", "integer", "boolean", "null"]}

_SCHEMAS: dict[str, Any] = {
    "NativeRequest": {
        "description": "Records (or rows in signature order, or tensor rows), or the split "
        "layout: column names plus rows.",
        "oneOf": [
            {
                "type": "object",
                "properties": {"instances": {"type": "array", "items": _ANY_ROW}},
                "required": ["instances"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
                "required": ["columns", "data"],
                "additionalProperties": False,
            },
        ],
    },
    "NativeResponse": {
        "type": "object",
        "properties": {
            "predictions": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"}},
            "classes": {"type": "array"},
            "model_version": {"type": "string", "description": "name/N of the version."},
            "request_id": {"type": "string"},
        },
        "required": ["predictions", "model_version", "request_id"],
    },
    "NativeError": {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "What went wrong and what to do."},
            "code": {"type": "string", "description": "Stable error code."},
            "request_id": {"type": "string"},
            "column": {"type": "string"},
            "row": {"type": "integer"},
            "expected": {"type": "string"},
            "error_id": {"type": "string", "description": "For 5xx: the id in the log."},
        },
        "required": ["error", "code", "request_id"],
    },
    "V2ServerMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "version", "extensions"],
    },
    "V2Live": {
        "type": "object",
        "properties": {"live": {"type": "boolean"}},
        "required": ["live"],
    },
    "V2Ready": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
        "required": ["ready"],
    },
    "V2ModelReady": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        "required": ["name", "ready"],
    },
    "V2TensorMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["name", "datatype", "shape"],
    },
    "V2ModelMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": f"{_REF}V2TensorMetadata"}},
            "outputs": {"type": "array", "items": {"$ref": f"{_REF}V2TensorMetadata"}},
        },
        "required": ["name", "platform", "inputs", "outputs"],
    },
    "V2RequestInput": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
        "required": ["name", "shape", "datatype", "data"],
    },
    "V2RequestOutput": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
        "required": ["name"],
    },
    "V2InferRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": f"{_REF}V2RequestInput"}},
            "outputs": {"type": "array", "items": {"$ref": f"{_REF}V2RequestOutput"}},
        },
        "required": ["inputs"],
    },
    "V2ResponseOutput": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
        "required": ["name", "shape", "datatype", "data"],
    },
    "V2InferResponse": {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"$ref": f"{_REF}V2ResponseOutput"}},
        },
        "required": ["model_name", "id", "outputs"],
    },
    "V2Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "error_id": {"type": "string"}},
        "required": ["error"],
    },
    "MLflowRequest": {
        "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs; "
        "optional params (not used).",
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                    "index": {"type": "array"},
                },
                "required": ["data"],
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {
                "oneOf": [
                    {"type": "array", "items": {"oneOf": [*_ANY_ROW["oneOf"], _SCALARS]}},
                    {"type": "object"},
                ]
            },
            "inputs": {"oneOf": [{"type": "array"}, {"type": "object"}]},
            "params": {"type": "object"},
        },
        "minProperties": 1,
    },
    "MLflowResponse": {
        "type": "object",
        "properties": {"predictions": {"type": "array"}},
        "required": ["predictions"],
    },
    "MLflowError": {
        "type": "object",
        "properties": {
            "error_code": {"type": "string"},
            "message": {"type": "string"},
            "error_id": {"type": "string"},
        },
        "required": ["error_code", "message"],
    },
    "Status": {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    },
    "Readiness": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "endpoints": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "state": {"type": "string", "enum": ["ready", "loading", "failed"]},
                        "model_version": {"type": "string"},
                        "error": {"type": ["string", "null"]},
                    },
                    "required": ["state"],
                },
            },
        },
        "required": ["status", "endpoints"],
    },
}

_STATUS_TEXT = {
    200: "Success.",
    400: "The request is malformed or does not match the model's signature.",
    404: "No such endpoint, model version or route.",
    405: "Method not allowed.",
    413: "The body is larger than the server's limit (max_body_bytes).",
    415: "Unsupported Content-Type.",
    500: "The model failed; the body carries an error id found in the server log.",
    503: "The endpoint's model is loading (see Retry-After) or the server is not ready.",
    504: "The prediction took longer than the endpoint's timeout.",
}


def _response(status: int, schema: str, *, media: str = _JSON, timing: bool = False) -> Any:
    headers: dict[str, Any] = {"X-Request-ID": _REQUEST_ID_HEADER}
    if timing:
        headers.update(_TIMING_HEADERS)
    if status == 503:
        headers["Retry-After"] = {"description": "Seconds to wait.", "schema": {"type": "string"}}
    content_schema: Any = {"$ref": f"{_REF}{schema}"} if schema[0].isupper() else {"type": schema}
    return {
        "description": _STATUS_TEXT[status],
        "headers": headers,
        "content": {media: {"schema": content_schema}},
    }


def _errors(schema: str, statuses: tuple[int, ...]) -> dict[str, Any]:
    return {str(status): _response(status, schema) for status in statuses}


_PREDICT_ERRORS = (400, 404, 413, 500, 503, 504)


def _body(schema: str, *, csv: bool = False) -> Any:
    content: dict[str, Any] = {_JSON: {"schema": {"$ref": f"{_REF}{schema}"}}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"required": True, "content": content}


def _parameter(name: str, description: str, examples: list[str]) -> Any:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9._-]+$"},
    }
    if examples:
        parameter["examples"] = {value: {"value": value} for value in examples}
    return parameter


def document(context: ServerContext) -> Callable[[RuntimePool], dict[str, Any]]:
    """Return a function that builds the document for the endpoints of the moment."""

    def build(pool: RuntimePool) -> dict[str, Any]:
        names = [runtime.name for runtime in pool.list()]
        endpoint = _parameter("endpoint", "An endpoint's name.", names)
        model = _parameter("name", "A model name: an endpoint's name.", names)
        version = _parameter("version", "The registry version number the endpoint serves.", [])
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Ferryman",
                "version": __version__,
                "description": "Online predictions: Ferryman's native protocol, the Open "
                "Inference Protocol V2 and the MLflow scoring protocol.",
            },
            "paths": {**_paths(endpoint, model, version), **control.openapi_paths()},
            "components": {"schemas": {**_SCHEMAS, **control.openapi_schemas()}},
        }

    return build


def _get(
    summary: str, ok: str, errors: tuple[int, ...], *, media: str = _JSON, error: str = ""
) -> Any:
    return {
        "summary": summary,
        "responses": {
            "200": _response(200, ok, media=media),
            **_errors(error or _error_of(ok), errors),
        },
    }


def _error_of(schema: str) -> str:
    if schema.startswith("V2"):
        return "V2Error"
    if schema.startswith("MLflow"):
        return "MLflowError"
    return "NativeError"


def _paths(endpoint: Any, model: Any, version: Any) -> dict[str, Any]:
    native_predict = {
        "post": {
            "summary": "Predict with Ferryman's native JSON protocol.",
            "parameters": [endpoint],
            "requestBody": _body("NativeRequest"),
            "responses": {
                "200": _response(200, "NativeResponse", timing=True),
                **_errors("NativeError", _PREDICT_ERRORS),
            },
        }
    }
    invocations = {
        "summary": "Predict with the MLflow scoring protocol.",
        "requestBody": _body("MLflowRequest", csv=True),
        "responses": {
            "200": _response(200, "MLflowResponse", timing=True),
            **_errors("MLflowError", (400, 404, 413, 415, 500, 503, 504)),
        },
    }
    infer = {
        "summary": "Infer (Open Inference Protocol V2).",
        "requestBody": _body("V2InferRequest"),
        "responses": {
            "200": _response(200, "V2InferResponse", timing=True),
            **_errors("V2Error", _PREDICT_ERRORS),
        },
    }
    ping = _get(
        "Whether the default endpoint can predict.", "Status", (404, 503), error="MLflowError"
    )
    metadata = _get("Model metadata.", "V2ModelMetadata", (404, 503))
    model_ready = _get("Whether the model can infer.", "V2ModelReady", (404, 503))
    return {
        "/v1/endpoints/{endpoint}/predict": native_predict,
        "/v1/endpoints/{endpoint}/invocations": {"post": {**invocations, "parameters": [endpoint]}},
        "/invocations": {"post": invocations},
        "/ping": {"get": ping},
        "/health": {"get": {**ping, "summary": "Same as /ping."}},
        "/version": {"get": _get("Ferryman's version.", "string", (), media="text/plain")},
        "/v2": {"get": _get("Server metadata.", "V2ServerMetadata", ())},
        "/v2/health/live": {"get": _get("Server liveness.", "V2Live", ())},
        "/v2/health/ready": {"get": _get("Server readiness.", "V2Ready", (503,))},
        "/v2/models/{name}": {"get": {**metadata, "parameters": [model]}},
        "/v2/models/{name}/versions/{version}": {
            "get": {**metadata, "parameters": [model, version]}
        },
        "/v2/models/{name}/ready": {"get": {**model_ready, "parameters": [model]}},
        "/v2/models/{name}/versions/{version}/ready": {
            "get": {**model_ready, "parameters": [model, version]}
        },
        "/v2/models/{name}/infer": {"post": {**infer, "parameters": [model]}},
        "/v2/models/{name}/versions/{version}/infer": {
            "post": {**infer, "parameters": [model, version]}
        },
        "/healthz": {"get": _get("Liveness.", "Status", ())},
        "/readyz": {
            "get": {
                "summary": "Readiness: every endpoint's model loaded.",
                "responses": {
                    "200": _response(200, "Readiness"),
                    "503": _response(503, "Readiness"),
                },
            }
        },
        "/openapi.json": {"get": _get("This document.", "object", ())},
        "/metrics": {
            "get": _get(
                "Prometheus metrics in the text exposition format (all worker processes).",
                "string",
                (),
                media="text/plain",
            )
        },
    }
