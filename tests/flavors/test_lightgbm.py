"""The lightgbm flavor: native text model, loaded as a Booster that answers like the wrapper."""

from __future__ import annotations

import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from ferryman.errors import MissingDependencyError
from ferryman.flavors import get_flavor

from .conftest import Dataset, Roundtrip

FLAVOR = get_flavor("lightgbm")


def _classifier() -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1)


@pytest.mark.parametrize("kind", ["frame", "array"])
@pytest.mark.parametrize("dataset", ["breast_cancer", "iris"])
def test_lightgbm_classifier_roundtrip_matches_predict_and_predict_proba(
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


def test_lightgbm_classifier_keeps_string_labels(roundtrip: Roundtrip, iris: Dataset) -> None:
    labels = np.array(["setosa", "versicolor", "virginica"])[iris.target]
    model = _classifier().fit(iris.frame, labels)

    saved, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(iris.frame)

    assert result.classes == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(result.predictions, model.predict(iris.frame))
    assert (saved.meta["kind"], saved.meta["objective"]) == ("classifier", "multiclass")


@pytest.mark.parametrize("kind", ["frame", "array"])
def test_lightgbm_regressor_roundtrip_matches_predict(
    roundtrip: Roundtrip, diabetes: Dataset, kind: str
) -> None:
    X = diabetes.frame if kind == "frame" else diabetes.array
    model = lgb.LGBMRegressor(n_estimators=5, n_jobs=1, verbose=-1).fit(X, diabetes.target)

    _, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(X)

    np.testing.assert_array_equal(result.predictions, model.predict(X))
    assert (result.probabilities, result.classes) == (None, None)


def test_lightgbm_booster_roundtrip_matches_booster_predict(
    roundtrip: Roundtrip, diabetes: Dataset
) -> None:
    params = {"objective": "regression", "num_threads": 1, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(diabetes.array, diabetes.target), num_boost_round=5)

    saved, loaded = roundtrip(FLAVOR, booster)

    np.testing.assert_array_equal(
        loaded.predict(diabetes.array).predictions, booster.predict(diabetes.array)
    )
    assert (saved.meta["kind"], saved.meta["objective"]) == ("booster", "regression")


def test_lightgbm_restores_training_column_order(roundtrip: Roundtrip, iris: Dataset) -> None:
    frame = iris.frame.set_axis(["a", "b", "c", "d"], axis=1)
    model = _classifier().fit(frame, iris.target)

    _, loaded = roundtrip(FLAVOR, model)

    np.testing.assert_array_equal(
        loaded.predict(frame[["d", "c", "b", "a"]]).probabilities, model.predict_proba(frame)
    )


def test_lightgbm_load_without_lightgbm_names_the_extra(
    tmp_path: Path, iris: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = FLAVOR.save(
        _classifier().fit(iris.array, iris.target), tmp_path, trusted=False, options={}
    )
    monkeypatch.setitem(sys.modules, "lightgbm", None)

    with pytest.raises(MissingDependencyError, match=r"ferryman\[lightgbm\]"):
        FLAVOR.load(saved.path, saved.meta, scratch=tmp_path)
