"""The ``sklearn`` flavor: scikit-learn estimators and pipelines.

Models are stored with skops, which loads only an allow-list of types. Types beyond
skops' defaults must be named by the user at save time (``options["trusted_types"]``);
the list is recorded in the metadata and is the only list passed to skops at load.
joblib (pickle) is available for trusted models only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError, UntrustedArtifactError
from ferryman.flavors import _linear, _skops, _trees
from ferryman.flavors._options import check_options
from ferryman.flavors._prediction import (
    as_predictions,
    as_probabilities,
    class_list,
    labels_from_probabilities,
    model_failures,
)
from ferryman.flavors.base import FlavorMeta, ModelInput, Prediction, SavedArtifact

_FORMATS = ("joblib", "skops")


class SklearnFlavor:
    """Save, load and call scikit-learn estimators and pipelines."""

    name: str = "sklearn"

    def can_save(self, model: object) -> bool:
        """Tell whether ``model`` is a scikit-learn estimator with a ``predict`` method.

        Never imports scikit-learn: an estimator's class is only importable once
        scikit-learn is, so an unimported scikit-learn means ``model`` is not one.
        """
        base = sys.modules.get("sklearn.base")
        return (
            base is not None
            and isinstance(model, base.BaseEstimator)
            and callable(getattr(model, "predict", None))
        )

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Write ``model`` with skops (default) or, if trusted, joblib.

        Args:
            model: A fitted scikit-learn estimator or pipeline.
            directory: An empty directory owned by the caller.
            trusted: Whether the user vouches for the model; required for joblib.
            options: ``format`` (``"skops"``, the default, or ``"joblib"``) and
                ``trusted_types`` (type names allowed beyond skops' defaults).

        Returns:
            The artifact, with metadata keys ``format``, ``trusted``, ``trusted_types``
            (skops only), ``estimator``, ``task``, ``classes``, ``feature_names`` and
            ``sklearn_version``.

        Raises:
            UntrustedArtifactError: The model holds types not listed in
                ``trusted_types``, or joblib was asked for without ``trusted``.
            InvalidInputError: An option is unknown or has an invalid value.
        """
        import sklearn

        check_options(self.name, options, {"format", "trusted_types"})
        fmt = options.get("format", "skops")
        meta: FlavorMeta
        if fmt == "skops":
            import skops.io

            path = directory / "model.skops"
            skops.io.dump(model, path)
            try:
                trusted_types = _skops.check_trusted_types(path, options)
            except Exception:
                path.unlink()
                raise
            meta = {"format": "skops", "trusted": trusted, "trusted_types": trusted_types}
        elif fmt == "joblib":
            if not trusted:
                raise UntrustedArtifactError(
                    "The joblib format is pickle, which runs code when loaded. Pass "
                    "trusted=True if you vouch for this model, or use the default "
                    "'skops' format."
                )
            if "trusted_types" in options:
                raise InvalidInputError(
                    "Option 'trusted_types' applies to the 'skops' format only."
                )
            path = directory / "model.joblib"
            _joblib().dump(model, path)
            meta = {"format": "joblib", "trusted": True}
        else:
            raise InvalidInputError(
                f"Unknown sklearn format {fmt!r}. Available: {', '.join(_FORMATS)}."
            )
        meta.update(_describe(model))
        meta["sklearn_version"] = sklearn.__version__
        return SavedArtifact(path=path, meta=meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> SklearnModel:
        """Load an estimator saved by :meth:`save`.

        Args:
            path: The artifact file.
            meta: The metadata recorded at save time.
            scratch: Unused; the artifact is read in place.

        Raises:
            UntrustedArtifactError: The skops file holds a type the metadata does not
                list, or a joblib artifact is not recorded as trusted.
            InvalidInputError: The metadata names an unknown format.
        """
        fmt = meta.get("format")
        if fmt == "skops":
            return SklearnModel(_skops.load_trusted(path, meta))
        if fmt == "joblib":
            if meta.get("trusted") is not True:
                raise UntrustedArtifactError(
                    "This joblib (pickle) artifact is not recorded as trusted, and loading "
                    "it would run code. Register it again with trusted=True if you vouch "
                    "for it."
                )
            return SklearnModel(_joblib().load(path))
        raise InvalidInputError(
            f"Unknown sklearn format {fmt!r} in the flavor metadata. "
            f"Available: {', '.join(_FORMATS)}."
        )


class SklearnModel:
    """A loaded scikit-learn estimator, called with scikit-learn's input checks off.

    The caller has validated the input against the model's signature, so scikit-learn's
    own finiteness and parameter checks are skipped for speed. Models fitted on a
    DataFrame receive a DataFrame with the training column order; others an array.

    Args:
        estimator: A fitted estimator or pipeline.
    """

    def __init__(self, estimator: Any) -> None:
        import sklearn
        from sklearn.base import is_classifier

        self.estimator = estimator
        self._config: Callable[..., AbstractContextManager[None]] = sklearn.config_context
        names = getattr(estimator, "feature_names_in_", None)
        self._feature_names: list[str] | None = None if names is None else list(names)
        # When the estimator only checks the names, put the columns in training order
        # here and feed it an array: the DataFrame check costs it about 0.5 ms per call.
        self._array_input = self._feature_names is None or _names_only_checked(estimator)
        if self._array_input:
            _forget_feature_names(estimator)
        labels = getattr(estimator, "classes_", None) if is_classifier(estimator) else None
        single_output = isinstance(labels, np.ndarray) and labels.ndim == 1
        self._labels: np.ndarray | None = labels if single_output else None
        self._classes = None if self._labels is None else class_list(self._labels)
        self._has_proba = self._labels is not None and hasattr(estimator, "predict_proba")
        self._labels_from_proba = self._has_proba and _predicts_argmax_of_proba(estimator)
        self._fast_proba = (
            _linear.compile_proba(estimator) or _trees.compile_proba(estimator)
            if self._array_input and self._labels_from_proba
            else None
        )

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of a single-output classifier, else ``None``."""
        return self._classes

    #: Calls are pure computation whose time grows with the rows (no I/O, no sleeping),
    #: so a short one may run on the event loop (see ``DirectRunner``).
    bounded_compute = True

    def takes_array(self, columns: Sequence[str]) -> bool:
        """Whether rows of ``columns``, in that order, may come as a 2-D array.

        True when the estimator is fed an array anyway and either was fitted without
        column names or was fitted on exactly these columns in this order.
        """
        names = self._feature_names
        return self._array_input and (names is None or names == list(columns))

    def predict(self, data: ModelInput) -> Prediction:
        """Predict on a validated batch.

        Args:
            data: Rows as a DataFrame or a 2-D array.

        Returns:
            Labels, probabilities and classes for classifiers; values otherwise.

        Raises:
            PredictionError: The estimator failed.
        """
        rows = len(data)
        features = self._features(data)
        if self._fast_proba is not None and isinstance(features, np.ndarray):
            # A compiled function (linear or trees): no configuration context needed.
            with model_failures("sklearn"):
                raw = self._fast_proba(np.asarray(features, dtype=np.float64))
                probabilities = as_probabilities(raw, rows=rows)
                labels = labels_from_probabilities(probabilities, self._labels)  # type: ignore[arg-type]
            return Prediction(
                predictions=labels, probabilities=probabilities, classes=self._classes
            )
        with (
            model_failures("sklearn"),
            self._config(assume_finite=True, skip_parameter_validation=True),
        ):
            if not self._has_proba or self._labels is None:
                return Prediction(
                    predictions=as_predictions(self.estimator.predict(features), rows=rows),
                    classes=self._classes,
                )
            probabilities = as_probabilities(self.estimator.predict_proba(features), rows=rows)
            if self._labels_from_proba:
                labels = labels_from_probabilities(probabilities, self._labels)
            else:
                labels = as_predictions(self.estimator.predict(features), rows=rows)
        return Prediction(predictions=labels, probabilities=probabilities, classes=self._classes)

    def _features(self, data: ModelInput) -> pd.DataFrame | np.ndarray:
        names = self._feature_names
        if isinstance(data, pd.DataFrame):
            if names is not None and list(data.columns) != names:
                data = data[names]
            return data.to_numpy() if self._array_input else data
        if self._array_input:
            return data
        return pd.DataFrame(data, columns=names)


def _names_only_checked(estimator: Any) -> bool:
    """Tell whether an estimator uses its input's column names only to check them.

    True for trees of scikit-learn's own numeric estimators and transformers. False when
    any part selects or encodes columns by name or dtype (``sklearn.compose``, encoders,
    ``FunctionTransformer``), outputs pandas between steps, treats category dtypes as
    categorical (histogram gradient boosting), or is not scikit-learn's own class.
    """
    name_users = (
        "sklearn.compose",
        "sklearn.preprocessing._encoders",
        "sklearn.preprocessing._function_transformer",
    )
    for part in _estimator_tree(estimator):
        module = type(part).__module__
        if not module.startswith("sklearn.") or module.startswith(name_users):
            return False
        output = getattr(part, "_sklearn_output_config", {})
        if output.get("transform") not in (None, "default"):
            return False
        categorical = getattr(part, "is_categorical_", None)
        if categorical is not None and bool(np.any(categorical)):
            return False
    return True


def _estimator_tree(estimator: Any) -> list[Any]:
    from sklearn.base import BaseEstimator

    found = [estimator]
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    found.extend(v for v in params.values() if isinstance(v, BaseEstimator))
    return found


def _forget_feature_names(estimator: Any) -> None:
    for part in _estimator_tree(estimator):
        if "feature_names_in_" in vars(part):
            del part.feature_names_in_


def _joblib() -> Any:
    import joblib

    return joblib


def _describe(model: object) -> FlavorMeta:
    """Collect the JSON-safe facts about an estimator that the registry shows."""
    from sklearn.base import is_classifier, is_regressor

    labels = getattr(model, "classes_", None)
    names = getattr(model, "feature_names_in_", None)
    if is_classifier(model):
        task = "classifier"
    elif is_regressor(model):
        task = "regressor"
    else:
        task = "other"
    kind = type(model)
    return {
        "estimator": f"{kind.__module__}.{kind.__qualname__}",
        "task": task,
        "classes": class_list(labels) if isinstance(labels, np.ndarray) else None,
        "feature_names": None if names is None else [str(name) for name in names],
    }


def _predicts_argmax_of_proba(estimator: Any) -> bool:
    """Tell whether ``estimator.predict`` is defined as the argmax of ``predict_proba``.

    Only estimators whose ``predict`` literally computes
    ``classes_.take(argmax(predict_proba(X)))`` qualify, matched by exact type so a
    subclass that overrides ``predict`` does not; a pipeline qualifies when its final
    step does. For every other classifier both methods are called.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        BaggingClassifier,
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    final = estimator
    while type(final) is Pipeline:
        final = final.steps[-1][1]
    # LogisticRegression and HistGradientBoostingClassifier predict the argmax of a raw
    # score whose probabilities are a monotone function of it (sigmoid, softmax), with
    # ties going to the first class in both; they differ only when a binary score is
    # within 1e-16 of zero, where the sigmoid rounds to exactly 0.5.
    exact = (
        RandomForestClassifier,
        ExtraTreesClassifier,
        BaggingClassifier,
        LogisticRegression,
        HistGradientBoostingClassifier,
    )
    if type(final) in exact:
        return getattr(final, "n_outputs_", 1) == 1
    return type(final) is CalibratedClassifierCV
