"""The public face of ferryman.flavors: the registry, lookup, detection and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

import ferryman.flavors
from ferryman.errors import InvalidInputError, UnsupportedModelError
from ferryman.flavors import FLAVORS, detect_flavor, get_flavor

from .conftest import Dataset, MLflowSklearnModel

FRAMEWORKS = ("lightgbm", "mlflow", "onnx", "onnxruntime", "skl2onnx", "xgboost")


class HasPredict:
    def predict(self, frame: Any) -> Any:
        return frame


Maker = Callable[[Dataset, Path, MLflowSklearnModel], object]

DETECTED: dict[str, tuple[Maker, str]] = {
    "mlflow-directory-path": (lambda data, tmp, mlm: mlm.directory, "mlflow"),
    "mlflow-directory-str": (lambda data, tmp, mlm: str(mlm.directory), "mlflow"),
    "onnx-model-proto": (
        lambda data, tmp, mlm: to_onnx(
            LogisticRegression(max_iter=1000).fit(data.array, data.target),
            data.array[:1].astype(np.float32),
        ),
        "onnx",
    ),
    "onnx-bytes": (lambda data, tmp, mlm: b"\x08\x07", "onnx"),
    "onnx-file-path": (lambda data, tmp, mlm: tmp / "model.onnx", "onnx"),
    "xgboost-classifier": (
        lambda data, tmp, mlm: xgb.XGBClassifier(n_estimators=2).fit(data.array, data.target),
        "xgboost",
    ),
    "xgboost-booster": (
        lambda data, tmp, mlm: xgb.train({}, xgb.DMatrix(data.array, data.target), 2),
        "xgboost",
    ),
    "lightgbm-classifier": (
        lambda data, tmp, mlm: lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(
            data.array, data.target
        ),
        "lightgbm",
    ),
    "sklearn-estimator": (lambda data, tmp, mlm: LogisticRegression(), "sklearn"),
    "object-with-predict": (lambda data, tmp, mlm: HasPredict(), "python"),
}


def test_flavors_registry_keys_are_the_flavor_names() -> None:
    assert {name: flavor.name for name, flavor in FLAVORS.items()} == {
        name: name for name in FLAVORS
    }


def test_get_flavor_returns_the_registered_flavor() -> None:
    assert get_flavor("sklearn") is FLAVORS["sklearn"]


def test_get_flavor_rejects_unknown_name_listing_valid_names() -> None:
    expected = (
        r"Unknown flavor 'skleran'\. "
        r"Available: lightgbm, mlflow, onnx, python, sklearn, xgboost\."
    )

    with pytest.raises(InvalidInputError, match=expected):
        get_flavor("skleran")


@pytest.mark.parametrize(("make", "expected"), DETECTED.values(), ids=DETECTED.keys())
def test_detect_flavor_picks_the_flavor_for_each_model_type(
    make: Maker,
    expected: str,
    iris: Dataset,
    tmp_path: Path,
    mlflow_sklearn_model: MLflowSklearnModel,
) -> None:
    model = make(iris, tmp_path, mlflow_sklearn_model)

    assert detect_flavor(model).name == expected


def test_detect_flavor_rejects_unknown_object_listing_flavors_and_type() -> None:
    expected = (
        r"type 'builtins\.object'\. "
        r"Supported flavors: mlflow, onnx, xgboost, lightgbm, sklearn, python\."
    )

    with pytest.raises(UnsupportedModelError, match=expected):
        detect_flavor(object())


def test_detect_flavor_rejects_directory_without_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="type 'pathlib"):
        detect_flavor(tmp_path)


def _imported_after(code: str) -> str:
    script = f"import sys\n{code}\nprint(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_importing_flavors_imports_no_framework() -> None:
    assert _imported_after("import ferryman.flavors") == "[]"


def test_detecting_a_sklearn_model_imports_no_other_framework() -> None:
    code = (
        "from sklearn.linear_model import LogisticRegression\n"
        "import ferryman.flavors\n"
        "assert ferryman.flavors.detect_flavor(LogisticRegression()).name == 'sklearn'"
    )

    assert _imported_after(code) == "[]"


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = {
        name
        for name, value in vars(ferryman.flavors).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name != "annotations"  # the `from __future__ import annotations` feature
    }

    assert ferryman.flavors.__all__ == sorted(ferryman.flavors.__all__)
    assert set(ferryman.flavors.__all__) == public
