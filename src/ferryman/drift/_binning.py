"""Aligned bin counts of two samples: the input of PSI, Jensen-Shannon, chi-square and Z.

Numeric samples are binned at the reference's deciles (the decile quantiles that are
distinct; at most 10 bins, open-ended at both ends, so every current value falls in a
bin). They come from the reference alone (its stored profile or its values), never
from the combined data. A constant reference gets three bins: below, at and above
its value.

Categorical samples get one cell per category. New categories (absent from the
reference) get cells of their own; values outside a profile's stored categories go to
an ``(other)`` cell. Categories whose expected count in the smaller sample is below
``min_expected`` are pooled into one ``(rare)`` cell, so that the chi-square
approximations hold (Cochran's rule) and sparse levels cannot raise false alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from ferryman.drift._summaries import (
    CategoricalSummary,
    CategoryValue,
    FloatArray,
    IntArray,
    NumericSummary,
)
from ferryman.errors import InvalidInputError

#: Quantile levels whose values cut numeric samples into bins.
DECILE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
OTHER = "(other)"
RARE = "(rare)"


@dataclass(frozen=True, eq=False)
class BinTable:
    """Counts of two samples in the same cells.

    Attributes:
        labels: A readable name per cell.
        reference: Reference counts per cell.
        current: Current counts per cell.
        new_categories: Categories seen only in the current sample (before pooling).
    """

    labels: tuple[str, ...]
    reference: IntArray
    current: IntArray
    new_categories: tuple[CategoryValue, ...] = ()

    def nonempty(self) -> BinTable:
        """Drop the cells that are empty in both samples."""
        keep = (self.reference + self.current) > 0
        return BinTable(
            labels=tuple(label for label, k in zip(self.labels, keep, strict=True) if k),
            reference=self.reference[keep],
            current=self.current[keep],
            new_categories=self.new_categories,
        )


def is_constant(summary: NumericSummary) -> bool:
    """Whether every finite value of a numeric sample is the same."""
    return summary.n > 0 and bool(summary.quantiles[0] == summary.quantiles[-1])


def decile_cut_points(reference: NumericSummary) -> FloatArray:
    """Return the reference's distinct decile cut points (known exactly in its summary)."""
    if reference.n == 0:
        raise InvalidInputError("The reference has no finite value to take quantiles from.")
    if is_constant(reference):
        # A constant reference: below, at, and above its value.
        value = float(reference.quantiles[0])
        return np.array([np.nextafter(value, -np.inf), value])
    positions = np.abs(reference.levels[:, None] - np.asarray(DECILE_LEVELS)[None, :]).argmin(0)
    candidates = np.unique(reference.quantiles[positions])
    # Cut points must be ones whose reference count is known: the stored cut points.
    return candidates[np.isin(candidates, reference.cut_points)]


def numeric_table(reference: NumericSummary, current: NumericSummary) -> BinTable:
    """Count both samples in the reference's decile bins."""
    cuts = decile_cut_points(reference)
    if is_constant(reference):
        ref_cumulative = np.array([0, reference.n], dtype=np.int64)
    else:
        ref_cumulative = np.round(reference.cdf(cuts) * reference.n).astype(np.int64)
    if current.values is None:
        raise InvalidInputError("The current sample must be values, not a profile.")
    cur_cumulative = np.searchsorted(current.values, cuts, side="right").astype(np.int64)
    ref_counts = np.diff(np.concatenate(([0], ref_cumulative, [reference.n])))
    cur_counts = np.diff(np.concatenate(([0], cur_cumulative, [current.n])))
    labels = [f"<= {cuts[0]:.6g}"]
    labels += [f"({a:.6g}, {b:.6g}]" for a, b in pairwise(cuts)]
    labels.append(f"> {cuts[-1]:.6g}")
    return BinTable(
        labels=tuple(labels),
        reference=ref_counts.astype(np.int64),
        current=cur_counts.astype(np.int64),
    )


def categorical_table(
    reference: CategoricalSummary, current: CategoricalSummary, *, min_expected: float = 5.0
) -> BinTable:
    """Count both samples per category, pooling sparse ones into a ``(rare)`` cell."""
    index = {category: i for i, category in enumerate(reference.categories)}
    cells = len(reference.categories)
    ref_counts = [*reference.counts.tolist(), reference.other]
    cur_counts = [0] * (cells + 1)
    new: list[CategoryValue] = []
    new_counts: list[int] = []
    for category, count in zip(current.categories, current.counts.tolist(), strict=True):
        position = index.get(category)
        if position is not None:
            cur_counts[position] += count
        elif not reference.complete:
            cur_counts[cells] += count  # may be one of the reference's unlisted categories
        else:
            new.append(category)
            new_counts.append(count)
    cur_counts[cells] += current.other
    labels = [str(category) for category in reference.categories] + [OTHER]
    labels += [str(category) for category in new]
    ref_all = np.asarray(ref_counts + [0] * len(new), dtype=np.int64)
    cur_all = np.asarray(cur_counts + new_counts, dtype=np.int64)
    table = BinTable(
        labels=tuple(labels), reference=ref_all, current=cur_all, new_categories=tuple(new)
    ).nonempty()
    return pool_rare(table, min_expected=min_expected)


def pool_rare(table: BinTable, *, min_expected: float) -> BinTable:
    """Pool cells whose expected count in the smaller sample is below ``min_expected``."""
    n, m = int(table.reference.sum()), int(table.current.sum())
    if min_expected <= 0 or n == 0 or m == 0:
        return table
    expected = (table.reference + table.current) * (min(n, m) / (n + m))
    rare = expected < min_expected
    if rare.sum() < 2:
        return table
    keep = ~rare
    labels = (*(label for label, k in zip(table.labels, keep, strict=True) if k), RARE)
    return BinTable(
        labels=labels,
        reference=np.append(table.reference[keep], table.reference[rare].sum()),
        current=np.append(table.current[keep], table.current[rare].sum()),
        new_categories=table.new_categories,
    )


def bin_table(
    reference: NumericSummary | CategoricalSummary,
    current: NumericSummary | CategoricalSummary,
    *,
    min_expected: float = 5.0,
) -> BinTable:
    """Count both samples in the same cells: decile bins or (pooled) categories.

    Raises:
        InvalidInputError: One sample is numeric and the other categorical.
    """
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        return numeric_table(reference, current).nonempty()
    if isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalSummary):
        return categorical_table(reference, current, min_expected=min_expected)
    raise InvalidInputError(
        f"Cannot compare a {reference.kind} reference with a {current.kind} current sample."
    )


def binned(owner: str, reference: object, current: object, *, min_expected: float) -> BinTable:
    """Summarise (if needed) and bin two samples for a binned test.

    Raises:
        InvalidInputError: A sample is empty or has no usable value, or the kinds differ.
    """
    from ferryman.drift._summaries import as_summary

    ref = as_summary(reference, owner=owner)
    cur = as_summary(current, owner=owner)
    if ref.n == 0 or cur.n == 0:
        raise InvalidInputError(f"{owner} needs at least one usable value in each sample.")
    return bin_table(ref, cur, min_expected=min_expected)


def chi2_null_scale(table: BinTable) -> tuple[int, float]:
    """Return the degrees of freedom and ``1/n + 1/m`` of a two-row table."""
    n, m = int(table.reference.sum()), int(table.current.sum())
    return max(len(table.labels) - 1, 1), 1.0 / n + 1.0 / m
