"""The sklearn flavor: skops by default, joblib only when trusted, exact predictions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ferryman.errors import InvalidInputError, UntrustedArtifactError
from ferryman.flavors import get_flavor

from .conftest import Dataset, Roundtrip

FLAVOR = get_flavor("sklearn")

#: Linear pipelines predict through a compiled NumPy path that matches scikit-learn to
#: the last bits or so (1e-12), not bit for bit.
CLOSE = {"rtol": 1e-12, "atol": 1e-15}


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A custom transformer: a type skops does not trust by default."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return X * 2


DOUBLER = f"{Doubler.__module__}.{Doubler.__qualname__}"
#: skops does not trust scikit-learn's Cython tree type by default.
TREES = {"trusted_types": ["sklearn.tree._tree.Tree"]}

CLASSIFIERS: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "forest": (lambda: RandomForestClassifier(n_estimators=5, random_state=0), TREES),
    "scaled-logistic": (lambda: make_pipeline(StandardScaler(), LogisticRegression()), {}),
}


def _features(data: Dataset, kind: str) -> pd.DataFrame | np.ndarray:
    return data.frame if kind == "frame" else data.array


@pytest.mark.parametrize("kind", ["frame", "array"])
@pytest.mark.parametrize(("make", "options"), CLASSIFIERS.values(), ids=CLASSIFIERS.keys())
def test_sklearn_classifier_roundtrip_matches_predict_and_predict_proba(
    roundtrip: Roundtrip,
    breast_cancer: Dataset,
    make: Callable[[], Any],
    options: dict[str, Any],
    kind: str,
) -> None:
    X = _features(breast_cancer, kind)
    model = make().fit(X, breast_cancer.target)

    _, loaded = roundtrip(FLAVOR, model, options=options)
    result = loaded.predict(X)

    np.testing.assert_array_equal(result.predictions, model.predict(X))
    np.testing.assert_allclose(result.probabilities, model.predict_proba(X), **CLOSE)
    assert result.classes == [0, 1]


@pytest.mark.parametrize("kind", ["frame", "array"])
def test_sklearn_multiclass_forest_roundtrip_matches_predict_and_predict_proba(
    roundtrip: Roundtrip, iris: Dataset, kind: str
) -> None:
    X = _features(iris, kind)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, iris.target)

    _, loaded = roundtrip(FLAVOR, model, options=TREES)
    result = loaded.predict(X)

    np.testing.assert_array_equal(result.predictions, model.predict(X))
    np.testing.assert_allclose(result.probabilities, model.predict_proba(X), **CLOSE)


@pytest.mark.parametrize("kind", ["frame", "array"])
@pytest.mark.parametrize(
    ("make", "options"),
    [(Ridge, {}), (lambda: RandomForestRegressor(n_estimators=5, random_state=0), TREES)],
    ids=["ridge", "forest"],
)
def test_sklearn_regressor_roundtrip_matches_predict(
    roundtrip: Roundtrip,
    diabetes: Dataset,
    make: Callable[[], Any],
    options: dict[str, Any],
    kind: str,
) -> None:
    X = _features(diabetes, kind)
    model = make().fit(X, diabetes.target)

    _, loaded = roundtrip(FLAVOR, model, options=options)
    result = loaded.predict(X)

    np.testing.assert_array_equal(result.predictions, model.predict(X))
    assert result.probabilities is None
    assert result.classes is None


def test_sklearn_classes_are_plain_python_labels(roundtrip: Roundtrip, iris: Dataset) -> None:
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[iris.target]
    model = LogisticRegression(max_iter=1000).fit(iris.frame, names)

    _, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(iris.frame)

    assert result.classes == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(result.predictions, model.predict(iris.frame))


def test_sklearn_classifier_without_predict_proba_gives_labels_and_classes(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = make_pipeline(StandardScaler(), LinearSVC()).fit(iris.array, iris.target)

    _, loaded = roundtrip(FLAVOR, model)
    result = loaded.predict(iris.array)

    np.testing.assert_array_equal(result.predictions, model.predict(iris.array))
    assert result.probabilities is None
    assert result.classes == [0, 1, 2]


def test_sklearn_accepts_array_input_for_frame_trained_model(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.frame, iris.target)

    _, loaded = roundtrip(FLAVOR, model)

    # Warnings are errors here, so this also proves sklearn saw the feature names.
    np.testing.assert_array_equal(loaded.predict(iris.array).predictions, model.predict(iris.frame))


def test_sklearn_accepts_frame_input_for_array_trained_model(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)

    _, loaded = roundtrip(FLAVOR, model)

    np.testing.assert_array_equal(loaded.predict(iris.frame).predictions, model.predict(iris.array))


def test_sklearn_reorders_frame_columns_to_training_order(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.frame, iris.target)
    shuffled = iris.frame[list(reversed(iris.frame.columns))]

    _, loaded = roundtrip(FLAVOR, model)

    np.testing.assert_array_equal(loaded.predict(shuffled).predictions, model.predict(iris.frame))


def test_sklearn_records_skops_format_and_description(roundtrip: Roundtrip, iris: Dataset) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.frame, iris.target)

    saved, _ = roundtrip(FLAVOR, model)

    assert saved.path.name == "model.skops"
    assert saved.meta["format"] == "skops"
    assert saved.meta["trusted_types"] == []
    assert saved.meta["task"] == "classifier"
    assert saved.meta["classes"] == [0, 1, 2]
    assert saved.meta["feature_names"] == list(iris.frame.columns)


def test_sklearn_refuses_custom_type_not_listed_in_trusted_types(
    tmp_path: Path, iris: Dataset
) -> None:
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=1000)).fit(iris.array, iris.target)

    with pytest.raises(UntrustedArtifactError, match=rf"'{DOUBLER}'.*trusted_types"):
        FLAVOR.save(model, tmp_path, trusted=True, options={})


def test_sklearn_saves_custom_type_listed_in_trusted_types(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=1000)).fit(iris.array, iris.target)

    saved, loaded = roundtrip(FLAVOR, model, options={"trusted_types": [DOUBLER]})

    assert saved.meta["trusted_types"] == [DOUBLER]
    np.testing.assert_array_equal(loaded.predict(iris.array).predictions, model.predict(iris.array))


def test_sklearn_load_trusts_only_the_types_recorded_in_meta(tmp_path: Path, iris: Dataset) -> None:
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=1000)).fit(iris.array, iris.target)
    saved = FLAVOR.save(model, tmp_path, trusted=False, options={"trusted_types": [DOUBLER]})
    meta = {**saved.meta, "trusted_types": []}

    with pytest.raises(UntrustedArtifactError, match="not trusted at registration"):
        FLAVOR.load(saved.path, meta, scratch=tmp_path)


def test_sklearn_rejects_trusted_types_given_as_one_string(tmp_path: Path, iris: Dataset) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)

    with pytest.raises(InvalidInputError, match="must be a list of strings"):
        FLAVOR.save(model, tmp_path, trusted=False, options={"trusted_types": DOUBLER})


def test_sklearn_refuses_joblib_without_trusted(tmp_path: Path, iris: Dataset) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)

    with pytest.raises(UntrustedArtifactError, match="trusted=True"):
        FLAVOR.save(model, tmp_path, trusted=False, options={"format": "joblib"})


def test_sklearn_joblib_roundtrip_when_trusted(roundtrip: Roundtrip, iris: Dataset) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)

    saved, loaded = roundtrip(FLAVOR, model, trusted=True, options={"format": "joblib"})

    assert (saved.meta["format"], saved.meta["trusted"]) == ("joblib", True)
    np.testing.assert_array_equal(
        loaded.predict(iris.array).probabilities, model.predict_proba(iris.array)
    )


@pytest.mark.parametrize("meta_trusted", [{"trusted": False}, {}], ids=["false", "missing"])
def test_sklearn_refuses_joblib_artifact_not_recorded_as_trusted(
    tmp_path: Path, iris: Dataset, meta_trusted: dict[str, bool]
) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)
    saved = FLAVOR.save(model, tmp_path, trusted=True, options={"format": "joblib"})
    meta = {key: value for key, value in saved.meta.items() if key != "trusted"}

    with pytest.raises(UntrustedArtifactError, match="not recorded as trusted"):
        FLAVOR.load(saved.path, {**meta, **meta_trusted}, scratch=tmp_path)


def test_sklearn_rejects_unknown_format(tmp_path: Path, iris: Dataset) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)

    with pytest.raises(InvalidInputError, match=r"Unknown sklearn format 'pickle'\. Available"):
        FLAVOR.save(model, tmp_path, trusted=True, options={"format": "pickle"})


def test_sklearn_rejects_unknown_option(tmp_path: Path, iris: Dataset) -> None:
    model = LogisticRegression(max_iter=1000).fit(iris.array, iris.target)

    with pytest.raises(InvalidInputError, match=r"Unknown option 'trusted_type'.*trusted_types"):
        FLAVOR.save(model, tmp_path, trusted=False, options={"trusted_type": [DOUBLER]})


def test_sklearn_trusts_scikit_learns_own_tree_types_without_being_told(
    tmp_path: Path, iris: Dataset
) -> None:
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(iris.frame, iris.target)
    saved = FLAVOR.save(model, tmp_path, trusted=False, options={})
    assert "sklearn.tree._tree.Tree" in saved.meta["trusted_types"]


def test_sklearn_model_takes_arrays_only_in_its_training_column_order(tmp_path: Path) -> None:
    from ferryman.flavors.sklearn import SklearnModel

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = np.array([0, 1, 0, 1])
    on_frame = SklearnModel(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y))
    on_array = SklearnModel(LogisticRegression().fit(X.to_numpy(), y))

    assert on_frame.takes_array(["a", "b"])
    assert not on_frame.takes_array(["b", "a"])
    assert on_array.takes_array(["b", "a"])  # no names: positions are all it knows
