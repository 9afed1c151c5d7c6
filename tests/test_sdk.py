"""The SDK: ferryman.register, ferryman.load and ferryman.Client with the settings in force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import ferryman
from ferryman.errors import ModelNotFoundError


def test_register_then_load_with_environment_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    info = ferryman.register(clf, name="iris", X=X, y=y, metrics={"accuracy": 0.97})
    model = ferryman.load("iris")
    assert info.ref == model.ref == "iris/1"
    np.testing.assert_array_equal(model.predict(X.head(10)), clf.predict(X.head(10)))
    assert model.classes == [0, 1, 2]
    assert (tmp_path / "home" / "ferryman.db").is_file()


def test_client_uses_explicit_settings(tmp_path: Path) -> None:
    settings = ferryman.Settings(home=tmp_path / "elsewhere", user="carol")
    X, y = load_iris(return_X_y=True)
    with ferryman.Client(settings=settings) as client:
        info = client.register(LogisticRegression(max_iter=500).fit(X, y), name="iris", X=X, y=y)
        assert info.created_by == "carol"
        assert client.load("iris/1").predict(X[:3]).shape == (3,)


def test_loading_an_unknown_model_raises_lookup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError):
        ferryman.load("nothing")
    with pytest.raises(LookupError):
        ferryman.load("nothing")
