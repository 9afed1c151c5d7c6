"""The models the registry benchmark measures, and their floors.

Small models: one breast-cancer classifier per flavor. Large models: about 50 MB stored,
fitted on random labels so that every tree grows to its size limit. Each comes with its
*floor*, the framework's own load of the artifact Ferryman stored.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from _models import NearestCentroid

#: A floor: the framework's own load of a stored artifact (plus, for the per-flavor
#: benchmark, one prediction), given the artifact's path and its flavor metadata.
Floor = Callable[[Path, Mapping[str, Any]], object]
_Model = TypeVar("_Model")


@dataclass(frozen=True)
class FlavorCase:
    """One flavor's small model and its floor.

    Attributes:
        flavor: The flavor's name.
        description: What the model is, for the report.
        model: What ``Registry.register`` receives.
        floor: The framework's own load of the stored artifact plus one prediction.
        floor_label: How the floor loads, for the report.
        trusted: The ``trusted`` flag the flavor needs.
        floor_suffix: The file name suffix the floor needs to recognise the format, if
            any; see ``registry.stored_path``.
    """

    flavor: str
    description: str
    model: object
    floor: Floor
    floor_label: str
    trusted: bool = False
    floor_suffix: str = ""


@dataclass(frozen=True)
class LargeCase:
    """A large model and its floor.

    Attributes:
        flavor: The flavor that stores it.
        description: What the model is, for the report.
        model: The fitted model.
        X: Its training features.
        y: Its training target.
        floor: The framework's own load of the stored artifact.
        floor_label: How the floor loads, for the report.
        floor_suffix: The file name suffix the floor needs to recognise the format, if
            any; see ``registry.stored_path``.
    """

    flavor: str
    description: str
    model: object
    X: pd.DataFrame
    y: np.ndarray
    floor: Floor
    floor_label: str
    floor_suffix: str = ""


def flavor_cases(X: pd.DataFrame, y: np.ndarray, workdir: Path) -> list[FlavorCase]:
    """Fit the breast-cancer models, one per flavor, and their floors.

    Args:
        X: The training features.
        y: The training target.
        workdir: Where the MLflow model directory is written.
    """
    import lightgbm
    import mlflow.sklearn
    import onnxruntime
    import skops.io
    import xgboost
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    row = X.iloc[:1]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    onnx_model = to_onnx(
        pipeline,
        X.to_numpy(dtype=np.float32)[:1],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
    )
    mlflow_dir = workdir / "mlflow-model"
    mlflow.sklearn.save_model(
        pipeline, str(mlflow_dir), serialization_format="skops", pip_requirements=[]
    )

    def sklearn_floor(path: Path, meta: Mapping[str, Any]) -> object:
        return skops.io.load(path, trusted=meta["trusted_types"]).predict(row)

    def onnx_floor(path: Path, meta: Mapping[str, Any]) -> object:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = meta["intra_op_num_threads"]
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return session.run(None, {meta["inputs"][0]["name"]: row.to_numpy(dtype=np.float32)})

    def xgboost_floor(path: Path, meta: Mapping[str, Any]) -> object:
        return xgboost.Booster(model_file=str(path)).inplace_predict(row)

    def lightgbm_floor(path: Path, meta: Mapping[str, Any]) -> object:
        return lightgbm.Booster(model_file=str(path)).predict(row.to_numpy())

    def mlflow_floor(path: Path, meta: Mapping[str, Any]) -> object:
        # MLflow's loader reads the directory it wrote; Ferryman stores that directory
        # as one zip, so this floor skips the hash and the unpacking by construction.
        return mlflow.sklearn.load_model(str(mlflow_dir)).predict(row)

    def python_floor(path: Path, meta: Mapping[str, Any]) -> object:
        with path.open("rb") as stored:
            return pickle.load(stored).predict(row)

    pipeline_text = "StandardScaler + LogisticRegression"
    return [
        FlavorCase(
            flavor="sklearn",
            description=f"{pipeline_text} (skops)",
            model=pipeline,
            floor=sklearn_floor,
            floor_label="skops.io.load + predict",
        ),
        FlavorCase(
            flavor="onnx",
            description=f"{pipeline_text} (skl2onnx)",
            model=onnx_model,
            floor=onnx_floor,
            floor_label="onnxruntime.InferenceSession + run",
        ),
        FlavorCase(
            flavor="xgboost",
            description="XGBClassifier, 100 trees (UBJSON)",
            model=xgboost.XGBClassifier(n_estimators=100, max_depth=4, random_state=0).fit(X, y),
            floor=xgboost_floor,
            floor_label="xgboost.Booster + inplace_predict",
            floor_suffix=".ubj",
        ),
        FlavorCase(
            flavor="lightgbm",
            description="LGBMClassifier, 100 trees (text)",
            model=lightgbm.LGBMClassifier(n_estimators=100, random_state=0, verbose=-1).fit(X, y),
            floor=lightgbm_floor,
            floor_label="lightgbm.Booster + predict",
        ),
        FlavorCase(
            flavor="mlflow",
            description=f"{pipeline_text} (mlflow.sklearn, skops)",
            model=str(mlflow_dir),
            floor=mlflow_floor,
            floor_label="mlflow.sklearn.load_model + predict",
        ),
        FlavorCase(
            flavor="python",
            description="NearestCentroid, a plain class (pickled by reference)",
            model=NearestCentroid.fit(X, y),
            trusted=True,
            floor=python_floor,
            floor_label="pickle.load + predict",
        ),
    ]


def large_cases(target_bytes: int) -> Iterator[LargeCase]:
    """Fit the large models one at a time, each sized to about ``target_bytes`` stored.

    The data is random noise with random labels, so every tree grows to its size limit
    and the stored size is proportional to the number of trees: a few trees are fitted
    first to learn the size of one, then the model is fitted with as many as the target
    needs.
    """
    import lightgbm
    import skops.io
    import xgboost
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2048, 5)), columns=[f"f{i}" for i in range(5)])
    y = rng.integers(0, 2, size=len(X))

    # Fitting is single-threaded: on a busy 2-core machine, OpenMP's spinning threads
    # make multi-threaded boosting up to ten times slower, and only the loads are timed.
    def forest(trees: int) -> Any:
        return RandomForestClassifier(n_estimators=trees, random_state=0).fit(X, y)

    model, trees = _sized(forest, lambda m: len(skops.io.dumps(m)), target_bytes, probe=4)
    yield LargeCase(
        flavor="sklearn",
        description=f"RandomForestClassifier, {trees} trees (skops)",
        model=model,
        X=X,
        y=y,
        floor=lambda path, meta: skops.io.load(path, trusted=meta["trusted_types"]),
        floor_label="skops.io.load",
    )
    del model

    def lightgbm_model(trees: int) -> Any:
        return lightgbm.LGBMClassifier(
            n_estimators=trees,
            num_leaves=1023,
            learning_rate=0.01,  # slow learning keeps later trees as big as the first
            min_child_samples=1,
            min_split_gain=0,
            force_col_wise=True,
            n_jobs=1,
            random_state=0,
            verbose=-1,
        ).fit(X, y)

    model, trees = _sized(
        lightgbm_model, lambda m: len(m.booster_.model_to_string()), target_bytes, probe=8
    )
    yield LargeCase(
        flavor="lightgbm",
        description=f"LGBMClassifier, {trees} trees of up to 1023 leaves (text)",
        model=model,
        X=X,
        y=y,
        floor=lambda path, meta: lightgbm.Booster(model_file=str(path)),
        floor_label="lightgbm.Booster(model_file=...)",
    )
    del model

    def xgboost_model(trees: int) -> Any:
        return xgboost.XGBClassifier(
            n_estimators=trees,
            max_depth=12,
            learning_rate=0.01,
            min_child_weight=0,
            n_jobs=1,
            random_state=0,
        ).fit(X, y)

    model, trees = _sized(
        xgboost_model, lambda m: len(m.get_booster().save_raw("ubj")), target_bytes, probe=8
    )
    yield LargeCase(
        flavor="xgboost",
        description=f"XGBClassifier, {trees} trees of depth 12 (UBJSON)",
        model=model,
        X=X,
        y=y,
        floor=lambda path, meta: xgboost.Booster(model_file=str(path)),
        floor_label="xgboost.Booster(model_file=...)",
        floor_suffix=".ubj",
    )


def _sized(
    fit: Callable[[int], _Model], size: Callable[[_Model], int], target: int, *, probe: int
) -> tuple[_Model, int]:
    """Fit ``probe`` trees to learn the size of one, then fit enough to reach ``target``.

    Trees can shrink as training goes on, so a model more than 10% off the target is
    fitted once more with a corrected number of trees.
    """
    trees = max(1, round(target * probe / size(fit(probe))))
    model = fit(trees)
    actual = size(model)
    if abs(actual - target) > target / 10:
        trees = max(1, round(trees * target / actual))
        model = fit(trees)
    return model, trees
