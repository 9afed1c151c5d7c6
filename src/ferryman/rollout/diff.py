"""The diff report: how a candidate's answers differ from the stable version's, row by row.

Two ways to get the candidate's answers to real traffic, one report:

- **shadow** (:func:`shadow_report`): during a shadow rollout the server captures the
  candidate's answer to each mirrored request as a ``shadow`` record beside the stable
  version's ``primary`` record (same ``request_id`` and ``row``); the two are joined.
- **replay** (:func:`replay`): captured primary records are re-scored offline with any
  registered version; nothing live is touched.

Both end in :func:`compare`, the one computation over two aligned sets of rows (row *i* of
one table is the same request row as row *i* of the other). It reports, over the rows
both versions answered: the agreement rate of the predicted labels (classification) or
the mean and largest absolute difference of the predictions (regression; for binary
classifiers, of the positive class's probability), a confusion table of stable against
candidate labels, a histogram of the differences, each version's requests, error rate
and p50/p99 latency over the same requests, and the rows where they disagree most with
their inputs and both outputs. :meth:`DiffReport.to_dict` is the JSON contract;
:meth:`DiffReport.to_html` a standalone page (Plotly embedded, works offline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.capture.query import filters
from ferryman.errors import InvalidInputError
from ferryman.rollout import _diff_rows, _rescoring
from ferryman.rollout._diff_report import (
    KINDS,
    Confusion,
    DiffHistogram,
    DiffReport,
    Disagreement,
    Kind,
    Source,
    VersionStats,
)
from ferryman.rollout._diff_rows import MAX_CONFUSION_LABELS, MAX_ERROR_REASONS, OTHER_LABEL
from ferryman.rollout._rescoring import ISOLATION_BUDGET

if TYPE_CHECKING:
    from ferryman.capture import LogStore
    from ferryman.registry import Registry
    from ferryman.signature import Signature


# -- the comparison ------------------------------------------------------------------------


def compare(
    primary: pa.Table,
    shadow: pa.Table,
    *,
    kind: Kind | None = None,
    top: int = 20,
    endpoint: str = "",
    source: Source = "shadow",
    since: datetime | None = None,
    until: datetime | None = None,
    warnings: Sequence[str] = (),
    created_at: datetime | None = None,
) -> DiffReport:
    """Compare the stable version's answers with the candidate's, row by row.

    Both tables are pyarrow Tables with the columns of the prediction log (convert a
    DataFrame with ``pyarrow.Table.from_pandas``), aligned: row *i* of ``shadow`` is the
    candidate's answer to the request row that row *i* of ``primary`` answered.

    Columns read from each table: ``prediction`` (required; one value per row),
    ``status`` (HTTP status; missing means 200), ``probabilities`` (map of class ->
    probability), ``latency_ms`` (per request), ``error`` (text), ``model_version``.
    From ``primary`` also ``request_id`` and ``row`` (requests are counted by id, latency
    read from each request's row 0), ``time`` and ``inputs`` (a struct), which describe
    the rows listed as disagreements. A version *answered* a row when the status is
    below 400 and the prediction is neither null nor NaN; every difference is over the
    rows both answered, and the rest count as the version's errors.

    Args:
        primary: The stable version's answers.
        shadow: The candidate's answers, aligned with ``primary``.
        kind: ``classification`` or ``regression``; ``None`` decides from the data:
            regression for float predictions without probabilities, else classification.
        top: How many disagreements to list (0 for none).
        endpoint: The endpoint's name, for the report.
        source: Where the candidate's answers come from, for the report.
        since: Start of the window, for the report.
        until: End of the window, for the report.
        warnings: Caveats to carry in the report (more are added here).
        created_at: When the report is made (default: now).

    Returns:
        The report.

    Raises:
        InvalidInputError: The tables are not pyarrow Tables, differ in length, lack a
            ``prediction`` column or hold several outputs per row; ``kind`` or ``top`` is
            invalid; or regression predictions are not numbers.

    Example:
        >>> import pyarrow as pa
        >>> report = compare(
        ...     pa.table({"prediction": [1.0, 2.0, 3.0]}),
        ...     pa.table({"prediction": [1.0, 2.5, 2.0]}),
        ... )
        >>> report.kind, report.mean_abs_diff, report.max_abs_diff
        ('regression', 0.5, 1.0)
    """
    if not isinstance(primary, pa.Table) or not isinstance(shadow, pa.Table):
        raise InvalidInputError(
            "compare() takes two pyarrow Tables; convert a DataFrame with "
            "pyarrow.Table.from_pandas(frame)."
        )
    if primary.num_rows != shadow.num_rows:
        raise InvalidInputError(
            f"The tables are not aligned: primary has {primary.num_rows} rows, shadow "
            f"{shadow.num_rows}; row i of each must answer the same request row."
        )
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"Unknown kind {kind!r}. Available: classification, regression.")
    _check_count(top, "top", low=0)
    stable, candidate = _diff_rows.side(primary, "primary"), _diff_rows.side(shadow, "shadow")
    chosen: Kind = kind or _diff_rows.decide_kind(stable, candidate)
    both = stable.ok & candidate.ok
    if chosen == "regression":
        measured = _diff_rows.regression(stable, candidate, both)
    else:
        measured = _diff_rows.classification(stable, candidate, both)
    notes = list(warnings)
    request_ids = _diff_rows.column(primary, "request_id")
    requests = primary.num_rows if request_ids is None else _distinct(request_ids)
    first = _diff_rows.first_rows(primary)
    confusion = histogram = None
    if measured.confusion is not None:
        labels, counts = measured.confusion
        confusion = Confusion(
            labels=tuple(labels), counts=tuple(tuple(int(v) for v in row) for row in counts)
        )
    if measured.histogram is not None and measured.difference_of is not None:
        edges, counts = measured.histogram
        histogram = DiffHistogram(
            of=measured.difference_of,
            edges=tuple(float(e) for e in edges),
            counts=tuple(int(c) for c in counts),
        )
    return DiffReport(
        endpoint=endpoint,
        source=source,
        kind=chosen,
        stable=_stats(stable, _diff_rows.version_of(stable, "stable", notes), requests, first),
        candidate=_stats(
            candidate, _diff_rows.version_of(candidate, "candidate", notes), requests, first
        ),
        rows_compared=int(both.sum()),
        agreement_rate=measured.agreement_rate,
        mean_abs_diff=measured.mean_abs_diff,
        max_abs_diff=measured.max_abs_diff,
        difference_of=measured.difference_of,
        positive_class=measured.positive_class,
        disagreements=_disagreements(
            primary, stable, candidate, measured, _diff_rows.pick(measured, both, top)
        ),
        confusion=confusion,
        histogram=histogram,
        since=since,
        until=until,
        warnings=tuple(notes),
        created_at=created_at or datetime.now(UTC),
    )


def _stats(side: _diff_rows.Side, version: str, requests: int, first: np.ndarray) -> VersionStats:
    count = len(side.ok)
    errors = int((~side.ok).sum())
    p50, p99 = _diff_rows.latency_percentiles(side, first)
    return VersionStats(
        version=version,
        requests=requests,
        rows=count,
        errors=errors,
        error_rate=errors / count if count else None,
        p50_latency_ms=p50,
        p99_latency_ms=p99,
        error_reasons=_diff_rows.error_reasons(side),
    )


def _distinct(values: pa.Array) -> int:
    """Distinct non-null values (``pc.unique`` measured twice as fast as ``count_distinct``)."""
    return len(pc.unique(values)) - (1 if values.null_count else 0)


def _disagreements(
    primary: pa.Table,
    stable: _diff_rows.Side,
    candidate: _diff_rows.Side,
    measured: _diff_rows.Measured,
    picked: np.ndarray,
) -> tuple[Disagreement, ...]:
    if not picked.size:
        return ()
    indices = pa.array(picked, pa.int64())

    def values(array: pa.Array | None) -> list[Any]:
        return [None] * picked.size if array is None else array.take(indices).to_pylist()

    def maps(array: pa.Array | None) -> list[dict[str, float] | None]:
        return [None if m is None else dict(m) for m in values(array)]

    inputs = _diff_rows.column(primary, "inputs")
    found = zip(
        values(_diff_rows.column(primary, "request_id")),
        values(_diff_rows.column(primary, "row")),
        values(_diff_rows.column(primary, "time")),
        values(inputs if inputs is not None and pa.types.is_struct(inputs.type) else None),
        values(stable.prediction),
        values(candidate.prediction),
        maps(stable.probabilities),
        maps(candidate.probabilities),
        picked.tolist(),
        strict=True,
    )
    return tuple(
        Disagreement(
            request_id=None if request_id is None else str(request_id),
            row=None if row is None else int(row),
            time=moment if isinstance(moment, datetime) else None,
            inputs=features,
            stable=before,
            candidate=after,
            stable_probabilities=before_p,
            candidate_probabilities=after_p,
            difference=_diff_rows.finite(float(measured.difference[index])),
            agree=not bool(measured.mismatch[index]),
        )
        for request_id, row, moment, features, before, after, before_p, after_p, index in found
    )


# -- shadow: the captured answers of both versions ------------------------------------------

_PAIRS = (
    'FROM predictions p JOIN predictions s ON s.request_id = p.request_id AND s."row" = p."row"'
)


def shadow_report(
    log: LogStore,
    endpoint: str,
    *,
    since: datetime,
    until: datetime | None = None,
    candidate: str | None = None,
    top: int = 20,
    limit: int = 1_000_000,
) -> DiffReport:
    """The diff report of a shadow rollout, from the captured primary and shadow records.

    Every ``shadow`` record of the candidate is joined with the ``primary`` record of the
    same ``request_id`` and ``row``; the window applies to the primary record's time. Both
    versions' figures are over these pairs: the requests the candidate was asked.

    Args:
        log: The prediction log.
        endpoint: The endpoint.
        since: Start of the window (timezone-aware), inclusive.
        until: End of the window (timezone-aware), exclusive; default now.
        candidate: The shadowed version, ``name/N``; default the only one in the window.
        top: How many disagreements to list.
        limit: Most pairs compared; beyond it the latest ``limit`` are (with a warning).

    Raises:
        InvalidInputError: A bad endpoint name, window, ``top`` or ``limit``; no shadow
            records in the window (the message says how to get some); several candidates
            and none chosen; or ``candidate`` has no records there.
    """
    _check_count(limit, "limit")
    _check_count(top, "top", low=0)
    end = until or log.now()
    where, parameters = filters(since=since, until=end, prefix="p.")
    pairs = f"{_PAIRS}{where} AND p.role = 'primary' AND s.role = 'shadow'"
    found = _arrow(
        log,
        f"SELECT s.model_version AS version, count(*) AS n {pairs} GROUP BY 1 ORDER BY 2 DESC, 1",
        parameters,
        endpoint,
    ).to_pylist()
    chosen = _candidate(log, endpoint, found, candidate, parameters)
    table = _arrow(
        log,
        'SELECT p.request_id, p."row", p.time, p.model_version, p.status, p.error, '
        "p.latency_ms, p.prediction, p.probabilities, s.model_version AS s_model_version, "
        "s.status AS s_status, s.error AS s_error, s.latency_ms AS s_latency_ms, "
        "s.prediction AS s_prediction, s.probabilities AS s_probabilities "
        f"{pairs} AND s.model_version = ? "
        f'ORDER BY p.time DESC, p.request_id, p."row" LIMIT {int(limit) + 1}',
        [*parameters, chosen],
        endpoint,
    )
    notes: list[str] = []
    if table.num_rows > limit:
        table = table.slice(0, limit)
        notes.append(
            f"The window holds more than {limit:,} pairs; the latest {limit:,} were compared "
            "(narrow the window or raise limit)."
        )
    table = _chronological(table)
    primary = table.select([name for name in table.column_names if not name.startswith("s_")])
    shadow = table.select([name for name in table.column_names if name.startswith("s_")])
    shadow = shadow.rename_columns([name.removeprefix("s_") for name in shadow.column_names])
    report = compare(
        primary,
        shadow,
        top=top,
        endpoint=endpoint,
        source="shadow",
        since=parameters[0],
        until=parameters[1],
        warnings=notes,
        created_at=log.now(),
    )
    return _with_inputs(log, endpoint, report, parameters)


def _candidate(
    log: LogStore,
    endpoint: str,
    found: list[dict[str, Any]],
    candidate: str | None,
    parameters: list[Any],
) -> str:
    """The shadowed version to report on, or an error that says what to do."""
    versions = {str(row["version"]): int(row["n"]) for row in found if row["version"]}
    window = f"from {parameters[0].isoformat()} to {parameters[1].isoformat()}"
    if not versions:
        shadows = _arrow(
            log,
            "SELECT count(*) AS n FROM predictions WHERE role = 'shadow' AND time >= ? "
            "AND time < ?",
            parameters,
            endpoint,
        ).to_pylist()[0]["n"]
        if shadows:
            raise InvalidInputError(
                f"Endpoint {endpoint!r} has {shadows} shadow records {window}, but none has a "
                "primary record with the same request_id and row in the window; widen the "
                "window (since/until) so it covers both."
            )
        raise InvalidInputError(
            f"No shadow records for endpoint {endpoint!r} {window}: a candidate's answers are "
            f"captured only during a shadow rollout (ferryman deploy {endpoint} MODEL_REF "
            "--strategy shadow). Widen the window, or re-score captured traffic offline with: "
            f"ferryman replay {endpoint} MODEL_REF --since 24h"
        )
    listed = ", ".join(f"{name} ({count} rows)" for name, count in versions.items())
    if candidate is not None:
        if candidate not in versions:
            raise InvalidInputError(
                f"No shadow records of {candidate!r} for endpoint {endpoint!r} {window}; the "
                f"window has shadow records of: {listed}."
            )
        return candidate
    if len(versions) > 1:
        raise InvalidInputError(
            f"Endpoint {endpoint!r} shadowed several candidates {window}: {listed}; choose "
            "one with candidate= (--candidate)."
        )
    return next(iter(versions))


def _with_inputs(
    log: LogStore, endpoint: str, report: DiffReport, parameters: list[Any]
) -> DiffReport:
    """Fill in the captured inputs of the listed disagreements (only theirs are read)."""
    keys = [
        (d.request_id, d.row)
        for d in report.disagreements
        if d.request_id is not None and d.row is not None
    ]
    if not keys:
        return report
    columns = _arrow(log, "SELECT * FROM predictions LIMIT 0", [], endpoint).column_names
    if "inputs" not in columns:
        return report
    ids = sorted({request_id for request_id, _ in keys})
    marks = ", ".join("?" for _ in ids)
    found = _arrow(
        log,
        "SELECT request_id, \"row\", inputs FROM predictions WHERE role = 'primary' "
        f"AND time >= ? AND time < ? AND request_id IN ({marks})",
        [*parameters, *ids],
        endpoint,
    ).to_pylist()
    inputs = {(r["request_id"], r["row"]): r["inputs"] for r in found}
    filled = tuple(
        replace(d, inputs=inputs.get((d.request_id, d.row))) for d in report.disagreements
    )
    return replace(report, disagreements=filled)


def _arrow(log: LogStore, sql: str, parameters: Sequence[Any], endpoint: str) -> pa.Table:
    """Run trusted SQL over ``endpoint``'s records only, every row, as an Arrow table.

    ``LogStore.query`` is for users' SQL: it caps the rows at ``max_rows`` and returns
    Python tuples. The report needs all rows of the window as arrays, with values bound
    as parameters, which the store's reader gives.
    """
    table: pa.Table = log.reader.arrow(sql, list(parameters), endpoints=[endpoint])
    return table


def _chronological(table: pa.Table) -> pa.Table:
    keys = [("time", "ascending"), ("request_id", "ascending"), ("row", "ascending")]
    return table.sort_by(keys) if table.num_rows else table


def _check_count(value: int, name: str, *, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(f"{name} must be a whole number >= {low}, got {value!r}.")


# -- replay: the captured requests, re-scored offline ------------------------------------------


def replay(
    log: LogStore,
    registry: Registry,
    endpoint: str,
    model_ref: str,
    *,
    since: datetime,
    until: datetime | None = None,
    limit: int = 100_000,
    top: int = 20,
    chunk_size: int = 5_000,
    latency_sample: int = 200,
    clock: Callable[[], float] = time.perf_counter,
) -> DiffReport:
    """Re-score captured traffic with a candidate and compare with what was answered.

    Reads the endpoint's successful primary records (status 200) in the window, validates
    their captured inputs against the candidate's signature, predicts in chunks and
    compares with the captured predictions. Nothing live is touched: no server, no
    traffic, nothing written to the log. Rows the candidate's signature rejects, or on
    which its model raises, count as its errors, with the reason; when a chunk fails, the
    failing rows are isolated within :data:`ISOLATION_BUDGET` calls, beyond which the rest
    of the chunk counts as failed together (a warning says so).

    The candidate's latency is its model time (validation and prediction, no HTTP or
    queueing) on this machine, for the first ``latency_sample`` requests re-scored one
    request at a time; the stable version's is as captured (the whole server path).

    What the privacy policy did to the inputs limits the replay, and the report's
    ``warnings`` say so: a dropped column the candidate needs makes every row fail; a
    hashed or redacted column is scored as the digests or redacted text that were stored.

    Args:
        log: The prediction log.
        registry: Where the candidate is loaded from (and the endpoint's privacy policy
            read, for clearer warnings).
        endpoint: The endpoint whose traffic is replayed.
        model_ref: The candidate: ``churn/4``, ``churn@staging`` or ``churn``.
        since: Start of the window (timezone-aware), inclusive.
        until: End of the window (timezone-aware), exclusive; default now.
        limit: Most records replayed; beyond it the latest ``limit`` (with a warning).
        top: How many disagreements to list.
        chunk_size: Rows per model call.
        latency_sample: Requests timed one by one for the candidate's latency (0: none).
        clock: Seconds from a monotonic clock, for the latency sample.

    Raises:
        InvalidInputError: A bad endpoint name, window or count; no successful primary
            records in the window; or a candidate with several outputs per row.
        NotFoundError: ``model_ref`` does not resolve (a subclass names what is missing).
    """
    _check_count(limit, "limit")
    _check_count(top, "top", low=0)
    _check_count(chunk_size, "chunk_size")
    _check_count(latency_sample, "latency_sample", low=0)
    end = until or log.now()
    where, parameters = filters(role="primary", status=200, since=since, until=end)
    table = _arrow(
        log,
        f"SELECT * EXCLUDE (endpoint, date) FROM predictions{where} AND prediction IS NOT NULL "
        f'ORDER BY time DESC, request_id, "row" LIMIT {int(limit) + 1}',
        parameters,
        endpoint,
    )
    if not table.num_rows:
        raise InvalidInputError(
            f"No successful primary records of endpoint {endpoint!r} from "
            f"{parameters[-2].isoformat()} to {parameters[-1].isoformat()}: nothing to "
            "replay. Widen the window (--since); records are captured while the endpoint "
            "serves traffic."
        )
    model = registry.load(model_ref)
    signature = model.signature
    if signature is not None and signature.output is not None and signature.output.n_outputs > 1:
        raise InvalidInputError(
            f"{model.ref} returns {signature.output.n_outputs} outputs per row; the diff "
            "report compares models with one output."
        )
    notes: list[str] = []
    if table.num_rows > limit:
        table = table.slice(0, limit)
        notes.append(
            f"The window holds more than {limit:,} successful records; the latest {limit:,} "
            "were replayed (raise limit to replay more)."
        )
    table = _chronological(table)
    policy = _privacy_policy(registry, endpoint)
    inputs = _rescoring.ReplayInputs.build(table, signature, policy, notes, model.ref)
    status = np.full(table.num_rows, 200, dtype=np.int64)
    errors = np.full(table.num_rows, None, dtype=object)
    inputs.reject_unusable(status, errors)
    pieces, rough = _rescoring.score(model, inputs, status, errors, chunk_size)
    if rough:
        notes.append(
            f"Some chunks failed more often than {ISOLATION_BUDGET} calls could isolate row by "
            "row; their remaining rows were counted as errors together, so the candidate's "
            "error count is an upper bound."
        )
    latency = _rescoring.time_requests(
        model, inputs, table.column("request_id"), status, latency_sample, clock
    )
    prediction, probabilities = _rescoring.aligned(pieces, table.num_rows, model.ref)
    columns: dict[str, pa.Array] = {
        "model_version": pa.array([model.ref] * table.num_rows, pa.string()),
        "status": pa.array(status, pa.int32()),
        "error": pa.array(errors.tolist(), pa.string()),
        "latency_ms": pa.array(latency, pa.float64(), from_pandas=True),
        "prediction": prediction,
    }
    if probabilities is not None:
        columns["probabilities"] = probabilities
    return compare(
        table,
        pa.table(columns),
        kind=_signature_kind(signature),
        top=top,
        endpoint=endpoint,
        source="replay",
        since=parameters[-2],
        until=parameters[-1],
        warnings=notes,
        created_at=log.now(),
    )


def _privacy_policy(registry: Registry, endpoint: str) -> dict[str, str]:
    """The endpoint's privacy policy (column -> action), or none when it no longer exists."""
    from ferryman.serving.endpoints import EndpointService

    config = EndpointService(database=registry.database, user=registry.user).find(endpoint)
    return {} if config is None else dict(config.privacy)


def _signature_kind(signature: Signature | None) -> Kind | None:
    if signature is None or signature.output is None:
        return None
    return "regression" if signature.output.kind == "value" else "classification"


__all__ = [
    "ISOLATION_BUDGET",
    "KINDS",
    "MAX_CONFUSION_LABELS",
    "MAX_ERROR_REASONS",
    "OTHER_LABEL",
    "Confusion",
    "DiffHistogram",
    "DiffReport",
    "Disagreement",
    "Kind",
    "Source",
    "VersionStats",
    "compare",
    "replay",
    "shadow_report",
]
