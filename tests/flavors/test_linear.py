"""The compiled NumPy path for linear pipelines reproduces scikit-learn exactly enough."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ferryman.flavors._linear import compile_proba

ESTIMATORS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=5000),
    "scaled": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
    "scaled-twice": lambda: make_pipeline(
        StandardScaler(), StandardScaler(with_mean=False), LogisticRegression(max_iter=5000)
    ),
}


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris], ids=["binary", "multiclass"])
@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_compiled_probabilities_equal_scikit_learns(loader: Any, kind: str) -> None:
    X, y = loader(return_X_y=True)
    estimator = ESTIMATORS[kind]().fit(X, y)
    proba = compile_proba(estimator)
    assert proba is not None
    np.testing.assert_allclose(proba(X), estimator.predict_proba(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(
        estimator.classes_[np.argmax(proba(X), axis=1)], estimator.predict(X)
    )


def test_other_pipelines_are_not_compiled() -> None:
    X, y = load_iris(return_X_y=True)
    estimator = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=5000)).fit(X, y)
    assert compile_proba(estimator) is None


def test_subclasses_are_not_compiled() -> None:
    class Custom(LogisticRegression):
        def predict_proba(self, X: Any) -> Any:
            return super().predict_proba(X)[:, ::-1]

    X, y = load_iris(return_X_y=True)
    assert compile_proba(Custom(max_iter=5000).fit(X, y)) is None
