"""``ferryman audit``: read and verify the tamper-evident audit log."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ferryman.cli._app import JsonOption, console, emit, fmt_time, open_registry

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)


@app.command("list")
def list_entries(
    entity: str | None = typer.Option(
        None, "--entity", help="e.g. churn, churn/3, churn@production."
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="Newest N entries."),
    as_json: bool = JsonOption,
) -> None:
    """List audit entries: who changed what, when, before and after."""
    with open_registry() as registry:
        entries = registry.audit_entries(entity=entity, limit=limit)

    def render() -> None:
        table = Table("seq", "time", "actor", "action", "entity", "before", "after")
        for e in entries:
            table.add_row(
                str(e.seq),
                fmt_time(e.at),
                e.actor,
                e.action,
                e.entity,
                _short(e.before),
                _short(e.after),
            )
        console.print(table)

    emit([e.to_dict() for e in entries], as_json, render)


@app.command()
def verify(as_json: bool = JsonOption) -> None:
    """Check the hash chain; exit 1 and name every edited or deleted entry if broken."""
    with open_registry() as registry:
        report = registry.verify_audit()

    def render() -> None:
        if report.ok:
            console.print(f"[green]audit log intact[/]: {report.checked} entries verified")
            return
        console.print(
            f"[bold red]audit log tampered[/]: {len(report.problems)} problem(s) "
            f"in {report.checked} entries"
        )
        for problem in report.problems:
            console.print(f"  - {problem.message}")

    emit(report.to_dict(), as_json, render)
    if not report.ok:
        raise typer.Exit(1)


def _short(value: object) -> str:
    if value is None:
        return ""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
