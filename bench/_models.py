"""Plain Python models for the ``python`` flavor's benchmark.

They live in their own module so that the flavor pickles them by reference
(``_models.NearestCentroid``): the class must be importable where the model is loaded,
which a class defined in a ``__main__`` script is not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class NearestCentroid:
    """Predict the class whose training centroid is nearest to the row.

    Args:
        centroids: One row of feature means per class, shaped ``(classes, features)``.
        classes: The class labels, in the order of ``centroids``.
    """

    def __init__(self, *, centroids: np.ndarray, classes: np.ndarray) -> None:
        self.centroids = centroids
        self.classes = classes

    @classmethod
    def fit(cls, X: pd.DataFrame, y: np.ndarray) -> NearestCentroid:
        """Return a model whose centroids are the per-class means of ``X``."""
        classes = np.unique(y)
        centroids = np.stack([X.to_numpy()[y == label].mean(axis=0) for label in classes])
        return cls(centroids=centroids, classes=classes)

    def predict(self, frame: pd.DataFrame) -> Any:
        """Return one class label per row of ``frame``, as an array."""
        values = frame.to_numpy(dtype=np.float64)
        distances = ((values[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return self.classes[distances.argmin(axis=1)]
