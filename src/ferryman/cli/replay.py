"""``ferryman replay`` and ``ferryman rollout report``: the diff report of a candidate.

``replay ENDPOINT MODEL_REF`` re-scores the endpoint's captured traffic with a candidate
offline; ``rollout report ENDPOINT`` compares the answers a shadow rollout captured.
Both print the same report (``--json`` for machine-readable output) and can write it to
a standalone HTML page or a JSON file with ``--out``. Both work on the log under
``FERRYMAN_HOME/logs`` directly; no server is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ferryman.cli._app import JsonOption, console, emit, fail, open_registry, settings

if TYPE_CHECKING:
    from ferryman.rollout.diff import DiffReport

_SINCE_HELP = "Start of the window: a duration back from now (30m, 24h, 7d) or an ISO time."
_UNTIL_HELP = "End of the window: a duration back from now or an ISO time; default now."
_OUT_HELP = "Also write the report to this .html (standalone page) or .json file."
_SUFFIXES = (".html", ".htm", ".json")


def replay(
    endpoint: str = typer.Argument(..., help="The endpoint whose captured traffic is re-scored."),
    model_ref: str = typer.Argument(..., help="The candidate: churn/4, churn@staging, churn."),
    since: str = typer.Option("24h", "--since", help=_SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
    limit: int = typer.Option(100_000, "--limit", help="Most records replayed (the latest)."),
    top: int = typer.Option(20, "--top", help="How many disagreements to list."),
    out: Path | None = typer.Option(None, "--out", "-o", help=_OUT_HELP),
    as_json: bool = JsonOption,
) -> None:
    """Re-score ENDPOINT's captured requests with MODEL_REF and compare the answers.

    Nothing live is touched: the candidate is loaded here, scored on the captured inputs
    (after the endpoint's privacy policy) and compared with what the endpoint answered.
    """
    from ferryman.capture import LogStore
    from ferryman.errors import FerrymanError
    from ferryman.rollout.diff import replay as replay_report

    _check_out(out)
    now = datetime.now(UTC)
    end = now if until is None else _moment(until, "--until", now)
    start = _moment(since, "--since", end)
    try:
        with open_registry() as registry:
            report = replay_report(
                LogStore.from_settings(settings()),
                registry,
                endpoint,
                model_ref,
                since=start,
                until=end,
                limit=limit,
                top=top,
            )
        written = None if out is None else report.write(out)
    except FerrymanError as exc:
        fail(_first_line(exc))
    _show(report, written, as_json)


def shadow_report(
    endpoint: str = typer.Argument(..., help="The endpoint of the shadow rollout."),
    since: str = typer.Option("1h", "--since", help=_SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
    candidate: str | None = typer.Option(
        None, "--candidate", help="The shadowed version, name/N; default the only one."
    ),
    top: int = typer.Option(20, "--top", help="How many disagreements to list."),
    out: Path | None = typer.Option(None, "--out", "-o", help=_OUT_HELP),
    as_json: bool = JsonOption,
) -> None:
    """Compare the candidate's shadow answers with the stable version's, from the log."""
    from ferryman.capture import LogStore
    from ferryman.errors import FerrymanError
    from ferryman.rollout.diff import shadow_report as build_report

    _check_out(out)
    now = datetime.now(UTC)
    end = now if until is None else _moment(until, "--until", now)
    start = _moment(since, "--since", end)
    try:
        report = build_report(
            LogStore.from_settings(settings()),
            endpoint,
            since=start,
            until=end,
            candidate=candidate,
            top=top,
        )
        written = None if out is None else report.write(out)
    except FerrymanError as exc:
        fail(_first_line(exc))
    _show(report, written, as_json)


def _check_out(out: Path | None) -> None:
    if out is not None and out.suffix.lower() not in _SUFFIXES:
        fail(f"--out {str(out)!r}: expected a .html or .json file")


def _moment(text: str, option: str, now: datetime) -> datetime:
    """A duration back from ``now`` (``24h``) or an ISO time (no zone: local time)."""
    from ferryman.capture import parse_window
    from ferryman.errors import InvalidInputError

    try:
        return now - parse_window(text)
    except InvalidInputError:
        pass
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        fail(
            f"invalid {option} {text!r}: expected a duration such as 30m, 24h or 7d, or an "
            "ISO time such as 2026-11-24T14:05"
        )


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _show(report: DiffReport, written: Path | None, as_json: bool) -> None:
    document = report.to_dict()
    if written is not None:
        document["output"] = str(written)
    emit(document, as_json, lambda: _render(report, written))


def _render(report: DiffReport, written: Path | None) -> None:
    what = "Shadow" if report.source == "shadow" else "Replay"
    window = ""
    if report.since is not None and report.until is not None:
        window = f" from {_local(report.since)} to {_local(report.until)}"
    console.print(
        f"{what} of [bold]{escape(report.candidate.version)}[/] against "
        f"[bold]{escape(report.stable.version)}[/] on {escape(report.endpoint)}{window}: "
        f"{report.rows_compared} rows compared ({report.kind})"
    )
    figures = []
    if report.agreement_rate is not None:
        figures.append(f"agreement {report.agreement_rate:.4f}")
    if report.difference_of is not None:
        figures.append(
            f"|difference| of the {escape(report.difference_of)}: mean "
            f"{_fmt(report.mean_abs_diff)}, max {_fmt(report.max_abs_diff)}"
        )
    if figures:
        console.print("; ".join(figures))
    versions = Table("role", "version", "requests", "errors", "error rate", "p50 ms", "p99 ms")
    for role, stats in (("stable", report.stable), ("candidate", report.candidate)):
        versions.add_row(
            role,
            escape(stats.version),
            str(stats.requests),
            str(stats.errors),
            _fmt(stats.error_rate),
            _fmt(stats.p50_latency_ms),
            _fmt(stats.p99_latency_ms),
        )
    console.print(versions)
    for reason, rows in report.candidate.error_reasons:
        console.print(f"  candidate error ({rows} rows): {escape(reason)}")
    if report.disagreements:
        table = Table("request", "stable", "candidate", "difference", "inputs")
        for item in report.disagreements:
            inputs = "; ".join(f"{k}={v}" for k, v in (item.inputs or {}).items())
            table.add_row(
                escape(f"{item.request_id}:{item.row}"),
                escape(str(item.stable)),
                escape(str(item.candidate)),
                _fmt(item.difference),
                escape(inputs[:120]),
            )
        console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if written is not None:
        console.print(f"Wrote {escape(str(written))}")


def _local(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


__all__ = ["replay", "shadow_report"]
