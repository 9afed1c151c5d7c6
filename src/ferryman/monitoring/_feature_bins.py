"""Feature bins: the cells of a version's per-feature histograms, for ``feature_psi``.

:func:`feature_binner` derives them once per served version from its signature and
reference profile, with the binning rule of :mod:`ferryman.drift` (so the windowed PSI
agrees with :class:`ferryman.drift.PSITest` on the same rows):

- numeric features (``int64``, ``float64``): the reference's distinct decile cut points
  that are stored histogram cut points, with the training counts between them known
  exactly; a constant reference gets three cells: below, at and above its value. Cell 0
  holds ``x <= cut_points[0]``, cell ``i`` holds ``cut_points[i-1] < x <= cut_points[i]``,
  the last holds ``x > cut_points[-1]``. Missing and infinite values are left out.
- categorical features (``bool``, ``string``, ``category``): one cell per category the
  profile lists and a last ``other`` cell for any other value (the profile's unlisted
  training values count there). Missing values are left out. Unlike the offline test,
  which gives each category new in production a cell of its own and pools sparse
  categories, every new category lands in the ``other`` cell: the two agree when at
  most one new category appears and no category is pooled (``PSITest(min_expected=0)``).

Features without a usable profile entry (no finite training value, datetime features,
or no profile at all) have no histogram. A version's cells for all its features sit
side by side in one count array (:class:`FeatureBinning`), so a group of requests
adds one array to a bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError
from ferryman.monitoring._prediction_bins import (
    FloatArray,
    IntArray,
    cell_count,
    check_cells,
    label_text,
    psi,
)
from ferryman.signature import CategoricalProfile, NumericProfile, ReferenceProfile, Signature

#: Quantile levels whose values cut numeric features into cells (as ``ferryman.drift``).
DECILE_LEVELS: Final[tuple[float, ...]] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

_NUMERIC_DTYPES = frozenset({"int64", "float64"})
_CATEGORICAL_DTYPES = frozenset({"bool", "string", "category"})


@dataclass(frozen=True)
class FeatureBins:
    """The cells of one feature's histogram, and the training counts in them.

    Attributes:
        name: The feature's name.
        kind: ``"numeric"`` or ``"categorical"``.
        reference: Training counts per cell.
        cut_points: Strictly increasing cut points (numeric cells).
        categories: Categories as text (categorical cells, before the ``other`` cell).

    Raises:
        InvalidInputError: The cells are empty or unordered, or the reference counts do
            not match them.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    reference: tuple[int, ...]
    cut_points: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_cells(
            f"bins of {self.name!r}", self.kind, self.cut_points, self.categories, self.reference
        )

    @property
    def cells(self) -> int:
        """The number of cells."""
        return cell_count(self.kind, self.cut_points, self.categories)

    def psi(self, current: IntArray) -> float | None:
        """PSI of ``current`` counts against the reference; ``None`` if either is empty."""
        return psi(self.reference, current)

    def to_dict(self) -> dict[str, Any]:
        """Return the bins as a JSON-safe dict."""
        return {
            "name": self.name,
            "kind": self.kind,
            "cut_points": list(self.cut_points),
            "categories": list(self.categories),
            "reference": list(self.reference),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBins:
        """Rebuild bins from :meth:`to_dict` output.

        Raises:
            InvalidInputError: ``data`` is malformed.
        """
        try:
            kind = data["kind"]
            if kind not in ("numeric", "categorical"):
                raise ValueError(f"kind must be 'numeric' or 'categorical', got {kind!r}")
            return cls(
                name=str(data["name"]),
                kind=kind,
                reference=tuple(int(x) for x in data["reference"]),
                cut_points=tuple(float(x) for x in data["cut_points"]),
                categories=tuple(str(x) for x in data["categories"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"Malformed feature bins {dict(data)!r}: {exc}") from exc


class FeatureBinning:
    """The histogram cells of every binned feature of one version, side by side.

    Counts for a binning are one array of :attr:`cells` integers: the cells of
    ``features[0]``, then those of ``features[1]``, and so on. Two binnings are equal
    when their features and cells are (the same version's reference), so their counts
    add up. Binnings are immutable; the hash is computed once, since buckets look them
    up on every drain and merge.

    Args:
        features: The bins of each feature, in signature order; names are unique.

    Raises:
        InvalidInputError: No feature is given, or a name appears twice.
    """

    __slots__ = ("_hash", "_positions", "cells", "features", "names", "offsets")

    def __init__(self, features: tuple[FeatureBins, ...]) -> None:
        names = tuple(bins.name for bins in features)
        if not names:
            raise InvalidInputError("A feature binning needs at least one feature.")
        if len(set(names)) != len(names):
            raise InvalidInputError(f"Feature names must be unique in a binning, got {names}.")
        self.features = features
        self.names = names
        self.offsets: tuple[int, ...] = tuple(
            int(x) for x in np.concatenate(([0], np.cumsum([b.cells for b in features])))
        )
        self.cells = self.offsets[-1]
        self._positions = {name: i for i, name in enumerate(names)}
        self._hash = hash(features)

    def __repr__(self) -> str:
        return f"FeatureBinning(features={self.names!r}, cells={self.cells})"

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, FeatureBinning):
            return NotImplemented
        return self._hash == other._hash and self.features == other.features

    def __hash__(self) -> int:
        return self._hash

    def find(self, name: str) -> FeatureBins | None:
        """Return the bins of feature ``name``, or ``None`` if it is not binned."""
        position = self._positions.get(name)
        return None if position is None else self.features[position]

    def segment(self, counts: IntArray, name: str) -> IntArray:
        """Return the counts of feature ``name``'s cells from a whole-binning array.

        Raises:
            KeyError: The feature is not binned.
        """
        position = self._positions[name]
        return counts[self.offsets[position] : self.offsets[position + 1]]

    def psi(self, counts: IntArray, name: str) -> tuple[float | None, int]:
        """Return the PSI of feature ``name`` and the rows it rests on.

        Raises:
            KeyError: The feature is not binned.
        """
        segment = self.segment(counts, name)
        return self.features[self._positions[name]].psi(segment), int(segment.sum())

    def to_dict(self) -> dict[str, Any]:
        """Return the binning as a JSON-safe dict."""
        return {"features": [bins.to_dict() for bins in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBinning:
        """Rebuild a binning from :meth:`to_dict` output.

        Raises:
            InvalidInputError: ``data`` is malformed.
        """
        try:
            features = data["features"]
            return cls(tuple(FeatureBins.from_dict(entry) for entry in features))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"Malformed feature binning: {exc!r}") from exc


@dataclass(frozen=True, eq=False)
class _NumericColumn:
    position: int  # the feature's column in the checked rows
    start: int  # its first cell in the binning's counts
    cuts: FloatArray


@dataclass(frozen=True, eq=False)
class _CategoricalColumn:
    position: int
    start: int
    other: int  # the ``other`` cell, relative to ``start``
    categories: pd.Index  # as the validated rows hold them (objects)
    numbers: pd.Index | None  # as floats, for rows read as float64; None if not numbers


class FeatureBinner:
    """Counts the rows of many requests in a version's :class:`FeatureBinning`.

    Args:
        columns: Per binned feature, in the binning's order: its column in the checked
            rows, its bins, and for categorical bins the categories as the profile
            holds them (the values validated rows hold).

    Raises:
        InvalidInputError: No column is given.
    """

    __slots__ = ("binning", "categorical", "numeric")

    def __init__(self, columns: list[tuple[int, FeatureBins, tuple[object, ...]]]) -> None:
        self.binning = FeatureBinning(tuple(bins for _, bins, _ in columns))
        self.numeric: list[_NumericColumn] = []
        self.categorical: list[_CategoricalColumn] = []
        for (position, bins, categories), start in zip(columns, self.binning.offsets, strict=False):
            if bins.kind == "numeric":
                cuts = np.asarray(bins.cut_points, dtype=np.float64)
                self.numeric.append(_NumericColumn(position, start, cuts))
            else:
                self.categorical.append(
                    _CategoricalColumn(
                        position=position,
                        start=start,
                        other=len(categories),
                        categories=pd.Index(list(categories), dtype=object),
                        numbers=_as_numbers(categories),
                    )
                )

    def __repr__(self) -> str:
        return f"FeatureBinner(binning={self.binning!r})"

    def count(
        self, matrix: np.ndarray, missing: np.ndarray, missing_counts: IntArray, *, numbers: bool
    ) -> IntArray:
        """Count checked rows in the cells; missing and infinite values are left out.

        One ``searchsorted`` (numeric) or one hash lookup (categorical) per binned
        column, over all rows at once.

        Args:
            matrix: The rows, one column per signature feature: float64 when
                ``numbers``, else objects.
            missing: Where ``matrix`` is missing (NaN, None, NA), same shape.
            missing_counts: Missing values per column (``missing.sum(axis=0)``).
            numbers: Whether ``matrix`` is float64.

        Returns:
            Counts aligned with the binning's cells.
        """
        counts = np.zeros(self.binning.cells, dtype=np.int64)
        maybe_infinite = not numbers or bool(np.isinf(matrix).any())
        for column in self.numeric:
            position = column.position
            if numbers:
                values = matrix[:, position]
            else:
                values = np.where(missing[:, position], np.nan, matrix[:, position]).astype(
                    np.float64
                )
            cells = len(column.cuts) + 1
            found = np.bincount(np.searchsorted(column.cuts, values, side="left"), minlength=cells)
            # NaN and +inf sort after every cut point and -inf before: take them out.
            found[-1] -= missing_counts[position]
            if maybe_infinite:
                infinite = np.isinf(values)
                if infinite.any():
                    found[-1] -= int(np.count_nonzero(infinite & (values > 0)))
                    found[0] -= int(np.count_nonzero(infinite & (values < 0)))
            counts[column.start : column.start + cells] += found
        for category in self.categorical:
            index = category.numbers if numbers else category.categories
            if index is None:
                continue
            codes = index.get_indexer(pd.Index(matrix[:, category.position]))
            codes[codes < 0] = category.other
            found = np.bincount(codes, minlength=category.other + 1)
            # Missing values match no category, so they were counted as other: take them out.
            found[-1] -= missing_counts[category.position]
            counts[category.start : category.start + category.other + 1] += found
        return counts


def feature_binner(
    signature: Signature | None, profile: ReferenceProfile | None
) -> FeatureBinner | None:
    """Derive a version's feature histogram cells from its signature and profile.

    Args:
        signature: The version's signature (which columns the checked rows hold).
        profile: The version's reference profile.

    Returns:
        The binner, or ``None`` when no feature can be binned (no profile, or no
        usable profile entry for any signature column).
    """
    if signature is None or profile is None:
        return None
    entries = {entry.name: entry for entry in profile.features}
    columns: list[tuple[int, FeatureBins, tuple[object, ...]]] = []
    for position, column in enumerate(signature.columns):
        entry = entries.get(column.name)
        if isinstance(entry, NumericProfile) and column.dtype in _NUMERIC_DTYPES:
            bins = numeric_feature_bins(entry, profile.quantile_levels)
            if bins is not None:
                columns.append((position, bins, ()))
        elif (
            isinstance(entry, CategoricalProfile)
            and column.dtype in _CATEGORICAL_DTYPES
            and entry.categories
        ):
            columns.append((position, categorical_feature_bins(entry), entry.categories))
    return FeatureBinner(columns) if columns else None


def numeric_feature_bins(entry: NumericProfile, levels: tuple[float, ...]) -> FeatureBins | None:
    """The decile cells of a numeric profile entry, as :mod:`ferryman.drift` cuts them.

    The cut points are the entry's quantiles nearest to :data:`DECILE_LEVELS` that are
    also histogram cut points (so their training counts are exact), without repeats.

    Args:
        entry: The feature's profile.
        levels: The profile's quantile levels.

    Returns:
        The bins, or ``None`` when the entry has no finite training value.
    """
    histogram = entry.histogram
    if histogram is None or not entry.quantiles or not histogram.cut_points:
        return None
    quantiles = np.asarray(entry.quantiles, dtype=np.float64)
    counts = np.asarray(histogram.counts, dtype=np.int64)
    total = int(counts.sum())
    if quantiles[0] == quantiles[-1]:  # a constant reference: below, at and above it
        value = float(quantiles[0])
        return FeatureBins(
            name=entry.name,
            kind="numeric",
            reference=(0, total, 0),
            cut_points=(float(np.nextafter(value, -np.inf)), value),
        )
    level_array = np.asarray(levels, dtype=np.float64)
    if len(level_array) != len(quantiles):
        level_array = np.round(np.linspace(0.0, 1.0, len(quantiles)), 12)
    nearest = np.abs(level_array[:, None] - np.asarray(DECILE_LEVELS)[None, :]).argmin(axis=0)
    stored = np.asarray(histogram.cut_points, dtype=np.float64)
    cuts = np.unique(quantiles[nearest])
    cuts = cuts[np.isin(cuts, stored)]
    cumulative = np.cumsum(counts)[:-1][np.searchsorted(stored, cuts)]
    reference = np.diff(np.concatenate(([0], cumulative, [total])))
    return FeatureBins(
        name=entry.name,
        kind="numeric",
        reference=tuple(int(x) for x in reference),
        cut_points=tuple(float(x) for x in cuts),
    )


def categorical_feature_bins(entry: CategoricalProfile) -> FeatureBins:
    """The cells of a categorical profile entry: its categories, then ``other``."""
    return FeatureBins(
        name=entry.name,
        kind="categorical",
        reference=(*entry.frequencies, entry.other),
        categories=tuple(label_text(category) for category in entry.categories),
    )


def _as_numbers(categories: tuple[object, ...]) -> pd.Index | None:
    """Categories as floats (``True`` is 1.0), for boolean columns read as numbers."""
    numbers = [float(c) for c in categories if isinstance(c, bool | int | float)]
    if len(numbers) != len(categories):
        return None
    return pd.Index(np.asarray(numbers, dtype=np.float64))


__all__ = [
    "DECILE_LEVELS",
    "FeatureBinner",
    "FeatureBinning",
    "FeatureBins",
    "categorical_feature_bins",
    "feature_binner",
    "numeric_feature_bins",
]
