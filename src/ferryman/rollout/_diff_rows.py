"""The vectorised row arithmetic behind :func:`ferryman.rollout.diff.compare`.

Everything here works on whole Arrow columns and NumPy arrays, never a Python loop per
row (the one exception, counting error reasons, loops over the failed rows only). The
public function assembles the report's dataclasses from what these return.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.errors import InvalidInputError

#: Most labels a confusion table shows; rarer ones are pooled as :data:`OTHER_LABEL`.
MAX_CONFUSION_LABELS = 20
OTHER_LABEL = "(other)"
#: Most distinct error reasons listed per version.
MAX_ERROR_REASONS = 5
#: Longest error reason kept, in characters.
MAX_REASON_CHARS = 300

_HISTOGRAM_BINS = 40


@dataclass(frozen=True)
class Side:
    """One version's answers as arrays, and which rows it answered.

    Attributes:
        prediction: One prediction per row.
        status: HTTP status per row (0 where unknown).
        ok: Per row: answered (status below 400, prediction neither null nor NaN).
        probabilities: Class -> probability maps, or ``None``.
        latency: Milliseconds per row (NaN where unknown), or ``None``.
        errors: Error text per row, or ``None``.
        versions: Model version per row, or ``None``.
    """

    prediction: pa.Array
    status: np.ndarray
    ok: np.ndarray
    probabilities: pa.Array | None
    latency: np.ndarray | None
    errors: pa.Array | None
    versions: pa.Array | None


@dataclass(frozen=True)
class Measured:
    """Per-row differences of one kind, and their summary.

    Attributes:
        agreement_rate: Share of compared rows with equal labels (classification).
        mean_abs_diff: Mean absolute difference, when there are numbers to subtract.
        max_abs_diff: Largest absolute difference.
        difference_of: What the differences are of.
        positive_class: The positive class of a binary classifier.
        confusion: ``(labels, counts)``: stable labels by row, candidate's by column.
        histogram: ``(edges, counts)`` of the signed differences.
        difference: Per row: the difference reported with a disagreement (NaN: none).
        mismatch: Per row: whether the answers differ (labels, or values).
        magnitude: Per row: how much they differ, for ordering (NaN: unknown).
    """

    agreement_rate: float | None
    mean_abs_diff: float | None
    max_abs_diff: float | None
    difference_of: str | None
    positive_class: str | None
    confusion: tuple[list[str], np.ndarray] | None
    histogram: tuple[np.ndarray, np.ndarray] | None
    difference: np.ndarray
    mismatch: np.ndarray
    magnitude: np.ndarray


def side(table: pa.Table, name: str) -> Side:
    """Read one version's answers from a table of prediction-log columns.

    Raises:
        InvalidInputError: No ``prediction`` column, or several outputs per row.
    """
    prediction = column(table, "prediction")
    if prediction is None:
        raise InvalidInputError(
            f"The {name} table has no 'prediction' column; it has: "
            f"{', '.join(table.column_names) or 'no columns'}."
        )
    if pa.types.is_list(prediction.type) or pa.types.is_fixed_size_list(prediction.type):
        raise InvalidInputError(
            f"The {name} predictions hold several outputs per row; the diff report compares "
            "models with one output."
        )
    n = table.num_rows
    status_column = column(table, "status")
    status = (
        np.full(n, 200, dtype=np.int64)
        if status_column is None
        else np.asarray(
            pc.fill_null(status_column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        )
    )
    ok = (status >= 100) & (status < 400) & valid(prediction)
    if pa.types.is_floating(prediction.type):
        ok &= ~np.isnan(np.asarray(prediction.to_numpy(zero_copy_only=False), dtype=np.float64))
    probabilities = column(table, "probabilities")
    if probabilities is not None and not pa.types.is_map(probabilities.type):
        probabilities = None
    latency = column(table, "latency_ms")
    return Side(
        prediction=prediction,
        status=status,
        ok=ok,
        probabilities=probabilities,
        latency=None
        if latency is None
        else np.asarray(
            pc.cast(latency, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        ),
        errors=column(table, "error"),
        versions=column(table, "model_version"),
    )


def decide_kind(stable: Side, candidate: Side) -> Literal["classification", "regression"]:
    """Regression for float predictions without probabilities, else classification."""
    sides = (stable, candidate)
    if any(s.probabilities is not None and s.probabilities.null_count < len(s.ok) for s in sides):
        return "classification"
    types = [s.prediction.type for s in sides if not pa.types.is_null(s.prediction.type)]
    if types and all(pa.types.is_floating(t) for t in types):
        return "regression"
    return "classification"


def regression(stable: Side, candidate: Side, both: np.ndarray) -> Measured:
    """Candidate minus stable prediction, over the rows both answered.

    Raises:
        InvalidInputError: A version's predictions are not numbers.
    """
    before, after = numbers(stable.prediction, "stable"), numbers(candidate.prediction, "candidate")
    difference = np.where(both, after - before, np.nan)
    magnitude = np.abs(difference)
    compared = magnitude[both]
    return Measured(
        agreement_rate=None,
        mean_abs_diff=float(compared.mean()) if compared.size else None,
        max_abs_diff=float(compared.max()) if compared.size else None,
        difference_of="prediction" if compared.size else None,
        positive_class=None,
        confusion=None,
        histogram=histogram(difference[both]),
        difference=difference,
        mismatch=both & (np.nan_to_num(magnitude) > 0),
        magnitude=magnitude,
    )


def classification(stable: Side, candidate: Side, both: np.ndarray) -> Measured:
    """Label agreement, the confusion table and, with probabilities, their changes."""
    stable_labels, candidate_labels = labels(stable.prediction), labels(candidate.prediction)
    equal = pc.fill_null(pc.equal(stable_labels, candidate_labels), False)
    mismatch = both & ~np.asarray(equal.to_numpy(zero_copy_only=False), dtype=bool)
    n = len(both)
    difference = np.full(n, np.nan)
    magnitude = np.full(n, np.nan)
    mean_abs = max_abs = None
    difference_of = positive = None
    shifts = None
    if stable.probabilities is not None and candidate.probabilities is not None:
        classes = class_names(stable.probabilities, candidate.probabilities)
        usable = both.copy() if classes else np.zeros(n, dtype=bool)
        if classes:
            before = probability_matrix(stable.probabilities, classes)
            after = probability_matrix(candidate.probabilities, classes)
            usable &= ~np.isnan(before[:, 0]) & ~np.isnan(after[:, 0])
        if usable.any():
            change = after[usable] - before[usable]
            magnitude[usable] = np.abs(change).max(axis=1)
            if len(classes) == 2:
                positive = classes[1]
                difference[usable] = change[:, 1]
                difference_of = f"probability of {positive!r}"
                mean_abs = float(np.abs(change[:, 1]).mean())
                max_abs = float(np.abs(change[:, 1]).max())
                shifts = change[:, 1]
            else:
                difference[usable] = magnitude[usable]
    compared = int(both.sum())
    return Measured(
        agreement_rate=float(1.0 - mismatch.sum() / compared) if compared else None,
        mean_abs_diff=mean_abs,
        max_abs_diff=max_abs,
        difference_of=difference_of,
        positive_class=positive,
        confusion=confusion(stable_labels, candidate_labels, both),
        histogram=None if shifts is None else histogram(shifts),
        difference=difference,
        mismatch=mismatch,
        magnitude=magnitude,
    )


def pick(measured: Measured, both: np.ndarray, top: int) -> np.ndarray:
    """Rows to list as disagreements: mismatches first, then by magnitude, then in order.

    Linear in the rows: only the ``top`` chosen are sorted.
    """
    magnitude = np.nan_to_num(measured.magnitude, nan=0.0)
    groups = (
        np.flatnonzero(measured.mismatch),
        np.flatnonzero(both & ~measured.mismatch & (magnitude > 0)),
    )
    chosen: list[np.ndarray] = []
    room = top
    for group in groups:
        if room <= 0:
            break
        if group.size > room:
            values = magnitude[group]
            kth = np.partition(values, values.size - room)[values.size - room]
            above = group[values > kth]
            group = np.concatenate([above, group[values == kth][: room - above.size]])
        order = np.lexsort((group, -magnitude[group]))
        chosen.append(group[order])
        room -= group.size
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def first_rows(table: pa.Table) -> np.ndarray:
    """Per row: whether it is the first row of its request (latency is per request)."""
    rows = column(table, "row")
    if rows is None:
        return np.ones(table.num_rows, dtype=bool)
    first = pc.fill_null(pc.equal(rows, 0), True)
    return np.asarray(first.to_numpy(zero_copy_only=False), dtype=bool)


def latency_percentiles(side: Side, first: np.ndarray) -> tuple[float | None, float | None]:
    """p50 and p99 of the per-request latency (milliseconds), or ``None`` when unknown."""
    if side.latency is None:
        return None, None
    latency = side.latency[first & np.isfinite(side.latency)]
    if not latency.size:
        return None, None
    p50, p99 = np.percentile(latency, [50, 99])
    return float(p50), float(p99)


def error_reasons(side: Side) -> tuple[tuple[str, int], ...]:
    """The most frequent reasons a version did not answer, ``(reason, rows)``."""
    bad = ~side.ok
    count = int(bad.sum())
    if not count:
        return ()
    texts = [None] * count if side.errors is None else side.errors.filter(pa.array(bad)).to_pylist()
    statuses = side.status[bad].tolist()
    present = valid(side.prediction)[bad].tolist()
    reasons: Counter[str] = Counter()
    for text, status, has_prediction in zip(texts, statuses, present, strict=True):
        if text:
            reason = str(text).strip().splitlines()[0][:MAX_REASON_CHARS]
        elif status >= 400:
            reason = f"HTTP {status}"
        elif status < 100:
            reason = "no status recorded"
        else:
            reason = "NaN prediction" if has_prediction else "null prediction"
        reasons[reason] += 1
    return tuple(reasons.most_common(MAX_ERROR_REASONS))


def version_of(side: Side, role: str, notes: list[str]) -> str:
    """The version(s) that answered, most rows first; a note when there are several."""
    if side.versions is None:
        return ""
    counts = pc.value_counts(side.versions.filter(side.versions.is_valid())).to_pylist()
    found = sorted(
        ((str(c["values"]), int(c["counts"])) for c in counts), key=lambda i: (-i[1], i[0])
    )
    if len(found) > 1:
        listed = ", ".join(f"{name} ({rows} rows)" for name, rows in found)
        notes.append(
            f"The {role} answers come from several versions: {listed}; each row is compared "
            "with whichever version answered it. Narrow the window to compare one."
        )
    return ", ".join(name for name, _ in found)


def confusion(
    stable: pa.Array, candidate: pa.Array, both: np.ndarray
) -> tuple[list[str], np.ndarray] | None:
    """Counts of (stable label, candidate label) over the compared rows."""
    if not both.any():
        return None
    where = pa.array(both)
    before, after = stable.filter(where), candidate.filter(where)
    counts = pc.value_counts(pa.concat_arrays([before, after])).to_pylist()
    ranked = sorted(counts, key=lambda c: (-int(c["counts"]), str(c["values"])))
    kept = sorted((str(c["values"]) for c in ranked[:MAX_CONFUSION_LABELS]), key=_label_key)
    names = [*kept, OTHER_LABEL] if len(ranked) > MAX_CONFUSION_LABELS else kept
    value_set = pa.array(kept, pa.string())
    width = len(names)

    def codes(values: pa.Array) -> np.ndarray:
        found = pc.fill_null(pc.index_in(values, value_set=value_set), width - 1)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)

    flat = np.bincount(codes(before) * width + codes(after), minlength=width * width)
    return names, flat.reshape(width, width)


def histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(edges, counts)`` of the finite values, up to 40 bins; ``None`` without any."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    bins = int(min(_HISTOGRAM_BINS, max(1, np.ceil(np.sqrt(finite.size)))))
    counts, edges = np.histogram(finite, bins=bins)
    return edges, counts


def class_names(stable: pa.Array, candidate: pa.Array) -> list[str]:
    """Class names in the stable version's order, then any only the candidate has."""
    keys = [_entries(maps)[0] for maps in (stable, candidate)]
    return [str(k) for k in pc.unique(pa.concat_arrays(keys)).to_pylist() if k is not None]


def probability_matrix(maps: pa.Array, classes: list[str]) -> np.ndarray:
    """An ``(n, len(classes))`` matrix: NaN rows without probabilities, 0 for absent classes."""
    n = len(maps)
    matrix = np.full((n, len(classes)), np.nan)
    present = valid(maps)
    matrix[present] = 0.0
    keys, items, offsets = _entries(maps)
    rows = np.repeat(np.arange(n), np.diff(offsets))
    found = pc.fill_null(pc.index_in(keys, value_set=pa.array(classes, pa.string())), -1)
    columns = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
    keep = (columns >= 0) & present[rows]
    matrix[rows[keep], columns[keep]] = np.nan_to_num(items, nan=0.0)[keep]
    return matrix


def _entries(maps: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Keys, items (float64) and row offsets of a map array.

    A sliced map array keeps its parent's keys and items; its offsets point into them.
    """
    offsets = np.asarray(maps.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    keys = maps.keys.slice(start, stop - start)
    items = pc.cast(maps.items.slice(start, stop - start), pa.float64())
    values = np.asarray(items.to_numpy(zero_copy_only=False), dtype=np.float64)
    return keys, values, offsets - start


def labels(prediction: pa.Array) -> pa.Array:
    """Labels as Arrow's text (``1`` for 1 and 1.0, ``true``), as the log compares them."""
    if pa.types.is_null(prediction.type):
        return pa.nulls(len(prediction), pa.string())
    if pa.types.is_string(prediction.type):
        return prediction
    try:
        return pc.cast(prediction, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        text = [None if v is None else str(v) for v in prediction.to_pylist()]
        return pa.array(text, pa.string())


def numbers(prediction: pa.Array, role: str) -> np.ndarray:
    """Predictions as float64 (NaN where null).

    Raises:
        InvalidInputError: They are not numbers.
    """
    if pa.types.is_null(prediction.type):
        return np.full(len(prediction), np.nan)
    try:
        values = pc.cast(prediction, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInputError(
            f"The {role} predictions are not numbers ({prediction.type}); compare them with "
            "kind='classification'."
        ) from None
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def valid(array: pa.Array) -> np.ndarray:
    """Per row: not null."""
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def column(table: pa.Table, name: str) -> pa.Array | None:
    """One column as a single array, or ``None`` when the table has none of that name."""
    if name not in table.column_names:
        return None
    return table.column(name).combine_chunks()


def finite(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, NaN or infinite."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _label_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
