"""The flavor protocol: how one framework's models are saved, loaded and called.

A flavor turns a model object into exactly one artifact file (a directory-shaped model,
such as an MLflow model, is packed into one deterministic zip), and turns that file back
into a :class:`LoadedModel`. Everything a loader needs besides the file travels in the
flavor metadata, a JSON object that the registry stores with the version; a loader takes
security-relevant facts (trusted types, trusted flag) from that metadata, never from the
artifact itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

#: JSON-serialisable flavor metadata, stored in the registry with the version.
FlavorMeta = dict[str, Any]

#: What a flavor's ``predict`` accepts: a validated DataFrame for tabular signatures,
#: a NumPy array for tensor signatures.
ModelInput = pd.DataFrame | np.ndarray


@dataclass(frozen=True)
class Prediction:
    """The one output structure every flavor returns.

    Attributes:
        predictions: Shape ``(n,)`` labels or values, or ``(n, k)`` for multi-output
            models. Labels are the model's own class labels.
        probabilities: Shape ``(n, n_classes)`` class probabilities in the order of
            ``classes``, or ``None`` when the model has none.
        classes: The class labels for probability columns, or ``None``.
    """

    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: list[Any] | None = None

    def __len__(self) -> int:
        return int(self.predictions.shape[0])


@dataclass(frozen=True)
class SavedArtifact:
    """What :meth:`Flavor.save` produced: one file and the metadata to load it."""

    path: Path
    meta: FlavorMeta = field(default_factory=dict)


@runtime_checkable
class LoadedModel(Protocol):
    """A model ready to predict on batches.

    Optional capabilities the server looks for: ``takes_array(columns) -> bool`` (rows
    of an all-numeric table signature may come as a 2-D array in ``columns`` order
    rather than a DataFrame) and ``bounded_compute = True`` (calls are pure computation,
    so short ones may run on the event loop instead of a model thread).
    """

    def predict(self, data: ModelInput) -> Prediction:
        """Predict on a batch of validated rows.

        Args:
            data: Validated input (DataFrame for tabular signatures, ndarray otherwise).

        Returns:
            Predictions, and probabilities where the model has them.
        """
        ...


class Flavor(Protocol):
    """Save, load and call the models of one framework."""

    #: Short stable name stored in the registry, e.g. ``"sklearn"``.
    name: str

    def can_save(self, model: object) -> bool:
        """Tell whether this flavor knows how to save ``model``."""
        ...

    def save(
        self, model: object, directory: Path, *, trusted: bool, options: Mapping[str, Any]
    ) -> SavedArtifact:
        """Write ``model`` as one file inside ``directory``.

        Args:
            model: The model object (or, for directory-based formats, its path).
            directory: An empty scratch directory owned by the caller.
            trusted: The user vouched that the model may be stored in a format that
                executes code on load (pickle). Recorded in the returned metadata.
            options: Flavor-specific options, e.g. ``{"trusted_types": [...]}``.

        Raises:
            UntrustedArtifactError: Saving needs a code-executing format and
                ``trusted`` is false.
        """
        ...

    def load(self, path: Path, meta: Mapping[str, Any], *, scratch: Path) -> LoadedModel:
        """Load the artifact at ``path`` using the registry's ``meta``.

        Args:
            path: The verified artifact file.
            meta: The flavor metadata stored in the registry at registration.
            scratch: A directory reserved for this artifact, where the flavor may unpack.

        Raises:
            UntrustedArtifactError: The artifact needs a code-executing loader and the
                metadata does not record it as trusted.
            MissingDependencyError: The framework is not installed.
        """
        ...
