"""The ``xgboost`` flavor: XGBoost boosters and their scikit-learn wrappers.

Models are stored in XGBoost's own format (UBJSON by default, or JSON), never pickled,
and are loaded back into the same kind of object: ``XGBClassifier``, ``XGBRegressor`` or
``Booster``. Classifiers give labels and probabilities from a single inference pass where
XGBoost itself derives labels from probabilities.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError, MissingDependencyError
from ferryman.flavors._options import check_options
from ferryman.flavors._prediction import (
    as_predictions,
    as_probabilities,
    class_list,
    model_failures,
)
from ferryman.flavors.base import FlavorMeta, ModelInput, Prediction, SavedArtifact

Kind = Literal["booster", "classifier", "regressor"]
_FORMATS = ("json", "ubj")
#: Objectives whose ``XGBClassifier.predict`` is a threshold or argmax of the very array
#: ``predict_proba`` returns, so one pass gives both.
_PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")


class XGBoostFlavor:
    """Save, load and call XGBoost models in XGBoost's native format."""

    name: str = "xgboost"

    def can_save(self, model: object) -> bool:
        """Tell whether ``model`` is a ``Booster``, ``XGBClassifier`` or ``XGBRegressor``.

        Never imports XGBoost: its objects can only exist once it is imported.
        """
        xgb = sys.modules.get("xgboost")
        return xgb is not None and isinstance(
            model, xgb.Booster | xgb.XGBClassifier | xgb.XGBRegressor
        )

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Write ``model`` with ``save_model``.

        Args:
            model: A fitted ``xgboost.Booster``, ``XGBClassifier`` or ``XGBRegressor``.
            directory: An empty directory owned by the caller.
            trusted: Recorded only; the native format runs no code on load.
            options: ``format``: ``"ubj"`` (default) or ``"json"``.

        Returns:
            The artifact, with metadata keys ``kind`` (``classifier``, ``regressor`` or
            ``booster``), ``format``, ``objective``, ``classes``, ``num_target``,
            ``feature_names``, ``feature_types``, ``xgboost_version`` and ``trusted``.

        Raises:
            InvalidInputError: The model is not a supported XGBoost object, or an option
                is invalid.
            MissingDependencyError: XGBoost is not installed.
        """
        xgb = _xgboost("Saving an XGBoost model")
        check_options(self.name, options, {"format"})
        fmt = options.get("format", "ubj")
        if fmt not in _FORMATS:
            raise InvalidInputError(
                f"Unknown xgboost format {fmt!r}. Available: {', '.join(_FORMATS)}."
            )
        kind: Kind
        if isinstance(model, xgb.XGBClassifier):
            kind, booster = "classifier", model.get_booster()
        elif isinstance(model, xgb.XGBRegressor):
            kind, booster = "regressor", model.get_booster()
        elif isinstance(model, xgb.Booster):
            kind, booster = "booster", model
        else:
            raise InvalidInputError(
                "Expected an xgboost Booster, XGBClassifier or XGBRegressor, "
                f"got {type(model).__name__}."
            )
        path = directory / f"model.{fmt}"
        model.save_model(path)
        learner = json.loads(booster.save_config())["learner"]
        meta: FlavorMeta = {
            "kind": kind,
            "format": fmt,
            "objective": learner["objective"]["name"],
            "classes": class_list(model.classes_) if kind == "classifier" else None,
            "num_target": int(learner["learner_model_param"].get("num_target", 1)),
            "feature_names": booster.feature_names,
            "feature_types": booster.feature_types,
            "xgboost_version": xgb.__version__,
            "trusted": trusted,
        }
        return SavedArtifact(path=path, meta=meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> XGBoostModel:
        """Load the artifact into the kind of object that was saved.

        Args:
            path: The ``.ubj`` or ``.json`` file.
            meta: The metadata recorded at save time.
            scratch: Where a link to the artifact with the right extension is made.

        Raises:
            InvalidInputError: The metadata names an unknown kind.
            MissingDependencyError: XGBoost is not installed.
        """
        xgb = _xgboost("Loading an XGBoost model")
        kind = meta.get("kind")
        source = _named_link(path, scratch, str(meta.get("format", "ubj")))
        model: Any
        if kind == "classifier":
            model = xgb.XGBClassifier()
            model.load_model(source)
        elif kind == "regressor":
            model = xgb.XGBRegressor()
            model.load_model(source)
        elif kind == "booster":
            model = xgb.Booster(model_file=source)
        else:
            raise InvalidInputError(
                f"Unknown xgboost model kind {kind!r} in the flavor metadata. "
                "Available: booster, classifier, regressor."
            )
        return XGBoostModel(model, meta)


class XGBoostModel:
    """A loaded XGBoost model.

    A model trained with feature names receives a DataFrame with those columns in
    training order; one trained on an array receives an array.

    Args:
        model: An ``XGBClassifier``, ``XGBRegressor`` or ``Booster``.
        meta: The flavor metadata recorded at save time.
    """

    def __init__(self, model: Any, meta: Mapping[str, Any]) -> None:
        self.model = model
        self._kind: Kind = meta["kind"]
        names = meta.get("feature_names")
        self._feature_names: list[str] | None = None if names is None else list(names)
        classes = meta.get("classes")
        self._classes: list[Any] | None = None if classes is None else list(classes)
        objective = meta.get("objective")
        single_target = meta.get("num_target", 1) == 1
        self._one_pass = single_target and objective in _PROBABILITY_OBJECTIVES
        self._has_proba = self._kind == "classifier" and (
            self._one_pass or (single_target and objective == "multi:softmax")
        )

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of a classifier, else ``None``."""
        return self._classes

    def predict(self, data: ModelInput) -> Prediction:
        """Predict on a validated batch.

        A ``Booster`` returns exactly what ``Booster.inplace_predict`` gives (for a
        classification objective, probabilities as predictions); register the
        ``XGBClassifier`` wrapper to get labels, probabilities and classes.

        Args:
            data: A DataFrame or a 2-D array.

        Raises:
            PredictionError: XGBoost failed.
        """
        rows = len(data)
        features = self._features(data)
        with model_failures("xgboost"):
            if self._kind == "booster":
                output = self.model.inplace_predict(features)
            elif not self._has_proba:
                output = self.model.predict(features)
            else:
                proba = self.model.predict_proba(features)
                if not self._one_pass:
                    labels = self.model.predict(features)
                elif proba.shape[1] == 2:
                    # XGBClassifier.predict: label 1 where P(class 1) > 0.5.
                    labels = (proba[:, 1] > 0.5).astype(np.int64)
                else:
                    labels = np.argmax(proba, axis=1)
                return Prediction(
                    predictions=as_predictions(labels, rows=rows),
                    probabilities=as_probabilities(proba, rows=rows),
                    classes=self._classes,
                )
        return Prediction(predictions=as_predictions(output, rows=rows), classes=self._classes)

    def _features(self, data: ModelInput) -> pd.DataFrame | np.ndarray:
        if self._feature_names is None:
            return data.to_numpy() if isinstance(data, pd.DataFrame) else data
        if isinstance(data, pd.DataFrame):
            if list(data.columns) == self._feature_names:
                return data
            return data[self._feature_names]
        return pd.DataFrame(data, columns=self._feature_names)


def _xgboost(feature: str) -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MissingDependencyError("xgboost", feature=feature, extra="xgboost") from exc
    return xgboost


def _named_link(path: Path, scratch: Path, fmt: str) -> str:
    """Return a path to the artifact whose extension tells XGBoost its format.

    Artifacts are stored under their hash, without an extension, and XGBoost guesses
    the format from the file name. A hard link (a copy across file systems) in the
    artifact's scratch directory costs nothing and avoids reading the file into memory.
    It is made anew on every load, so it always points at the file just verified.
    """
    if fmt not in _FORMATS:
        raise InvalidInputError(
            f"Unknown xgboost format {fmt!r} in the flavor metadata. "
            f"Available: {', '.join(_FORMATS)}."
        )
    target = scratch / f"model.{fmt}"
    scratch.mkdir(parents=True, exist_ok=True)
    staging = scratch / f".model.{fmt}.{os.getpid()}.{threading.get_ident()}"
    staging.unlink(missing_ok=True)
    try:
        os.link(path, staging)
    except OSError:
        shutil.copyfile(path, staging)
    os.replace(staging, target)
    return str(target)
