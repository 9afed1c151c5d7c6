"""``ferryman logs``: read, query, export and erase the prediction log; plus the top-level
``ferryman performance`` and ``ferryman review`` commands (registered by ``ferryman.cli``).

Every command works on the log under ``FERRYMAN_HOME/logs`` directly; no server is
needed. A running server's last second of records may still be in its buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ferryman.cli._app import JsonOption, console, emit, fail, fmt_time, parse_time, settings

if TYPE_CHECKING:
    from ferryman.capture import LogStore, QueryResult

app = typer.Typer(
    help="Read, query, export and erase the prediction log (records, feedback, reviews).",
    no_args_is_help=True,
)

_SINCE_HELP = "Only records at or after this time (ISO 8601; no zone: local time)."
_UNTIL_HELP = "Only records before this time (ISO 8601; no zone: local time)."
_CELL = 60


@contextmanager
def _store() -> Iterator[LogStore]:
    """The log store of the settings in force; Ferryman errors exit 2 with one line."""
    from ferryman.capture import LogStore
    from ferryman.errors import FerrymanError

    try:
        yield LogStore.from_settings(settings())
    except FerrymanError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        fail(lines[0] if lines else type(exc).__name__)


@app.command()
def tail(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    n: int = typer.Option(20, "-n", "--lines", help="How many records, newest first."),
    version: str | None = typer.Option(None, "--version", help="Only this version: name/N."),
    role: str | None = typer.Option(None, "--role", help="Only primary, shadow or batch."),
    status: int | None = typer.Option(None, "--status", help="Only this HTTP status."),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
    as_json: bool = JsonOption,
) -> None:
    """Show ENDPOINT's latest prediction records."""
    with _store() as store:
        result = store.tail(
            endpoint,
            n,
            version=version,
            role=role,
            status=status,
            since=parse_time(since),
            until=parse_time(until),
        )

    def render() -> None:
        if not result.rows:
            console.print(f"No records of {escape(endpoint)}")
            return
        table = Table("time", "request id", "version", "role", "status", "ms", "prediction")
        for record in result.records():
            answer = record.get("prediction")
            table.add_row(
                fmt_time(record["time"]),
                escape(_cell(record["request_id"]) + _row_suffix(record["row"])),
                escape(record["model_version"] or "-"),
                record["role"],
                str(record["status"]),
                f"{record['latency_ms']:.1f}",
                escape(_cell(answer if answer is not None else record.get("error"))),
            )
        console.print(table)

    emit(result.to_dict(), as_json, render)


@app.command()
def query(
    sql: str = typer.Argument(..., help="One SELECT over predictions, feedback and reviews."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", "-e", help="Let the query see only this endpoint's records."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Most rows printed (max 10000)."),
    as_json: bool = JsonOption,
) -> None:
    """Run SQL over the log, e.g. "SELECT model_version, count(*) FROM predictions GROUP BY 1"."""
    with _store() as store:
        result = store.query(sql, endpoint=endpoint, limit=limit)
    _emit_rows(result, as_json)


@app.command()
def export(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file."),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
    format: str = typer.Option("parquet", "--format", "-f", help="parquet or csv."),
    role: str = typer.Option("primary", "--role", help="Records of this role; 'all' for every."),
    as_json: bool = JsonOption,
) -> None:
    """Write ENDPOINT's records with their feedback labels to a file, for retraining."""
    if format not in ("parquet", "csv"):
        fail(f"invalid --format {format!r}: expected parquet or csv")
    with _store() as store:
        rows = store.export(
            endpoint,
            out,
            since=parse_time(since),
            until=parse_time(until),
            format=format,  # type: ignore[arg-type]  # checked above
            role=None if role == "all" else role,
        )
    emit(
        {"endpoint": endpoint, "path": str(out), "rows": rows},
        as_json,
        lambda: console.print(f"Wrote {rows} records of [bold]{escape(endpoint)}[/] to {out}"),
    )


@app.command()
def erase(
    where: str = typer.Option(
        ..., "--where", help="SQL condition on predictions, e.g. \"user_id = pii_hash('123')\"."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JsonOption,
) -> None:
    """Remove every record of the requests matching --where, in every table and file."""
    if not yes and not typer.confirm(f"Erase every record of requests where {where}?"):
        fail("nothing erased", code=1)
    with _store() as store:
        report = store.erase(where)
    emit(
        report.to_dict(),
        as_json,
        lambda: console.print(
            f"Erased {report.request_ids} requests: {report.predictions} prediction records, "
            f"{report.feedback} feedback rows, {report.reviews} reviews"
        ),
    )


@app.command()
def retention(
    older_than: str = typer.Option(
        ..., "--older-than", help="Remove records older than this, e.g. 30d, 12w."
    ),
    endpoint: list[str] | None = typer.Option(
        None, "--endpoint", "-e", help="Only this endpoint, repeatable. Default: every one."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Apply a retention period now: remove records older than --older-than."""
    from ferryman.capture import parse_window
    from ferryman.errors import FerrymanError

    try:
        ttl = parse_window(older_than)
    except FerrymanError as exc:
        fail(str(exc))
    with _store() as store:
        if endpoint:
            report = store.apply_retention(dict.fromkeys(endpoint, ttl))
        else:
            report = store.apply_retention({}, default=ttl)
    emit(
        report.to_dict(),
        as_json,
        lambda: console.print(
            "Removed "
            + ", ".join(f"{count} {table}" for table, count in report.rows.items())
            + f" rows ({report.files} files)"
        ),
    )


@app.command()
def compact(as_json: bool = JsonOption) -> None:
    """Merge the small segments of finished hours into one file per hour."""
    with _store() as store:
        report = store.compact()
    emit(
        report.to_dict(),
        as_json,
        lambda: console.print(
            "another process is compacting; nothing done"
            if report.skipped
            else f"Merged {report.merged} segments into {report.written} files "
            f"({report.rows} records)"
        ),
    )


def performance(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    window: str = typer.Option("1h", "--window", "-w", help="How far back, e.g. 1h, 7d."),
    task: str = typer.Option("auto", "--task", help="auto, classification or regression."),
    as_json: bool = JsonOption,
) -> None:
    """Realised performance of ENDPOINT's versions: predictions joined with feedback."""
    from ferryman.capture import parse_window
    from ferryman.errors import FerrymanError

    try:
        span = parse_window(window)
    except FerrymanError as exc:
        fail(str(exc))
    if task not in ("auto", "classification", "regression"):
        fail(f"invalid --task {task!r}: expected auto, classification or regression")
    with _store() as store:
        now = datetime.now(UTC)
        report = store.performance(
            endpoint,
            since=now - span,
            until=now,
            task=task,  # type: ignore[arg-type]  # checked above
        )

    def render() -> None:
        if not report.versions:
            console.print(
                f"No predictions of {escape(endpoint)} with feedback in the last {window}"
            )
            return
        names = [name for version in report.versions for name in version.metrics]
        columns = list(dict.fromkeys(names))
        table = Table("version", "task", "n", *columns)
        for version in report.versions:
            values = [_number(version.metrics.get(name)) for name in columns]
            table.add_row(version.model_version, version.task, str(version.n), *values)
        console.print(table)

    emit(report.to_dict(), as_json, render)


def review(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    limit: int = typer.Option(20, "--limit", "-n", help="Most candidates listed."),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    confidence_below: float = typer.Option(
        0.6, "--confidence-below", help="Highest probability under which confidence is low."
    ),
    mark: str | None = typer.Option(
        None, "--mark", help="Record a verdict on this request id instead of listing."
    ),
    row: int = typer.Option(0, "--row", help="With --mark: the row within the request."),
    verdict: str | None = typer.Option(None, "--verdict", help="With --mark: ok, wrong or unsure."),
    comment: str = typer.Option("", "--comment", help="With --mark: why."),
    as_json: bool = JsonOption,
) -> None:
    """List ENDPOINT's predictions worth a look, or --mark one with a --verdict."""
    if mark is None and verdict is not None:
        fail("--verdict needs --mark REQUEST_ID")
    if mark is not None:
        if verdict is None:
            fail("--mark needs --verdict ok, wrong or unsure")
        who = settings().user
        with _store() as store:
            marked = store.mark(endpoint, mark, verdict, reviewer=who, comment=comment, row=row)
        emit(
            marked.to_dict(),
            as_json,
            lambda: console.print(f"Marked {escape(mark)} as [bold]{marked.verdict}[/]"),
        )
        return
    with _store() as store:
        candidates = store.review_candidates(
            endpoint, since=parse_time(since), limit=limit, confidence_below=confidence_below
        )

    def render() -> None:
        if not candidates:
            console.print(f"Nothing to review on {escape(endpoint)}")
            return
        table = Table("time", "request id", "row", "version", "role", "status", "reasons")
        table.add_column("prediction")
        table.add_column("confidence")
        for c in candidates:
            table.add_row(
                fmt_time(c.time),
                escape(c.request_id),
                str(c.row),
                escape(c.model_version or "-"),
                c.role,
                str(c.status),
                ", ".join(c.reasons),
                escape(_cell(c.prediction if c.prediction is not None else c.error)),
                _number(c.confidence),
            )
        console.print(table)

    emit([c.to_dict() for c in candidates], as_json, render)


def _emit_rows(result: QueryResult, as_json: bool) -> None:
    def render() -> None:
        if not result.rows:
            console.print("No rows")
            return
        table = Table(*[escape(name) for name in result.columns])
        for row in result.rows:
            table.add_row(*[escape(_cell(value)) for value in row])
        console.print(table)
        if result.truncated:
            console.print(f"(first {len(result.rows)} rows; add a LIMIT or narrow the query)")

    emit(result.to_dict(), as_json, render)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return fmt_time(value)
    text = str(value)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _row_suffix(row: int) -> str:
    return f" #{row}" if row else ""


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
