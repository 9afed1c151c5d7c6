"""Shared fixtures for the flavor tests: bundled datasets and a save-then-load helper."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from ferryman.flavors import Flavor, LoadedModel, SavedArtifact


@dataclass(frozen=True)
class Dataset:
    """Features as a DataFrame and the same values as an array, plus the target."""

    frame: pd.DataFrame
    target: np.ndarray

    @property
    def array(self) -> np.ndarray:
        return self.frame.to_numpy()


def _dataset(loader: Callable[..., Any]) -> Dataset:
    bunch = loader(as_frame=True)
    return Dataset(frame=bunch.data, target=bunch.target.to_numpy())


@pytest.fixture(scope="session")
def breast_cancer() -> Dataset:
    return _dataset(load_breast_cancer)


@pytest.fixture(scope="session")
def iris() -> Dataset:
    return _dataset(load_iris)


@pytest.fixture(scope="session")
def diabetes() -> Dataset:
    return _dataset(load_diabetes)


class Roundtrip(Protocol):
    def __call__(
        self,
        flavor: Flavor,
        model: object,
        *,
        trusted: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[SavedArtifact, LoadedModel]: ...


@pytest.fixture
def roundtrip(tmp_path: Path) -> Roundtrip:
    """Save a model, copy the artifact elsewhere, and load the copy with a fresh scratch.

    The metadata goes through JSON on the way, as it does through the registry, and the
    save directory is deleted so loading cannot depend on it.
    """
    counter = iter(range(1_000_000))

    def run(
        flavor: Flavor,
        model: object,
        *,
        trusted: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[SavedArtifact, LoadedModel]:
        step = next(counter)
        directory = tmp_path / f"saved-{step}"
        scratch = tmp_path / f"scratch-{step}"
        directory.mkdir()
        scratch.mkdir()
        saved = flavor.save(model, directory, trusted=trusted, options=options or {})
        meta = json.loads(json.dumps(saved.meta))
        stored = scratch.with_name(f"store-{step}")
        stored.mkdir()
        artifact = Path(shutil.copy(saved.path, stored))
        shutil.rmtree(directory)
        return saved, flavor.load(artifact, meta, scratch=scratch)

    return run


@dataclass(frozen=True)
class MLflowSklearnModel:
    """A scikit-learn pipeline and the MLflow model directory it was saved to."""

    estimator: Any
    directory: Path


def save_mlflow_sklearn(directory: Path, data: Dataset, serialization_format: str) -> Any:
    """Fit a small pipeline and save it with ``mlflow.sklearn.save_model``."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = make_pipeline(StandardScaler(), LogisticRegression()).fit(data.frame, data.target)
    mlflow.sklearn.save_model(
        estimator,
        str(directory),
        serialization_format=serialization_format,
        pip_requirements=[],  # skips requirement inference, which takes seconds
    )
    return estimator


@pytest.fixture(scope="session")
def mlflow_sklearn_model(
    tmp_path_factory: pytest.TempPathFactory, iris: Dataset
) -> MLflowSklearnModel:
    """An MLflow model directory with the sklearn flavor, serialized with skops."""
    directory = tmp_path_factory.mktemp("mlflow") / "skops-model"
    estimator = save_mlflow_sklearn(directory, iris, "skops")
    return MLflowSklearnModel(estimator=estimator, directory=directory)
