"""The ``mlflow`` flavor: MLflow model directories, as written by ``mlflow.*.save_model``.

The directory is packed into one deterministic zip, so the same directory always gives
the same artifact hash. When the model has MLflow's ``sklearn`` flavor, Ferryman loads
the estimator itself: skops files with the trusted types recorded at registration, pickle
files only when registered as trusted. Otherwise the ``python_function`` flavor is loaded
through MLflow, which runs the model's code and therefore also needs ``trusted``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ferryman.errors import (
    InvalidInputError,
    MissingDependencyError,
    UnsupportedModelError,
    UntrustedArtifactError,
)
from ferryman.flavors import _skops
from ferryman.flavors._archive import directory_entries, extract_zip, write_zip
from ferryman.flavors._options import check_options
from ferryman.flavors._prediction import as_predictions, model_failures
from ferryman.flavors.base import FlavorMeta, ModelInput, Prediction, SavedArtifact
from ferryman.flavors.sklearn import SklearnModel

Loader = Literal["python_function", "sklearn"]
_MLMODEL = "MLmodel"
_UNPACKED = "mlflow_model"
_PICKLE_FORMATS = ("cloudpickle", "pickle")


class MLflowFlavor:
    """Save, load and call MLflow model directories."""

    name: str = "mlflow"

    def can_save(self, model: object) -> bool:
        """Tell whether ``model`` is a path to a directory holding an ``MLmodel`` file."""
        return isinstance(model, str | os.PathLike) and (Path(model) / _MLMODEL).is_file()

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Pack the MLflow model directory into ``model.zip``.

        Args:
            model: Path (``str`` or ``Path``) to an MLflow model directory.
            directory: An empty directory owned by the caller.
            trusted: Whether the user vouches for the model; required for pickled
                scikit-learn models and for ``python_function`` models.
            options: ``trusted_types``: type names allowed beyond skops' defaults, for
                an ``sklearn`` flavor saved with skops. The ``skops_trusted_types`` in
                the MLmodel file are not used: the artifact does not vouch for itself.

        Returns:
            The artifact, with metadata keys ``mlflow_flavors`` (the MLmodel's flavor
            names), ``loader`` (the flavor Ferryman will load), ``serialization_format``
            and ``trusted_types`` (``sklearn`` loader only), ``mlflow_version`` and
            ``trusted``.

        Raises:
            UntrustedArtifactError: Loading would run code and ``trusted`` is false, or
                the skops file holds types not listed in ``trusted_types``.
            UnsupportedModelError: The model has neither an ``sklearn`` nor a
                ``python_function`` flavor.
            InvalidInputError: The path is not an MLflow model directory, the MLmodel
                file is malformed, or an option is invalid.
            MissingDependencyError: PyYAML is not installed.
        """
        check_options(self.name, options, {"trusted_types"})
        if not isinstance(model, str | os.PathLike):
            raise InvalidInputError(
                f"Expected a path to an MLflow model directory, got {type(model).__name__}."
            )
        source = Path(model)
        if not (source / _MLMODEL).is_file():
            raise InvalidInputError(
                f"{source} is not an MLflow model directory: it has no {_MLMODEL} file."
            )
        document = _read_mlmodel(source, feature="Saving an MLflow model")
        flavors = _flavors(document, source)
        meta: FlavorMeta = {
            "mlflow_flavors": sorted(flavors),
            "mlflow_version": document.get("mlflow_version"),
            "trusted": trusted,
        }
        if "sklearn" in flavors:
            meta.update(_check_sklearn(source, flavors["sklearn"], trusted, options))
        elif "python_function" in flavors:
            if not trusted:
                raise UntrustedArtifactError(
                    "Loading an MLflow python_function model runs its code. Pass "
                    "trusted=True if you vouch for this model."
                )
            if "trusted_types" in options:
                raise InvalidInputError(
                    "Option 'trusted_types' applies to sklearn models saved with skops only."
                )
            meta["loader"] = "python_function"
        else:
            raise UnsupportedModelError(
                f"The MLflow model at {source} has the flavors "
                f"{', '.join(sorted(flavors)) or 'none'}; Ferryman can load 'sklearn' and "
                "'python_function'. Save the model with one of those flavors."
            )
        path = directory / "model.zip"
        write_zip(directory_entries(source), path)
        return SavedArtifact(path=path, meta=meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> LoadedMLflowModel:
        """Unpack the archive into ``scratch`` (once) and load the recorded flavor.

        Args:
            path: The ``model.zip`` file.
            meta: The metadata recorded at save time.
            scratch: The directory to unpack into; an earlier unpack there is reused.

        Raises:
            UntrustedArtifactError: The model needs a code-running loader and the
                metadata does not record it as trusted, or the archive's MLmodel file
                disagrees with the metadata.
            InvalidInputError: The metadata names an unknown loader.
            MissingDependencyError: PyYAML, or (for ``python_function``) MLflow, is
                not installed.
        """
        loader = meta.get("loader")
        if loader not in ("python_function", "sklearn"):
            raise InvalidInputError(
                f"Unknown MLflow loader {loader!r} in the flavor metadata. "
                "Available: python_function, sklearn."
            )
        if loader == "python_function" or meta.get("serialization_format") in _PICKLE_FORMATS:
            _require_trusted(meta, loader)
        root = extract_zip(path, scratch / _UNPACKED)
        if loader == "sklearn":
            return SklearnModel(_load_sklearn(root, meta))
        try:
            import mlflow.pyfunc
        except ImportError as exc:
            raise MissingDependencyError(
                "mlflow-skinny", feature="Loading an MLflow python_function model", extra="mlflow"
            ) from exc
        return MLflowPyfuncModel(mlflow.pyfunc.load_model(str(root)))


class MLflowPyfuncModel:
    """A loaded MLflow ``python_function`` model.

    Args:
        model: An ``mlflow.pyfunc.PyFuncModel``.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def classes(self) -> list[Any] | None:
        """Always ``None``: a ``python_function`` model does not declare classes."""
        return None

    def predict(self, data: ModelInput) -> Prediction:
        """Call the model's ``predict`` on a validated batch.

        Args:
            data: A DataFrame or an array, passed to MLflow as is.

        Raises:
            PredictionError: The model failed or returned something other than one
                value (or row) per input row.
        """
        with model_failures("mlflow"):
            output = self.model.predict(data)
        return Prediction(predictions=as_predictions(output, rows=len(data)))


#: What :meth:`MLflowFlavor.load` returns, depending on the recorded loader.
LoadedMLflowModel = SklearnModel | MLflowPyfuncModel


def _check_sklearn(
    source: Path, config: object, trusted: bool, options: Mapping[str, Any]
) -> FlavorMeta:
    """Check that the ``sklearn`` flavor can be loaded safely; return its metadata."""
    if not isinstance(config, Mapping):
        raise InvalidInputError(f"The sklearn flavor in {source / _MLMODEL} is not a mapping.")
    fmt = config.get("serialization_format", "pickle")
    model_file = _inside(source, config.get("pickled_model"))
    meta: FlavorMeta = {"loader": "sklearn", "serialization_format": fmt}
    if fmt == "skops":
        meta["trusted_types"] = _skops.check_trusted_types(model_file, options)
    elif fmt in _PICKLE_FORMATS:
        if not trusted:
            raise UntrustedArtifactError(
                f"This MLflow sklearn model is stored with {fmt}, which runs code when "
                "loaded. Pass trusted=True if you vouch for it, or save it with "
                "serialization_format='skops'."
            )
        if "trusted_types" in options:
            raise InvalidInputError(
                "Option 'trusted_types' applies to sklearn models saved with skops only."
            )
    else:
        raise InvalidInputError(
            f"Unknown MLflow sklearn serialization format {fmt!r}. "
            "Available: cloudpickle, pickle, skops."
        )
    return meta


def _load_sklearn(root: Path, meta: Mapping[str, Any]) -> object:
    document = _read_mlmodel(root, feature="Loading an MLflow model")
    config = _flavors(document, root).get("sklearn")
    if not isinstance(config, Mapping):
        raise UntrustedArtifactError(
            "The archive's MLmodel has no sklearn flavor, unlike at registration."
        )
    fmt = config.get("serialization_format", "pickle")
    if fmt != meta.get("serialization_format"):
        raise UntrustedArtifactError(
            f"The archive's MLmodel says serialization format {fmt!r}, but "
            f"{meta.get('serialization_format')!r} was registered; refusing to load."
        )
    model_file = _inside(root, config.get("pickled_model"))
    if fmt == "skops":
        return _skops.load_trusted(model_file, meta)
    with model_file.open("rb") as handle:
        # cloudpickle writes standard pickle streams; trust was checked from meta above.
        return pickle.load(handle)


def _require_trusted(meta: Mapping[str, Any], loader: str) -> None:
    if meta.get("trusted") is not True:
        raise UntrustedArtifactError(
            f"Loading this MLflow model ({loader} loader, "
            f"{meta.get('serialization_format') or 'python code'}) runs code, and it is "
            "not recorded as trusted. Register it again with trusted=True if you vouch "
            "for it."
        )


def _read_mlmodel(root: Path, *, feature: str) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as exc:
        raise MissingDependencyError("pyyaml", feature=feature, extra="mlflow") from exc
    try:
        document = yaml.safe_load((root / _MLMODEL).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{root / _MLMODEL} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInputError(f"{root / _MLMODEL} does not hold a YAML mapping.")
    return document


def _flavors(document: Mapping[str, Any], root: Path) -> dict[str, Any]:
    flavors = document.get("flavors")
    if not isinstance(flavors, dict):
        raise InvalidInputError(f"{root / _MLMODEL} has no 'flavors' mapping.")
    return flavors


def _inside(root: Path, relative: object) -> Path:
    """Resolve a path from the MLmodel file, refusing one that leaves the model directory."""
    if not isinstance(relative, str) or not relative:
        raise InvalidInputError(f"{root / _MLMODEL} names no model file for the sklearn flavor.")
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise InvalidInputError(
            f"The model file {relative!r} named in {root / _MLMODEL} is not a file inside "
            "the model directory."
        )
    return path
