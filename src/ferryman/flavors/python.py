"""The ``python`` flavor: any Python object with ``predict(frame)``.

Loading runs the user's code, so this flavor requires ``trusted=True``. It stores either
a live object, pickled by reference (its class must be importable where the model is
served), or a source file plus a class name, packed in a deterministic zip; loading the
latter executes the file as a fresh module and instantiates the class without arguments.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pickle
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ferryman.errors import InvalidInputError, UnsupportedModelError, UntrustedArtifactError
from ferryman.flavors._archive import extract_zip, write_zip
from ferryman.flavors._options import check_options
from ferryman.flavors._prediction import (
    as_predictions,
    as_probabilities,
    class_list,
    model_failures,
)
from ferryman.flavors.base import FlavorMeta, ModelInput, Prediction, SavedArtifact

Kind = Literal["code", "object"]
_PICKLE_PROTOCOL = 5
_UNPACKED = "python_code"


class PythonFlavor:
    """Save, load and call user Python objects that have a ``predict`` method."""

    name: str = "python"

    def can_save(self, model: object) -> bool:
        """Tell whether ``model`` has a callable ``predict`` attribute."""
        return callable(getattr(model, "predict", None))

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Pickle a live object, or pack a source file that defines the model class.

        Args:
            model: The object to pickle, or ``None`` when ``options["code"]`` is given.
            directory: An empty directory owned by the caller.
            trusted: Must be true: loading runs the model's code.
            options: ``code`` (path to a ``.py`` file) and ``class_name`` (a class
                defined in it, instantiated without arguments at load).

        Returns:
            The artifact, with metadata keys ``kind`` (``object`` or ``code``),
            ``class`` (``module.QualName``) or ``code_file`` and ``class_name``,
            ``python_version`` and ``trusted``.

        Raises:
            UntrustedArtifactError: ``trusted`` is false.
            UnsupportedModelError: The object's class cannot be imported by reference.
            InvalidInputError: The options are incomplete or the code file does not
                define the class.
        """
        check_options(self.name, options, {"class_name", "code"})
        if not trusted:
            raise UntrustedArtifactError(
                "Loading a python-flavor model runs its code. Pass trusted=True if you "
                "vouch for this model."
            )
        meta: FlavorMeta = {
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "trusted": True,
        }
        if "code" in options or "class_name" in options:
            if model is not None:
                raise InvalidInputError(
                    "Pass either a live model object or options['code'], not both; "
                    "use model=None with options['code']."
                )
            source, class_name = _code_options(options)
            path = directory / "model.zip"
            write_zip({source.name: source}, path)
            meta.update({"kind": "code", "code_file": source.name, "class_name": class_name})
            return SavedArtifact(path=path, meta=meta)
        if not callable(getattr(model, "predict", None)):
            raise InvalidInputError(
                f"A python-flavor model needs a callable predict(frame) method; "
                f"{type(model).__name__} has none."
            )
        path = directory / "model.pkl"
        path.write_bytes(_pickled(model))
        kind = type(model)
        meta.update({"kind": "object", "class": f"{kind.__module__}.{kind.__qualname__}"})
        return SavedArtifact(path=path, meta=meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> PythonModel:
        """Unpickle the object, or execute the source file and instantiate the class.

        Args:
            path: The ``model.pkl`` or ``model.zip`` file.
            meta: The metadata recorded at save time.
            scratch: Where the source file is unpacked (once) for the ``code`` kind.

        Raises:
            UntrustedArtifactError: The metadata does not record the model as trusted.
            InvalidInputError: The metadata names an unknown kind, or the loaded class
                has no ``predict`` method.
        """
        if meta.get("trusted") is not True:
            raise UntrustedArtifactError(
                "This python-flavor model is not recorded as trusted, and loading it would "
                "run its code. Register it again with trusted=True if you vouch for it."
            )
        kind = meta.get("kind")
        if kind == "object":
            with path.open("rb") as handle:
                return PythonModel(pickle.load(handle))
        if kind == "code":
            root = extract_zip(path, scratch / _UNPACKED)
            class_name = str(meta["class_name"])
            module = _execute(root / str(meta["code_file"]))
            cls = getattr(module, class_name, None)
            if not isinstance(cls, type):
                raise InvalidInputError(
                    f"The model code {meta['code_file']} defines no class {class_name!r}."
                )
            return PythonModel(cls())
        raise InvalidInputError(
            f"Unknown python model kind {kind!r} in the flavor metadata. Available: code, object."
        )


class PythonModel:
    """A loaded user object; its outputs are normalised to a :class:`Prediction`.

    ``predict`` may return a list, array, Series or one-column DataFrame. If the object
    has ``predict_proba``, it is called too; classes come from the columns of a
    DataFrame it returns, else from a ``classes_`` attribute.

    Args:
        model: The object.

    Raises:
        InvalidInputError: ``model`` has no callable ``predict``.
    """

    def __init__(self, model: Any) -> None:
        if not callable(getattr(model, "predict", None)):
            raise InvalidInputError(
                f"The loaded {type(model).__name__} has no callable predict(frame) method."
            )
        self.model = model
        self._has_proba = callable(getattr(model, "predict_proba", None))
        labels = getattr(model, "classes_", None)
        self._classes: list[Any] | None = None if labels is None else class_list(labels)

    @property
    def classes(self) -> list[Any] | None:
        """The model's ``classes_``, if it has them."""
        return self._classes

    def predict(self, data: ModelInput) -> Prediction:
        """Call the object's ``predict`` (and ``predict_proba``) on a validated batch.

        Args:
            data: A DataFrame or an array, passed to the object as is.

        Raises:
            PredictionError: The object failed or returned an unusable output.
        """
        rows = len(data)
        with model_failures("python"):
            output = self.model.predict(data)
            raw_proba = self.model.predict_proba(data) if self._has_proba else None
        predictions = as_predictions(output, rows=rows)
        if raw_proba is None:
            return Prediction(predictions=predictions, classes=self._classes)
        classes = self._classes
        if isinstance(raw_proba, pd.DataFrame):
            classes = class_list(raw_proba.columns)
        return Prediction(
            predictions=predictions,
            probabilities=as_probabilities(raw_proba, rows=rows),
            classes=classes,
        )


def _pickled(model: object) -> bytes:
    kind = type(model)
    module = kind.__module__
    hint = (
        "Move the class into an importable module, or save it from source with "
        f"model=None and options={{'code': 'path/to/file.py', 'class_name': "
        f"'{kind.__name__}'}}."
    )
    if module == "__main__" or "<locals>" in kind.__qualname__:
        raise UnsupportedModelError(
            f"Cannot save {module}.{kind.__qualname__} by reference: it cannot be imported "
            f"where the model is served. {hint}"
        )
    try:
        importable = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        importable = False
    if not importable:
        raise UnsupportedModelError(
            f"Cannot save {module}.{kind.__qualname__} by reference: module {module!r} is "
            f"not importable. {hint}"
        )
    try:
        return pickle.dumps(model, protocol=_PICKLE_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise UnsupportedModelError(
            f"Cannot pickle {module}.{kind.__qualname__}: {exc}. {hint}"
        ) from exc


def _code_options(options: Mapping[str, Any]) -> tuple[Path, str]:
    code, class_name = options.get("code"), options.get("class_name")
    if not isinstance(code, str | os.PathLike) or not isinstance(class_name, str):
        raise InvalidInputError(
            "Saving from source needs both options['code'] (path to a .py file) and "
            "options['class_name'] (the model class defined in it)."
        )
    source = Path(code)
    if source.suffix != ".py" or not source.is_file():
        raise InvalidInputError(f"options['code'] must be an existing .py file, got {source}.")
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except SyntaxError as exc:
        raise InvalidInputError(f"The model code {source} does not parse: {exc}") from exc
    if class_name not in _top_level_names(tree):
        raise InvalidInputError(
            f"The model code {source} does not define {class_name!r} at top level."
        )
    return source, class_name


def _top_level_names(tree: ast.Module) -> set[str]:
    """The names a module binds at top level, found without running it."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _execute(file: Path) -> Any:
    """Execute ``file`` as a new module with a unique name, so reloads never collide."""
    name = f"ferryman_model_code_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"Cannot load model code from {file}.")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as the import system does, so the code can pickle its
    # own objects and dataclasses can resolve their module.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
