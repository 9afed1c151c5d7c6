"""One suite run over every flavor: the Flavor and LoadedModel contract."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from ferryman.flavors import FLAVORS, LoadedModel, Prediction, detect_flavor

from .conftest import Dataset, MLflowSklearnModel


@dataclass(frozen=True)
class Sample:
    """A model each flavor can save, with the arguments it needs."""

    model: object
    trusted: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


class ProbabilisticModel:
    """A user model with predict and predict_proba."""

    def predict(self, frame: Any) -> Any:
        return np.asarray(frame)[:, 0] > 5.5

    def predict_proba(self, frame: Any) -> Any:
        yes = 1 / (1 + np.exp(5.5 - np.asarray(frame)[:, 0]))
        return np.column_stack([1 - yes, yes])


def _logistic(data: Dataset) -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(data.array, data.target)


SAMPLES: dict[str, Callable[[Dataset, MLflowSklearnModel], Sample]] = {
    "mlflow": lambda data, mlm: Sample(mlm.directory),
    "onnx": lambda data, mlm: Sample(to_onnx(_logistic(data), data.array[:1].astype(np.float32))),
    "xgboost": lambda data, mlm: Sample(
        xgb.XGBClassifier(n_estimators=2).fit(data.array, data.target)
    ),
    "lightgbm": lambda data, mlm: Sample(
        lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(data.array, data.target)
    ),
    "sklearn": lambda data, mlm: Sample(_logistic(data)),
    "python": lambda data, mlm: Sample(ProbabilisticModel(), trusted=True),
}


@pytest.fixture(params=list(FLAVORS))
def flavor_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def sample(flavor_name: str, iris: Dataset, mlflow_sklearn_model: MLflowSklearnModel) -> Sample:
    return SAMPLES[flavor_name](iris, mlflow_sklearn_model)


def _save_and_load(flavor_name: str, sample: Sample, tmp_path: Path) -> tuple[Any, LoadedModel]:
    flavor = FLAVORS[flavor_name]
    (tmp_path / "saved").mkdir()
    saved = flavor.save(
        sample.model, tmp_path / "saved", trusted=sample.trusted, options=sample.options
    )
    meta = json.loads(json.dumps(saved.meta))
    return saved, flavor.load(saved.path, meta, scratch=tmp_path / "scratch")


def test_every_flavor_has_a_contract_sample() -> None:
    assert set(SAMPLES) == set(FLAVORS)


def test_flavor_detects_its_own_sample(flavor_name: str, sample: Sample) -> None:
    assert detect_flavor(sample.model) is FLAVORS[flavor_name]


def test_flavor_saves_exactly_one_file_inside_the_directory(
    flavor_name: str, sample: Sample, tmp_path: Path
) -> None:
    saved, _ = _save_and_load(flavor_name, sample, tmp_path)

    assert list((tmp_path / "saved").iterdir()) == [saved.path]


def test_flavor_records_the_trusted_flag(flavor_name: str, sample: Sample, tmp_path: Path) -> None:
    saved, _ = _save_and_load(flavor_name, sample, tmp_path)

    assert saved.meta["trusted"] is sample.trusted


def test_loaded_model_satisfies_the_protocol(
    flavor_name: str, sample: Sample, tmp_path: Path
) -> None:
    _, loaded = _save_and_load(flavor_name, sample, tmp_path)

    assert isinstance(loaded, LoadedModel)


def test_prediction_has_one_label_and_one_probability_row_per_input_row(
    flavor_name: str, sample: Sample, tmp_path: Path, iris: Dataset
) -> None:
    _, loaded = _save_and_load(flavor_name, sample, tmp_path)

    result = loaded.predict(iris.frame)

    assert isinstance(result, Prediction)
    assert result.predictions.shape == (len(iris.frame),)
    assert result.probabilities is not None
    assert result.probabilities.dtype == np.float64
    assert result.probabilities.shape[0] == len(iris.frame)


def test_prediction_classes_are_a_plain_list_matching_probability_columns(
    flavor_name: str, sample: Sample, tmp_path: Path, iris: Dataset
) -> None:
    _, loaded = _save_and_load(flavor_name, sample, tmp_path)

    result = loaded.predict(iris.frame)

    assert result.probabilities is not None
    classes = result.classes if result.classes is not None else []
    assert type(classes) is list
    assert all(type(label) in (int, str, bool) for label in classes)
    assert len(classes) in (0, result.probabilities.shape[1])


def test_loaded_model_does_not_modify_its_input(
    flavor_name: str, sample: Sample, tmp_path: Path, iris: Dataset
) -> None:
    _, loaded = _save_and_load(flavor_name, sample, tmp_path)
    frame = iris.frame.copy()

    loaded.predict(frame)

    assert frame.equals(iris.frame)
