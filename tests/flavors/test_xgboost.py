"""The xgboost flavor: native format, loaded back into the same kind of object."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from ferryman.errors import InvalidInputError, MissingDependencyError
from ferryman.flavors import get_flavor

from .conftest import Dataset, Roundtrip

FLAVOR = get_flavor("xgboost")


def _classifier(**params: Any) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, **params)


@pytest.mark.parametrize("kind", ["frame", "array"])
@pytest.mark.parametrize("dataset", ["breast_cancer", "iris"])
def test_xgboost_classifier_roundtrip_matches_predict_and_predict_proba(
    roundtrip: Roundtrip, request: pytest.FixtureRequest, dataset: str, kind: str
) -> None:
    data: Dataset = request.getfixturevalue(dataset)
    X = data.frame if kind == "frame" else data.array
    model = _classifier().fit(X, data.target)

    _, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(X)

    np.testing.assert_array_equal(result.predictions, model.predict(X))
    np.testing.assert_array_equal(result.probabilities, model.predict_proba(X))
    assert result.classes == model.classes_.tolist()
    assert isinstance(loaded.model, xgb.XGBClassifier)  # type: ignore[attr-defined]


def test_xgboost_softmax_classifier_gives_predict_and_predict_proba(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = _classifier(objective="multi:softmax").fit(iris.array, iris.target)

    _, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(iris.array)

    np.testing.assert_array_equal(result.predictions, model.predict(iris.array))
    np.testing.assert_array_equal(result.probabilities, model.predict_proba(iris.array))


@pytest.mark.parametrize("kind", ["frame", "array"])
def test_xgboost_regressor_roundtrip_matches_predict(
    roundtrip: Roundtrip, diabetes: Dataset, kind: str
) -> None:
    X = diabetes.frame if kind == "frame" else diabetes.array
    model = xgb.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1).fit(X, diabetes.target)

    saved, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(X)

    np.testing.assert_array_equal(result.predictions, model.predict(X))
    assert (result.probabilities, result.classes) == (None, None)
    assert saved.meta["kind"] == "regressor"
    assert isinstance(loaded.model, xgb.XGBRegressor)  # type: ignore[attr-defined]


def test_xgboost_booster_roundtrip_matches_booster_predict(
    roundtrip: Roundtrip, breast_cancer: Dataset
) -> None:
    train = xgb.DMatrix(breast_cancer.frame, label=breast_cancer.target)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    booster = xgb.train(params, train, num_boost_round=5)

    saved, loaded = roundtrip(FLAVOR, booster)
    result = loaded.predict(breast_cancer.frame)

    np.testing.assert_array_equal(result.predictions, booster.predict(train))
    assert (saved.meta["kind"], saved.meta["objective"]) == ("booster", "binary:logistic")
    assert isinstance(loaded.model, xgb.Booster)  # type: ignore[attr-defined]


def test_xgboost_accepts_array_input_for_frame_trained_model(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = _classifier().fit(iris.frame, iris.target)

    _, loaded = roundtrip(FLAVOR, model)

    np.testing.assert_array_equal(loaded.predict(iris.array).predictions, model.predict(iris.frame))


def test_xgboost_records_kind_classes_objective_and_features(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = _classifier().fit(iris.frame, iris.target)

    saved, _ = roundtrip(FLAVOR, model)

    assert saved.path.name == "model.ubj"
    assert {key: saved.meta[key] for key in ("kind", "classes", "objective", "format")} == {
        "kind": "classifier",
        "classes": [0, 1, 2],
        "objective": "multi:softprob",
        "format": "ubj",
    }
    assert saved.meta["feature_names"] == list(iris.frame.columns)


def test_xgboost_saves_json_when_asked(roundtrip: Roundtrip, iris: Dataset) -> None:
    model = _classifier().fit(iris.array, iris.target)

    saved, loaded = roundtrip(FLAVOR, model, options={"format": "json"})

    assert saved.path.name == "model.json"
    np.testing.assert_array_equal(
        loaded.predict(iris.array).probabilities, model.predict_proba(iris.array)
    )


def test_xgboost_rejects_unknown_format(tmp_path: Path, iris: Dataset) -> None:
    model = _classifier().fit(iris.array, iris.target)

    with pytest.raises(InvalidInputError, match=r"Unknown xgboost format 'pickle'\. Available"):
        FLAVOR.save(model, tmp_path, trusted=False, options={"format": "pickle"})


def test_xgboost_load_without_xgboost_names_the_extra(
    tmp_path: Path, iris: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = FLAVOR.save(
        _classifier().fit(iris.array, iris.target), tmp_path, trusted=False, options={}
    )
    monkeypatch.setitem(sys.modules, "xgboost", None)

    with pytest.raises(MissingDependencyError, match=r"ferryman\[xgboost\]"):
        FLAVOR.load(saved.path, saved.meta, scratch=tmp_path)
