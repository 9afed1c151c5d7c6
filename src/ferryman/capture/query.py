"""Reading the log: SQL over the views, the latest records, exports for retraining.

Every read opens a fresh locked-down DuckDB connection (see ``_views``) whose views cover
the segments present at that moment, scoped to one endpoint when asked; a query scoped
to ``churn`` cannot reach another endpoint's rows by any SQL, because no other
endpoint's file is known to the connection and DuckDB may not open files itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import os
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ferryman.capture._layout import LogStorage, check_endpoint, parquet_options
from ferryman.capture._views import SchemaCache, check_read_only, connect, execute
from ferryman.errors import InvalidInputError

ExportFormat = Literal["parquet", "csv"]


@dataclass(frozen=True)
class QueryResult:
    """Rows returned by a query over the log.

    Attributes:
        columns: Column names, in order.
        rows: The rows, as tuples of Python values (timestamps are aware UTC datetimes,
            maps are dicts, structs are dicts).
        truncated: Whether more rows matched than were returned.
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts of column -> value."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"columns": [...], "rows": [[...], ...], "truncated": bool}``."""
        return {
            "columns": list(self.columns),
            "rows": [[jsonable(value) for value in row] for row in self.rows],
            "truncated": self.truncated,
        }


def jsonable(value: Any) -> Any:
    """Turn a value DuckDB returned into a JSON value (ISO times, NaN as null, hex bytes)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


class LogReader:
    """SQL, tail and export over the log under ``storage``.

    Args:
        storage: Where the log lives.
        secret: The hashing key, for ``pii_hash``.
        query_timeout: Seconds after which a query is stopped.
        max_rows: Most rows one query returns (more are reported as truncated).
        threads: DuckDB threads per query.
        memory_limit: DuckDB memory limit per query, e.g. ``"1GB"``.
    """

    def __init__(
        self,
        *,
        storage: LogStorage,
        secret: bytes | None = None,
        query_timeout: float = 30.0,
        max_rows: int = 10_000,
        threads: int = 2,
        memory_limit: str = "1GB",
    ) -> None:
        self.storage = storage
        self.secret = secret
        self.query_timeout = query_timeout
        self.max_rows = max_rows
        self.threads = threads
        self.memory_limit = memory_limit
        self._schemas = SchemaCache()

    @contextmanager
    def connection(
        self, endpoints: Sequence[str] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A locked-down connection over the given endpoints' segments (``None``: all)."""
        if endpoints is not None:
            for endpoint in endpoints:
                check_endpoint(endpoint)
        connection = connect(
            self.storage,
            endpoints=endpoints,
            secret=self.secret,
            schemas=self._schemas,
            threads=self.threads,
            memory_limit=self.memory_limit,
        )
        try:
            yield connection
        finally:
            connection.close()

    def run(
        self,
        sql: str,
        parameters: Sequence[Any] | None = None,
        *,
        endpoints: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Run trusted SQL (built by Ferryman, parameters bound) and fetch ``limit`` rows."""
        cap = self.max_rows if limit is None else limit
        with self.connection(endpoints) as connection:
            result = execute(connection, sql, parameters, timeout=self.query_timeout)
            columns = [d[0] for d in result.description or ()]
            rows = result.fetchmany(cap + 1)
        return QueryResult(columns=columns, rows=rows[:cap], truncated=len(rows) > cap)

    def arrow(
        self,
        sql: str,
        parameters: Sequence[Any] | None = None,
        *,
        endpoints: Sequence[str] | None = None,
    ) -> pa.Table:
        """Run trusted SQL and return every row as an Arrow table."""
        with self.connection(endpoints) as connection:
            table: pa.Table = execute(
                connection, sql, parameters, timeout=self.query_timeout, arrow=True
            )
            return table

    def query(
        self,
        sql: str,
        *,
        endpoint: str | None = None,
        allowed: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Run one user ``SELECT`` over the views ``predictions``, ``feedback``, ``reviews``.

        Args:
            sql: One SELECT statement.
            endpoint: Scope the views to this endpoint's records only.
            allowed: The endpoints the caller may read (``None``: all); without
                ``endpoint`` the views cover all of them.
            limit: Most rows returned (default and ceiling: ``max_rows``).

        Raises:
            QueryError: DuckDB rejected the query (its message) or it is not one SELECT.
            InvalidInputError: ``endpoint`` is invalid or outside ``allowed``.
        """
        check_read_only(sql)
        if endpoint is not None:
            check_endpoint(endpoint)
            if allowed is not None and endpoint not in allowed:
                raise InvalidInputError(f"Endpoint {endpoint!r} is outside the allowed scope.")
            scope: list[str] | None = [endpoint]
        else:
            scope = None if allowed is None else sorted(allowed)
        cap = self.max_rows if limit is None else max(1, min(limit, self.max_rows))
        return self.run(sql, endpoints=scope, limit=cap)

    def tail(
        self,
        endpoint: str,
        n: int = 20,
        *,
        version: str | None = None,
        role: str | None = None,
        status: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> QueryResult:
        """The latest ``n`` records of ``endpoint``, newest first, optionally filtered.

        Args:
            endpoint: The endpoint.
            n: How many records (1 to ``max_rows``).
            version: Only this model version (``"name/N"``).
            role: Only this role.
            status: Only this HTTP status.
            since: Only records at or after this time (timezone-aware).
            until: Only records before this time (timezone-aware).

        Raises:
            InvalidInputError: A bad endpoint name, ``n``, or a naive datetime.
        """
        check_endpoint(endpoint)
        if not 1 <= n <= self.max_rows:
            raise InvalidInputError(f"n must be between 1 and {self.max_rows}, got {n}.")
        where, parameters = filters(
            version=version, role=role, status=status, since=since, until=until
        )
        sql = (
            f"SELECT * EXCLUDE (endpoint, date) FROM predictions{where} "
            f'ORDER BY time DESC, request_id, role, "row" LIMIT {int(n)}'
        )
        return self.run(sql, parameters, endpoints=[endpoint], limit=n)

    def export(
        self,
        endpoint: str,
        path: str | Path,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        format: ExportFormat = "parquet",
        role: str | None = "primary",
    ) -> int:
        """Write ``endpoint``'s records joined with their latest feedback, for retraining.

        Columns: the record's, then ``label``, ``outcome`` and ``feedback_time`` (null
        where no feedback arrived). CSV flattens ``inputs`` into ``inputs.<feature>``
        columns and writes ``probabilities`` as JSON text. The file appears atomically.

        Args:
            endpoint: The endpoint.
            path: The output file.
            since: Only records at or after this time.
            until: Only records before this time.
            format: ``"parquet"`` or ``"csv"``.
            role: Only records of this role (default ``"primary"``; ``None``: all).

        Returns:
            The number of rows written.

        Raises:
            InvalidInputError: A bad endpoint, format or time.
        """
        check_endpoint(endpoint)
        if format not in ("parquet", "csv"):
            raise InvalidInputError(f"Unknown export format {format!r}. Available: csv, parquet.")
        where, parameters = filters(role=role, since=since, until=until, prefix="p.")
        sql = (
            "SELECT p.* EXCLUDE (endpoint, date), f.label, f.outcome, f.time AS feedback_time "
            "FROM predictions p LEFT JOIN feedback f "
            f'ON f.request_id = p.request_id AND f."row" = p."row"{where} '
            'ORDER BY p.time, p.request_id, p."row"'
        )
        table = self.arrow(sql, parameters, endpoints=[endpoint])
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            if format == "parquet":
                pq.write_table(table, temporary, **parquet_options(table.schema))
            else:
                pa_csv.write_csv(_flat(table), temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return int(table.num_rows)


def filters(
    *,
    version: str | None = None,
    role: str | None = None,
    status: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    prefix: str = "",
) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (with leading space, or empty) and its parameters.

    Raises:
        InvalidInputError: ``since`` or ``until`` is naive, or ``until`` is not after
            ``since``.
    """
    clauses: list[str] = []
    parameters: list[Any] = []
    equal: tuple[tuple[str, str | int | None], ...] = (
        ("model_version", version),
        ("role", role),
        ("status", status),
    )
    for column, value in equal:
        if value is not None:
            clauses.append(f"{prefix}{column} = ?")
            parameters.append(value)
    for name, bound, operator in (("since", since, ">="), ("until", until, "<")):
        if bound is not None:
            clauses.append(f"{prefix}time {operator} ?")
            parameters.append(aware(bound, name))
    if since is not None and until is not None and until <= since:
        raise InvalidInputError(
            f"The window is empty: until ({until.isoformat()}) must be after since "
            f"({since.isoformat()})."
        )
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), parameters


def aware(value: dt.datetime, name: str) -> dt.datetime:
    """Return ``value`` in UTC.

    Raises:
        InvalidInputError: ``value`` has no timezone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{name} is a naive datetime ({value.isoformat()}); give a timezone-aware one, "
            "e.g. 2026-01-31T12:00:00+00:00."
        )
    return value.astimezone(dt.UTC)


def _flat(table: pa.Table) -> pa.Table:
    """A table CSV can hold: structs flattened, maps and lists as JSON text."""
    import json

    table = table.flatten()
    columns: list[pa.Array] = []
    for column in table.columns:
        if pa.types.is_nested(column.type):
            values = [
                None if value is None else json.dumps(jsonable(_mapping(value)))
                for value in column.to_pylist()
            ]
            columns.append(pa.array(values, pa.string()))
        else:
            columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _mapping(value: Any) -> Any:
    # Arrow gives a map as a list of (key, value) pairs.
    if isinstance(value, list) and all(
        isinstance(item, tuple) and len(item) == 2 for item in value
    ):
        return dict(value)
    return value
