"""Time buckets of serving observations: what one process saw of one version in 10 seconds.

A :class:`WindowAccumulator` holds the counts behind every windowed metric for one
endpoint, model version and role over one time bucket (by default 10 s, aligned to the
wall clock: buckets start at multiples of the bucket length since the Unix epoch).
Accumulators only ever add, so two of them merge by adding their counts
(:meth:`WindowAccumulator.merge`, associative and commutative): a window's value is
computed from the merge of every process's buckets that start inside the window.

What a bucket holds:

- requests, and errors by kind (:data:`ERROR_KINDS`);
- a latency histogram on :data:`LATENCY_BOUNDS_MS` (0.05 ms to about 63 s, ten buckets
  per decade, so a quantile is known within 26 %; linear interpolation inside the bucket
  and the exact minimum and maximum do better in practice), with the sum for the mean;
- rows predicted, rows whose prediction is null or NaN, the count and sum of numeric
  predictions (or of the positive-class score of a binary classifier), predicted class
  counts, and the prediction histogram for PSI on :class:`PredictionBins`;
- per input feature: rows missing the value, rows outside the signature's range, rows
  holding a category the signature does not list; and the feature histograms for
  ``feature_psi`` on a :class:`FeatureBinning` (the reference profile's decile cells or
  categories, see :mod:`ferryman.monitoring._feature_bins`), one per reference merged in;
- shadow comparison: rows compared, rows agreeing, and the sum and maximum of the
  absolute differences.

:func:`prediction_bins` derives the prediction histogram's cells from a version's
reference profile: the training predictions' decile bins (scores or values) or the
training class frequencies. Without a usable profile, binary classifiers' scores get
the fixed cells :data:`FIXED_SCORE_CUTS` (no reference, so no PSI), and other outputs
get no prediction histogram.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np

from ferryman.errors import InvalidInputError
from ferryman.monitoring._feature_bins import FeatureBinning
from ferryman.monitoring._prediction_bins import (
    FIXED_SCORE_CUTS,
    PSI_FLOOR,
    FloatArray,
    IntArray,
    PredictionBins,
    label_text,
    prediction_bins,
)

#: Default length of a time bucket (seconds).
DEFAULT_BUCKET_SECONDS: Final = 10

#: Upper bounds (milliseconds) of the latency histogram: 0.05 ms times 10^(k/10) for
#: k = 0..61, i.e. 0.05 ms to about 63 s, ten log-spaced buckets per decade. A last,
#: open-ended bucket holds anything slower.
LATENCY_BOUNDS_MS: Final[tuple[float, ...]] = tuple(0.05 * 10 ** (k / 10) for k in range(62))

#: Kinds of failed requests. ``server_error``: status >= 500 other than a timeout;
#: ``timeout``: the prediction took longer than the endpoint's timeout (504);
#: ``client_error``: another 4xx; ``schema_violation``: the signature rejected the input.
ERROR_KINDS: Final[tuple[str, ...]] = (
    "server_error",
    "timeout",
    "client_error",
    "schema_violation",
)
ErrorKind = Literal["server_error", "timeout", "client_error", "schema_violation"]

#: Format of :meth:`WindowAccumulator.to_dict`.
_FORMAT = 1
_LATENCY_EDGES = np.asarray(LATENCY_BOUNDS_MS)
_EMPTY_NAMES: tuple[str, ...] = ()


def bucket_start(timestamp: float, bucket_seconds: int) -> int:
    """Return the start (Unix seconds) of the wall-clock-aligned bucket holding ``timestamp``.

    Example:
        >>> bucket_start(1_700_000_007.5, 10)
        1700000000
    """
    return int(timestamp // bucket_seconds) * bucket_seconds


def latency_bucket_counts(latencies_ms: FloatArray) -> IntArray:
    """Count latencies (milliseconds) in the buckets of :data:`LATENCY_BOUNDS_MS`.

    A latency equal to a bound falls in the bucket that bound closes.
    """
    positions = np.searchsorted(_LATENCY_EDGES, latencies_ms, side="left")
    return np.bincount(positions, minlength=len(LATENCY_BOUNDS_MS) + 1).astype(np.int64)


def latency_quantile(counts: IntArray, q: float, minimum: float, maximum: float) -> float | None:
    """Estimate the ``q`` quantile (in [0, 1]) of latencies from their histogram.

    The rank ``q * n`` is located in its bucket and interpolated linearly between the
    bucket's bounds; the first bucket starts at the smallest latency seen, the open last
    one ends at the largest, and the result is clamped to ``[minimum, maximum]``.

    Returns:
        Milliseconds, or ``None`` when there is no latency.
    """
    total = int(counts.sum())
    if total == 0:
        return None
    rank = q * total
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, rank, side="left"))
    index = min(index, len(counts) - 1)
    while counts[index] == 0:  # rank 0 lands before the first non-empty bucket
        index += 1
    lower = LATENCY_BOUNDS_MS[index - 1] if index > 0 else minimum
    upper = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else maximum
    lower, upper = max(lower, minimum), min(upper, maximum)
    before = int(cumulative[index - 1]) if index > 0 else 0
    fraction = (rank - before) / int(counts[index])
    value = lower + (upper - lower) * fraction
    return float(min(max(value, minimum), maximum))


class WindowAccumulator:
    """The counts of one endpoint, version and role over one time bucket (or merged ones).

    Attributes are public counters, only ever increased by the ``add_*`` methods.
    Feature counts are aligned with :attr:`feature_names`; class counts are keyed by
    label text (:func:`label_text`).
    """

    __slots__ = (
        "agreed",
        "class_counts",
        "compared",
        "diff_max",
        "diff_rows",
        "diff_sum",
        "errors",
        "feature_counts",
        "feature_histograms",
        "feature_names",
        "input_rows",
        "known_classes",
        "latency_counts",
        "latency_max_ms",
        "latency_min_ms",
        "latency_sum_ms",
        "null_rows",
        "prediction_histograms",
        "requests",
        "rows",
        "value_count",
        "value_sum",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors: IntArray = np.zeros(len(ERROR_KINDS), dtype=np.int64)
        self.latency_counts: IntArray = np.zeros(len(LATENCY_BOUNDS_MS) + 1, dtype=np.int64)
        self.latency_sum_ms = 0.0
        self.latency_min_ms = math.inf
        self.latency_max_ms = -math.inf
        self.rows = 0
        self.null_rows = 0
        self.value_count = 0
        self.value_sum = 0.0
        self.class_counts: dict[str, int] = {}
        self.known_classes: tuple[str, ...] = ()
        # Prediction histograms by their cells: one per reference (version) merged in.
        self.prediction_histograms: dict[PredictionBins, IntArray] = {}
        self.input_rows = 0
        self.feature_names: tuple[str, ...] = _EMPTY_NAMES
        # Rows missing / out of range / with an unseen category, shape (3, features).
        self.feature_counts: IntArray = np.zeros((3, 0), dtype=np.int64)
        # Feature histograms by their cells: one per reference (version) merged in.
        self.feature_histograms: dict[FeatureBinning, IntArray] = {}
        self.compared = 0
        self.agreed = 0
        self.diff_rows = 0
        self.diff_sum = 0.0
        self.diff_max = -math.inf

    def __repr__(self) -> str:
        return (
            f"WindowAccumulator(requests={self.requests}, rows={self.rows}, "
            f"compared={self.compared})"
        )

    # -- recording ----------------------------------------------------------------------

    def add_requests(self, latencies_ms: FloatArray, errors: IntArray) -> None:
        """Add requests: their latencies (NaN: not timed) and error counts by kind.

        Args:
            latencies_ms: One entry per request; NaN for requests without a latency.
            errors: Counts per kind, aligned with :data:`ERROR_KINDS`.
        """
        self.requests += len(latencies_ms)
        self.errors += errors
        timed = latencies_ms[~np.isnan(latencies_ms)]
        if len(timed):
            self.latency_counts += latency_bucket_counts(timed)
            self.latency_sum_ms += float(timed.sum())
            self.latency_min_ms = min(self.latency_min_ms, float(timed.min()))
            self.latency_max_ms = max(self.latency_max_ms, float(timed.max()))

    def add_predictions(
        self,
        *,
        rows: int,
        null_rows: int,
        values: FloatArray | None,
        class_counts: Mapping[str, int],
        bin_counts: IntArray | None,
        bins: PredictionBins | None,
        known_classes: tuple[str, ...] = (),
    ) -> None:
        """Add the outputs of predicted rows.

        Args:
            rows: Rows predicted.
            null_rows: Rows whose prediction is null or NaN.
            values: The numeric predictions or positive-class scores to average (NaN
                left out), or ``None``.
            class_counts: Rows per predicted class (label text).
            bin_counts: Rows per cell of ``bins``, or ``None``.
            bins: The cells ``bin_counts`` refers to.
            known_classes: The classes the version's signature lists.
        """
        self.rows += rows
        self.null_rows += null_rows
        if values is not None:
            finite = values[~np.isnan(values)]
            self.value_count += len(finite)
            self.value_sum += float(finite.sum())
        for label, count in class_counts.items():
            self.class_counts[label] = self.class_counts.get(label, 0) + count
        if known_classes and known_classes != self.known_classes:
            self.known_classes = _union(self.known_classes, known_classes)
        if bins is not None and bin_counts is not None:
            self._add_bins(bins, bin_counts)

    def _add_bins(self, bins: PredictionBins, counts: IntArray) -> None:
        found = self.prediction_histograms.get(bins)
        if len(counts) != bins.cells:
            raise InvalidInputError(
                f"Expected {bins.cells} prediction histogram counts, got {len(counts)}."
            )
        self.prediction_histograms[bins] = (
            counts.astype(np.int64, copy=True) if found is None else found + counts
        )

    def add_features(self, names: tuple[str, ...], rows: int, counts: IntArray) -> None:
        """Add the input checks of ``rows`` rows.

        Args:
            names: The features checked, in the order of ``counts``' columns.
            rows: Rows checked.
            counts: Shape ``(3, len(names))``: rows missing the value, outside the
                signature's range, holding an unseen category.
        """
        self.input_rows += rows
        if names is self.feature_names or names == self.feature_names:
            self.feature_counts = self.feature_counts + counts
            return
        self._add_feature_counts(names, counts)

    def _add_feature_counts(self, names: tuple[str, ...], counts: IntArray) -> None:
        merged = _union(self.feature_names, names)
        table = np.zeros((3, len(merged)), dtype=np.int64)
        position = {name: i for i, name in enumerate(merged)}
        table[:, [position[n] for n in self.feature_names]] += self.feature_counts
        table[:, [position[n] for n in names]] += counts
        self.feature_names = merged
        self.feature_counts = table

    def add_feature_histogram(self, binning: FeatureBinning, counts: IntArray) -> None:
        """Add input rows counted in a version's feature histogram cells.

        Args:
            binning: The cells (the version's reference).
            counts: Rows per cell, aligned with ``binning``'s cells.

        Raises:
            InvalidInputError: ``counts`` does not have one entry per cell.
        """
        if len(counts) != binning.cells:
            raise InvalidInputError(
                f"Expected {binning.cells} feature histogram counts, got {len(counts)}."
            )
        found = self.feature_histograms.get(binning)
        self.feature_histograms[binning] = (
            counts.astype(np.int64, copy=True) if found is None else found + counts
        )

    def add_comparisons(
        self, *, rows: int, agreed: int, abs_diffs: FloatArray | None = None
    ) -> None:
        """Add shadow rows compared with the primary's answers.

        Args:
            rows: Rows compared.
            agreed: Rows whose predictions were the same.
            abs_diffs: Absolute differences of numeric predictions or scores, if any.
        """
        self.compared += rows
        self.agreed += agreed
        if abs_diffs is not None and len(abs_diffs):
            self.diff_rows += len(abs_diffs)
            self.diff_sum += float(abs_diffs.sum())
            self.diff_max = max(self.diff_max, float(abs_diffs.max()))

    # -- merging ------------------------------------------------------------------------

    def merge(self, other: WindowAccumulator) -> WindowAccumulator:
        """Return a new accumulator holding the counts of both (neither is changed).

        Prediction and feature histograms with the same cells (the same version's
        reference) add up; histograms with different cells are kept side by side.
        """
        merged = self.copy()
        merged.update(other)
        return merged

    def update(self, other: WindowAccumulator) -> None:
        """Add ``other``'s counts to this accumulator (see :meth:`merge`)."""
        self.requests += other.requests
        self.errors = self.errors + other.errors
        self.latency_counts = self.latency_counts + other.latency_counts
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_min_ms = min(self.latency_min_ms, other.latency_min_ms)
        self.latency_max_ms = max(self.latency_max_ms, other.latency_max_ms)
        self.add_predictions(
            rows=other.rows,
            null_rows=other.null_rows,
            values=None,
            class_counts=other.class_counts,
            bin_counts=None,
            bins=None,
            known_classes=other.known_classes,
        )
        for bins, counts in other.prediction_histograms.items():
            self._add_bins(bins, counts)
        self.value_count += other.value_count
        self.value_sum += other.value_sum
        if other.feature_names or other.input_rows:
            self.add_features(other.feature_names, other.input_rows, other.feature_counts)
        for binning, counts in other.feature_histograms.items():
            self.add_feature_histogram(binning, counts)
        self.compared += other.compared
        self.agreed += other.agreed
        self.diff_rows += other.diff_rows
        self.diff_sum += other.diff_sum
        self.diff_max = max(self.diff_max, other.diff_max)

    def copy(self) -> WindowAccumulator:
        """Return an independent copy."""
        clone = WindowAccumulator()
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, np.ndarray | dict):
                value = value.copy()  # the dict's arrays are replaced, never changed
            setattr(clone, name, value)
        return clone

    # -- storage ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as a JSON-safe dict (ints, floats, strings, None)."""
        return {
            "format": _FORMAT,
            "requests": self.requests,
            "errors": dict(zip(ERROR_KINDS, self.errors.tolist(), strict=True)),
            "latency_ms": {
                "counts": self.latency_counts.tolist(),
                "sum": self.latency_sum_ms,
                "min": _finite_or_none(self.latency_min_ms),
                "max": _finite_or_none(self.latency_max_ms),
            },
            "rows": self.rows,
            "null_rows": self.null_rows,
            "values": {"count": self.value_count, "sum": self.value_sum},
            "classes": dict(self.class_counts),
            "known_classes": list(self.known_classes),
            "prediction_histograms": [
                {"bins": bins.to_dict(), "counts": counts.tolist()}
                for bins, counts in self.prediction_histograms.items()
            ],
            "input_rows": self.input_rows,
            "features": {
                "names": list(self.feature_names),
                "missing": self.feature_counts[0].tolist(),
                "out_of_range": self.feature_counts[1].tolist(),
                "unseen_category": self.feature_counts[2].tolist(),
            },
            "feature_histograms": [
                {"bins": binning.to_dict(), "counts": counts.tolist()}
                for binning, counts in self.feature_histograms.items()
            ],
            "comparison": {
                "rows": self.compared,
                "agreed": self.agreed,
                "diff_rows": self.diff_rows,
                "diff_sum": self.diff_sum,
                "diff_max": _finite_or_none(self.diff_max),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowAccumulator:
        """Rebuild an accumulator from :meth:`to_dict` output.

        Raises:
            InvalidInputError: ``data`` is malformed or of an unknown format.
        """
        if data.get("format") != _FORMAT:
            raise InvalidInputError(
                f"Unknown metric bucket format {data.get('format')!r}; expected {_FORMAT}."
            )
        try:
            return cls._from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"Malformed metric bucket: {exc!r}") from exc

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> WindowAccumulator:
        acc = cls()
        acc.requests = int(data["requests"])
        acc.errors = np.asarray([int(data["errors"][k]) for k in ERROR_KINDS], dtype=np.int64)
        latency = data["latency_ms"]
        acc.latency_counts = _int_array(latency["counts"], len(LATENCY_BOUNDS_MS) + 1)
        acc.latency_sum_ms = float(latency["sum"])
        acc.latency_min_ms = math.inf if latency["min"] is None else float(latency["min"])
        acc.latency_max_ms = -math.inf if latency["max"] is None else float(latency["max"])
        acc.rows = int(data["rows"])
        acc.null_rows = int(data["null_rows"])
        acc.value_count = int(data["values"]["count"])
        acc.value_sum = float(data["values"]["sum"])
        acc.class_counts = {str(k): int(v) for k, v in data["classes"].items()}
        acc.known_classes = tuple(str(c) for c in data["known_classes"])
        for histogram in data["prediction_histograms"]:
            bins = PredictionBins.from_dict(histogram["bins"])
            acc._add_bins(bins, _int_array(histogram["counts"], bins.cells))
        acc.input_rows = int(data["input_rows"])
        features = data["features"]
        acc.feature_names = tuple(str(n) for n in features["names"])
        width = len(acc.feature_names)
        acc.feature_counts = np.stack(
            [
                _int_array(features[key], width)
                for key in ("missing", "out_of_range", "unseen_category")
            ]
        ).reshape(3, width)
        # Buckets written before feature histograms existed have none.
        for histogram in data.get("feature_histograms", ()):
            binning = FeatureBinning.from_dict(histogram["bins"])
            acc.add_feature_histogram(binning, _int_array(histogram["counts"], binning.cells))
        comparison = data["comparison"]
        acc.compared = int(comparison["rows"])
        acc.agreed = int(comparison["agreed"])
        acc.diff_rows = int(comparison["diff_rows"])
        acc.diff_sum = float(comparison["diff_sum"])
        maximum = comparison["diff_max"]
        acc.diff_max = -math.inf if maximum is None else float(maximum)
        return acc


def merge_all(accumulators: Sequence[WindowAccumulator]) -> WindowAccumulator:
    """Merge any number of accumulators (an empty one for none)."""
    total = WindowAccumulator()
    for accumulator in accumulators:
        total.update(accumulator)
    return total


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    seen = set(first)
    return first + tuple(name for name in second if name not in seen)


def _int_array(values: Sequence[int], length: int) -> IntArray:
    array = np.asarray(values, dtype=np.int64)
    if array.shape != (length,):
        raise ValueError(f"expected {length} counts, got {len(values)}")
    return array


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = [
    "DEFAULT_BUCKET_SECONDS",
    "ERROR_KINDS",
    "FIXED_SCORE_CUTS",
    "LATENCY_BOUNDS_MS",
    "PSI_FLOOR",
    "ErrorKind",
    "FeatureBinning",
    "PredictionBins",
    "WindowAccumulator",
    "bucket_start",
    "label_text",
    "latency_bucket_counts",
    "latency_quantile",
    "merge_all",
    "prediction_bins",
]
