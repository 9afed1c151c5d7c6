"""DuckDB over the log: a locked-down in-memory connection with the three views.

Isolation does not depend on parsing SQL. The connection never touches a file itself:
each view is a pyarrow dataset over an explicit list of segments (only one endpoint's,
for a scoped connection), handed to DuckDB as a Python object. Then external access is
switched off (no ``read_parquet``, ``FROM 'file'``, ``COPY``, ``ATTACH``, ``INSTALL``),
Python replacement scans are off (no reading a Python variable by naming it), and the
configuration is locked, so SQL cannot switch any of it back on. On top of that
:func:`check_read_only` admits exactly one ``SELECT`` statement.

Views: ``predictions`` and ``reviews`` (every row), ``feedback`` (the latest feedback per
``(request_id, row)``, last write wins) and ``feedback_log`` (every feedback row). Each
also has the partition columns ``endpoint`` and ``date``. ``pii_hash(text)`` is the
privacy policy's keyed hash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from ferryman.capture._layout import TABLES, LogStorage, LogTable
from ferryman.capture._schemas import BASE_SCHEMAS, unify
from ferryman.capture.privacy import keyed_hash
from ferryman.errors import QueryError

_PARTITIONS = pa.schema([("endpoint", pa.string()), ("date", pa.date32())])
_RELATION: dict[LogTable, str] = {
    "predictions": "predictions",
    "feedback": "feedback_log",
    "reviews": "reviews",
}
_FEEDBACK_VIEW = """
CREATE VIEW feedback AS
SELECT * FROM feedback_log
QUALIFY row_number() OVER (
    PARTITION BY request_id, "row" ORDER BY received_at DESC, sequence DESC
) = 1
"""


class SchemaCache:
    """Segment schemas by path: segments are immutable but for row removal, which keeps them."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._schemas: dict[str, pa.Schema] = {}
        self._lock = threading.Lock()

    def get(self, storage: LogStorage, path: str) -> pa.Schema:
        """The schema of the segment at ``path``, read from its footer once."""
        found = self._schemas.get(path)
        if found is None:
            found = storage.schema(path).remove_metadata()
            with self._lock:
                if len(self._schemas) >= self.limit:
                    self._schemas.clear()
                self._schemas[path] = found
        return found


def connect(
    storage: LogStorage,
    *,
    endpoints: Sequence[str] | None,
    secret: bytes | None,
    schemas: SchemaCache,
    threads: int = 2,
    memory_limit: str = "1GB",
) -> duckdb.DuckDBPyConnection:
    """Open a locked-down connection whose views show the given endpoints (``None``: all).

    Raises:
        InvalidInputError: An endpoint name is invalid.
    """
    connection = duckdb.connect(
        ":memory:", config={"threads": threads, "memory_limit": memory_limit}
    )
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET python_enable_replacements = false")
        for table in TABLES:
            connection.register(_RELATION[table], _dataset(storage, table, endpoints, schemas))
        connection.execute(_FEEDBACK_VIEW)

        def pii_hash(value: str) -> str:
            if secret is None:
                raise ValueError(
                    "pii_hash needs the secret key the log was hashed with; set FERRYMAN_SECRET_KEY"
                )
            return keyed_hash(value, secret)

        connection.create_function(
            "pii_hash",
            pii_hash,
            [duckdb.sqltype("VARCHAR")],
            duckdb.sqltype("VARCHAR"),
            side_effects=False,
        )
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection


def check_read_only(sql: str) -> None:
    """Admit exactly one ``SELECT`` statement.

    Raises:
        QueryError: The text does not parse (DuckDB's message), is empty, holds several
            statements, or is not a ``SELECT``.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("The query is empty: give one SELECT statement.")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    if len(statements) != 1:
        raise QueryError(
            f"Expected exactly one SELECT statement, got {len(statements)} statements."
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(kind).rsplit(".", 1)[-1]
        raise QueryError(f"Only SELECT queries are allowed over the log, got a {name} statement.")


def execute(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    parameters: Sequence[Any] | None = None,
    *,
    timeout: float,
    arrow: bool = False,
) -> Any:
    """Run ``sql``, interrupting it after ``timeout`` seconds.

    Returns:
        The connection with a pending result (fetch with ``fetchmany``), or with
        ``arrow`` the whole result as an Arrow table.

    Raises:
        QueryError: DuckDB rejected or interrupted the query (its message is kept).
    """
    timer = threading.Timer(timeout, connection.interrupt)
    timer.daemon = True
    timer.start()
    try:
        if not arrow:
            return connection.execute(sql, parameters)
        relation = connection.sql(sql, params=parameters)
        # DuckDB 1.x names it arrow(), later versions to_arrow_table().
        fetch: Callable[[], pa.Table] = getattr(relation, "to_arrow_table", None) or relation.arrow
        return fetch()
    except duckdb.InterruptException:
        raise QueryError(
            f"The query ran longer than {timeout:g} s and was stopped; narrow it with a WHERE "
            "on time or endpoint, or add a LIMIT."
        ) from None
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    finally:
        timer.cancel()


def _dataset(
    storage: LogStorage,
    table: LogTable,
    endpoints: Sequence[str] | None,
    schemas: SchemaCache,
) -> ds.Dataset:
    if endpoints is None:
        paths = [segment.path for segment in storage.segments(table)]
    else:
        paths = [s.path for e in endpoints for s in storage.segments(table, e)]
    base = BASE_SCHEMAS[table]
    if not paths:
        empty = pa.schema([*base, *_PARTITIONS])
        return ds.dataset(empty.empty_table())
    schema = unify([base, *(schemas.get(storage, path) for path in paths)])
    schema = pa.schema([*schema, *_PARTITIONS])
    return ds.dataset(
        paths,
        schema=schema,
        format="parquet",
        filesystem=None if storage.is_local else storage.fs,
        partitioning=ds.partitioning(_PARTITIONS, flavor="hive"),
        partition_base_dir=f"{storage.base}/{table}",
    )
