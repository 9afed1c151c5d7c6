"""The onnx flavor: graphs converted by skl2onnx, served with onnxruntime."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ferryman.errors import InvalidInputError, MissingDependencyError
from ferryman.flavors import Prediction, get_flavor

from .conftest import Dataset, Roundtrip

FLAVOR = get_flavor("onnx")


def _logistic(data: Dataset) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(data.array, data.target)


def _probabilities(result: Prediction) -> np.ndarray:
    if result.probabilities is None:
        raise AssertionError("expected probabilities")
    return result.probabilities


def _convert(model: Any, sample: np.ndarray, *, zipmap: bool = True) -> Any:
    options = None if zipmap else {id(model): {"zipmap": False}}
    return to_onnx(model, sample[:1], options=options)


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "tensor"])
@pytest.mark.parametrize("kind", ["frame", "array"])
def test_onnx_classifier_roundtrip_matches_sklearn(
    roundtrip: Roundtrip, breast_cancer: Dataset, zipmap: bool, kind: str
) -> None:
    model = _logistic(breast_cancer)
    proto = _convert(model, breast_cancer.array.astype(np.float32), zipmap=zipmap)
    X = breast_cancer.frame if kind == "frame" else breast_cancer.array

    _, loaded = roundtrip(FLAVOR, proto)
    result = loaded.predict(X)

    expected = model.predict_proba(breast_cancer.array)
    # float32 arithmetic: labels may only flip where the two classes nearly tie.
    confident = np.abs(expected[:, 1] - 0.5) > 1e-4
    np.testing.assert_array_equal(
        result.predictions[confident], model.predict(breast_cancer.array)[confident]
    )
    np.testing.assert_allclose(_probabilities(result), expected, atol=1e-5)
    assert result.classes == [0, 1]


def test_onnx_double_tensor_input_matches_sklearn_closely(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = _logistic(iris)
    proto = _convert(model, iris.array.astype(np.float64), zipmap=False)

    saved, loaded = roundtrip(FLAVOR, proto)
    result = loaded.predict(iris.frame)

    assert saved.meta["inputs"] == [{"name": "X", "type": "tensor(double)", "shape": [None, 4]}]
    np.testing.assert_array_equal(result.predictions, model.predict(iris.array))
    np.testing.assert_allclose(_probabilities(result), model.predict_proba(iris.array), atol=1e-12)
    assert result.classes == [0, 1, 2]


def test_onnx_multiple_inputs_take_one_frame_column_each(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    frame = iris.frame.set_axis(["a", "b", "c", "d"], axis=1).astype(np.float32)
    scaling = ColumnTransformer([("scale", StandardScaler(), ["a", "b", "c", "d"])])
    model = make_pipeline(scaling, LogisticRegression()).fit(frame, iris.target)
    proto = to_onnx(model, frame[:1], options={id(model.steps[-1][1]): {"zipmap": False}})

    saved, loaded = roundtrip(FLAVOR, proto)
    result = loaded.predict(iris.frame.set_axis(["a", "b", "c", "d"], axis=1))

    assert [node["name"] for node in saved.meta["inputs"]] == ["a", "b", "c", "d"]
    np.testing.assert_allclose(_probabilities(result), model.predict_proba(frame), atol=1e-5)


def test_onnx_regressor_gives_one_dimensional_values(
    roundtrip: Roundtrip, diabetes: Dataset
) -> None:
    model = Ridge().fit(diabetes.array, diabetes.target)
    proto = to_onnx(model, diabetes.array[:1].astype(np.float32))

    saved, loaded = roundtrip(FLAVOR, proto)
    result = loaded.predict(diabetes.frame)

    assert result.predictions.shape == (len(diabetes.frame),)
    np.testing.assert_allclose(result.predictions, model.predict(diabetes.array), rtol=1e-4)
    assert (saved.meta["probability_output"], result.probabilities) == (None, None)


@pytest.mark.parametrize("given_as", ["bytes", "path", "str"])
def test_onnx_saves_serialized_bytes_or_a_file_path(
    roundtrip: Roundtrip, tmp_path: Path, iris: Dataset, given_as: str
) -> None:
    model = _logistic(iris)
    content = _convert(model, iris.array.astype(np.float32)).SerializeToString()
    file = tmp_path / "given.onnx"
    file.write_bytes(content)
    source: object = {"bytes": content, "path": file, "str": str(file)}[given_as]

    saved, loaded = roundtrip(FLAVOR, source)

    assert saved.path.name == "model.onnx"
    np.testing.assert_allclose(
        _probabilities(loaded.predict(iris.array)), model.predict_proba(iris.array), atol=1e-5
    )


def test_onnx_records_inputs_outputs_and_classes(tmp_path: Path, iris: Dataset) -> None:
    proto = _convert(_logistic(iris), iris.array.astype(np.float32))

    meta = FLAVOR.save(proto, tmp_path, trusted=False, options={}).meta

    assert meta["inputs"] == [{"name": "X", "type": "tensor(float)", "shape": [None, 4]}]
    assert [node["name"] for node in meta["outputs"]] == ["output_label", "output_probability"]
    assert (meta["prediction_output"], meta["probability_output"]) == (
        "output_label",
        "output_probability",
    )
    assert meta["classes"] == [0, 1, 2]


def test_onnx_uses_one_intra_op_thread_by_default(roundtrip: Roundtrip, iris: Dataset) -> None:
    proto = _convert(_logistic(iris), iris.array.astype(np.float32))

    saved, loaded = roundtrip(FLAVOR, proto)

    assert saved.meta["intra_op_num_threads"] == 1
    assert loaded.session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]


def test_onnx_intra_op_threads_are_configurable(roundtrip: Roundtrip, iris: Dataset) -> None:
    proto = _convert(_logistic(iris), iris.array.astype(np.float32))

    _, loaded = roundtrip(FLAVOR, proto, options={"intra_op_num_threads": 2})

    assert loaded.session.get_session_options().intra_op_num_threads == 2  # type: ignore[attr-defined]


def test_onnx_rejects_bytes_that_are_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="onnxruntime cannot open this ONNX model"):
        FLAVOR.save(b"not a model", tmp_path, trusted=False, options={})


def test_onnx_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"missing\.onnx does not exist"):
        FLAVOR.save(tmp_path / "missing.onnx", tmp_path, trusted=False, options={})


def test_onnx_load_without_onnxruntime_names_the_extra(
    tmp_path: Path, iris: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = FLAVOR.save(
        _convert(_logistic(iris), iris.array.astype(np.float32)),
        tmp_path,
        trusted=False,
        options={},
    )
    monkeypatch.setitem(sys.modules, "onnxruntime", None)

    with pytest.raises(MissingDependencyError, match=r"ferryman\[onnx\]"):
        FLAVOR.load(saved.path, saved.meta, scratch=tmp_path)
