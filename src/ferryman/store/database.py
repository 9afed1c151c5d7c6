"""The metadata database: engine, transactions and schema migrations.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and every write
transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the
database lock instead of failing half-way. On PostgreSQL, writers lock the rows they
change (``SELECT … FOR UPDATE``). Either way a version number or an alias move is never
lost or duplicated, across threads and processes.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ferryman.errors import ConfigurationError, StoreUnavailableError

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works: it only has to be the same in every Ferryman process.
_PG_MIGRATION_LOCK = 0x46455252  # "FERR"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event below (pysqlite would
    # otherwise start transactions lazily and never with IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("ferryman_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def safe_url(url: str | URL) -> str:
    """Render a database URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


class Database:
    """The metadata store's connection and transaction boundaries.

    Args:
        url: SQLAlchemy database URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
        migrate_on_start: Apply pending migrations in :meth:`open`.
    """

    def __init__(self, *, url: str, migrate_on_start: bool = True) -> None:
        self.url = url
        self.migrate_on_start = migrate_on_start
        self._engine: Engine | None = None
        self._read: sessionmaker[Session] | None = None
        self._write: sessionmaker[Session] | None = None

    def __repr__(self) -> str:
        return f"Database(url={safe_url(self.url)!r}, migrate_on_start={self.migrate_on_start})"

    @property
    def is_sqlite(self) -> bool:
        """Whether the backend is SQLite."""
        return make_url(self.url).get_backend_name() == "sqlite"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine; :meth:`open` must have been called."""
        if self._engine is None:
            raise RuntimeError("Database.open() must be called before use")
        return self._engine

    def open(self) -> Database:
        """Connect, check the server answers, and apply migrations when configured.

        Returns:
            ``self``, so ``Database(url=…).open()`` reads naturally.

        Raises:
            ConfigurationError: The URL is malformed or names an unknown driver.
            StoreUnavailableError: The database cannot be reached.
        """
        if self._engine is not None:
            return self
        try:
            url = make_url(self.url)
        except ArgumentError as exc:
            raise ConfigurationError(
                f"Invalid database URL {self.url!r}: expected e.g. sqlite:///path/ferryman.db "
                "or postgresql+psycopg://user@host:5432/dbname"
            ) from exc
        try:
            if url.get_backend_name() == "sqlite":
                if url.database and url.database != ":memory:":
                    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"timeout": 60})
                event.listen(engine, "connect", _sqlite_on_connect)
                event.listen(engine, "begin", _sqlite_on_begin)
            else:
                connect_args = (
                    {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
                )
                engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except (NoSuchModuleError, ImportError) as exc:
            raise ConfigurationError(
                f"Unsupported database URL {safe_url(url)}: {exc}. Use sqlite:/// or "
                "postgresql+psycopg://"
            ) from exc
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreUnavailableError(
                f"Cannot reach the metadata store at {safe_url(url)}: {reason}"
            ) from exc
        self._engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(
            engine.execution_options(ferryman_write=True), expire_on_commit=False
        )
        if self.migrate_on_start:
            self.upgrade()
        return self

    def close(self) -> None:
        """Release every pooled connection."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """Open a read-only session; nothing it changes is committed."""
        if self._read is None:
            self.open()
        assert self._read is not None
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """Open a write transaction: committed on success, rolled back on any error."""
        if self._write is None:
            self.open()
        assert self._write is not None
        with self._write() as session, session.begin():
            yield session

    # -- migrations ---------------------------------------------------------------------

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def head_revision(self) -> str:
        """The newest migration revision shipped with this Ferryman."""
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        """The revision the database is at, or ``None`` for an empty database."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> bool:
        """Apply pending migrations, safely when several processes start at once.

        Returns:
            Whether anything was applied.
        """
        if self.current_revision() == self.head_revision():
            return False
        from alembic import command

        config = self._alembic_config()
        if self.is_sqlite:
            database = make_url(self.url).database or ":memory:"
            with _file_lock(Path(f"{database}.migrate.lock") if database != ":memory:" else None):
                if self.current_revision() == self.head_revision():
                    return False
                with self.engine.begin() as conn:
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
        else:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    with conn.begin():
                        config.attributes["connection"] = conn
                        command.upgrade(config, "head")
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    conn.commit()
        return True


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
