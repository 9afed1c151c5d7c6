"""Flavors: how each framework's models are saved, loaded and called.

A *flavor* knows one framework. It writes a model object as exactly one artifact file
plus JSON metadata, loads that file back as a :class:`LoadedModel`, and makes every model
answer with the same :class:`Prediction` structure, whatever the framework. The registry
records the flavor's name with each version; :func:`get_flavor` finds it again at load.

Security facts (trusted types, the trusted flag) travel in the metadata stored by the
registry, never in the artifact, so an artifact cannot vouch for itself.

Frameworks are imported only when a flavor saves or loads, never by importing this
package or by :func:`detect_flavor`.

Adding a flavor takes one module implementing :class:`Flavor` and one entry in
:data:`FLAVORS`; entries are tried in order by :func:`detect_flavor`.
"""

from __future__ import annotations

from ferryman import errors as _errors
from ferryman.flavors.base import Flavor, LoadedModel, Prediction, SavedArtifact
from ferryman.flavors.lightgbm import LightGBMFlavor as _LightGBMFlavor
from ferryman.flavors.mlflow import MLflowFlavor as _MLflowFlavor
from ferryman.flavors.onnx import ONNXFlavor as _ONNXFlavor
from ferryman.flavors.python import PythonFlavor as _PythonFlavor
from ferryman.flavors.sklearn import SklearnFlavor as _SklearnFlavor
from ferryman.flavors.xgboost import XGBoostFlavor as _XGBoostFlavor

#: Every flavor by name, in the order :func:`detect_flavor` tries them: specific formats
#: first, the catch-all ``python`` flavor last.
FLAVORS: dict[str, Flavor] = {
    "mlflow": _MLflowFlavor(),
    "onnx": _ONNXFlavor(),
    "xgboost": _XGBoostFlavor(),
    "lightgbm": _LightGBMFlavor(),
    "sklearn": _SklearnFlavor(),
    "python": _PythonFlavor(),
}


def get_flavor(name: str) -> Flavor:
    """Return the flavor registered under ``name``.

    Args:
        name: A flavor name such as ``"sklearn"``, as stored in the registry.

    Raises:
        InvalidInputError: No flavor has that name; the message lists the valid names.
    """
    try:
        return FLAVORS[name]
    except KeyError:
        raise _errors.InvalidInputError(
            f"Unknown flavor {name!r}. Available: {', '.join(sorted(FLAVORS))}."
        ) from None


def detect_flavor(model: object) -> Flavor:
    """Return the first flavor in :data:`FLAVORS` that can save ``model``.

    Detection is cheap: it never imports a framework that ``model`` did not already
    bring in.

    Args:
        model: A model object, or a path to an MLflow model directory or ``.onnx`` file.

    Raises:
        UnsupportedModelError: No flavor can save ``model``; the message lists the
            flavors and the object's type.
    """
    for flavor in FLAVORS.values():
        if flavor.can_save(model):
            return flavor
    kind = type(model)
    raise _errors.UnsupportedModelError(
        f"No flavor can save an object of type '{kind.__module__}.{kind.__qualname__}'. "
        f"Supported flavors: {', '.join(FLAVORS)}. Pass a fitted model of one of these "
        "frameworks, a path to an MLflow model directory or to a .onnx file, or any object "
        "with a callable predict(frame) method."
    )


__all__ = [
    "FLAVORS",
    "Flavor",
    "LoadedModel",
    "Prediction",
    "SavedArtifact",
    "detect_flavor",
    "get_flavor",
]
