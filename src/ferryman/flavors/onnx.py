"""The ``onnx`` flavor: ONNX graphs served with onnxruntime.

The artifact is the serialized model, one ``.onnx`` file. At save time an inference
session is opened once to validate the graph and record its inputs and outputs, and to
decide which output holds predictions and which (for classifiers converted with
skl2onnx) holds probabilities, either as a tensor or as a ZipMap list of dicts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError, MissingDependencyError
from ferryman.flavors._options import check_options
from ferryman.flavors._prediction import (
    as_predictions,
    as_probabilities,
    class_list,
    model_failures,
)
from ferryman.flavors.base import FlavorMeta, ModelInput, Prediction, SavedArtifact

#: NumPy dtypes for the ONNX tensor element types a caller can feed.
_TENSOR_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
_CLASS_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")
#: Operators that only change a label tensor's type or shape, traced through to find labels.
_PASS_THROUGH_OPS = ("Cast", "Flatten", "Identity", "Reshape", "Squeeze")
_OPTIONS = ("classes", "intra_op_num_threads", "prediction_output", "probability_output")


class ONNXFlavor:
    """Save, load and call ONNX models with onnxruntime."""

    name: str = "onnx"

    def can_save(self, model: object) -> bool:
        """Tell whether ``model`` is an ``onnx.ModelProto``, bytes, or a ``.onnx`` path.

        Never imports onnx: a ``ModelProto`` can only exist once onnx is imported.
        """
        if isinstance(model, bytes):
            return True
        if isinstance(model, str | os.PathLike):
            return Path(model).suffix.lower() == ".onnx"
        onnx = sys.modules.get("onnx")
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Write the serialized graph as ``model.onnx`` and describe its inputs and outputs.

        Args:
            model: An ``onnx.ModelProto``, its serialized bytes, or a path to a ``.onnx``
                file. Models with external data files are not supported.
            directory: An empty directory owned by the caller.
            trusted: Recorded only; ONNX graphs do not run Python code.
            options: ``intra_op_num_threads`` (threads per operator, default 1; 0 lets
                onnxruntime choose), ``prediction_output`` and ``probability_output``
                (output names, detected by default), ``classes`` (the labels of the
                probability columns, read from the graph by default).

        Returns:
            The artifact, with metadata keys ``inputs`` and ``outputs`` (each a list of
            ``{"name", "type", "shape"}``), ``prediction_output``, ``probability_output``,
            ``classes``, ``intra_op_num_threads``, ``producer`` and ``trusted``.

        Raises:
            InvalidInputError: The model is not a valid ONNX graph, the path does not
                exist, or an option is invalid.
            MissingDependencyError: onnxruntime is not installed.
        """
        check_options(self.name, options, _OPTIONS)
        content = _serialized(model)
        threads = _thread_count(options.get("intra_op_num_threads", 1))
        ort = _onnxruntime("Saving an ONNX model")
        try:
            session = _session(ort, content, threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInputError(f"onnxruntime cannot open this ONNX model: {exc}") from exc
        inputs = [_describe_node(node) for node in session.get_inputs()]
        outputs = [_describe_node(node) for node in session.get_outputs()]
        for node in inputs:
            if node["type"] not in _TENSOR_DTYPES:
                raise InvalidInputError(
                    f"The ONNX input {node['name']!r} has type {node['type']}; only tensor "
                    "inputs are supported."
                )
        output_names = [node["name"] for node in outputs]
        prediction_output, probability_output = _pick_outputs(outputs, options)
        for option, name in (
            ("prediction_output", prediction_output),
            ("probability_output", probability_output),
        ):
            if name is not None and name not in output_names:
                raise InvalidInputError(
                    f"Option {option!r} names {name!r}, which is not an output of the "
                    f"model. Outputs: {', '.join(output_names)}."
                )
        classes = options.get("classes")
        if classes is None and probability_output is not None:
            classes = _graph_classes(model, content, prediction_output)
        path = directory / "model.onnx"
        path.write_bytes(content)
        meta: FlavorMeta = {
            "inputs": inputs,
            "outputs": outputs,
            "prediction_output": prediction_output,
            "probability_output": probability_output,
            "classes": None if classes is None else class_list(classes),
            "intra_op_num_threads": threads,
            "producer": session.get_modelmeta().producer_name,
            "trusted": trusted,
        }
        return SavedArtifact(path=path, meta=meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> ONNXModel:
        """Open an inference session on the artifact.

        Args:
            path: The ``.onnx`` file.
            meta: The metadata recorded at save time.
            scratch: Unused; the file is read in place.

        Raises:
            MissingDependencyError: onnxruntime is not installed.
        """
        ort = _onnxruntime("Loading an ONNX model")
        threads = _thread_count(meta.get("intra_op_num_threads", 1))
        session = _session(ort, path, threads)
        return ONNXModel(session, meta)


class ONNXModel:
    """A loaded ONNX model: maps batches onto the graph inputs and outputs.

    A single tensor input receives the whole batch as one array of the input's element
    type (a DataFrame's columns in order). Several inputs receive one column each,
    shaped ``(n, 1)``: DataFrame columns by input name, array columns by input position.

    Args:
        session: An ``onnxruntime.InferenceSession``.
        meta: The flavor metadata recorded at save time.
    """

    def __init__(self, session: Any, meta: Mapping[str, Any]) -> None:
        self.session = session
        self._inputs: list[tuple[str, Any, int]] = [
            (node.name, _TENSOR_DTYPES.get(node.type, np.float32), len(node.shape or []))
            for node in session.get_inputs()
        ]
        self._prediction_output: str = meta["prediction_output"]
        self._probability_output: str | None = meta.get("probability_output")
        self._fetch = [self._prediction_output]
        if self._probability_output is not None:
            self._fetch.append(self._probability_output)
        classes = meta.get("classes")
        self._classes: list[Any] | None = None if classes is None else list(classes)

    @property
    def classes(self) -> list[Any] | None:
        """The labels of the probability columns, when known."""
        return self._classes

    def predict(self, data: ModelInput) -> Prediction:
        """Run the graph on a validated batch.

        Args:
            data: A DataFrame or an array.

        Returns:
            The prediction output, and probabilities for classifiers.

        Raises:
            InvalidInputError: The batch does not provide the graph's inputs.
            PredictionError: onnxruntime failed.
        """
        rows = len(data)
        feed = self._feed(data)
        with model_failures("onnx"):
            outputs = self.session.run(self._fetch, feed)
        predictions = as_predictions(outputs[0], rows=rows)
        if self._probability_output is None:
            return Prediction(predictions=predictions, classes=self._classes)
        raw = outputs[1]
        classes = self._classes
        if isinstance(raw, list):
            # ZipMap output: one {label: probability} dict per row.
            if classes is None:
                classes = list(raw[0]) if raw else []
            table = [[row[label] for label in classes] for row in raw]
            probabilities = np.array(table, dtype=np.float64).reshape(len(raw), len(classes))
        else:
            probabilities = np.asarray(raw)
        return Prediction(
            predictions=predictions,
            probabilities=as_probabilities(probabilities, rows=rows),
            classes=None if classes is None else class_list(classes),
        )

    def _feed(self, data: ModelInput) -> dict[str, np.ndarray]:
        if len(self._inputs) == 1:
            name, dtype, rank = self._inputs[0]
            values = data.to_numpy(dtype=dtype) if isinstance(data, pd.DataFrame) else data
            values = np.asarray(values, dtype=dtype)
            if rank == 2 and values.ndim == 1:
                values = values.reshape(-1, 1)
            elif rank == 1 and values.ndim == 2 and values.shape[1] == 1:
                values = values.reshape(-1)
            return {name: values}
        if isinstance(data, pd.DataFrame):
            missing = [name for name, _, _ in self._inputs if name not in data.columns]
            if missing:
                raise InvalidInputError(
                    f"The ONNX model needs the columns {', '.join(map(repr, missing))}; "
                    f"got {', '.join(map(repr, data.columns))}."
                )
            columns = [data[name].to_numpy() for name, _, _ in self._inputs]
        else:
            if data.ndim != 2 or data.shape[1] != len(self._inputs):
                raise InvalidInputError(
                    f"The ONNX model has {len(self._inputs)} inputs; expected an array of "
                    f"shape (n, {len(self._inputs)}), got {data.shape}."
                )
            columns = [data[:, index] for index in range(len(self._inputs))]
        return {
            name: np.asarray(column, dtype=dtype).reshape((-1, 1) if rank != 1 else (-1,))
            for (name, dtype, rank), column in zip(self._inputs, columns, strict=True)
        }


def _onnxruntime(feature: str) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", feature=feature, extra="onnx") from exc
    return onnxruntime


def _session(ort: Any, source: bytes | Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    model = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _serialized(model: object) -> bytes:
    if isinstance(model, bytes):
        return model
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        if not path.is_file():
            raise InvalidInputError(f"The ONNX model file {path} does not exist.")
        return path.read_bytes()
    serialize = getattr(model, "SerializeToString", None)
    if not callable(serialize):
        raise InvalidInputError(
            f"Expected an onnx.ModelProto, bytes or a path to a .onnx file, "
            f"got {type(model).__name__}."
        )
    content = serialize()
    if not isinstance(content, bytes):
        raise InvalidInputError("The ONNX model did not serialize to bytes.")
    return content


def _thread_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(
            f"Option 'intra_op_num_threads' must be an integer >= 0 (0 lets onnxruntime "
            f"choose), got {value!r}."
        )
    return value


def _describe_node(node: Any) -> dict[str, Any]:
    shape = [dim if isinstance(dim, int) else None for dim in (node.shape or [])]
    return {"name": str(node.name), "type": str(node.type), "shape": shape}


def _pick_outputs(
    outputs: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> tuple[str, str | None]:
    """Choose the prediction and probability outputs, unless the options name them.

    skl2onnx classifiers output the label first and the probabilities second, the
    latter as a ``seq(map(...))`` (ZipMap) or as a 2-D float tensor.
    """
    if not outputs:
        raise InvalidInputError("The ONNX model has no outputs.")
    prediction = options.get("prediction_output", outputs[0]["name"])
    if "probability_output" in options:
        return prediction, options["probability_output"]
    if len(outputs) < 2 or prediction != outputs[0]["name"]:
        return prediction, None
    label, second = outputs[0], outputs[1]
    zipmap = second["type"].startswith("seq(map(")
    tensor = second["type"] in ("tensor(float)", "tensor(double)") and len(second["shape"]) == 2
    if len(label["shape"]) == 1 and (zipmap or tensor):
        return prediction, second["name"]
    return prediction, None


def _graph_classes(model: object, content: bytes, label_output: str) -> list[Any] | None:
    """Read a classifier's labels from the graph, if the onnx package is available.

    A ZipMap node's labels win. Otherwise the label output is traced back through
    casts and reshapes to the node that produces it: an ``ai.onnx.ml`` classifier
    carrying ``classlabels_*`` attributes, or an ``ArrayFeatureExtractor`` picking
    labels from a constant (how skl2onnx writes double-precision classifiers).
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load_from_string(content)
    graph = proto.graph
    for node in graph.node:
        if node.op_type == "ZipMap":
            return _label_attribute(onnx, node)
    producers = {output: node for node in graph.node for output in node.output}
    constants = {tensor.name: tensor for tensor in graph.initializer}
    name = label_output
    for _ in range(len(graph.node)):
        node = producers.get(name)
        if node is None:
            return None
        labels = _label_attribute(onnx, node)
        if labels is not None:
            return labels
        if node.op_type == "ArrayFeatureExtractor" and node.input[0] in constants:
            values = numpy_helper.to_array(constants[node.input[0]]).tolist()
            return [value.decode() if isinstance(value, bytes) else value for value in values]
        if node.op_type not in _PASS_THROUGH_OPS:
            return None
        name = node.input[0]
    return None


def _label_attribute(onnx: Any, node: Any) -> list[Any] | None:
    for attribute in node.attribute:
        if attribute.name in _CLASS_LABEL_ATTRIBUTES:
            values = onnx.helper.get_attribute_value(attribute)
            if values:
                return [v.decode() if isinstance(v, bytes) else int(v) for v in values]
    return None
