"""The Open Inference Protocol V2 (KServe v2, Triton), REST with JSON tensors.

A table signature is served as one input tensor per column (shape ``[-1]``; a request may
send ``[n]`` or ``[n, 1]``), a tensor signature as one ``[-1, n_features]`` input named
:data:`TENSOR_INPUT`. Outputs are ``predict`` (labels or values) and, for classifiers with
probabilities, ``predict_proba`` (``[-1, n_classes]``, FP64).

Datatypes map to signature column types as follows; a request may send any datatype in
the accepted set, and values then go through the signature's validator:

=====================  ==============  =============================================
column type            advertised      accepted
=====================  ==============  =============================================
int64                  INT64           INT8..INT64, UINT8..UINT64
float64                FP64            FP16, FP32, FP64, and every integer type
bool                   BOOL            BOOL
string, datetime       BYTES           BYTES (JSON strings; datetimes in ISO 8601)
category               by category     BYTES for text categories, INT64, FP64 or BOOL
=====================  ==============  =============================================

JSON has no NaN: a missing value is ``null``, accepted where the column is nullable.
Binary tensor data is not supported, so ``/v2`` advertises no extension for it.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ferryman.errors import MalformedRequestError, SchemaValidationError
from ferryman.flavors.base import Prediction
from ferryman.serving.codecs._float_matrix import float_matrix
from ferryman.serving.codecs.base import (
    DecodedBatch,
    InputSchema,
    OutputLayout,
    dumps,
    json_type,
    loads,
)
from ferryman.signature import ColumnSpec

#: Name of the one input of a tensor signature.
TENSOR_INPUT = "input-0"
#: Name of the predictions output.
PREDICT_OUTPUT = "predict"
#: Name of the class probabilities output.
PROBA_OUTPUT = "predict_proba"

_INTEGERS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOATS = ("FP16", "FP32", "FP64")
#: Every datatype of the protocol.
DATATYPES: tuple[str, ...] = ("BOOL", *_INTEGERS, *_FLOATS, "BYTES")
_BOUNDS = {
    name: (int(np.iinfo(name.lower()).min), int(np.iinfo(name.lower()).max)) for name in _INTEGERS
}
_ACCEPTED: dict[str, tuple[str, ...]] = {
    "INT64": _INTEGERS,
    "FP64": (*_FLOATS, *_INTEGERS),
    "BOOL": ("BOOL",),
    "BYTES": ("BYTES",),
}
_PYTHON_TYPES: dict[str, frozenset[type]] = {
    **{name: frozenset({int, type(None)}) for name in _INTEGERS},
    **{name: frozenset({int, float, type(None)}) for name in _FLOATS},
    "BOOL": frozenset({bool, type(None)}),
    "BYTES": frozenset({str, type(None)}),
}
_WORDS = {"BOOL": "booleans", "BYTES": "strings"}
#: Datatypes a tensor signature accepts, by the kind of its dtype (else integers).
_TENSOR_ACCEPTED = {"b": ("BOOL",), "f": (*_FLOATS, *_INTEGERS)}


@dataclass(frozen=True)
class InferRequest:
    """A decoded ``infer`` request.

    Attributes:
        batch: The rows, ready for validation.
        id: The request's ``id``, to echo in the response, or ``None``.
        outputs: The output names asked for, or ``None`` for all of them.
    """

    batch: DecodedBatch
    id: str | None
    outputs: tuple[str, ...] | None


def datatype_of(dtype: np.dtype[Any]) -> str:
    """Return the protocol datatype for a NumPy dtype (strings and objects are BYTES)."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iuf" and dtype.itemsize in (1, 2, 4, 8):
        prefix = {"i": "INT", "u": "UINT", "f": "FP"}[dtype.kind]
        name = f"{prefix}{dtype.itemsize * 8}"
        if name in DATATYPES:
            return name
    return "BYTES"


def column_datatype(column: ColumnSpec) -> str:
    """Return the datatype advertised for one column of a table signature."""
    if column.dtype == "int64":
        return "INT64"
    if column.dtype == "float64":
        return "FP64"
    if column.dtype == "bool":
        return "BOOL"
    if column.dtype == "category" and column.categories:
        first = column.categories[0]
        if isinstance(first, bool):
            return "BOOL"
        if isinstance(first, int):
            return "INT64"
        if isinstance(first, float):
            return "FP64"
    return "BYTES"


def input_metadata(schema: InputSchema) -> list[dict[str, Any]]:
    """Describe the inputs of a model for its metadata response."""
    signature = schema.signature
    if signature.tensor is not None:
        datatype = datatype_of(np.dtype(signature.tensor.dtype))
        return [{"name": TENSOR_INPUT, "datatype": datatype, "shape": [-1, len(schema.columns)]}]
    return [
        {"name": column.name, "datatype": column_datatype(column), "shape": [-1]}
        for column in signature.columns
    ]


def output_metadata(layout: OutputLayout) -> list[dict[str, Any]]:
    """Describe the outputs of a model for its metadata response."""
    width = layout.prediction_width
    outputs = [
        {
            "name": PREDICT_OUTPUT,
            "datatype": datatype_of(layout.prediction_dtype),
            "shape": [-1] if width is None else [-1, width],
        }
    ]
    if layout.n_classes is not None:
        outputs.append({"name": PROBA_OUTPUT, "datatype": "FP64", "shape": [-1, layout.n_classes]})
    return outputs


def output_names(layout: OutputLayout) -> tuple[str, ...]:
    """The names of a model's outputs."""
    if layout.n_classes is None:
        return (PREDICT_OUTPUT,)
    return (PREDICT_OUTPUT, PROBA_OUTPUT)


def model_metadata(
    name: str, *, version: int, platform: str, schema: InputSchema, layout: OutputLayout
) -> dict[str, Any]:
    """Build the model metadata response.

    Args:
        name: The model name in the protocol, which is the endpoint's name.
        version: The registry version number being served.
        platform: The model's flavor, e.g. ``sklearn``.
        schema: What the endpoint accepts.
        layout: The version's outputs.
    """
    return {
        "name": name,
        "versions": [str(version)],
        "platform": platform,
        "inputs": input_metadata(schema),
        "outputs": output_metadata(layout),
    }


def decode_infer(body: bytes, schema: InputSchema, layout: OutputLayout) -> InferRequest:
    """Decode an ``infer`` request body.

    Args:
        body: The raw JSON body.
        schema: What the endpoint accepts.
        layout: The served version's outputs, to check requested output names.

    Raises:
        MalformedRequestError: Malformed JSON or tensors: a missing field, an unknown
            datatype, a shape that does not match the data, a value of the wrong type,
            an unknown output.
        SchemaValidationError: A missing or unknown input, or inputs of different
            lengths.
    """
    payload = loads(body)
    if not isinstance(payload, dict):
        raise MalformedRequestError(
            f"expected a JSON object with 'inputs', got {json_type(payload)}"
        )
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedRequestError(f"'id' must be a string, got {json_type(request_id)}")
    _check_parameters(payload, "the request")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        got = "nothing" if inputs is None else json_type(inputs)
        raise MalformedRequestError(f"'inputs' must be a non-empty array of tensors, got {got}")
    batch = _float_columns(inputs, schema) if schema.float_only else None
    if batch is None:
        tensors = _decode_inputs(inputs)
        batch = (
            _tensor_batch(tensors, schema) if schema.is_tensor else _column_batch(tensors, schema)
        )
    return InferRequest(batch, request_id, _requested_outputs(payload.get("outputs"), layout))


def encode_infer(
    prediction: Prediction,
    *,
    model_name: str,
    model_version: int,
    request_id: str,
    outputs: Sequence[str] | None,
) -> bytes:
    """Encode an ``infer`` response.

    Args:
        prediction: The model's output.
        model_name: The endpoint's name.
        model_version: The registry version number that served.
        request_id: The request's ``id``, or the HTTP request id when it had none.
        outputs: The outputs asked for, or ``None`` for all.
    """
    tensors: list[dict[str, Any]] = []
    values = prediction.predictions
    if outputs is None or PREDICT_OUTPUT in outputs:
        tensors.append(_tensor(PREDICT_OUTPUT, values))
    probabilities = prediction.probabilities
    if probabilities is not None and (outputs is None or PROBA_OUTPUT in outputs):
        tensors.append(_tensor(PROBA_OUTPUT, probabilities))
    return dumps(
        {
            "model_name": model_name,
            "model_version": str(model_version),
            "id": request_id,
            "outputs": tensors,
        }
    )


def _tensor(name: str, values: np.ndarray) -> dict[str, Any]:
    datatype = datatype_of(values.dtype)
    flat = values.reshape(-1)
    data: Any = flat if datatype != "BYTES" else [str(value) for value in flat.tolist()]
    return {"name": name, "datatype": datatype, "shape": list(values.shape), "data": data}


class _Tensor(NamedTuple):  # a NamedTuple builds several times faster than a dataclass
    name: str
    shape: tuple[int, ...]
    datatype: str
    data: list[Any]


def _check_parameters(payload: Mapping[str, Any], where: str) -> None:
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise MalformedRequestError(
            f"'parameters' of {where} must be an object, got {json_type(parameters)}"
        )


def _decode_inputs(inputs: list[Any]) -> list[_Tensor]:
    tensors: list[_Tensor] = []
    seen: set[str] = set()
    for position, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise MalformedRequestError(
                f"inputs[{position}] must be an object, got {json_type(item)}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise MalformedRequestError(f"inputs[{position}] needs a 'name' (a string)")
        if name in seen:
            raise MalformedRequestError(f"input {name!r} appears more than once")
        seen.add(name)
        _check_parameters(item, f"input {name!r}")
        shape = _shape(name, item.get("shape"))
        datatype = item.get("datatype")
        if datatype not in DATATYPES:
            raise MalformedRequestError(
                f"input {name!r}: unknown datatype {datatype!r}; expected one of "
                f"{', '.join(DATATYPES)}"
            )
        flat = _flatten(name, item.get("data"), shape)
        _check_values(name, datatype, flat)
        tensors.append(_Tensor(name, shape, datatype, flat))
    return tensors


def _shape(name: str, shape: object) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise MalformedRequestError(
            f"input {name!r}: 'shape' must be an array of non-negative integers, got "
            f"{shape!r}"
            + (
                " (a request's shapes are concrete; -1 is not allowed)"
                if isinstance(shape, list) and -1 in shape
                else ""
            )
        )
    return tuple(shape)


def _flatten(name: str, data: object, shape: tuple[int, ...]) -> list[Any]:
    if not isinstance(data, list):
        raise MalformedRequestError(
            f"input {name!r}: 'data' must be an array, got "
            f"{'nothing' if data is None else json_type(data)}"
        )
    expected = math.prod(shape)
    flat = data
    if data and isinstance(data[0], list):
        flat = []
        _flatten_nested(name, data, shape, flat)
    if len(flat) != expected:
        raise MalformedRequestError(
            f"input {name!r}: shape {list(shape)} holds {expected} elements, but 'data' has "
            f"{len(flat)}"
        )
    return flat


def _flatten_nested(name: str, data: list[Any], shape: tuple[int, ...], out: list[Any]) -> None:
    if not shape or len(data) != shape[0]:
        raise MalformedRequestError(
            f"input {name!r}: nested 'data' does not match shape {list(shape)}; send it flat "
            "(row-major) or nested exactly as the shape"
        )
    if len(shape) == 1:
        out.extend(data)
        return
    for item in data:
        if not isinstance(item, list):
            raise MalformedRequestError(
                f"input {name!r}: nested 'data' does not match shape {list(shape)}"
            )
        _flatten_nested(name, item, shape[1:], out)


def _check_values(name: str, datatype: str, flat: list[Any]) -> None:
    allowed = _PYTHON_TYPES[datatype]
    if not set(map(type, flat)) <= allowed:
        position, value = next((i, v) for i, v in enumerate(flat) if type(v) not in allowed)
        words = _WORDS.get(datatype, "integers" if datatype in _BOUNDS else "numbers")
        raise MalformedRequestError(
            f"input {name!r}: datatype {datatype} needs {words}, got {json_type(value)} "
            f"({value!r}) at element {position}"
        )
    bounds = _BOUNDS.get(datatype)
    if bounds is not None and flat:
        low, high = bounds
        numbers = [value for value in flat if value is not None]
        if numbers and (min(numbers) < low or max(numbers) > high):
            position = next(i for i, v in enumerate(flat) if v is not None and not low <= v <= high)
            raise MalformedRequestError(
                f"input {name!r}: value {flat[position]} at element {position} is outside the "
                f"{datatype} range [{low}, {high}]"
            )


_TENSOR_FIELDS = operator.itemgetter("name", "datatype", "shape", "data")
_FLOAT_DATATYPES = frozenset(_FLOATS)
_PARAMETER_TYPES = frozenset({dict, type(None)})


def _float_columns(inputs: list[Any], schema: InputSchema) -> DecodedBatch | None:
    """The fast route for an all-float64 table signature: one float64 matrix, or ``None``.

    Taken when the request holds exactly one FP16/FP32/FP64 input per column (in any
    order), each of shape ``[n]`` or ``[n, 1]`` with ``n`` plain numbers, flat. Anything
    else returns ``None`` and goes the general route, which gives the same batch or the
    precise error.
    """
    width = len(schema.columns)
    if len(inputs) != width:
        return None
    try:
        names, datatypes, shapes, data = zip(*map(_TENSOR_FIELDS, inputs), strict=True)
        in_order = names == schema.columns
        if not in_order and (len(set(names)) != width or not schema.positions.keys() >= set(names)):
            return None
        if not _FLOAT_DATATYPES.issuperset(datatypes):
            return None
        # Exact ints only: a JSON true would equal 1 in any comparison of shapes.
        if set(map(type, itertools.chain.from_iterable(shapes))) != {int}:
            return None
        # Four fields each means no 'parameters'; otherwise they must be objects.
        if set(map(len, inputs)) != {4} and not _PARAMETER_TYPES.issuperset(
            map(type, map(dict.get, inputs, itertools.repeat("parameters")))
        ):
            return None
    except (KeyError, TypeError):
        return None  # an input that is not an object, lacks a field, or has odd values
    first = shapes[0]
    rows = first[0] if first else 0
    if rows < 1 or (first != [rows] and first != [rows, 1]):
        return None
    if shapes.count(first) != width and not set(map(tuple, shapes)) <= {(rows,), (rows, 1)}:
        return None
    matrix = float_matrix(data, (width, rows))
    if matrix is None:
        return None
    if not in_order:
        where = {name: position for position, name in enumerate(names)}
        matrix = matrix[[where[name] for name in schema.columns]]
    return DecodedBatch(matrix.T)


def _column_batch(tensors: list[_Tensor], schema: InputSchema) -> DecodedBatch:
    signature_columns = schema.specs
    columns: dict[str, list[Any]] = {}
    passthrough: dict[str, list[Any]] = {}
    rows: int | None = None
    first = ""
    for tensor in tensors:
        spec = signature_columns.get(tensor.name)
        if spec is None:
            if tensor.name in schema.passthrough:
                passthrough[tensor.name] = tensor.data
                continue
            if schema.unknown_columns == "ignore":
                continue
            raise SchemaValidationError(
                f"unknown input {tensor.name!r}; expected inputs {_shown(schema.columns)}",
                column=tensor.name,
                expected="only the model's inputs",
            )
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise MalformedRequestError(
                f"input {tensor.name!r}: shape {list(tensor.shape)}; expected [n] or [n, 1], "
                "one value per row"
            )
        advertised = column_datatype(spec)
        if tensor.datatype not in _ACCEPTED[advertised]:
            raise SchemaValidationError(
                f"input {tensor.name!r}: datatype {tensor.datatype} does not match the model's "
                f"{advertised} input; expected one of {', '.join(_ACCEPTED[advertised])}",
                column=tensor.name,
                expected=advertised,
            )
        if rows is None:
            rows, first = tensor.shape[0], tensor.name
        elif tensor.shape[0] != rows:
            raise SchemaValidationError(
                f"input {tensor.name!r} has {tensor.shape[0]} rows but input {first!r} has "
                f"{rows}; expected {rows}",
                column=tensor.name,
                expected=f"{rows} rows",
            )
        columns[tensor.name] = tensor.data
    for name in schema.columns:
        if name not in columns:
            raise SchemaValidationError(
                f"missing input {name!r}; expected inputs {_shown(schema.columns)}",
                column=name,
                expected=f"input {name!r}",
            )
    return DecodedBatch(columns, passthrough)


def _tensor_batch(tensors: list[_Tensor], schema: InputSchema) -> DecodedBatch:
    tensor_spec = schema.signature.tensor
    assert tensor_spec is not None  # only called for tensor signatures
    passthrough = {t.name: t.data for t in tensors if t.name in schema.passthrough}
    wanted = [t for t in tensors if t.name not in schema.passthrough]
    for tensor in wanted:
        if tensor.name != TENSOR_INPUT and schema.unknown_columns == "reject":
            raise SchemaValidationError(
                f"unknown input {tensor.name!r}; this model takes one input, {TENSOR_INPUT!r}",
                column=tensor.name,
                expected=f"input {TENSOR_INPUT!r}",
            )
    found = next((t for t in wanted if t.name == TENSOR_INPUT), None)
    if found is None:
        raise SchemaValidationError(
            f"missing input {TENSOR_INPUT!r}, the model's one input tensor",
            column=TENSOR_INPUT,
            expected=f"input {TENSOR_INPUT!r}",
        )
    width = len(schema.columns)
    if len(found.shape) != 2 or found.shape[1] != width:
        raise MalformedRequestError(
            f"input {TENSOR_INPUT!r}: shape {list(found.shape)}; expected [n, {width}]"
        )
    target = np.dtype(tensor_spec.dtype)
    advertised = datatype_of(target)
    accepted = _TENSOR_ACCEPTED.get(target.kind, _INTEGERS)
    if found.datatype not in accepted:
        raise SchemaValidationError(
            f"input {TENSOR_INPUT!r}: datatype {found.datatype} does not match the model's "
            f"{advertised} input; expected one of {', '.join(accepted)}",
            column=TENSOR_INPUT,
            expected=advertised,
        )
    if found.datatype in _FLOATS or any(value is None for value in found.data):
        # Floats (and nulls, as NaN) go through float64; the validator then refuses
        # what the model's dtype cannot hold, naming the cell.
        array = np.array(found.data, dtype=np.float64 if target.kind != "b" else object)
    elif found.datatype == "BOOL":
        array = np.array(found.data, dtype=np.bool_)
    else:
        array = np.array(found.data, dtype=np.uint64 if found.datatype == "UINT64" else np.int64)
    return DecodedBatch(array.reshape(found.shape), passthrough)


def _requested_outputs(outputs: object, layout: OutputLayout) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise MalformedRequestError(f"'outputs' must be an array, got {json_type(outputs)}")
    available = output_names(layout)
    names: list[str] = []
    for position, item in enumerate(outputs):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise MalformedRequestError(f"outputs[{position}] needs a 'name' (a string)")
        if name not in available:
            raise MalformedRequestError(
                f"unknown output {name!r}; this model has {', '.join(available)}"
            )
        _check_parameters(item, f"output {name!r}")
        names.append(name)
    return tuple(names)


def _shown(names: Sequence[str]) -> str:
    shown = ", ".join(names[:8])
    return shown + (", ..." if len(names) > 8 else "")
