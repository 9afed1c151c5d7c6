"""Shared fixtures: isolated settings, and a registry on SQLite and on real PostgreSQL.

Each test gets its own FERRYMAN_HOME under tmp_path and, on PostgreSQL, its own schema in
the machine's ``test`` database (127.0.0.1:5432, trust auth), dropped afterwards, so runs
never collide. PostgreSQL tests skip with a visible reason only when the server is
unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferryman.config import Settings
from ferryman.registry import Registry

pytest_plugins = ["tests.s3_fixtures", "tests.alerting"]

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_error() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_DSN) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """``None`` when PostgreSQL answers, else the reason it does not."""
    return _postgres_error()


@pytest.fixture
def pg_schema_url(postgres_available: str | None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    if postgres_available is not None:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {postgres_available}")
    import psycopg

    schema = f"ft_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty metadata database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'ferryman.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    """Factory for settings isolated in tmp_path, on the parametrised backend."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "home": tmp_path / "home",
            "database_url": database_url,
            "user": "alice",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def registry(make_settings: Callable[..., Settings]) -> Iterator[Registry]:
    """An opened registry acting as user 'alice' on a fresh database."""
    with Registry.from_settings(make_settings()) as reg:
        yield reg


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FERRYMAN_* variable or ferryman.toml from the developer's shell leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("FERRYMAN_"):
            monkeypatch.delenv(key)
    # Servers started by tests compute drift on a thread: a child process per server
    # would cost seconds of start-up each. The child process has its own tests.
    monkeypatch.setenv("FERRYMAN_DRIFT_PROCESS", "false")
    monkeypatch.chdir(tmp_path)
