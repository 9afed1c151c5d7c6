"""Re-scoring captured requests with a candidate, for :func:`ferryman.rollout.diff.replay`.

The captured ``inputs`` (after the endpoint's privacy policy) are laid out as the
candidate's signature expects; rows that cannot be scored are set aside with the reason;
the rest are predicted in chunks. A chunk that fails is split around the row the
validator names (or halved, for a model error) until each failing row is isolated, within
a budget of calls per chunk so that a candidate that fails everywhere stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.errors import InvalidInputError, SchemaValidationError
from ferryman.rollout._diff_rows import MAX_REASON_CHARS, column, labels, valid

if TYPE_CHECKING:
    import pandas as pd

    from ferryman.flavors.base import Prediction
    from ferryman.registry import Model
    from ferryman.signature import Signature

#: Most validation or model calls spent isolating failing rows in one chunk.
ISOLATION_BUDGET = 32

_ROW_IN_MESSAGE = re.compile(r",? row \d+")
_HEX_DIGEST = r"^[0-9a-f]{64}$"
_REDACTION_MARK = r"\[(?:EMAIL|IP|CARD|PHONE)\]"


@dataclass(frozen=True)
class ReplayInputs:
    """The captured inputs laid out for the candidate, and the rows that cannot be scored.

    Attributes:
        frame: The candidate's columns in its order (``None`` when some are missing).
        tensor: Whether the candidate takes a 2-D array rather than a DataFrame.
        unusable: Per row, why it cannot be scored (``None`` where it can).
        blocked: Per row, whether it cannot be scored.
    """

    frame: pd.DataFrame | None
    tensor: bool
    unusable: np.ndarray
    blocked: np.ndarray

    @classmethod
    def build(
        cls,
        table: pa.Table,
        signature: Signature | None,
        policy: dict[str, str],
        notes: list[str],
        ref: str,
    ) -> ReplayInputs:
        """Lay out ``table``'s ``inputs`` for a candidate; add what limits it to ``notes``.

        Args:
            table: Captured records with an ``inputs`` struct column.
            signature: The candidate's signature (``None``: columns as captured).
            policy: The endpoint's privacy policy, column -> action (may be empty).
            notes: Where warnings go.
            ref: The candidate's reference, for the warnings.
        """
        n = table.num_rows
        unusable = np.full(n, None, dtype=object)
        blocked = np.zeros(n, dtype=bool)

        def block(where: np.ndarray | slice, reason: str) -> None:
            unusable[where], blocked[where] = reason, True

        struct = column(table, "inputs")
        if struct is None or not pa.types.is_struct(struct.type) or not struct.type.num_fields:
            notes.append(
                "No inputs were captured with these records, so the candidate cannot be scored "
                "on them; every row counts as its error."
            )
            block(slice(None), "no inputs captured")
            return cls(frame=None, tensor=False, unusable=unusable, blocked=blocked)
        captured = dict(zip([f.name for f in struct.type], struct.flatten(), strict=True))
        block(~valid(struct), "no inputs captured for this row")
        if signature is None:
            notes.append(
                f"{ref} has no signature: the captured columns are passed in their captured "
                "order, without validation."
            )
            names = targets = list(captured)
        else:
            targets = list(signature.column_names)
            names = _captured_names(signature, captured)
        missing = [
            target for target, name in zip(targets, names, strict=True) if name not in captured
        ]
        notes.extend(_missing_note(name, policy.get(name), ref) for name in missing)
        for name in names:
            note = None if name not in captured else _privacy_note(name, captured[name], policy)
            if note is not None:
                notes.append(note)
        if missing:
            block(slice(None), "input missing from the log: " + ", ".join(map(repr, missing)))
            return cls(frame=None, tensor=False, unusable=unusable, blocked=blocked)
        if signature is not None:
            # Nulls the validator would refuse, found at once rather than one call per row.
            for spec, name in zip(signature.columns, names, strict=True):
                if not spec.nullable:
                    reason = f"input rejected: column {spec.name!r}: expected non-null {spec.dtype}"
                    block(_nulls(captured[name]) & ~blocked, reason)
        frame = pa.Table.from_arrays([captured[c] for c in names], names=targets).to_pandas()
        tensor = signature is not None and signature.kind == "tensor"
        return cls(frame=frame, tensor=tensor, unusable=unusable, blocked=blocked)

    def reject_unusable(self, status: np.ndarray, errors: np.ndarray) -> None:
        """Mark the rows that cannot be scored as rejected (400), with the reason."""
        status[self.blocked] = 400
        errors[self.blocked] = self.unusable[self.blocked]

    def rows(self, positions: np.ndarray) -> Any:
        """The candidate's input for these rows (model payload).

        Raises:
            InvalidInputError: There is nothing to score (the caller set every row aside).
        """
        if self.frame is None:
            raise InvalidInputError("there are no captured inputs to score")
        part = self.frame.iloc[positions]
        return part.to_numpy() if self.tensor else part


def score(
    model: Model,
    inputs: ReplayInputs,
    status: np.ndarray,
    errors: np.ndarray,
    chunk_size: int,
) -> tuple[list[tuple[np.ndarray, Prediction]], bool]:
    """Predict every row whose ``status`` is 200, in chunks; record the rows that fail.

    A failing row gets status 400 (its input was rejected) or 500 (the model raised) and
    its reason in ``errors``, both updated in place.

    Returns:
        ``(positions, prediction)`` pieces, and whether some rows were counted as failed
        together because the isolation budget ran out.
    """
    pieces: list[tuple[np.ndarray, Prediction]] = []
    rough = False
    scoreable = np.flatnonzero(status == 200)
    for start in range(0, scoreable.size, chunk_size):
        work = [scoreable[start : start + chunk_size]]
        calls = 0
        while work:
            positions = work.pop()
            calls += 1
            row: int | None = None
            try:
                prediction = model.predict_batch(inputs.rows(positions))
            except SchemaValidationError as exc:
                code, reason, row = 400, _rejection(exc), exc.row
            except Exception as exc:  # the candidate's own failure: recorded as its error
                code, reason = 500, f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
            else:
                pieces.append((positions, prediction))
                continue
            if positions.size == 1 or calls > ISOLATION_BUDGET:
                rough |= positions.size > 1
                status[positions], errors[positions] = code, reason
                continue
            if row is not None and 0 <= row < positions.size:
                status[positions[row]], errors[positions[row]] = code, reason
                parts = (positions[:row], positions[row + 1 :])
            else:
                middle = positions.size // 2
                parts = (positions[:middle], positions[middle:])
            work.extend(part for part in parts if part.size)
    return pieces, rough


def time_requests(
    model: Model,
    inputs: ReplayInputs,
    request_ids: pa.Array,
    status: np.ndarray,
    sample: int,
    clock: Callable[[], float],
) -> np.ndarray:
    """The candidate's milliseconds per request, for the first ``sample`` scored requests.

    Each request is validated and predicted on its own, as the server would; the time is
    set on every row of the request, as captured records carry it; NaN elsewhere. Rows
    of one request must be adjacent.
    """
    n = len(status)
    latency = np.full(n, np.nan)
    if not sample or not n:
        return latency
    ids = np.asarray(request_ids.to_numpy(zero_copy_only=False), dtype=object)
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    stops = np.append(starts[1:], n)
    timed = 0
    for begin, end in zip(starts.tolist(), stops.tolist(), strict=True):
        if timed >= sample:
            break
        if (status[begin:end] != 200).any():
            continue
        started = clock()
        try:
            model.predict_batch(inputs.rows(np.arange(begin, end)))
        except Exception:  # it scored in bulk; a one-off failure here only skips timing
            continue
        latency[begin:end] = (clock() - started) * 1000.0
        timed += 1
    return latency


def aligned(
    pieces: list[tuple[np.ndarray, Prediction]], n: int, ref: str
) -> tuple[pa.Array, pa.Array | None]:
    """The candidate's predictions and probabilities in row order, null where it failed.

    Raises:
        InvalidInputError: The candidate returned several outputs per row.
    """
    if not pieces:
        return pa.nulls(n), None
    positions = np.concatenate([p for p, _ in pieces])
    values = np.concatenate([prediction.predictions for _, prediction in pieces])
    if values.ndim != 1:
        raise InvalidInputError(
            f"{ref} returns several outputs per row; the diff report compares models with one "
            "output."
        )
    index = np.full(n, -1, dtype=np.int64)
    index[positions] = np.arange(positions.size)
    take = pa.array(index, pa.int64(), mask=index < 0)
    prediction = _as_arrow(values).take(take)
    blocks = [p.probabilities for _, p in pieces]
    if any(block is None for block in blocks):
        return prediction, None
    matrix = np.concatenate([b for b in blocks if b is not None]).astype(np.float64)
    rows, width = matrix.shape
    classes = pieces[0][1].classes
    names = labels(_as_arrow(np.asarray(list(classes or range(width)), dtype=object)))
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    keys = names.take(pa.array(np.tile(np.arange(width), rows)))
    maps = pa.MapArray.from_arrays(offsets, keys, pa.array(matrix.reshape(-1)))
    return prediction, maps.take(take)


def _captured_names(signature: Signature, captured: dict[str, pa.Array]) -> list[str]:
    """The captured column of each signature column (2-D arrays are logged as x0, x1, ...)."""
    names = list(signature.column_names)
    if signature.kind == "tensor" and not all(name in captured for name in names):
        logged = [f"x{position}" for position in range(len(names))]
        if all(name in captured for name in logged):
            return logged
    return names


def _missing_note(name: str, action: str | None, ref: str) -> str:
    if action == "drop":
        why = "the endpoint's privacy policy drops it"
    elif action == "hash":
        why = "the privacy policy hashes it, and without a secret key hashed columns are dropped"
    else:
        why = "the stable version did not receive it, or it was not captured"
    return (
        f"Column {name!r} is not in the captured inputs ({why}); {ref} needs it, so no row "
        "can be replayed and every row counts as its error."
    )


def _privacy_note(name: str, values: pa.Array, policy: dict[str, str]) -> str | None:
    action = policy.get(name)
    if action == "hash" or _looks_hashed(values):
        return (
            f"Column {name!r} holds keyed hashes of the values sent (privacy policy: hash), "
            "not the values: the candidate is scored on the digests, so its answers and "
            "errors there are not what it would answer live."
        )
    if action == "redact" or _matches(values, _REDACTION_MARK):
        return (
            f"Column {name!r} was redacted by the privacy policy (emails, phone and card "
            "numbers, IP addresses replaced by markers such as [EMAIL]): the candidate is "
            "scored on the redacted text."
        )
    return None


def _looks_hashed(values: pa.Array) -> bool:
    if not pa.types.is_string(values.type) or values.null_count == len(values):
        return False
    return bool(pc.all(pc.match_substring_regex(values, _HEX_DIGEST)).as_py())


def _matches(values: pa.Array, pattern: str) -> bool:
    if not pa.types.is_string(values.type):
        return False
    return bool(pc.any(pc.match_substring_regex(values, pattern)).as_py())


def _nulls(values: pa.Array) -> np.ndarray:
    """Per row: null, or NaN (which the validator treats as null)."""
    empty = pc.is_null(values, nan_is_null=pa.types.is_floating(values.type))
    return np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)


def _rejection(exc: SchemaValidationError) -> str:
    """The validator's complaint without the row number, so equal ones group together."""
    if exc.column is not None and exc.row is not None and exc.expected:
        return f"input rejected: column {exc.column!r}: expected {exc.expected}"
    return "input rejected: " + _ROW_IN_MESSAGE.sub("", str(exc))[:MAX_REASON_CHARS]


def _as_arrow(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "U":
        values = values.astype(object)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())
