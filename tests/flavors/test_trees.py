"""The compiled tree walk reproduces HistGradientBoostingClassifier bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier

from ferryman.flavors import _trees
from ferryman.flavors._trees import compile_proba
from ferryman.flavors.sklearn import SklearnModel


@st.composite
def fitted(draw: st.DrawFn) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    """A small model fitted on random data with missing values, and rows to predict."""
    seed = draw(st.integers(0, 2**32 - 1))
    classes = draw(st.sampled_from([2, 3]))
    features = draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, features))
    y = (X[:, 0] > 0).astype(int) + (classes == 3) * (X[:, -1] > 0.5).astype(int)
    X[rng.random(X.shape) < draw(st.sampled_from([0.0, 0.1, 0.4]))] = np.nan
    model = HistGradientBoostingClassifier(
        max_iter=draw(st.integers(1, 30)),
        max_leaf_nodes=draw(st.integers(2, 31)),
        max_depth=draw(st.sampled_from([None, 2, 5])),
        random_state=0,
    ).fit(X, y)
    rows = rng.normal(size=(draw(st.integers(1, 40)), features)) * 2
    specials = np.array([np.nan, np.inf, -np.inf, 0.0])
    mask = rng.random(rows.shape) < 0.2
    rows[mask] = rng.choice(specials, size=int(mask.sum()))
    return model, rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fitted())
def test_compiled_probabilities_equal_scikit_learns_exactly(
    case: tuple[HistGradientBoostingClassifier, np.ndarray],
) -> None:
    model, rows = case
    proba = compile_proba(model)
    assert proba is not None
    expected = model.predict_proba(rows)
    np.testing.assert_array_equal(proba(rows), expected)
    # Both walks, whichever the batch's size would pick.
    forest = _forest(model)
    for walk in (forest.node_walk, forest.level_walk):
        got = model._loss.predict_proba(forest.add_up(walk(np.ascontiguousarray(rows))))
        np.testing.assert_array_equal(got, expected)


def _forest(model: HistGradientBoostingClassifier) -> _trees._Forest:
    trees = [tree for iteration in model._predictors for tree in iteration]
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64)
    return _trees._Forest(trees, baseline, model.n_features_in_)


def test_a_few_rows_take_the_node_walk_and_more_the_level_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    estimator = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    proba = compile_proba(estimator)
    assert proba is not None
    nodes = sum(len(tree.nodes) for iteration in estimator._predictors for tree in iteration)
    small = _trees.SMALL_CELLS // nodes
    walked: list[tuple[str, int]] = []
    for name in ("node_walk", "level_walk"):
        real = getattr(_trees._Forest, name)
        monkeypatch.setattr(
            _trees._Forest,
            name,
            lambda self, rows, real=real, name=name: (
                walked.append((name, len(rows))) or real(self, rows)
            ),
        )

    for rows in (1, small, small + 1):
        np.testing.assert_array_equal(proba(X[:rows]), estimator.predict_proba(X[:rows]))

    assert walked == [("node_walk", 1), ("node_walk", small), ("level_walk", small + 1)]


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris], ids=["binary", "multiclass"])
def test_the_flavor_serves_the_compiled_trees_with_scikit_learns_labels(loader: Any) -> None:
    X, y = loader(return_X_y=True)
    estimator = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    model = SklearnModel(estimator)
    assert model._fast_proba is not None

    prediction = model.predict(X)

    np.testing.assert_array_equal(prediction.probabilities, estimator.predict_proba(X))
    np.testing.assert_array_equal(prediction.predictions, estimator.predict(X))


def test_categorical_models_and_subclasses_keep_scikit_learns_predictor() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"size": rng.normal(size=300), "colour": pd.Categorical(rng.choice(["r", "g"], 300))}
    )
    y = (frame["size"] > 0) ^ (frame["colour"] == "r")
    categorical = HistGradientBoostingClassifier(categorical_features="from_dtype").fit(frame, y)

    class Custom(HistGradientBoostingClassifier):
        def predict_proba(self, X: Any) -> Any:
            return super().predict_proba(X)[:, ::-1]

    X, y = load_breast_cancer(return_X_y=True)
    assert compile_proba(categorical) is None
    assert compile_proba(Custom(max_iter=5).fit(X, y)) is None


@pytest.mark.parametrize(("columns", "rows", "message"), [(5, 3, "features"), (30, 0, "0 sample")])
def test_rows_of_the_wrong_shape_get_scikit_learns_error(
    columns: int, rows: int, message: str
) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    proba = compile_proba(HistGradientBoostingClassifier(max_iter=5).fit(X, y))
    assert proba is not None

    with pytest.raises(ValueError, match=message):
        proba(X[:rows, :columns])


def test_batches_beyond_the_walks_size_go_to_scikit_learn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    estimator = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    monkeypatch.setattr("ferryman.flavors._trees.MAX_CELLS", 10 * 50)  # 50 rows of 10 trees
    monkeypatch.setattr("ferryman.flavors._trees.SMALL_CELLS", 0)  # no node walk
    walked: list[int] = []
    monkeypatch.setattr(
        "ferryman.flavors._trees._Forest.level_walk",
        lambda self, rows, real=_trees._Forest.level_walk: (
            walked.append(len(rows)) or real(self, rows)
        ),
    )
    proba = compile_proba(estimator)
    assert proba is not None
    assert walked and max(walked) == 50  # the load-time check walked, in chunks of 50
    walked.clear()

    np.testing.assert_array_equal(proba(X[:50]), estimator.predict_proba(X[:50]))
    np.testing.assert_array_equal(proba(X[:51]), estimator.predict_proba(X[:51]))

    assert walked == [50]
