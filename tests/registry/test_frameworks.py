"""Models from every supported framework register, load back verified, and predict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ferryman.registry import Registry

Data = tuple[pd.DataFrame, "pd.Series[Any]"]


def _sklearn(X: pd.DataFrame, y: pd.Series[Any], tmp: Path) -> tuple[object, Any]:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    return model, model.predict_proba


def _onnx(X: pd.DataFrame, y: pd.Series[Any], tmp: Path) -> tuple[object, Any]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Scaled, the solver converges in a few dozen iterations instead of thousands.
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(np.float32), y)
    onx = to_onnx(model, X.to_numpy(np.float32)[:1], options={id(model): {"zipmap": False}})
    return onx, lambda frame: model.predict_proba(frame.to_numpy(np.float32))


def _xgboost(X: pd.DataFrame, y: pd.Series[Any], tmp: Path) -> tuple[object, Any]:
    from xgboost import XGBClassifier

    model = XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    return model, model.predict_proba


def _lightgbm(X: pd.DataFrame, y: pd.Series[Any], tmp: Path) -> tuple[object, Any]:
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    return model, model.predict_proba


def _mlflow(X: pd.DataFrame, y: pd.Series[Any], tmp: Path) -> tuple[object, Any]:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    path = tmp / "mlflow-model"
    mlflow.sklearn.save_model(model, str(path), serialization_format="skops")
    return path, model.predict_proba


FRAMEWORKS: dict[str, Callable[[pd.DataFrame, pd.Series[Any], Path], tuple[object, Any]]] = {
    "sklearn": _sklearn,
    "onnx": _onnx,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "mlflow": _mlflow,
}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_framework_model_round_trips_through_the_registry(
    registry: Registry, cancer: Data, tmp_path: Path, framework: str
) -> None:
    X, y = cancer
    model, expected_proba = FRAMEWORKS[framework](X, y, tmp_path)
    info = registry.register(model, name=f"{framework}-model", X=X, y=y)
    loaded = registry.load(f"{framework}-model/{info.version}")
    assert info.flavor == framework
    assert info.signature is not None and info.profile is not None
    np.testing.assert_allclose(
        loaded.predict_proba(X.head(20)), expected_proba(X.head(20)), rtol=1e-5, atol=1e-6
    )
