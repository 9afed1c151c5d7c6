"""Where captured records live: partitioned Parquet segments under one root.

Layout (the root is ``FERRYMAN_HOME/logs`` or any fsspec URL)::

    <root>/<table>/endpoint=<endpoint>/date=<YYYY-MM-DD>/<HH>h-<process>-<seq>.parquet

``table`` is ``predictions``, ``feedback`` or ``reviews``. Every segment holds rows of one
UTC hour (``HH``), so compaction can merge a finished hour without opening its files.
``endpoint`` and ``date`` are Hive-style partition keys and are *not* repeated inside the
files, so DuckDB, Spark and Trino read the tree alike.

Writes are atomic: locally a segment is written under a hidden temporary name in its own
directory (``.<name>.<token>.tmp``, never matched by ``*.parquet``) and moved into place
with :func:`os.replace`; on an object store a single PUT makes an object appear whole.
Maintenance (compaction, retention, erasure) rewrites files the same way and takes a
maintenance lock, a ``flock`` on ``<root>/.maintenance.lock`` for local roots (on object
stores, run maintenance from one process).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from ferryman.errors import InvalidInputError

_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """How segments are written: zstd, dictionary encoding for text columns only.

    Request ids, versions, roles, errors, class labels and categorical inputs repeat and
    shrink well in a dictionary; float inputs and scores rarely repeat, and trying a
    dictionary on them first made writing about three times slower and files 25 %
    larger (32-row requests, 30 float inputs).
    """
    return {"compression": "zstd", "use_dictionary": _text_columns(schema, "")}


def _text_columns(fields: Any, prefix: str) -> list[str]:
    found: list[str] = []
    for field in fields:
        path = f"{prefix}{field.name}"
        if pa.types.is_struct(field.type):
            found += _text_columns(field.type, f"{path}.")
        elif pa.types.is_dictionary(field.type) or any(t(field.type) for t in _TEXT_TYPES):
            found.append(path)
    return found


#: The three record tables of the log.
LogTable = Literal["predictions", "feedback", "reviews"]
TABLES: tuple[LogTable, ...] = ("predictions", "feedback", "reviews")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SEGMENT = re.compile(r"^(?P<hour>[0-2][0-9])h-(?P<rest>[A-Za-z0-9._-]+)\.parquet$")
_PARTITION = re.compile(r"^endpoint=(?P<endpoint>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})$")
_MICROS_PER_HOUR = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_endpoint(name: str) -> str:
    """Return ``name`` if it is a valid endpoint name (and so a safe path component).

    Raises:
        InvalidInputError: It is not 1-200 letters, digits, ``.``, ``_`` or ``-``,
            starting with a letter or digit.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"Invalid endpoint name {name!r}: expected 1-200 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit."
        )
    return name


def process_token() -> str:
    """A name for this writer process, unique across hosts, restarts and reused pids."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def hour_start(micros: int) -> datetime:
    """The UTC start of the hour containing ``micros`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=micros - micros % _MICROS_PER_HOUR)


@dataclass(frozen=True)
class Segment:
    """One Parquet file of the log.

    Attributes:
        table: Which table it belongs to.
        endpoint: Its endpoint partition.
        day: Its date partition (UTC).
        hour: The UTC hour (0-23) of every row in it.
        path: Its path on the storage's filesystem.
    """

    table: LogTable
    endpoint: str
    day: date
    hour: int
    path: str

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def start(self) -> datetime:
        """The UTC start of the segment's hour."""
        return datetime(self.day.year, self.day.month, self.day.day, self.hour, tzinfo=UTC)


class LogStorage:
    """The filesystem side of the log: paths, atomic segment writes, listing, the lock.

    Args:
        root: A local directory or an fsspec URL (``s3://bucket/logs``).
        storage_options: Keyword arguments for the fsspec filesystem.
    """

    def __init__(self, *, root: str | Path, storage_options: Mapping[str, Any] | None = None):
        self.root = str(root)
        self.storage_options = dict(storage_options or {})
        fs, path = fsspec.core.url_to_fs(self.root, **self.storage_options)
        self.fs = fs
        self.is_local = "file" in _protocols(fs)
        self.base = os.path.abspath(path) if self.is_local else path.rstrip("/")

    def __repr__(self) -> str:
        return f"LogStorage(root={self.root!r})"

    def partition(self, table: LogTable, endpoint: str, day: date) -> str:
        """The directory of one (table, endpoint, date) partition."""
        check_endpoint(endpoint)
        return f"{self.base}/{table}/endpoint={endpoint}/date={day.isoformat()}"

    def segment_path(self, table: LogTable, endpoint: str, start: datetime, name: str) -> str:
        """The path of a new segment of the hour beginning at ``start`` (UTC)."""
        return f"{self.partition(table, endpoint, start.date())}/{start.hour:02d}h-{name}.parquet"

    def write(
        self, path: str, table: pa.Table, *, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Write ``table`` to ``path`` atomically (replacing any file there).

        Raises:
            OSError: The file cannot be written (disk full, read-only, no permission).
        """
        if metadata:
            existing = table.schema.metadata or {}
            merged = {**existing, **{k.encode(): v.encode() for k, v in metadata.items()}}
            table = table.replace_schema_metadata(merged)
        directory, name = path.rsplit("/", 1)
        options = parquet_options(table.schema)
        if not self.is_local:
            self.fs.makedirs(directory, exist_ok=True)
            with self.fs.open(path, "wb") as handle:
                pq.write_table(table, handle, **options)
            return
        os.makedirs(directory, exist_ok=True)
        temporary = f"{directory}/.{name}.{secrets.token_hex(4)}.tmp"
        try:
            pq.write_table(table, temporary, **options)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def read(self, path: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read one segment (optionally only some columns)."""
        if self.is_local:
            return pq.read_table(path, columns=list(columns) if columns is not None else None)
        with self.fs.open(path, "rb") as handle:
            return pq.read_table(handle, columns=list(columns) if columns is not None else None)

    def schema(self, path: str) -> pa.Schema:
        """Read one segment's schema from its footer."""
        if self.is_local:
            return pq.read_schema(path)
        with self.fs.open(path, "rb") as handle:
            return pq.read_schema(handle)

    def metadata(self, path: str) -> dict[str, str]:
        """The key-value metadata a segment was written with."""
        raw = self.schema(path).metadata or {}
        return {key.decode(): value.decode() for key, value in raw.items()}

    def delete(self, paths: Sequence[str]) -> None:
        """Delete files; ones already gone are ignored."""
        for path in paths:
            if self.is_local:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(path)

    def segments(self, table: LogTable, endpoint: str | None = None) -> list[Segment]:
        """Every segment of ``table`` (of one endpoint, if given), sorted by path."""
        top = f"{self.base}/{table}"
        found: list[Segment] = []
        for directory in self._partitions(top, endpoint):
            match = _PARTITION.match(directory[len(top) + 1 :])
            if match is None:
                continue
            day = date.fromisoformat(match["date"])
            for name in self._names(directory):
                segment = _SEGMENT.match(name)
                if segment is not None and int(segment["hour"]) < 24:
                    found.append(
                        Segment(
                            table=table,
                            endpoint=match["endpoint"],
                            day=day,
                            hour=int(segment["hour"]),
                            path=f"{directory}/{name}",
                        )
                    )
        return sorted(found, key=lambda s: s.path)

    def endpoints(self, table: LogTable) -> list[str]:
        """The endpoints that have a partition of ``table``."""
        top = f"{self.base}/{table}"
        names = {
            name.removeprefix("endpoint=")
            for name in self._names(top)
            if name.startswith("endpoint=")
        }
        return sorted(names)

    def remove_partition(self, table: LogTable, endpoint: str, day: date) -> None:
        """Delete one date partition with everything in it."""
        directory = self.partition(table, endpoint, day)
        if self.is_local:
            for name in self._names(directory):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{directory}/{name}")
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        elif self.fs.exists(directory):
            self.fs.rm(directory, recursive=True)

    @contextlib.contextmanager
    def maintenance_lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the maintenance lock; yields whether it was taken (``wait=False`` may fail).

        Local roots use ``flock`` (released if the process dies); on object stores the
        lock is a no-op and maintenance must run in one process.
        """
        if not self.is_local:
            yield True
            return
        import fcntl

        os.makedirs(self.base, exist_ok=True)
        with open(f"{self.base}/.maintenance.lock", "a+b") as handle:
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle.fileno(), flags)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _partitions(self, top: str, endpoint: str | None) -> list[str]:
        if endpoint is not None:
            tops = [f"{top}/endpoint={check_endpoint(endpoint)}"]
        else:
            tops = [f"{top}/{name}" for name in self._names(top) if name.startswith("endpoint=")]
        return [
            f"{directory}/{name}"
            for directory in tops
            for name in self._names(directory)
            if name.startswith("date=")
        ]

    def _names(self, directory: str) -> list[str]:
        if self.is_local:
            try:
                return sorted(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            entries = self.fs.ls(directory, detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
