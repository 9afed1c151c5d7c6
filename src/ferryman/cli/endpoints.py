"""``ferryman endpoints``: create, list, show, update and delete serving endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from ferryman.cli._app import JsonOption, console, emit, fail, fmt_time, open_registry

if TYPE_CHECKING:
    from ferryman.serving.endpoints import EndpointConfig, EndpointService

app = typer.Typer(
    help="Create and manage serving endpoints (named entry points serving a model).",
    no_args_is_help=True,
)

_MODEL_HELP = "Model reference to serve: churn@production, churn/3 or churn (latest)."
_BATCH_HELP = "Most requests combined into one model call; 1 turns micro-batching off."
_LATENCY_HELP = "Longest wait (ms) for a micro-batch to fill."
_TIMEOUT_HELP = "Longest time (ms) a request may take."
_UNKNOWN_HELP = "Input columns the model does not know: reject or ignore."
_PASSTHROUGH_HELP = "Column accepted in requests but never fed to the model, repeatable."
_PRIVACY_HELP = (
    "Prediction-log policy COLUMN=keep|hash|drop|redact, repeatable (columns not named: keep)."
)
_SAMPLE_HELP = "Share of requests recorded in the prediction log, 0 to 1."
_RETENTION_HELP = "Days the prediction log keeps records (default: until erased)."


def _privacy(options: list[str] | None) -> dict[str, str] | None:
    if not options:
        return None
    from ferryman.capture import PrivacyPolicy

    return dict(PrivacyPolicy.parse_option(option) for option in options)


@contextmanager
def _service() -> Iterator[EndpointService]:
    from ferryman.serving.endpoints import EndpointService

    with open_registry() as registry:
        yield EndpointService(database=registry.database, user=registry.user)


@app.command()
def create(
    name: str = typer.Argument(..., help="Endpoint name, e.g. churn."),
    model: str = typer.Option(..., "--model", "-m", help=_MODEL_HELP),
    max_batch_size: int = typer.Option(1, "--max-batch-size", help=_BATCH_HELP),
    max_latency_ms: float = typer.Option(5.0, "--max-latency-ms", help=_LATENCY_HELP),
    timeout_ms: float = typer.Option(10_000.0, "--timeout-ms", help=_TIMEOUT_HELP),
    unknown_columns: str = typer.Option("reject", "--unknown-columns", help=_UNKNOWN_HELP),
    passthrough: list[str] | None = typer.Option(None, "--passthrough", help=_PASSTHROUGH_HELP),
    privacy: list[str] | None = typer.Option(None, "--privacy", help=_PRIVACY_HELP),
    capture_sample_rate: float = typer.Option(1.0, "--capture-sample-rate", help=_SAMPLE_HELP),
    log_retention_days: float | None = typer.Option(
        None, "--log-retention-days", help=_RETENTION_HELP
    ),
    description: str = typer.Option("", "--description", "-d"),
    as_json: bool = JsonOption,
) -> None:
    """Create endpoint NAME serving the model reference given with --model."""
    with _service() as service:
        config = service.create(
            name,
            model=model,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            timeout_ms=timeout_ms,
            unknown_columns=unknown_columns,  # type: ignore[arg-type]  # validated by create
            passthrough=passthrough or [],
            privacy=_privacy(privacy),
            capture_sample_rate=capture_sample_rate,
            log_retention_days=log_retention_days,
            description=description,
        )
    emit(
        config.to_dict(),
        as_json,
        lambda: console.print(f"Created endpoint [bold]{config.name}[/] serving {config.model}"),
    )


@app.command("list")
def list_endpoints(as_json: bool = JsonOption) -> None:
    """List endpoints."""
    with _service() as service:
        configs = service.list()

    def render() -> None:
        table = Table(
            Column("name", no_wrap=True),
            Column("model", no_wrap=True),
            "batching",
            "timeout",
            "unknown columns",
            "updated",
        )
        for c in configs:
            table.add_row(
                c.name,
                c.model,
                _batching(c),
                f"{c.timeout_ms:g} ms",
                c.unknown_columns,
                fmt_time(c.updated_at),
            )
        console.print(table)

    emit([c.to_dict() for c in configs], as_json, render)


@app.command()
def show(
    name: str = typer.Argument(..., help="Endpoint name."),
    as_json: bool = JsonOption,
) -> None:
    """Show one endpoint's configuration."""
    with _service() as service:
        config = service.get(name)
    emit(config.to_dict(), as_json, lambda: _render(config))


@app.command()
def update(
    name: str = typer.Argument(..., help="Endpoint name."),
    model: str | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    max_batch_size: int | None = typer.Option(None, "--max-batch-size", help=_BATCH_HELP),
    max_latency_ms: float | None = typer.Option(None, "--max-latency-ms", help=_LATENCY_HELP),
    timeout_ms: float | None = typer.Option(None, "--timeout-ms", help=_TIMEOUT_HELP),
    unknown_columns: str | None = typer.Option(None, "--unknown-columns", help=_UNKNOWN_HELP),
    passthrough: list[str] | None = typer.Option(
        None, "--passthrough", help=_PASSTHROUGH_HELP + " Replaces the current list."
    ),
    clear_passthrough: bool = typer.Option(
        False, "--clear-passthrough", help="Remove every passthrough column."
    ),
    privacy: list[str] | None = typer.Option(
        None, "--privacy", help=_PRIVACY_HELP + " Replaces the current policy."
    ),
    capture_sample_rate: float | None = typer.Option(
        None, "--capture-sample-rate", help=_SAMPLE_HELP
    ),
    log_retention_days: float | None = typer.Option(
        None, "--log-retention-days", help=_RETENTION_HELP + " 0 removes the limit."
    ),
    description: str | None = typer.Option(None, "--description", "-d"),
    as_json: bool = JsonOption,
) -> None:
    """Change some of endpoint NAME's settings; the others stay as they are."""
    if passthrough and clear_passthrough:
        fail("give --passthrough COLUMN or --clear-passthrough, not both")
    columns: list[str] | None = [] if clear_passthrough else passthrough or None
    changes: dict[str, Any] = {
        "model": model,
        "max_batch_size": max_batch_size,
        "max_latency_ms": max_latency_ms,
        "timeout_ms": timeout_ms,
        "unknown_columns": unknown_columns,
        "passthrough": columns,
        "privacy": _privacy(privacy),
        "capture_sample_rate": capture_sample_rate,
        "log_retention_days": log_retention_days,
        "description": description,
    }
    if all(value is None for value in changes.values()):
        fail(
            "nothing to change: give at least one of --model, --max-batch-size, "
            "--max-latency-ms, --timeout-ms, --unknown-columns, --passthrough, "
            "--clear-passthrough, --privacy, --capture-sample-rate, --log-retention-days, "
            "--description"
        )
    with _service() as service:
        config = service.update(name, **changes)
    emit(
        config.to_dict(),
        as_json,
        lambda: console.print(
            f"Endpoint [bold]{config.name}[/] now serves {config.model} "
            f"(generation {config.generation})"
        ),
    )


@app.command()
def delete(
    name: str = typer.Argument(..., help="Endpoint name."),
    as_json: bool = JsonOption,
) -> None:
    """Delete endpoint NAME; servers stop serving it within seconds."""
    with _service() as service:
        service.delete(name)
    emit(
        {"name": name, "deleted": True},
        as_json,
        lambda: console.print(f"Deleted endpoint [bold]{name}[/]"),
    )


def _batching(config: EndpointConfig) -> str:
    if not config.micro_batching:
        return "off"
    return f"≤{config.max_batch_size} rows, ≤{config.max_latency_ms:g} ms"


def _render(config: EndpointConfig) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = {
        "endpoint": config.name,
        "model": config.model,
        "micro-batching": _batching(config),
        "timeout": f"{config.timeout_ms:g} ms",
        "unknown columns": config.unknown_columns,
        "passthrough": ", ".join(config.passthrough) or "-",
        "description": config.description or "-",
        "created": f"{fmt_time(config.created_at)} by {config.created_by}",
        "updated": fmt_time(config.updated_at),
        "generation": str(config.generation),
    }
    for key, value in rows.items():
        table.add_row(key, escape(value))
    console.print(table)
