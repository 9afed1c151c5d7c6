"""``ferryman alerts``: add, list and remove alert rules; read their history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Column, Table

from ferryman.cli._app import JsonOption, console, emit, fail, fmt_time, open_registry

if TYPE_CHECKING:
    from ferryman.monitoring.alerts import AlertEvent, AlertRuleInfo, AlertService

app = typer.Typer(
    help="Alert rules over an endpoint's windowed metrics, with webhook notifications.",
    no_args_is_help=True,
)

_WHEN_HELP = (
    'Condition, e.g. "null_rate > 0.01 for 5m" or \'missing_rate{feature="age"} > 0.2\'; '
    "see docs/monitoring.md for the metrics."
)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn a Ferryman error into the one-line message and exit code 2."""
    from ferryman.errors import FerrymanError

    try:
        yield
    except FerrymanError as exc:
        fail(str(exc))


@contextmanager
def _service() -> Iterator[AlertService]:
    from ferryman.monitoring.alerts import AlertService

    with _errors(), open_registry() as registry:
        yield AlertService(database=registry.database, user=registry.user)


@app.command()
def add(
    name: str = typer.Argument(..., help="Rule name, e.g. churn-nulls."),
    endpoint: str = typer.Option(..., "--endpoint", "-e", help="Endpoint the rule watches."),
    when: str = typer.Option(..., "--when", help=_WHEN_HELP),
    window: str = typer.Option("5m", "--window", help="Span each evaluation measures: 30s, 5m…"),
    severity: str = typer.Option("warning", "--severity", help="info, warning or critical."),
    version: str | None = typer.Option(
        None, "--version", help="Only this model version, e.g. churn/3."
    ),
    role: str | None = typer.Option(None, "--role", help="Only primary, shadow or batch."),
    webhook: list[str] | None = typer.Option(
        None, "--webhook", help="URL to POST notifications to, repeatable."
    ),
    slack: bool = typer.Option(
        False, "--slack", help='Send Slack-compatible payloads ({"text": …}) to the webhooks.'
    ),
    as_json: bool = JsonOption,
) -> None:
    """Add rule NAME: notify when its condition holds on ENDPOINT's traffic."""
    from ferryman.monitoring.alerts import AlertRule

    if slack and not webhook:
        fail("--slack needs at least one --webhook URL")
    hooks = [{"url": url, "format": "slack" if slack else "json"} for url in webhook or []]
    with _errors():
        rule = AlertRule.from_dict(
            {
                "name": name,
                "endpoint": endpoint,
                "when": when,
                "window": window,
                "severity": severity,
                "version": version,
                "role": role,
                "webhooks": hooks,
            }
        )
    with _service() as service:
        info = service.add(rule)
    emit(
        info.to_dict(),
        as_json,
        lambda: console.print(
            f"Added alert rule [bold]{escape(rule.name)}[/] on {escape(rule.endpoint)}: "
            f"{escape(rule.when)} (window {_window(info)}, {rule.severity})",
            highlight=False,
        ),
    )


@app.command("list")
def list_rules(
    endpoint: str | None = typer.Option(None, "--endpoint", "-e", help="Only this endpoint."),
    as_json: bool = JsonOption,
) -> None:
    """List alert rules with their current state."""
    with _service() as service:
        infos = service.list(endpoint=endpoint)

    def render() -> None:
        table = Table(
            Column("name", no_wrap=True),
            Column("endpoint", no_wrap=True),
            "condition",
            "window",
            "severity",
            "state",
            "last value",
            "notifies",
        )
        for info in infos:
            table.add_row(
                escape(info.rule.name),
                escape(
                    info.rule.endpoint + (f" ({info.rule.version})" if info.rule.version else "")
                ),
                escape(info.rule.when),
                _window(info),
                info.rule.severity,
                _state(info),
                "-" if info.last_value is None else f"{info.last_value:.6g}",
                escape(", ".join(h.redacted for h in info.rule.webhooks) or "log only"),
            )
        console.print(table)

    emit([info.to_dict() for info in infos], as_json, render)


@app.command()
def remove(
    name: str = typer.Argument(..., help="Rule name."),
    as_json: bool = JsonOption,
) -> None:
    """Remove rule NAME; its history stays."""
    with _service() as service:
        service.remove(name)
    emit(
        {"name": name, "removed": True},
        as_json,
        lambda: console.print(f"Removed alert rule [bold]{escape(name)}[/]", highlight=False),
    )


@app.command()
def history(
    endpoint: str | None = typer.Option(None, "--endpoint", "-e", help="Only this endpoint."),
    rule: str | None = typer.Option(None, "--rule", help="Only this rule."),
    limit: int = typer.Option(20, "--limit", "-n", help="Most transitions shown, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """Show the latest alert transitions: pending, firing, resolved."""
    with _service() as service:
        events = service.history(endpoint=endpoint, rule=rule, limit=limit)

    def render() -> None:
        table = Table(
            Column("at", no_wrap=True),
            Column("rule", no_wrap=True),
            Column("state", no_wrap=True),
            "value",
            "message",
        )
        for event in events:
            table.add_row(
                fmt_time(event.at),
                escape(event.rule),
                _event_state(event),
                "-" if event.value is None else f"{event.value:.6g}",
                escape(event.message),
            )
        console.print(table)

    emit([event.to_dict() for event in events], as_json, render)


_STATE_STYLE: dict[str, str] = {
    "firing": "bold red",
    "pending": "yellow",
    "resolved": "green",
    "inactive": "dim",
}


def _window(info: AlertRuleInfo) -> str:
    return str(info.to_dict()["window"])


def _state(info: AlertRuleInfo) -> str:
    since = f" since {fmt_time(info.state_since)}" if info.state_since is not None else ""
    return f"[{_STATE_STYLE[info.state]}]{info.state}[/]{since}"


def _event_state(event: AlertEvent) -> str:
    return f"[{_STATE_STYLE[event.state]}]{event.state}[/]"
