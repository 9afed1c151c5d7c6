"""Turning what a framework returns into the arrays of one :class:`Prediction`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from ferryman.errors import FerrymanError, PredictionError


def as_predictions(output: object, *, rows: int) -> np.ndarray:
    """Return a model's predictions as an array with one entry (or row) per input row.

    A single output column, whether a ``(n, 1)`` array or a one-column DataFrame, becomes
    a 1-D array; several columns stay a 2-D ``(n, k)`` array.

    Args:
        output: A list, tuple, ndarray, Series or DataFrame.
        rows: The number of input rows.

    Raises:
        PredictionError: The output has another type or the wrong number of rows.
    """
    values = _as_array(output, what="predictions")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    _check_rows(values, rows=rows, what="predictions")
    return values


def as_probabilities(output: object, *, rows: int) -> np.ndarray:
    """Return class probabilities as a float64 array of shape ``(rows, n_classes)``.

    Args:
        output: A list, tuple, ndarray or DataFrame of probabilities.
        rows: The number of input rows.

    Raises:
        PredictionError: The output is not two-dimensional or has the wrong row count.
    """
    values = _as_array(output, what="probabilities")
    try:
        values = values.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise PredictionError(f"The model returned non-numeric probabilities: {exc}") from exc
    if values.ndim != 2:
        raise PredictionError(
            f"The model returned probabilities of shape {values.shape}; "
            "expected (n_rows, n_classes)."
        )
    _check_rows(values, rows=rows, what="probabilities")
    return values


def class_list(labels: object) -> list[Any]:
    """Return class labels as a plain list of Python values (no NumPy scalars).

    Args:
        labels: An array, Index or sequence of labels.
    """
    return list(np.asarray(labels).tolist())


def labels_from_probabilities(probabilities: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Pick, for each row, the class with the highest probability (first one on ties).

    Args:
        probabilities: Shape ``(n, n_classes)``.
        classes: The labels, in column order.
    """
    labels: np.ndarray = classes.take(np.argmax(probabilities, axis=1), axis=0)
    return labels


@contextmanager
def model_failures(flavor: str) -> Iterator[None]:
    """Translate any exception raised by the model's own code into :class:`PredictionError`.

    Args:
        flavor: The flavor's name, for the message.

    Raises:
        PredictionError: The wrapped block raised an exception that is not a Ferryman error.
    """
    try:
        yield
    except FerrymanError:
        raise
    except Exception as exc:  # the framework's or the user's code: anything can fail
        raise PredictionError(
            f"The {flavor} model failed while predicting: {type(exc).__name__}: {exc}"
        ) from exc


def _as_array(output: object, *, what: str) -> np.ndarray:
    if isinstance(output, pd.DataFrame | pd.Series):
        return output.to_numpy()
    if isinstance(output, np.ndarray):
        return output
    if isinstance(output, list | tuple):
        return np.asarray(output)
    raise PredictionError(
        f"The model returned {what} of type {type(output).__name__}; "
        "expected a list, NumPy array, pandas Series or DataFrame."
    )


def _check_rows(values: np.ndarray, *, rows: int, what: str) -> None:
    if values.ndim == 0 or values.shape[0] != rows:
        got = 1 if values.ndim == 0 else values.shape[0]
        raise PredictionError(f"The model returned {got} {what} for {rows} input rows.")
