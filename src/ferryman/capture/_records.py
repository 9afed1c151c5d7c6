"""Turning buffered submissions into Arrow tables of prediction records, in bulk.

The serving path hands the writer references (:data:`Submission`); this module runs on
the writer's thread. Submissions of one endpoint are grouped by their shape (the input
columns and container, the prediction's dtype and classes, the passthrough columns), and
each group becomes one table from concatenated arrays: a block of one-row DataFrames is
one ``to_numpy`` per frame and one ``np.concatenate``, never a Python dict per row. The
privacy policy is applied to the group's columns (Arrow compute; hashing and redaction
once per distinct value) before anything leaves this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ferryman.capture._redaction import redact_text
from ferryman.capture._schemas import (
    PROBABILITIES,
    RESERVED_COLUMNS,
    TIMESTAMP,
    as_text,
    concat,
)
from ferryman.capture.privacy import PrivacyPolicy, apply_action
from ferryman.flavors.base import Prediction

#: One captured request as the serving path handed it over (see ``CaptureWriter.submit``):
#: (time in seconds since the epoch, request id, endpoint, model version, role, inputs,
#: prediction, latency in ms, status, error, passthrough columns, array column names).
Submission = tuple[
    float,
    str,
    str,
    str | None,
    str,
    Any,
    Prediction | None,
    float,
    int,
    BaseException | str | None,
    Mapping[str, Sequence[Any]],
    Sequence[str] | None,
]

_MICROS_PER_HOUR = 3_600_000_000
_MAX_ERROR_CHARS = 2000
_REDACTED = "[REDACTED]"
_GOT = re.compile(r"\bgot\b.*", re.DOTALL)

_PLAIN = frozenset({list, np.ndarray})

# Normalised inputs: ("frame", (2-D block, DataFrame)) | ("array", 2-D ndarray) |
# ("columns", {name: list or 1-D ndarray}).
_Inputs = tuple[str, Any] | None


def endpoint_tables(
    submissions: Sequence[Submission], policy: PrivacyPolicy, secret: bytes | None
) -> list[tuple[int, pa.Table]]:
    """Build one endpoint's records: ``(hour start in µs since the epoch, table)`` per hour.

    Args:
        submissions: The endpoint's buffered submissions, in arrival order.
        policy: The endpoint's privacy policy, applied before anything is returned.
        secret: The key for hashed columns (``None``: hashed columns are dropped).
    """
    grouped = Grouped()
    grouped.add(submissions)
    return grouped.tables(policy, secret)


class Grouped:
    """One endpoint's submissions grouped by shape as they come, made into tables at once.

    The writer's thread adds what arrived every tenth of a second or so, and makes the
    tables once per write. Each addition does the per-request Python work for what it
    adds: reading each submission's shape, then, for each group it added to, one *chunk*
    (the records' ids, versions, statuses and latencies as lists; times, input matrices,
    predictions and probabilities each concatenated into one array). A write then joins
    each group's chunks (a few concatenations), makes the Arrow columns and applies the
    privacy policy: about a millisecond per group whatever its size, and no loop over the
    requests, so the once-a-second pause of the writer's thread, during which it holds
    the GIL, stays short. A group whose chunk cannot be made, or whose chunks do not join
    (an Arrow column's type inferred differently), is built from its submissions at write
    time instead, which raises as before when something in it is unreadable.
    Submissions stay referenced until :meth:`tables`, so the caches keyed by ``id``
    (column names, class lists) stay valid.
    """

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], _Group] = {}
        self.count = 0
        self._names: dict[int, tuple[str, ...]] = {}
        self._classes: dict[int, tuple[str, ...] | None] = {}

    def add(self, submissions: Sequence[Submission]) -> None:
        """Group ``submissions`` (in arrival order) with those added before.

        Raises:
            Exception: A submission cannot be read; those before it are added.
        """
        groups, names, classes = self.groups, self._names, self._classes
        touched: dict[int, _Group] = {}
        try:
            for item in submissions:
                inputs, rows = _normalise(item)
                key = (
                    _input_key(inputs, names, item[11]),
                    _prediction_key(item[6], classes),
                    tuple(item[10]),
                )
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(key[0])
                group.entries.append((item, inputs, rows))
                touched[id(group)] = group
                self.count += 1
        finally:
            for group in touched.values():
                group.extract()

    def submissions(self) -> list[Submission]:
        """Every submission added, group by group."""
        return [entry[0] for group in self.groups.values() for entry in group.entries]

    def tables(self, policy: PrivacyPolicy, secret: bytes | None) -> list[tuple[int, pa.Table]]:
        """The records, one table per hour: ``(hour start in µs since the epoch, table)``."""
        if not self.groups:
            return []
        tables = [group.table(policy, secret) for group in self.groups.values()]
        return list(_by_hour(concat(tables)))


class _Group:
    """Submissions of one shape, and the columns extracted from them so far."""

    __slots__ = ("broken", "chunks", "entries", "extracted", "input_key")

    def __init__(self, input_key: tuple[Any, ...] | None) -> None:
        self.input_key = input_key
        self.entries: list[tuple[Submission, _Inputs, int]] = []
        self.chunks: list[_Chunk] = []
        self.extracted = 0  # entries covered by the chunks
        self.broken = False  # a chunk could not be made: build from the entries

    def extract(self) -> None:
        """Make one chunk of the entries added since the last one."""
        if self.broken or self.extracted == len(self.entries):
            return
        entries = self.entries[self.extracted :]
        try:
            self.chunks.append(_chunk(self.input_key, entries))
        except Exception:  # built from the entries at write time, which says what is wrong
            self.broken = True
            return
        self.extracted = len(self.entries)

    def table(self, policy: PrivacyPolicy, secret: bytes | None) -> pa.Table:
        """The group's records with ``policy`` applied."""
        self.extract()
        if not self.broken:
            try:
                joined = _joined(self.chunks)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                joined = None  # chunks whose types differ: build from the entries
            if joined is not None:
                return _finished(joined, self.input_key, self.entries, policy, secret)
        return _group_table(self.input_key, self.entries, policy, secret)


@dataclass(slots=True)
class _Chunk:
    """Some of a group's records as concatenated arrays and lists, not yet Arrow.

    The inputs are one numeric matrix (``matrix``; 2-D arrays and numeric frames) or,
    for other shapes, Arrow columns already (``inputs``); likewise the passthrough
    columns. Predictions are their stacked values, probabilities and class labels.
    """

    counts: np.ndarray
    times: np.ndarray
    ids: list[str]
    versions: list[str | None]
    roles: list[str]
    statuses: list[int]
    latencies: list[float]
    matrix: np.ndarray | None
    inputs: dict[str, pa.Array]
    passthrough: dict[str, pa.Array]
    values: np.ndarray | None
    probabilities: np.ndarray | None
    classes: Any
    has_errors: bool


def _chunk(
    input_key: tuple[Any, ...] | None, entries: list[tuple[Submission, _Inputs, int]]
) -> _Chunk:
    items = [entry[0] for entry in entries]
    count = len(items)
    counts = np.fromiter((entry[2] for entry in entries), dtype=np.int64, count=count)
    matrix, inputs = _input_parts(input_key, entries) if input_key is not None else (None, {})
    predictions = [i[6] for i in items if i[6] is not None]
    values = probabilities = classes = None
    if predictions:
        values = _stacked([p.predictions for p in predictions])
        if predictions[0].probabilities is not None:
            probabilities = _stacked([p.probabilities for p in predictions])
            classes = predictions[0].classes
    return _Chunk(
        counts=counts,
        times=np.fromiter((i[0] for i in items), np.float64, count),
        ids=[i[1] for i in items],
        versions=[i[3] for i in items],
        roles=[i[4] for i in items],
        statuses=[int(i[8]) for i in items],
        latencies=[float(i[7]) for i in items],
        matrix=matrix,
        inputs=inputs,
        passthrough=_passthrough_columns(items, counts),
        values=values,
        probabilities=probabilities,
        classes=classes,
        has_errors=any(i[9] is not None for i in items),
    )


def _stacked(arrays: list[Any]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _joined(chunks: list[_Chunk]) -> _Chunk:
    """One chunk of many (raises ``ArrowInvalid`` when an Arrow column's types differ)."""
    if len(chunks) == 1:
        return chunks[0]

    def arrays(name: str) -> Any:
        parts = [getattr(c, name) for c in chunks]
        return None if parts[0] is None else np.concatenate(parts)

    def listed(name: str) -> list[Any]:
        return list(chain.from_iterable(getattr(c, name) for c in chunks))

    def columns(name: str) -> dict[str, pa.Array]:
        parts = [getattr(c, name) for c in chunks]
        return {key: pa.concat_arrays([part[key] for part in parts]) for key in parts[0]}

    fields: dict[str, Any] = {name: arrays(name) for name in _ARRAY_FIELDS}
    fields.update((name, listed(name)) for name in _LIST_FIELDS)
    fields.update((name, columns(name)) for name in ("inputs", "passthrough"))
    return _Chunk(**fields, classes=chunks[0].classes, has_errors=any(c.has_errors for c in chunks))


_ARRAY_FIELDS = ("counts", "times", "matrix", "values", "probabilities")
_LIST_FIELDS = ("ids", "versions", "roles", "statuses", "latencies")


def _finished(
    chunk: _Chunk,
    input_key: tuple[Any, ...] | None,
    entries: list[tuple[Submission, _Inputs, int]],
    policy: PrivacyPolicy,
    secret: bytes | None,
) -> pa.Table:
    """A group's table from its (joined) chunk, with the privacy policy applied."""
    counts = chunk.counts
    total = int(counts.sum())
    single = total == len(counts)

    def repeated(values: list[Any], kind: pa.DataType) -> pa.Array:
        if single:
            return pa.array(values, kind)
        return pa.array(np.repeat(np.array(values, dtype=object), counts), kind)

    micros = np.rint(chunk.times * 1e6).astype(np.int64)
    if single:
        rows = np.zeros(total, dtype=np.int32)
    else:
        micros = np.repeat(micros, counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        rows = (np.arange(total) - starts).astype(np.int32)
    if chunk.has_errors:
        items = [entry[0] for entry in entries]
        texts, codes = _errors(items, entries, policy, chunk.passthrough)
        errors, error_codes = repeated(texts, pa.string()), repeated(codes, pa.string())
    else:
        errors = error_codes = pa.nulls(total, pa.string())
    columns: dict[str, pa.Array] = {
        "request_id": repeated(chunk.ids, pa.string()),
        "row": pa.array(rows, pa.int32()),
        "time": pa.array(micros, pa.int64()).cast(TIMESTAMP),
        "model_version": repeated(chunk.versions, pa.string()),
        "role": repeated(chunk.roles, pa.string()),
        "status": repeated(chunk.statuses, pa.int32()),
        "error": errors,
        "error_code": error_codes,
        "latency_ms": repeated(chunk.latencies, pa.float64()),
    }
    inputs = chunk.inputs
    if chunk.matrix is not None and input_key is not None:
        # Column-major, so that every column is contiguous and Arrow takes it as it is.
        matrix = np.asfortranarray(chunk.matrix)
        inputs = {name: _to_arrow(matrix[:, j]) for j, name in enumerate(input_key[1])}
    kept = _protect(inputs, policy, secret)
    if kept:
        columns["inputs"] = pa.StructArray.from_arrays(list(kept.values()), names=list(kept))
    for name, values in _protect(chunk.passthrough, policy, secret).items():
        columns[f"passthrough_{name}" if name in RESERVED_COLUMNS else name] = values
    if chunk.values is not None:
        columns.update(_prediction_columns(chunk.values, chunk.probabilities, chunk.classes))
    return pa.table(columns)


def _group_table(
    input_key: tuple[Any, ...] | None,
    entries: list[tuple[Submission, _Inputs, int]],
    policy: PrivacyPolicy,
    secret: bytes | None,
) -> pa.Table:
    """A group's table straight from its submissions (raises what cannot be read)."""
    return _finished(_chunk(input_key, entries), input_key, entries, policy, secret)


def record_count(item: Submission) -> int:
    """How many records (rows) a submission makes."""
    prediction = item[6]
    if prediction is not None:
        return len(prediction)
    data = item[5]
    if isinstance(data, pd.DataFrame | np.ndarray):
        return int(data.shape[0]) or 1
    return 1


def _normalise(item: Submission) -> tuple[_Inputs, int]:
    """The inputs in one of three forms, and the number of records the item makes.

    A DataFrame costs one ``to_numpy`` here and nothing else per frame: pandas' own
    per-call overhead (``shape``, ``dtypes``, column access) dominates a one-row frame.
    """
    data, prediction = item[5], item[6]
    inputs: _Inputs = None
    rows: int | None = None
    if isinstance(data, pd.DataFrame):
        block = data.to_numpy()
        if block.ndim == 2 and block.shape[1]:
            inputs, rows = ("frame", (block, data)), block.shape[0]
    elif isinstance(data, np.ndarray):
        if data.ndim == 2 and data.shape[1]:
            inputs, rows = ("array", data), data.shape[0]
    elif isinstance(data, Mapping):
        if all(type(k) is str and type(v) in _PLAIN for k, v in data.items()):
            columns = data  # the common case: taken as it is, no copy
        else:
            columns = {str(k): _column_values(v) for k, v in data.items()}
        if columns:
            inputs, rows = ("columns", columns), max(map(len, columns.values()))
    elif isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        keys = list(dict.fromkeys(str(k) for record in data for k in record))
        if keys:
            columns = {k: [record.get(k) for record in data] for k in keys}
            inputs, rows = ("columns", columns), len(data)
    count = prediction.predictions.shape[0] if prediction is not None else (rows or 1)
    if rows is not None and rows != count:
        inputs = None  # inputs that do not line up with the outputs are not recorded
    if inputs is not None and inputs[0] == "columns" and min(map(len, inputs[1].values())) < count:
        inputs = ("columns", {k: _padded(v, count) for k, v in inputs[1].items()})
    return inputs, count


def _column_values(values: Any) -> list[Any] | np.ndarray:
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    if isinstance(values, list):
        return values
    if isinstance(values, tuple | pd.Series | np.ndarray | pa.Array):
        return list(values.tolist() if hasattr(values, "tolist") else values)
    return [values]


def _input_key(
    inputs: _Inputs, names: dict[int, tuple[str, ...]], labels: Sequence[str] | None
) -> tuple[Any, ...] | None:
    if inputs is None:
        return None
    kind, data = inputs
    if kind == "frame":
        block, frame = data
        columns = frame.columns
        found = names.get(id(columns))
        if found is None:
            found = names[id(columns)] = tuple(str(name) for name in columns)
        return (kind, found, block.dtype)
    if kind == "array":
        width = data.shape[1]
        if labels is None or len(labels) != width:
            return (kind, tuple(f"x{j}" for j in range(width)), data.dtype)
        found = names.get(id(labels))
        if found is None:  # callers pass the same names object with every request
            found = names[id(labels)] = tuple(str(label) for label in labels)
        return (kind, found, data.dtype)
    return (kind, tuple(data))


def _prediction_key(
    prediction: Prediction | None, classes: dict[int, tuple[str, ...] | None]
) -> tuple[Any, ...] | None:
    if prediction is None:
        return None
    values, probabilities = prediction.predictions, prediction.probabilities
    width = values.shape[1] if values.ndim == 2 else 0
    shape = None if probabilities is None else probabilities.shape[1]
    # Most models hand out the same classes list with every prediction: convert it once
    # per flush (every submission is alive until the flush ends, so ids are not reused).
    labels = prediction.classes
    found = classes.get(id(labels), ())
    if found == ():
        found = classes[id(labels)] = None if labels is None else tuple(map(str, labels))
    return (values.dtype, width, shape, found)


def _input_parts(
    input_key: tuple[Any, ...], entries: list[tuple[Submission, _Inputs, int]]
) -> tuple[np.ndarray | None, dict[str, pa.Array]]:
    """The inputs as one numeric matrix, or else as Arrow columns."""
    kind = input_key[0]
    data = [entry[1][1] for entry in entries if entry[1] is not None]
    if kind == "array":
        return _stacked(data), {}
    if kind == "frame":
        matrix = _stacked([block for block, _ in data])
        if matrix.dtype.kind != "O":
            return matrix, {}
        # Mixed dtypes: the first frame's dtypes (once per group) keep ints ints.
        dtypes = list(data[0][1].dtypes)
        arrays = [_to_arrow(matrix[:, j], dtypes[j]) for j in range(matrix.shape[1])]
        return None, dict(zip(input_key[1], arrays, strict=True))
    return None, _inputs_columns(input_key, entries)


def _inputs_columns(
    input_key: tuple[Any, ...], entries: list[tuple[Submission, _Inputs, int]]
) -> dict[str, pa.Array]:
    """Arrow columns of inputs given as dicts of columns (one concatenation per column)."""
    data = [entry[1][1] for entry in entries if entry[1] is not None]
    columns: dict[str, pa.Array] = {}
    for name in input_key[1]:
        parts = [columns_of[name] for columns_of in data]
        first = parts[0]
        if isinstance(first, np.ndarray) and all(
            isinstance(part, np.ndarray) and part.dtype == first.dtype and part.ndim == 1
            for part in parts
        ):
            merged = first if len(parts) == 1 else np.concatenate(parts)
            columns[name] = _to_arrow(merged, merged.dtype)
        else:
            columns[name] = _to_arrow([value for part in parts for value in _listed(part)])
    return columns


def _listed(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _to_arrow(values: Any, dtype: Any = None) -> pa.Array:
    """One column as Arrow: the frame's dtype when it has a plain NumPy one, else inferred."""
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        try:
            return pa.array(values, pa.from_numpy_dtype(dtype), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        values = values.astype(object)
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([None if _missing(v) else str(v) for v in values], pa.string())
    return array if not pa.types.is_null(array.type) else pa.nulls(len(array), pa.string())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _passthrough_columns(items: list[Submission], counts: np.ndarray) -> dict[str, pa.Array]:
    names = list(items[0][10])
    columns: dict[str, pa.Array] = {}
    for name in names:
        values: list[Any] = []
        for item, count in zip(items, counts.tolist(), strict=True):
            values.extend(_padded(list(item[10].get(name) or ()), count))
        columns[name] = _to_arrow(values)
    return columns


def _padded(values: Any, count: int) -> Any:
    if len(values) == count:
        return values
    return (list(values) + [None] * count)[:count]


def _protect(
    columns: dict[str, pa.Array], policy: PrivacyPolicy, secret: bytes | None
) -> dict[str, pa.Array]:
    kept: dict[str, pa.Array] = {}
    for name, values in columns.items():
        result = apply_action(values, policy.action(name), secret)
        if result is not None:
            kept[name] = result
    return kept


def _errors(
    items: list[Submission],
    entries: list[tuple[Submission, _Inputs, int]],
    policy: PrivacyPolicy,
    passthrough: dict[str, pa.Array],
) -> tuple[list[str | None], list[str | None]]:
    texts: list[str | None] = []
    codes: list[str | None] = []
    protected = policy.protected
    for item, inputs, _ in entries:
        error = item[9]
        if error is None:
            texts.append(None)
            codes.append(None)
            continue
        if isinstance(error, BaseException):
            text = str(error) or type(error).__name__
            code = getattr(error, "code", None)
            codes.append(code if isinstance(code, str) else type(error).__name__)
        else:
            text = str(error)
            codes.append(None)
        if protected:
            values = _protected_values(item, inputs, protected)
            text = _sanitise(text, values, protected)
        texts.append(text[:_MAX_ERROR_CHARS])
    return texts, codes


def _protected_values(item: Submission, inputs: _Inputs, protected: frozenset[str]) -> list[str]:
    """The raw values of protected columns in one errored request (rare: errors only)."""
    values: list[Any] = []
    for name, column in item[10].items():
        if name in protected:
            values.extend(column)
    if inputs is not None:
        kind, data = inputs
        if kind == "frame":
            block, frame = data
            for position, name in enumerate(map(str, frame.columns)):
                if name in protected:
                    values.extend(block[:, position].tolist())
        elif kind == "columns":
            for name in protected.intersection(data):
                values.extend(list(data[name]))
        elif item[11] is not None:
            for position, name in enumerate(item[11]):
                if name in protected and position < data.shape[1]:
                    values.extend(data[:, position].tolist())
    return [str(value) for value in values if not _missing(value)]


def _sanitise(text: str, values: list[str], protected: frozenset[str]) -> str:
    """Keep protected values out of an error message (which may quote the input)."""
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) >= 3:
            text = text.replace(value, _REDACTED)
    if any(f"'{name}'" in text or f'"{name}"' in text for name in protected):
        text = _GOT.sub(f"got {_REDACTED}", text)
    return redact_text(text)


def _prediction_columns(
    values: np.ndarray, probabilities: np.ndarray | None, classes: Any
) -> dict[str, pa.Array]:
    """The ``prediction`` column, and ``probabilities`` (a map of class to score) if given."""
    columns: dict[str, pa.Array] = {}
    if values.ndim == 1:
        columns["prediction"] = _to_arrow(values)
    else:
        width = values.shape[1]
        flat = _to_arrow(values.reshape(-1))
        offsets = pa.array(np.arange(0, values.shape[0] * width + 1, width, dtype=np.int32))
        columns["prediction"] = pa.ListArray.from_arrays(offsets, flat)
    if probabilities is not None:
        rows, width = probabilities.shape
        labels = classes if classes is not None else list(range(width))
        keys = as_text(_to_arrow(np.asarray(labels, dtype=object)))
        offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
        repeated = keys.take(pa.array(np.tile(np.arange(width), rows)))
        items = pa.array(probabilities.reshape(-1).astype(np.float64, copy=False))
        columns["probabilities"] = pa.MapArray.from_arrays(
            offsets, repeated, items, type=PROBABILITIES
        )
    return columns


def _by_hour(table: pa.Table) -> Iterator[tuple[int, pa.Table]]:
    micros = table.column("time").combine_chunks().cast(pa.int64()).to_numpy()
    hours = micros // _MICROS_PER_HOUR
    first = hours[0]
    if (hours == first).all():
        yield int(first) * _MICROS_PER_HOUR, table
        return
    for hour in np.unique(hours):
        yield int(hour) * _MICROS_PER_HOUR, table.filter(pa.array(hours == hour))
