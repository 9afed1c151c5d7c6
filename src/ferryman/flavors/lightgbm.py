"""The ``lightgbm`` flavor: LightGBM boosters and their scikit-learn wrappers.

Models are stored as LightGBM's native text model and loaded as a plain
``lightgbm.Booster``. For ``LGBMClassifier`` models the recorded classes and objective
let the booster reproduce the wrapper's ``predict`` and ``predict_proba`` exactly: the
wrapper derives labels as the argmax of the probabilities, so one pass gives both.
"""

from __future__ import annotations

import sys
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
    labels_from_probabilities,
    model_failures,
)
from ferryman.flavors.base import FlavorMeta, ModelInput, Prediction, SavedArtifact

Kind = Literal["booster", "classifier", "regressor"]
#: Recorded instead of a name when the model was trained with a Python callable.
CUSTOM_OBJECTIVE = "custom"


class LightGBMFlavor:
    """Save, load and call LightGBM models in LightGBM's native text format."""

    name: str = "lightgbm"

    def can_save(self, model: object) -> bool:
        """Tell whether ``model`` is a ``Booster``, ``LGBMClassifier`` or ``LGBMRegressor``.

        Never imports LightGBM: its objects can only exist once it is imported.
        """
        lgb = sys.modules.get("lightgbm")
        return lgb is not None and isinstance(
            model, lgb.Booster | lgb.LGBMClassifier | lgb.LGBMRegressor
        )

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Write the model's booster as ``model.txt``.

        Args:
            model: A fitted ``lightgbm.Booster``, ``LGBMClassifier`` or ``LGBMRegressor``.
            directory: An empty directory owned by the caller.
            trusted: Recorded only; the text format runs no code on load.
            options: None are accepted.

        Returns:
            The artifact, with metadata keys ``kind`` (``classifier``, ``regressor`` or
            ``booster``), ``objective`` (``"custom"`` for a callable), ``classes``,
            ``feature_names`` (the training DataFrame's columns as LightGBM stores them,
            with special characters replaced, or ``None``),
            ``lightgbm_version`` and ``trusted``.

        Raises:
            InvalidInputError: The model is not a supported LightGBM object, or an
                option was given.
            MissingDependencyError: LightGBM is not installed.
        """
        lgb = _lightgbm("Saving a LightGBM model")
        check_options(self.name, options, ())
        kind: Kind
        if isinstance(model, lgb.LGBMClassifier):
            kind = "classifier"
        elif isinstance(model, lgb.LGBMRegressor):
            kind = "regressor"
        elif isinstance(model, lgb.Booster):
            kind = "booster"
        else:
            raise InvalidInputError(
                "Expected a lightgbm Booster, LGBMClassifier or LGBMRegressor, "
                f"got {type(model).__name__}."
            )
        if kind == "booster":
            booster = model
            objective = booster.params.get("objective")
            names = None
        else:
            booster = model.booster_
            objective = model.objective_
            names = getattr(model, "feature_names_in_", None)
        path = directory / "model.txt"
        booster.save_model(path)
        meta: FlavorMeta = {
            "kind": kind,
            "objective": CUSTOM_OBJECTIVE if callable(objective) else objective,
            "classes": class_list(model.classes_) if kind == "classifier" else None,
            "feature_names": None if names is None else [str(name) for name in names],
            "lightgbm_version": lgb.__version__,
            "trusted": trusted,
        }
        return SavedArtifact(path=path, meta=meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> LightGBMModel:
        """Load the text model as a ``lightgbm.Booster``.

        Args:
            path: The ``model.txt`` file.
            meta: The metadata recorded at save time.
            scratch: Unused; the file is read in place.

        Raises:
            InvalidInputError: The metadata names an unknown kind.
            MissingDependencyError: LightGBM is not installed.
        """
        lgb = _lightgbm("Loading a LightGBM model")
        if meta.get("kind") not in ("booster", "classifier", "regressor"):
            raise InvalidInputError(
                f"Unknown lightgbm model kind {meta.get('kind')!r} in the flavor metadata. "
                "Available: booster, classifier, regressor."
            )
        return LightGBMModel(lgb.Booster(model_file=path), meta)


class LightGBMModel:
    """A loaded LightGBM booster, answering like the model that was saved.

    Args:
        booster: A ``lightgbm.Booster``.
        meta: The flavor metadata recorded at save time.
    """

    def __init__(self, booster: Any, meta: Mapping[str, Any]) -> None:
        self.booster = booster
        names = meta.get("feature_names")
        self._feature_names: list[str] | None = None if names is None else list(names)
        classes = meta.get("classes")
        # With a custom objective the wrapper returns raw scores, not labels.
        classify = meta["kind"] == "classifier" and meta.get("objective") != CUSTOM_OBJECTIVE
        self._labels: np.ndarray | None = np.asarray(classes) if classify else None
        self._classes: list[Any] | None = None if classes is None else list(classes)

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of a classifier, else ``None``."""
        return self._classes

    def predict(self, data: ModelInput) -> Prediction:
        """Predict on a validated batch.

        Args:
            data: A DataFrame or a 2-D array.

        Raises:
            PredictionError: LightGBM failed.
        """
        rows = len(data)
        with model_failures("lightgbm"):
            output = self.booster.predict(self._features(data))
        if self._labels is None:
            return Prediction(predictions=as_predictions(output, rows=rows), classes=self._classes)
        if len(self._labels) > 2:
            probabilities = as_probabilities(output, rows=rows)
        else:
            # LGBMClassifier.predict_proba stacks (1 - p, p) for binary objectives.
            probabilities = as_probabilities(np.vstack((1.0 - output, output)).T, rows=rows)
        return Prediction(
            predictions=labels_from_probabilities(probabilities, self._labels),
            probabilities=probabilities,
            classes=self._classes,
        )

    def _features(self, data: ModelInput) -> pd.DataFrame | np.ndarray:
        # LightGBM matches columns by position, like the scikit-learn wrapper. When the
        # batch carries every training column name (LightGBM stores names with special
        # characters replaced, so this needs plain names), restore the training order.
        names = self._feature_names
        if (
            names is not None
            and isinstance(data, pd.DataFrame)
            and list(data.columns) != names
            and set(names) <= set(data.columns)
        ):
            return data[names]
        return data


def _lightgbm(feature: str) -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingDependencyError("lightgbm", feature=feature, extra="lightgbm") from exc
    return lightgbm
