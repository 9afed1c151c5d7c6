"""``ferryman db``: schema migrations of the metadata store."""

from __future__ import annotations

import typer

from ferryman.cli._app import JsonOption, console, emit, settings

app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)


@app.command()
def upgrade(as_json: bool = JsonOption) -> None:
    """Apply pending schema migrations."""
    from ferryman.store import Database, safe_url

    config = settings()
    database = Database(url=config.resolved_database_url, migrate_on_start=False).open()
    try:
        applied = database.upgrade()
        revision = database.current_revision()
    finally:
        database.close()
    url = safe_url(config.resolved_database_url)
    emit(
        {"applied": applied, "revision": revision, "database": url},
        as_json,
        lambda: console.print(
            f"{url}: {'upgraded to' if applied else 'already at'} revision {revision}"
        ),
    )


@app.command()
def current(as_json: bool = JsonOption) -> None:
    """Show the schema revision of the database and the newest one available."""
    from ferryman.store import Database, safe_url

    config = settings()
    database = Database(url=config.resolved_database_url, migrate_on_start=False).open()
    try:
        revision, head = database.current_revision(), database.head_revision()
    finally:
        database.close()
    url = safe_url(config.resolved_database_url)
    emit(
        {"revision": revision, "head": head, "database": url},
        as_json,
        lambda: console.print(f"{url}: revision {revision or 'none'} (newest: {head})"),
    )
