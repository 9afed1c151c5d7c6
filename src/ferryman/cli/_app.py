"""Shared CLI plumbing: settings at the edge, JSON or Rich output, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ferryman.config import Settings
    from ferryman.registry import Registry

#: Exit code for a user's mistake or a failed operation (bad input, not found, unreachable).
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def settings() -> Settings:
    """Build the settings once, at the edge."""
    from ferryman.config import Settings

    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError: a bad FERRYMAN_* value
        fail(f"invalid configuration: {str(exc).splitlines()[0]} ({exc})")


@contextmanager
def open_registry() -> Iterator[Registry]:
    """Open the registry from the settings in force; close it afterwards."""
    from ferryman.registry import Registry

    registry = Registry.from_settings(settings())
    try:
        registry.open()
        yield registry
    finally:
        registry.close()


def fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``render`` for the human view."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render()


def parse_pairs(values: list[str] | None, what: str) -> dict[str, str]:
    """Parse ``key=value`` options; exit 2 naming a malformed one."""
    pairs: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"invalid {what} {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_time(text: str | None) -> datetime | None:
    """Parse an ISO 8601 time; a time without zone is taken as local time."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"invalid time {text!r}: expected ISO 8601, e.g. 2026-11-24T14:05 or "
            "2026-11-24T14:05:00+00:00"
        )
    return value if value.tzinfo is not None else value.astimezone()


def fmt_time(value: datetime) -> str:
    """Format a timestamp for tables, in local time to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
