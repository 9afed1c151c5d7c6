"""The Open Inference Protocol V2 codec: tensors in, tensors out, metadata, every error."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from ferryman.errors import MalformedRequestError, SchemaValidationError
from ferryman.flavors import Prediction
from ferryman.serving.codecs import InputSchema, OutputLayout, oip_v2
from ferryman.signature import infer_signature
from tests.serving.conftest import MakeSchema

CLASSIFIER = OutputLayout(
    prediction_dtype=np.dtype(np.int64), prediction_width=None, n_classes=2, classes=(0, 1)
)
REGRESSOR = OutputLayout(
    prediction_dtype=np.dtype(np.float64), prediction_width=None, n_classes=None, classes=None
)


def tensor(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> Any:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def mixed_inputs(rows: int = 2) -> list[Any]:
    return [
        tensor("age", "INT64", [30, 41][:rows]),
        tensor("income", "FP32", [1.5, 2][:rows]),
        tensor("city", "BYTES", ["Oslo", "Bergen"][:rows]),
        tensor("member", "BOOL", [True, False][:rows]),
    ]


def decode(payload: object, schema: Any, layout: OutputLayout = CLASSIFIER) -> Any:
    return oip_v2.decode_infer(orjson.dumps(payload), schema, layout)


def test_one_tensor_per_column_validates_to_the_signature_frame(make_schema: MakeSchema) -> None:
    schema = make_schema()

    request = decode({"inputs": mixed_inputs()}, schema)
    frame = schema.validate(request.batch.data)

    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [
        {"age": 30, "income": 1.5, "city": "Oslo", "member": True},
        {"age": 41, "income": 2.0, "city": "Bergen", "member": False},
    ]


def test_column_tensors_may_be_n_by_1_and_nested(make_schema: MakeSchema) -> None:
    schema = make_schema("numeric")
    inputs = [tensor("a", "FP64", [[1.0], [2.0]], [2, 1]), tensor("b", "FP64", [3.0, 4.0], [2, 1])]

    frame = schema.validate(decode({"inputs": inputs}, schema).batch.data)

    assert isinstance(frame, pd.DataFrame)
    assert frame.to_numpy().tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_a_tensor_signature_takes_one_n_by_k_input(make_schema: MakeSchema) -> None:
    schema = make_schema("tensor")
    payload = {"inputs": [tensor("input-0", "FP32", [1, 2, 3, 4, 5, 6.5], [2, 3])]}

    array = schema.validate(decode(payload, schema).batch.data)

    assert isinstance(array, np.ndarray)
    assert array.dtype == np.float32
    assert array.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]


def test_the_request_id_and_requested_outputs_are_kept(make_schema: MakeSchema) -> None:
    payload = {"id": "abc", "inputs": mixed_inputs(), "outputs": [{"name": "predict_proba"}]}

    request = decode(payload, make_schema())

    assert (request.id, request.outputs) == ("abc", ("predict_proba",))


def test_unknown_parameters_are_ignored(make_schema: MakeSchema) -> None:
    inputs = [
        {**item, "parameters": {"content_type": "np", "whatever": 1}} for item in mixed_inputs()
    ]
    payload = {"parameters": {"priority": 3}, "inputs": inputs}

    assert decode(payload, make_schema()).id is None


def test_passthrough_inputs_are_taken_out(make_schema: MakeSchema) -> None:
    schema = make_schema(passthrough=["customer_id"])
    inputs = [*mixed_inputs(1), tensor("customer_id", "BYTES", ["c1"])]

    request = decode({"inputs": inputs}, schema)

    assert request.batch.passthrough == {"customer_id": ["c1"]}
    assert len(schema.validate(request.batch.data)) == 1


def test_unknown_inputs_are_dropped_when_the_endpoint_ignores_them(
    make_schema: MakeSchema,
) -> None:
    schema = make_schema(unknown_columns="ignore")
    inputs = [*mixed_inputs(1), tensor("extra", "INT64", [1])]

    assert len(schema.validate(decode({"inputs": inputs}, schema).batch.data)) == 1


def with_input(index: int, **changes: Any) -> dict[str, Any]:
    inputs = mixed_inputs()
    inputs[index] = {**inputs[index], **changes}
    return {"inputs": inputs}


MALFORMED = {
    "not-json": (b"{", "malformed JSON"),
    "not-object": ([1], "expected a JSON object with 'inputs'"),
    "no-inputs": ({}, "'inputs' must be a non-empty array.*got nothing"),
    "empty-inputs": ({"inputs": []}, "'inputs' must be a non-empty array"),
    "id-number": ({"id": 7, "inputs": mixed_inputs()}, "'id' must be a string"),
    "parameters-list": ({"parameters": [], "inputs": mixed_inputs()}, "'parameters' of the"),
    "input-not-object": ({"inputs": [1]}, r"inputs\[0\] must be an object"),
    "no-name": (with_input(0, name=None), r"inputs\[0\] needs a 'name'"),
    "repeated-input": ({"inputs": [*mixed_inputs(), mixed_inputs()[0]]}, "more than once"),
    "lowercase-datatype": (with_input(0, datatype="int64"), "unknown datatype 'int64'"),
    "variable-shape": (with_input(0, shape=[-1]), "-1 is not allowed"),
    "shape-text": (with_input(0, shape="2"), "'shape' must be an array"),
    "count-mismatch": (with_input(0, shape=[3]), r"shape \[3\] holds 3 elements.*has 2"),
    "nested-mismatch": (with_input(1, shape=[2, 1], data=[[1.5, 2.0]]), "nested 'data'"),
    "data-missing": (with_input(0, data=None), "'data' must be an array, got nothing"),
    "int-gets-float": (with_input(0, data=[30, 41.5]), r"INT64 needs integers.*41\.5"),
    "int-gets-bool": (with_input(0, data=[30, True]), "INT64 needs integers, got a boolean"),
    "bool-gets-int": (with_input(3, data=[1, 0]), "BOOL needs booleans"),
    "bytes-gets-number": (with_input(2, data=["Oslo", 3]), "BYTES needs strings"),
    "uint8-range": (with_input(0, datatype="UINT8", data=[30, 300]), r"outside the UINT8 range"),
    "outputs-object": ({"inputs": mixed_inputs(), "outputs": {}}, "'outputs' must be an array"),
    "unknown-output": (
        {"inputs": mixed_inputs(), "outputs": [{"name": "scores"}]},
        "unknown output 'scores'; this model has predict, predict_proba",
    ),
}


@pytest.mark.parametrize(("payload", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_refused_with_what_is_wrong(
    make_schema: MakeSchema, payload: object, message: str
) -> None:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)

    with pytest.raises(MalformedRequestError, match=message):
        oip_v2.decode_infer(raw, make_schema(), CLASSIFIER)


MISMATCHED = {
    "missing-input": ({"inputs": mixed_inputs()[:3]}, "missing input 'member'", "member"),
    "unknown-input": (
        {"inputs": [*mixed_inputs(), tensor("extra", "INT64", [1, 2])]},
        "unknown input 'extra'; expected inputs age, income, city, member",
        "extra",
    ),
    "wrong-datatype": (
        with_input(1, datatype="BYTES", data=["a", "b"]),
        "input 'income': datatype BYTES does not match the model's FP64 input",
        "income",
    ),
    "row-count": (
        with_input(2, shape=[1], data=["Oslo"]),
        "input 'city' has 1 rows but input 'age' has 2",
        "city",
    ),
}


@pytest.mark.parametrize(
    ("payload", "message", "column"), MISMATCHED.values(), ids=MISMATCHED.keys()
)
def test_inputs_that_do_not_match_the_signature_name_the_input(
    make_schema: MakeSchema, payload: object, message: str, column: str
) -> None:
    with pytest.raises(SchemaValidationError, match=message) as caught:
        decode(payload, make_schema())
    assert caught.value.column == column


def test_a_column_input_must_be_one_value_per_row(make_schema: MakeSchema) -> None:
    payload = with_input(0, shape=[1, 2])

    with pytest.raises(MalformedRequestError, match=r"expected \[n\] or \[n, 1\]"):
        decode(payload, make_schema())


@pytest.mark.parametrize(
    ("item", "error", "message"),
    [
        (tensor("x", "FP32", [1, 2, 3], [1, 3]), SchemaValidationError, "unknown input 'x'"),
        (tensor("input-0", "FP32", [1, 2], [1, 2]), MalformedRequestError, r"expected \[n, 3\]"),
        (
            tensor("input-0", "BYTES", ["1", "2", "3"], [1, 3]),
            SchemaValidationError,
            "datatype BYTES does not match the model's FP32 input",
        ),
    ],
    ids=["wrong-name", "wrong-width", "wrong-datatype"],
)
def test_a_tensor_input_must_match_the_tensor_signature(
    make_schema: MakeSchema, item: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        decode({"inputs": [item]}, make_schema("tensor"))


def test_values_beyond_the_tensor_dtype_are_refused_by_the_validator(
    make_schema: MakeSchema,
) -> None:
    schema = make_schema("tensor")
    batch = decode({"inputs": [tensor("input-0", "FP64", [1, 2, 1e300], [1, 3])]}, schema).batch

    with pytest.raises(SchemaValidationError, match="outside the float32 range"):
        schema.validate(batch.data)


@pytest.mark.parametrize(
    ("dtype", "datatype"),
    [
        ("bool", "BOOL"),
        ("int8", "INT8"),
        ("int64", "INT64"),
        ("uint16", "UINT16"),
        ("float16", "FP16"),
        ("float32", "FP32"),
        ("float64", "FP64"),
        ("object", "BYTES"),
        ("<U3", "BYTES"),
    ],
)
def test_numpy_dtypes_map_to_protocol_datatypes(dtype: str, datatype: str) -> None:
    assert oip_v2.datatype_of(np.dtype(dtype)) == datatype


def test_model_metadata_lists_one_input_per_column_with_its_datatype() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2],
            "x": [0.5, 1.5],
            "flag": [True, False],
            "city": ["Oslo", "Bergen"],
            "level": pd.Categorical([1, 2]),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    schema = InputSchema(infer_signature(frame))

    metadata = oip_v2.model_metadata(
        "churn", version=3, platform="sklearn", schema=schema, layout=CLASSIFIER
    )

    assert metadata["name"] == "churn"
    assert metadata["versions"] == ["3"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]] == [
        ("n", "INT64", [-1]),
        ("x", "FP64", [-1]),
        ("flag", "BOOL", [-1]),
        ("city", "BYTES", [-1]),
        ("level", "INT64", [-1]),
        ("when", "BYTES", [-1]),
    ]
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
    ]


def test_model_metadata_of_a_tensor_signature_has_one_input(make_schema: MakeSchema) -> None:
    metadata = oip_v2.model_metadata(
        "digits", version=1, platform="onnx", schema=make_schema("tensor"), layout=REGRESSOR
    )

    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 3]}]
    assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def classifier_prediction() -> Prediction:
    return Prediction(
        predictions=np.array([1, 0]),
        probabilities=np.array([[0.25, 0.75], [0.5, 0.5]]),
        classes=[0, 1],
    )


def test_responses_hold_every_output_with_shape_datatype_and_flat_data() -> None:
    raw = oip_v2.encode_infer(
        classifier_prediction(), model_name="churn", model_version=3, request_id="r1", outputs=None
    )

    assert orjson.loads(raw) == {
        "model_name": "churn",
        "model_version": "3",
        "id": "r1",
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [2], "data": [1, 0]},
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [2, 2],
                "data": [0.25, 0.75, 0.5, 0.5],
            },
        ],
    }


def test_responses_hold_only_the_requested_outputs() -> None:
    raw = oip_v2.encode_infer(
        classifier_prediction(),
        model_name="churn",
        model_version=3,
        request_id="r1",
        outputs=("predict_proba",),
    )

    assert [output["name"] for output in orjson.loads(raw)["outputs"]] == ["predict_proba"]


def test_text_labels_are_sent_as_bytes() -> None:
    prediction = Prediction(predictions=np.array(["yes", "no"], dtype=object))

    raw = oip_v2.encode_infer(
        prediction, model_name="m", model_version=1, request_id="r", outputs=None
    )

    assert orjson.loads(raw)["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["yes", "no"]}
    ]
