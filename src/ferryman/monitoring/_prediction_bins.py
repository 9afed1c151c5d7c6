"""Prediction bins: the cells of a version's prediction histogram, for PSI.

:func:`prediction_bins` derives them from a version's reference profile: the training
predictions' decile bins (positive-class scores of binary classifiers, or values of
regressors) or the training class frequencies (other classifiers). Without a usable
profile, binary classifiers' scores get the fixed cells :data:`FIXED_SCORE_CUTS` (no
reference, so no PSI), other classifiers their signature's classes (no reference
either), and regressors no histogram.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ferryman.errors import InvalidInputError
from ferryman.signature import CategoricalProfile, NumericProfile, ReferenceProfile, Signature

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Cut points of the prediction histogram for binary classifiers' positive-class scores
#: when the reference profile has no usable bins: ten cells of width 0.1 on [0, 1].
FIXED_SCORE_CUTS: Final[tuple[float, ...]] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: Shares are floored at this value before taking logarithms in PSI (the same zero-bin
#: smoothing as :data:`ferryman.drift.psi.PSI_FLOOR`).
PSI_FLOOR: Final = 1e-4

#: Quantile levels the prediction histogram's numeric cells are cut at.
_DECILES = np.linspace(0.1, 0.9, 9)


def label_text(value: object) -> str:
    """The text of a class label or category, as gate and alert labels name it.

    Example:
        >>> label_text(np.int64(1)), label_text("yes"), label_text(np.True_)
        ('1', 'yes', 'True')
    """
    return str(value.item() if isinstance(value, np.generic) else value)


def cell_count(kind: str, cut_points: tuple[float, ...], categories: tuple[str, ...]) -> int:
    """Cells of a histogram: one more than the cut points, or than the categories."""
    return len(cut_points) + 1 if kind == "numeric" else len(categories) + 1


def check_cells(
    label: str,
    kind: str,
    cut_points: tuple[float, ...],
    categories: tuple[str, ...],
    reference: tuple[int, ...] | None,
) -> None:
    """Refuse cells that are empty or unordered, or reference counts that do not fit them.

    Raises:
        InvalidInputError: Naming ``label`` (e.g. ``"bins of 'age'"``) and what is wrong.
    """
    if kind == "numeric" and not cut_points:
        raise InvalidInputError(f"Numeric {label} need at least one cut point.")
    if kind == "categorical" and not categories:
        raise InvalidInputError(
            f"Categorical {label} need a category: got none, expected at least one category."
        )
    if any(b <= a for a, b in itertools.pairwise(cut_points)):
        raise InvalidInputError(f"Cut points of {label} must increase strictly, got {cut_points}.")
    cells = cell_count(kind, cut_points, categories)
    if reference is not None and len(reference) != cells:
        raise InvalidInputError(
            f"The {label} have {cells} cells but {len(reference)} reference counts."
        )


def psi(reference: tuple[int, ...], current: IntArray) -> float | None:
    """PSI of ``current`` counts against ``reference`` counts; ``None`` if either is empty.

    ``sum((c - r) * ln(c / r))`` over the cells, shares floored at :data:`PSI_FLOOR`
    (the defaults of :class:`ferryman.drift.PSITest`).
    """
    counts = np.asarray(reference, dtype=np.float64)
    total = int(current.sum())
    if counts.sum() <= 0 or total <= 0:
        return None
    ref = np.maximum(counts / counts.sum(), PSI_FLOOR)
    cur = np.maximum(current / total, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass(frozen=True)
class PredictionBins:
    """The cells of a version's prediction histogram, and the training counts in them.

    Numeric cells (scores or values): cell 0 holds ``x <= cut_points[0]``, cell ``i``
    holds ``cut_points[i-1] < x <= cut_points[i]``, the last holds ``x > cut_points[-1]``
    (the reference profile's convention); NaN is left out. Categorical cells: one per
    category in ``categories`` and a last cell for any other class.

    Attributes:
        kind: ``"numeric"`` or ``"categorical"``.
        source: Where the cells come from: the reference profile entry
            (``"prediction"``, ``"probability[1]"``), or ``"fixed"``.
        cut_points: Strictly increasing cut points (numeric cells).
        categories: Class labels as text (categorical cells).
        reference: Training counts per cell, or ``None`` when the cells are fixed ones
            with no reference (PSI is then unknown).
    """

    kind: Literal["numeric", "categorical"]
    source: str
    cut_points: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    reference: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_cells("prediction bins", self.kind, self.cut_points, self.categories, self.reference)

    @property
    def cells(self) -> int:
        """The number of cells."""
        return cell_count(self.kind, self.cut_points, self.categories)

    def count_values(self, values: FloatArray) -> IntArray:
        """Count numeric predictions in the cells (NaN left out)."""
        finite = values[~np.isnan(values)]
        positions = np.searchsorted(np.asarray(self.cut_points), finite, side="left")
        return np.bincount(positions, minlength=self.cells).astype(np.int64)

    def count_labels(self, class_counts: Mapping[str, int]) -> IntArray:
        """Count predicted classes (label text to count) in the cells."""
        counts = np.zeros(self.cells, dtype=np.int64)
        index = {category: i for i, category in enumerate(self.categories)}
        other = len(self.categories)
        for label, count in class_counts.items():
            counts[index.get(label, other)] += count
        return counts

    def psi(self, current: IntArray) -> float | None:
        """PSI of ``current`` counts against the reference; ``None`` if either is empty.

        ``sum((c - r) * ln(c / r))`` over the cells, shares floored at :data:`PSI_FLOOR`.
        """
        return None if self.reference is None else psi(self.reference, current)

    def to_dict(self) -> dict[str, Any]:
        """Return the bins as a JSON-safe dict."""
        return {
            "kind": self.kind,
            "source": self.source,
            "cut_points": list(self.cut_points),
            "categories": list(self.categories),
            "reference": None if self.reference is None else list(self.reference),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionBins:
        """Rebuild bins from :meth:`to_dict` output.

        Raises:
            InvalidInputError: ``data`` is malformed.
        """
        try:
            reference = data["reference"]
            return cls(
                kind=data["kind"],
                source=str(data["source"]),
                cut_points=tuple(float(x) for x in data["cut_points"]),
                categories=tuple(str(x) for x in data["categories"]),
                reference=None if reference is None else tuple(int(x) for x in reference),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"Malformed prediction bins {dict(data)!r}: {exc}") from exc


def prediction_bins(
    signature: Signature | None, profile: ReferenceProfile | None
) -> PredictionBins | None:
    """Derive a version's prediction histogram cells from its signature and profile.

    - binary classifiers with probabilities: the positive (second) class's score, in the
      decile bins of the profile's ``probability[<class>]`` entry, else in
      :data:`FIXED_SCORE_CUTS` without reference;
    - regressors (``value`` outputs): the decile bins of the profile's ``prediction``
      entry (``prediction[0]`` for several outputs), else none;
    - other classifiers: the classes, with the profile's training class frequencies
      (its ``prediction`` entry), else the signature's classes without reference.

    Decile bins are the profile's quantile cut points nearest to the deciles, so their
    training counts are known exactly.

    Args:
        signature: The version's signature; without its output, there are no bins.
        profile: The version's reference profile, if it has one.

    Returns:
        The cells, or ``None`` when the version's predictions cannot be binned.
    """
    output = signature.output if signature is not None else None
    if output is None:
        return None
    classes = output.classes or ()
    if output.kind == "probabilities" and len(classes) == 2:
        name = f"probability[{label_text(classes[1])}]"
        found = _numeric_bins(profile, name)
        return found or PredictionBins(kind="numeric", source="fixed", cut_points=FIXED_SCORE_CUTS)
    if output.kind == "value":
        return _numeric_bins(profile, "prediction" if output.n_outputs == 1 else "prediction[0]")
    entry = _profile_entry(profile, "prediction")
    if isinstance(entry, CategoricalProfile) and entry.categories:
        return PredictionBins(
            kind="categorical",
            source="prediction",
            categories=tuple(label_text(c) for c in entry.categories),
            reference=(*entry.frequencies, entry.other),
        )
    if classes:
        return PredictionBins(
            kind="categorical", source="fixed", categories=tuple(label_text(c) for c in classes)
        )
    return None


def _profile_entry(
    profile: ReferenceProfile | None, name: str
) -> NumericProfile | CategoricalProfile | None:
    if profile is None:
        return None
    for entry in profile.predictions:
        if entry.name == name:
            return entry
    return None


def _numeric_bins(profile: ReferenceProfile | None, name: str) -> PredictionBins | None:
    entry = _profile_entry(profile, name)
    if not isinstance(entry, NumericProfile) or entry.histogram is None:
        return None
    if not entry.histogram.cut_points:
        return None
    cut_points = np.asarray(entry.histogram.cut_points)
    counts = np.asarray(entry.histogram.counts, dtype=np.int64)
    total = int(counts.sum())
    cumulative = np.cumsum(counts)[:-1]  # training values <= each cut point
    nearest = np.unique(np.abs(cumulative[:, None] / total - _DECILES[None, :]).argmin(axis=0))
    below = np.concatenate(([0], cumulative[nearest], [total]))
    return PredictionBins(
        kind="numeric",
        source=name,
        cut_points=tuple(cut_points[nearest].tolist()),
        reference=tuple(int(x) for x in np.diff(below)),
    )
