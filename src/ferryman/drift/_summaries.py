"""Column summaries: what a drift test needs to know about a sample, computed once.

A :class:`NumericSummary` made from values keeps them sorted, so exact statistics
(Kolmogorov-Smirnov, Wasserstein) are available; one made from a stored
:class:`~ferryman.signature.NumericProfile` keeps only the profile's quantiles and its
histogram over reference-quantile cut points, and tests compute approximations from
them (documented per test). A :class:`CategoricalSummary` keeps category counts.

NaN and None are *missing*; +inf and -inf are *infinite*. Both are counted and left
out of every distribution test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from ferryman.errors import InvalidInputError
from ferryman.signature import CategoricalProfile, NumericProfile

#: Quantile levels of summaries made from values: 0, 0.01, ..., 1, like profiles.
DEFAULT_LEVELS: tuple[float, ...] = tuple(float(x) for x in np.round(np.linspace(0, 1, 101), 12))

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CategoryValue = bool | int | float | str


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """A numeric sample: sorted finite values (or a profile's quantiles) and counts.

    Attributes:
        values: The finite values, sorted; ``None`` for a summary of a profile.
        count: Number of rows, missing ones included.
        missing: Number of missing values (NaN, None).
        infinite: Number of +inf and -inf values.
        mean: Mean of the finite values, ``None`` when there is none.
        std: Population standard deviation (ddof=0) of the finite values.
        levels: Quantile levels, from 0 to 1.
        quantiles: Quantiles of the finite values at ``levels`` (NumPy's linear rule);
            empty when there is no finite value.
        cut_points: The distinct interior quantiles, strictly increasing.
        cumulative: Number of finite values ``<= cut_points[i]``, for each cut point.
    """

    values: FloatArray | None
    count: int
    missing: int
    infinite: int
    mean: float | None
    std: float | None
    levels: FloatArray
    quantiles: FloatArray
    cut_points: FloatArray
    cumulative: IntArray
    kind: str = field(default="numeric", init=False)

    @property
    def n(self) -> int:
        """Number of finite values."""
        return self.count - self.missing - self.infinite

    @property
    def exact(self) -> bool:
        """Whether the raw values are kept (exact tests are possible)."""
        return self.values is not None

    @property
    def occupied_bins(self) -> int:
        """Number of non-empty bins between the cut points: at most the number of
        distinct values, and about 100 for continuous data (a profile keeps no
        distinct count)."""
        counts = np.diff(np.concatenate(([0], self.cumulative, [self.n])))
        return int(np.count_nonzero(counts))

    def cdf(self, points: FloatArray) -> FloatArray:
        """Return the share of finite values ``<= points``.

        Exact for any points when :attr:`values` is kept; for a profile summary only at
        :attr:`cut_points` (other points raise).

        Raises:
            InvalidInputError: A profile summary was asked about a point that is not
                one of its cut points.
        """
        if self.n == 0:
            return np.zeros(len(points))
        if self.values is not None:
            below = np.searchsorted(self.values, points, side="right")
            return np.asarray(below / self.n, dtype=np.float64)
        position = np.searchsorted(self.cut_points, points)
        inside = position < len(self.cut_points)
        if not (inside.all() and np.array_equal(self.cut_points[position], points)):
            raise InvalidInputError(
                "A summary of a profile knows its distribution only at its cut points."
            )
        return np.asarray(self.cumulative[position] / self.n, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class CategoricalSummary:
    """A categorical sample: the count of each category.

    Attributes:
        categories: The categories, most frequent first.
        counts: The count of each category.
        other: Number of non-missing values in categories not listed (a profile keeps
            only its most frequent categories); 0 for a summary of values.
        count: Number of rows, missing ones included.
        missing: Number of missing values.
    """

    categories: tuple[CategoryValue, ...]
    counts: IntArray
    other: int
    count: int
    missing: int
    kind: str = field(default="categorical", init=False)

    @property
    def n(self) -> int:
        """Number of non-missing values."""
        return int(self.counts.sum()) + self.other

    @property
    def complete(self) -> bool:
        """Whether every category is listed (no ``other`` values)."""
        return self.other == 0


ColumnSummary = NumericSummary | CategoricalSummary


def summarize(
    values: npt.ArrayLike | pd.Series,
    *,
    kind: str | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> NumericSummary | CategoricalSummary:
    """Summarise a sample once, so several tests (or windows) can reuse it.

    Args:
        values: One column of values. NaN and None are missing.
        kind: ``"numeric"`` or ``"categorical"``; by default numeric for numbers and
            datetimes (as seconds since the Unix epoch), categorical otherwise
            (strings, categories, booleans).
        levels: Quantile levels kept by numeric summaries.

    Returns:
        A :class:`NumericSummary` or a :class:`CategoricalSummary`.

    Raises:
        InvalidInputError: ``kind`` is unknown, or numeric values are not numbers.

    Example:
        >>> summarize([3.0, 1.0, float("nan"), 2.0]).values
        array([1., 2., 3.])
    """
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    resolved = kind or kind_of(series)
    if resolved == "numeric":
        return summarize_numeric(numeric_values(series), levels=levels)
    if resolved == "categorical":
        return summarize_categorical(series)
    raise InvalidInputError(f"kind must be 'numeric' or 'categorical', got {kind!r}.")


def kind_of(series: pd.Series) -> str:
    """Return ``"numeric"`` for numbers and datetimes, ``"categorical"`` otherwise."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "numeric"
    return "categorical"


def numeric_values(series: pd.Series) -> FloatArray:
    """Return a column as float64 (NaN = missing; datetimes as epoch seconds).

    Raises:
        InvalidInputError: The column holds values that are not numbers.
    """
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        missing = series.isna().to_numpy()
        seconds = series.to_numpy("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
        seconds[missing] = np.nan
        return seconds
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(np.float64, na_value=np.nan)
    try:
        return pd.to_numeric(series, errors="raise").to_numpy(np.float64, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"Column {series.name!r} holds values that are not numbers."
        ) from exc


def summarize_numeric(
    values: npt.ArrayLike, *, levels: Sequence[float] = DEFAULT_LEVELS
) -> NumericSummary:
    """Summarise float values (NaN = missing, +-inf = infinite), keeping them sorted."""
    array = np.asarray(values, dtype=np.float64).ravel()
    usable = np.isfinite(array)
    if usable.all():  # the common case: one pass, no copies
        missing = infinite = 0
        ordered = np.sort(array)
    else:
        missing = int(np.count_nonzero(np.isnan(array)))
        infinite = len(array) - int(np.count_nonzero(usable)) - missing
        ordered = np.sort(array[usable])
    level_array = np.asarray(levels, dtype=np.float64)
    if len(ordered) == 0:
        return NumericSummary(
            values=ordered,
            count=len(array),
            missing=missing,
            infinite=infinite,
            mean=None,
            std=None,
            levels=level_array,
            quantiles=np.empty(0),
            cut_points=np.empty(0),
            cumulative=np.empty(0, dtype=np.int64),
        )
    quantiles = sorted_quantiles(ordered, level_array)
    cut_points = np.unique(quantiles[1:-1])
    cumulative = np.searchsorted(ordered, cut_points, side="right").astype(np.int64)
    mean = float(np.mean(ordered))
    return NumericSummary(
        values=ordered,
        count=len(array),
        missing=missing,
        infinite=infinite,
        mean=mean,
        std=float(np.std(ordered)),
        levels=level_array,
        quantiles=quantiles,
        cut_points=cut_points,
        cumulative=cumulative,
    )


def sorted_quantiles(ordered: FloatArray, levels: FloatArray) -> FloatArray:
    """Quantiles of sorted data, equal to ``np.quantile(ordered, levels)`` (linear)."""
    position = levels * (len(ordered) - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = position - below
    low, high = ordered[below], ordered[above]
    difference = high - low
    # As NumPy's _lerp: interpolate from the nearer end, exact at both ends.
    result = np.where(weight >= 0.5, high - difference * (1 - weight), low + difference * weight)
    return np.asarray(result, dtype=np.float64)


def summarize_categorical(values: npt.ArrayLike | pd.Series) -> CategoricalSummary:
    """Count the categories of a sample (missing values counted apart)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]
    frequencies = counts.to_numpy(dtype=np.int64)
    order = np.argsort(-frequencies, kind="stable")
    categories = tuple(plain(value) for value in counts.index[order].tolist())
    present = int(frequencies.sum())
    return CategoricalSummary(
        categories=categories,
        counts=frequencies[order].astype(np.int64),
        other=0,
        count=len(series),
        missing=len(series) - present,
    )


def plain(value: object) -> CategoryValue:
    """Return a category as a plain Python bool, int, float or str."""
    item = value.item() if isinstance(value, np.generic) else value
    if isinstance(item, bool | int | float | str):
        return item
    return str(item)


def summary_from_profile(
    profile: NumericProfile | CategoricalProfile, levels: Sequence[float]
) -> NumericSummary | CategoricalSummary:
    """Turn one column of a stored reference profile into a summary (no raw values)."""
    if isinstance(profile, CategoricalProfile):
        return CategoricalSummary(
            categories=tuple(profile.categories),
            counts=np.asarray(profile.frequencies, dtype=np.int64),
            other=profile.other,
            count=profile.count,
            missing=profile.missing,
        )
    level_array = np.asarray(levels, dtype=np.float64)
    if profile.quantiles and len(profile.quantiles) != len(level_array):
        level_array = np.round(np.linspace(0.0, 1.0, len(profile.quantiles)), 12)
    histogram = profile.histogram
    if histogram is None or not profile.quantiles:
        return NumericSummary(
            values=None,
            count=profile.count,
            missing=profile.missing,
            infinite=profile.infinite,
            mean=None,
            std=None,
            levels=level_array,
            quantiles=np.empty(0),
            cut_points=np.empty(0),
            cumulative=np.empty(0, dtype=np.int64),
        )
    counts = np.asarray(histogram.counts, dtype=np.int64)
    return NumericSummary(
        values=None,
        count=profile.count,
        missing=profile.missing,
        infinite=profile.infinite,
        mean=profile.mean,
        std=profile.std,
        levels=level_array,
        quantiles=np.asarray(profile.quantiles, dtype=np.float64),
        cut_points=np.asarray(histogram.cut_points, dtype=np.float64),
        cumulative=np.cumsum(counts)[:-1].astype(np.int64),
    )


def as_summary(sample: object, *, owner: str) -> NumericSummary | CategoricalSummary:
    """Return ``sample`` as a summary, summarising raw values.

    Raises:
        InvalidInputError: ``sample`` is empty or not one-dimensional.
    """
    if isinstance(sample, NumericSummary | CategoricalSummary):
        return sample
    if isinstance(sample, NumericProfile | CategoricalProfile):
        return summary_from_profile(sample, DEFAULT_LEVELS)
    if isinstance(sample, pd.DataFrame):
        raise InvalidInputError(f"{owner} compares one column at a time; got a DataFrame.")
    series = sample if isinstance(sample, pd.Series) else pd.Series(np.asarray(sample).ravel())
    if len(series) == 0:
        raise InvalidInputError(f"{owner} needs non-empty samples; got an empty one.")
    return summarize(series)
