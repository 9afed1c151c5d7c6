"""``ferryman tokens``: create, list and revoke API tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Column, Table

from ferryman.cli._app import JsonOption, console, emit, err_console, fail, fmt_time, open_registry

if TYPE_CHECKING:
    from ferryman.security import TokenInfo, TokenService

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@contextmanager
def _service() -> Iterator[TokenService]:
    from ferryman.security import TokenService

    with open_registry() as registry:
        yield TokenService(database=registry.database, user=registry.user)


@app.command()
def create(
    name: str = typer.Argument(..., help="Token name, e.g. ci-deployer."),
    role: str = typer.Option(..., "--role", "-r", help="admin, deployer, predictor or viewer."),
    endpoint: list[str] | None = typer.Option(
        None, "--endpoint", "-e", help="Limit the token to this endpoint, repeatable."
    ),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Lifetime, e.g. 90m, 12h, 30d, 2w. Default: never expires."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create a token and print it once: it cannot be shown again."""
    lifetime = _parse_duration(expires_in) if expires_in is not None else None
    with _service() as service:
        info, text = service.create(name, role, endpoints=endpoint or None, expires_in=lifetime)

    def render() -> None:
        scope = ", ".join(info.endpoints) if info.endpoints is not None else "all endpoints"
        expiry = f"expires {fmt_time(info.expires_at)}" if info.expires_at else "never expires"
        console.print(f"Created token [bold]{info.name}[/] ({info.role}, {scope}, {expiry})")
        err_console.print("Store it now; it will not be shown again:")
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    emit({**info.to_dict(), "status": "active", "token": text}, as_json, render)


@app.command("list")
def list_tokens(as_json: bool = JsonOption) -> None:
    """List tokens (never their secrets), revoked and expired ones included."""
    with _service() as service:
        infos = service.list()
    now = datetime.now(UTC)

    def render() -> None:
        table = Table(
            Column("name", no_wrap=True),
            Column("token", no_wrap=True),
            "role",
            "endpoints",
            "status",
            "expires",
            "last used",
        )
        for t in infos:
            table.add_row(
                t.name,
                f"{t.prefix}_…",
                t.role,
                ", ".join(t.endpoints) if t.endpoints is not None else "all",
                t.status_at(now),
                fmt_time(t.expires_at) if t.expires_at else "never",
                fmt_time(t.last_used_at) if t.last_used_at else "-",
            )
        console.print(table)

    emit([_with_status(t, now) for t in infos], as_json, render)


@app.command()
def revoke(
    name: str = typer.Argument(..., help="Token name (or id)."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke a token; servers reject it within seconds."""
    with _service() as service:
        info = service.revoke(name)
    emit(
        _with_status(info, datetime.now(UTC)),
        as_json,
        lambda: console.print(f"Revoked token [bold]{info.name}[/] ({info.prefix})"),
    )


def _parse_duration(text: str) -> timedelta:
    """Parse a lifetime such as ``90m``, ``12h``, ``30d`` or ``2w``; exit 2 if malformed."""
    match = _DURATION.match(text)
    if match is None or int(match[1]) == 0:
        fail(
            f"invalid --expires-in {text!r}: expected a positive whole number and a unit "
            "s, m, h, d or w, e.g. 12h or 30d"
        )
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        fail(f"invalid --expires-in {text!r}: too long")


def _with_status(info: TokenInfo, now: datetime) -> dict[str, Any]:
    return {**info.to_dict(), "status": info.status_at(now)}
