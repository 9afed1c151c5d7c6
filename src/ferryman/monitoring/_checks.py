"""Vectorised checks of a batch of requests, for :class:`~ferryman.monitoring.MonitoringRecorder`.

A :class:`VersionPlan` is computed once per served version from its signature and
reference profile (feature positions, ranges, categories, classes, prediction bins);
the functions here then check the rows of many requests at once with NumPy: missing
values, out-of-range values and unseen categories per feature, null predictions,
class counts, scores and numeric values, and shadow/primary agreement. None loops
over rows in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from ferryman.monitoring._feature_bins import FeatureBinner, feature_binner
from ferryman.monitoring._prediction_bins import FloatArray, IntArray
from ferryman.monitoring.window import (
    PredictionBins,
    label_text,
    prediction_bins,
)
from ferryman.signature import ReferenceProfile, Signature

#: Label value that pools classes and features past the recorder's caps.
OTHER_LABEL: Final = "(other)"

BoolArray = npt.NDArray[np.bool_]
_NUMERIC_DTYPES = frozenset({"int64", "float64", "bool"})


class ClassLabels:
    """Prometheus ``class`` label values of one version: themselves until the cap."""

    __slots__ = ("labels", "limit")

    def __init__(self, known: tuple[str, ...], limit: int) -> None:
        self.labels: dict[str, str] = {label: label for label in known[:limit]}
        self.limit = limit

    def label(self, text: str) -> str:
        """The label of class ``text``: itself until the cap, then ``(other)``."""
        found = self.labels.get(text)
        if found is None:
            found = text if len(self.labels) < self.limit else OTHER_LABEL
            self.labels[text] = found
        return found


class VersionPlan:
    """What the recorder precomputes from a version's signature and profile."""

    def __init__(
        self,
        signature: Signature | None,
        profile: ReferenceProfile | None,
        *,
        max_classes: int,
        max_features: int,
    ) -> None:
        self.signature = signature
        self.bins: PredictionBins | None = prediction_bins(signature, profile)
        self.feature_binner: FeatureBinner | None = feature_binner(signature, profile)
        output = signature.output if signature is not None else None
        self.classifier = output is not None and output.kind in ("label", "probabilities")
        known = tuple(label_text(c) for c in (output.classes or ())) if output else ()
        self.known_classes = known
        self.class_labels = ClassLabels(known, max_classes)
        # Buckets keep every class the signature lists, and as many others.
        self.bucket_classes = ClassLabels(known, len(known) + max_classes)
        columns = signature.columns if signature is not None else ()
        self.features: tuple[str, ...] = tuple(column.name for column in columns)
        self.feature_set = frozenset(self.features)
        self.tensor = signature is not None and signature.kind == "tensor"
        self.numeric = all(column.dtype in _NUMERIC_DTYPES for column in columns)
        ranged = [
            (i, column)
            for i, column in enumerate(columns)
            if column.minimum is not None or column.maximum is not None
        ]
        self.range_positions = np.asarray([i for i, _ in ranged], dtype=np.intp)
        self.all_ranged = len(ranged) == len(columns)  # then no column needs selecting
        self.range_lows = np.asarray(
            [-np.inf if c.minimum is None else c.minimum for _, c in ranged], dtype=np.float64
        )
        self.range_highs = np.asarray(
            [np.inf if c.maximum is None else c.maximum for _, c in ranged], dtype=np.float64
        )
        self.category_columns = [
            (i, pd.Index(list(column.categories)))
            for i, column in enumerate(columns)
            if column.categories is not None
        ]
        labels = list(self.features[:max_features])
        labels += [OTHER_LABEL] * (len(self.features) - len(labels))
        self.feature_labels = tuple(labels)


@dataclass
class OutputSummary:
    """What a group of predictions amounts to (see :func:`summarise_outputs`)."""

    rows: int
    null_rows: int
    values: FloatArray | None
    scores: FloatArray | None
    class_counts: dict[str, int]
    known_classes: tuple[str, ...]


def summarise_outputs(outputs: list[Prediction], plan: VersionPlan | None) -> OutputSummary:
    """Count rows, null rows and classes, and collect scores and values, of many answers.

    Scores are the positive (second) class's probability of binary classifiers, the top
    probability of others; values (what ``mean_prediction`` averages) are that positive
    score, or a regressor's predictions (the first output of a multi-output model).
    Classes are counted for one-output classifiers, null rows left out.
    """
    first = outputs[0]
    labels = stack([p.predictions for p in outputs])
    probabilities: np.ndarray | None = None
    if all(p.probabilities is not None for p in outputs):
        probabilities = stack([p.probabilities for p in outputs if p.probabilities is not None])
    null = find_null_rows(labels)
    classifier = (
        (plan is not None and plan.classifier)
        or first.classes is not None
        or first.probabilities is not None
    )
    values: FloatArray | None = None
    scores: FloatArray | None = None
    if probabilities is not None and probabilities.ndim == 2 and probabilities.shape[1] >= 2:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.shape[1] == 2:
            scores = values = probabilities[:, 1]
        else:
            scores = probabilities.max(axis=1)
    elif not classifier and labels.dtype.kind in "fiub":
        values = np.asarray(labels if labels.ndim == 1 else labels[:, 0], dtype=np.float64)
    class_counts: dict[str, int] = {}
    if classifier and labels.ndim == 1:
        class_counts = count_classes(labels[~null] if null.any() else labels)
    known = tuple(label_text(c) for c in first.classes) if first.classes is not None else ()
    return OutputSummary(
        rows=len(labels),
        null_rows=int(np.count_nonzero(null)),
        values=values,
        scores=scores,
        class_counts=class_counts,
        known_classes=known,
    )


def stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate arrays along their rows."""
    if len(arrays) == 1:
        return np.asarray(arrays[0])
    return np.concatenate(arrays)


def find_null_rows(labels: np.ndarray) -> BoolArray:
    """Rows whose prediction (any output of it) is null, NaN or NaT."""
    kind = labels.dtype.kind
    if kind == "f" or kind == "c":
        null = np.isnan(labels)
    elif kind == "O":
        null = np.asarray(pd.isna(labels), dtype=bool)
    elif kind in "mM":
        null = np.isnat(labels)
    else:
        return np.zeros(len(labels), dtype=bool)
    return null if null.ndim == 1 else np.asarray(null.any(axis=1), dtype=bool)


def count_classes(labels: np.ndarray) -> dict[str, int]:
    """Rows per distinct label, keyed by label text."""
    try:
        uniques, counts = np.unique(labels, return_counts=True)
    except TypeError:  # labels of mixed types do not sort
        tally = pd.Series(labels).value_counts(sort=False)
        return _merge_texts(tally.index.tolist(), tally.to_numpy().tolist())
    return _merge_texts(uniques.tolist(), counts.tolist())


def _merge_texts(values: list[object], counts: list[int]) -> dict[str, int]:
    result: dict[str, int] = {}
    for value, count in zip(values, counts, strict=True):
        text = label_text(value)
        result[text] = result.get(text, 0) + int(count)
    return result


def check_inputs(
    plan: VersionPlan, frames: list[pd.DataFrame | np.ndarray]
) -> tuple[int, IntArray, IntArray | None]:
    """Count missing, out-of-range and unseen values per feature over all frames.

    Returns:
        The rows checked; the counts, shape ``(3, features)``: rows missing the value,
        outside the signature's range, holding an unseen category; and the feature
        histogram counts on ``plan.feature_binner``'s cells (``None`` without one).
    """
    width = len(plan.features)
    if plan.numeric or plan.tensor:
        if all(type(frame) is np.ndarray for frame in frames):
            # The server's float matrices (see _observed_rows): one concatenation.
            arrays = cast(list[np.ndarray], frames)
            matrix = _checked_width(plan, np.asarray(stack(arrays), dtype=np.float64))
        else:
            matrix = stack([_numeric_matrix(plan, frame) for frame in frames])
        missing = np.isnan(matrix)
        numbers = matrix
    else:
        matrix = stack([_object_matrix(plan, frame) for frame in frames])
        missing = np.asarray(pd.isna(matrix), dtype=bool)
        numbers = None
    counts = np.zeros((3, width), dtype=np.int64)
    counts[0] = missing.sum(axis=0)
    positions = plan.range_positions
    if positions.size:
        if numbers is not None:
            ranged = numbers if plan.all_ranged else numbers[:, positions]
        else:
            ranged = np.where(missing[:, positions], np.nan, matrix[:, positions]).astype(
                np.float64
            )
        with np.errstate(invalid="ignore"):
            outside = (ranged < plan.range_lows) | (ranged > plan.range_highs)
        counts[1, positions] = outside.sum(axis=0)
    for position, categories in plan.category_columns:
        codes = categories.get_indexer(pd.Index(matrix[:, position]))
        unseen = (codes < 0) & ~missing[:, position]
        counts[2, position] = int(np.count_nonzero(unseen))
    histogram: IntArray | None = None
    if plan.feature_binner is not None:
        histogram = plan.feature_binner.count(
            matrix, missing, counts[0], numbers=numbers is not None
        )
    return len(matrix), counts, histogram


def _numeric_matrix(plan: VersionPlan, frame: pd.DataFrame | np.ndarray) -> FloatArray:
    if isinstance(frame, np.ndarray):
        matrix = np.asarray(frame, dtype=np.float64)
    else:
        matrix = _aligned(plan, frame).to_numpy(dtype=np.float64, na_value=np.nan)
    return _checked_width(plan, matrix)


def _object_matrix(plan: VersionPlan, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(frame, np.ndarray):
        return _checked_width(plan, np.asarray(frame, dtype=object))
    return _checked_width(plan, _aligned(plan, frame).to_numpy(dtype=object))


def _aligned(plan: VersionPlan, frame: pd.DataFrame) -> pd.DataFrame:
    # Signature.validate returns exactly the signature's columns, in order; comparing
    # the names of a string Index would cost more than all the checks, so a frame of
    # the signature's width is taken as is. Wider frames (passthrough columns) are
    # narrowed by name.
    if len(frame.columns) == len(plan.features):
        return frame
    return frame[list(plan.features)]


def _checked_width(plan: VersionPlan, matrix: np.ndarray) -> np.ndarray:
    if matrix.ndim != 2 or matrix.shape[1] != len(plan.features):
        raise InvalidInputError(
            f"Expected validated rows of {len(plan.features)} features, got shape {matrix.shape}."
        )
    return matrix


def compare_predictions(
    pairs: list[tuple[Prediction, Prediction]],
) -> tuple[int, int, FloatArray | None]:
    """Compare shadow answers with the primary's: rows, rows agreeing, absolute diffs.

    Labels agree when equal, numbers when equal within 1e-9 relative. Differences are
    of the positive-class score (binary classifiers with probabilities on both sides)
    or of the numeric predictions (regressors); ``None`` otherwise.
    """
    primary = stack([p.predictions for p, _ in pairs])
    shadow = stack([s.predictions for _, s in pairs])
    if primary.dtype.kind in "fiub" and shadow.dtype.kind in "fiub":
        same = np.isclose(
            primary.astype(np.float64),
            shadow.astype(np.float64),
            rtol=1e-9,
            atol=0.0,
            equal_nan=True,
        )
    else:
        same = np.asarray(primary == shadow, dtype=bool)
    if same.ndim > 1:
        same = np.asarray(same.all(axis=tuple(range(1, same.ndim))), dtype=bool)
    diffs: FloatArray | None = None
    if all(p.probabilities is not None and s.probabilities is not None for p, s in pairs):
        first = stack([p.probabilities for p, _ in pairs if p.probabilities is not None])
        second = stack([s.probabilities for _, s in pairs if s.probabilities is not None])
        if first.ndim == 2 and first.shape[1] == 2 and first.shape == second.shape:
            diffs = np.abs(first[:, 1] - second[:, 1]).astype(np.float64)
    elif (
        pairs[0][0].classes is None
        and primary.dtype.kind in "fiu"
        and shadow.dtype.kind in "fiu"
        and primary.shape == shadow.shape
    ):
        diffs = np.abs(primary.astype(np.float64) - shadow.astype(np.float64)).reshape(-1)
    if diffs is not None:
        diffs = diffs[~np.isnan(diffs)]
    return len(primary), int(np.count_nonzero(same)), diffs
