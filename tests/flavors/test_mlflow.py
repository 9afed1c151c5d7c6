"""The mlflow flavor: MLflow model directories packed into one deterministic zip."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.model import PythonModel
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ferryman.errors import MissingDependencyError, UntrustedArtifactError
from ferryman.flavors import get_flavor

from .conftest import Dataset, MLflowSklearnModel, Roundtrip, save_mlflow_sklearn

FLAVOR = get_flavor("mlflow")

#: Linear pipelines predict through a compiled NumPy path that matches scikit-learn to
#: the last bits or so (1e-12), not bit for bit.
CLOSE = {"rtol": 1e-12, "atol": 1e-15}


class DoubleFirstColumn(PythonModel):
    """A small python_function model: twice the first column."""

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        return model_input.iloc[:, 0] * 2


class Halver(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A custom transformer: a type skops does not trust by default."""

    def fit(self, X: Any, y: Any = None) -> Halver:
        return self

    def transform(self, X: Any) -> Any:
        return X / 2


HALVER = f"{Halver.__module__}.{Halver.__qualname__}"


@pytest.fixture(scope="module")
def pyfunc_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mlflow") / "pyfunc-model"
    mlflow.pyfunc.save_model(str(directory), python_model=DoubleFirstColumn(), pip_requirements=[])
    return directory


@pytest.fixture(scope="module")
def pickled_model(tmp_path_factory: pytest.TempPathFactory, iris: Dataset) -> MLflowSklearnModel:
    directory = tmp_path_factory.mktemp("mlflow") / "cloudpickle-model"
    estimator = save_mlflow_sklearn(directory, iris, "cloudpickle")
    return MLflowSklearnModel(estimator=estimator, directory=directory)


def test_mlflow_skops_sklearn_roundtrip_matches_estimator(
    roundtrip: Roundtrip, mlflow_sklearn_model: MLflowSklearnModel, iris: Dataset
) -> None:
    _, loaded = roundtrip(FLAVOR, mlflow_sklearn_model.directory)
    result = loaded.predict(iris.frame)

    estimator = mlflow_sklearn_model.estimator
    np.testing.assert_array_equal(result.predictions, estimator.predict(iris.frame))
    np.testing.assert_allclose(result.probabilities, estimator.predict_proba(iris.frame), **CLOSE)
    assert result.classes == [0, 1, 2]


def test_mlflow_records_flavors_and_chosen_loader(
    roundtrip: Roundtrip, mlflow_sklearn_model: MLflowSklearnModel
) -> None:
    saved, _ = roundtrip(FLAVOR, mlflow_sklearn_model.directory)

    assert saved.meta["mlflow_flavors"] == ["python_function", "sklearn"]
    assert (saved.meta["loader"], saved.meta["serialization_format"]) == ("sklearn", "skops")
    assert saved.meta["trusted_types"] == []


@pytest.fixture(scope="module")
def custom_type_directory(tmp_path_factory: pytest.TempPathFactory, iris: Dataset) -> Path:
    """An MLflow skops model whose MLmodel file itself lists a custom type as trusted."""
    directory = tmp_path_factory.mktemp("mlflow") / "custom-type-model"
    estimator = make_pipeline(Halver(), LogisticRegression()).fit(iris.array, iris.target)
    mlflow.sklearn.save_model(
        estimator,
        str(directory),
        serialization_format="skops",
        skops_trusted_types=[HALVER],
        pip_requirements=[],
    )
    return directory


def test_mlflow_ignores_trusted_types_listed_in_the_mlmodel_file(
    tmp_path: Path, custom_type_directory: Path
) -> None:
    with pytest.raises(UntrustedArtifactError, match=rf"'{HALVER}'.*trusted_types"):
        FLAVOR.save(custom_type_directory, tmp_path, trusted=True, options={})


def test_mlflow_load_trusts_only_the_types_recorded_in_meta(
    tmp_path: Path, custom_type_directory: Path
) -> None:
    saved = FLAVOR.save(
        custom_type_directory, tmp_path, trusted=False, options={"trusted_types": [HALVER]}
    )
    meta = {**saved.meta, "trusted_types": []}

    with pytest.raises(UntrustedArtifactError, match="not trusted at registration"):
        FLAVOR.load(saved.path, meta, scratch=tmp_path / "scratch")


def test_mlflow_custom_type_roundtrip_when_listed_in_trusted_types(
    roundtrip: Roundtrip, custom_type_directory: Path, iris: Dataset
) -> None:
    saved, loaded = roundtrip(FLAVOR, custom_type_directory, options={"trusted_types": [HALVER]})

    assert saved.meta["trusted_types"] == [HALVER]
    assert len(loaded.predict(iris.array)) == len(iris.array)


def test_mlflow_same_directory_always_packs_to_identical_bytes(
    tmp_path: Path, mlflow_sklearn_model: MLflowSklearnModel
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(mlflow_sklearn_model.directory, copy)
    for file in copy.iterdir():
        os.utime(file, (1_000_000_000, 1_000_000_000))
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()

    first = FLAVOR.save(
        mlflow_sklearn_model.directory, tmp_path / "first", trusted=False, options={}
    )
    second = FLAVOR.save(copy, tmp_path / "second", trusted=False, options={})

    assert first.path.read_bytes() == second.path.read_bytes()


def test_mlflow_load_reuses_an_archive_already_unpacked_in_scratch(
    tmp_path: Path, mlflow_sklearn_model: MLflowSklearnModel
) -> None:
    saved = FLAVOR.save(mlflow_sklearn_model.directory, tmp_path, trusted=False, options={})
    scratch = tmp_path / "scratch"
    FLAVOR.load(saved.path, saved.meta, scratch=scratch)
    unpacked = sorted(scratch.iterdir())
    before = [path.stat().st_mtime_ns for path in unpacked]

    FLAVOR.load(saved.path, saved.meta, scratch=scratch)

    assert sorted(scratch.iterdir()) == unpacked
    assert [path.stat().st_mtime_ns for path in unpacked] == before


def test_mlflow_refuses_pickled_sklearn_model_without_trusted(
    tmp_path: Path, pickled_model: MLflowSklearnModel
) -> None:
    with pytest.raises(UntrustedArtifactError, match=r"cloudpickle.*trusted=True"):
        FLAVOR.save(pickled_model.directory, tmp_path, trusted=False, options={})


def test_mlflow_pickled_sklearn_roundtrip_when_trusted(
    roundtrip: Roundtrip, pickled_model: MLflowSklearnModel, iris: Dataset
) -> None:
    saved, loaded = roundtrip(FLAVOR, pickled_model.directory, trusted=True)

    assert saved.meta["serialization_format"] == "cloudpickle"
    np.testing.assert_allclose(
        loaded.predict(iris.frame).probabilities,
        pickled_model.estimator.predict_proba(iris.frame),
        **CLOSE,
    )


def test_mlflow_refuses_pickled_artifact_not_recorded_as_trusted(
    tmp_path: Path, pickled_model: MLflowSklearnModel
) -> None:
    saved = FLAVOR.save(pickled_model.directory, tmp_path, trusted=True, options={})

    with pytest.raises(UntrustedArtifactError, match="not recorded as trusted"):
        FLAVOR.load(saved.path, {**saved.meta, "trusted": False}, scratch=tmp_path / "scratch")


def test_mlflow_refuses_python_function_model_without_trusted(
    tmp_path: Path, pyfunc_directory: Path
) -> None:
    with pytest.raises(UntrustedArtifactError, match=r"runs its code.*trusted=True"):
        FLAVOR.save(pyfunc_directory, tmp_path, trusted=False, options={})


def test_mlflow_python_function_roundtrip_matches_model(
    roundtrip: Roundtrip, pyfunc_directory: Path, iris: Dataset
) -> None:
    saved, loaded = roundtrip(FLAVOR, pyfunc_directory, trusted=True)
    result = loaded.predict(iris.frame)

    assert saved.meta["loader"] == "python_function"
    np.testing.assert_array_equal(result.predictions, iris.frame.iloc[:, 0].to_numpy() * 2)
    assert result.probabilities is None


def test_mlflow_refuses_python_function_artifact_not_recorded_as_trusted(
    tmp_path: Path, pyfunc_directory: Path
) -> None:
    saved = FLAVOR.save(pyfunc_directory, tmp_path, trusted=True, options={})

    with pytest.raises(UntrustedArtifactError, match="not recorded as trusted"):
        FLAVOR.load(saved.path, {**saved.meta, "trusted": False}, scratch=tmp_path / "scratch")


def test_mlflow_python_function_without_mlflow_names_the_package_and_extra(
    tmp_path: Path, pyfunc_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = FLAVOR.save(pyfunc_directory, tmp_path, trusted=True, options={})
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)

    with pytest.raises(MissingDependencyError, match=r"'mlflow-skinny'.*ferryman\[mlflow\]"):
        FLAVOR.load(saved.path, saved.meta, scratch=tmp_path / "scratch")
