"""Keeping the log tidy and lawful: compaction, retention, and erasure of a data subject.

All three rewrite segments atomically (a new file under a temporary name, then a rename
over the old one; a file left with no rows is deleted) and hold the maintenance lock, so
they never run over each other; writers only ever add new files and are not disturbed.

- :func:`compact` merges the segments of each finished hour into one file per
  (table, endpoint, date, hour), sorted by time. The merged file lists the files it
  replaces in its metadata; if the process dies between writing it and deleting them,
  the next compaction deletes the leftovers.
- :func:`apply_retention` removes records older than each endpoint's TTL: whole date
  partitions and segments when they are entirely older, rows within the boundary hour.
- :func:`erase` removes every record of the requests matched by a SQL condition on the
  ``predictions`` view, from predictions, feedback and reviews alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ferryman.capture._layout import TABLES, LogStorage, LogTable, Segment, process_token
from ferryman.capture._schemas import concat
from ferryman.capture._views import check_read_only
from ferryman.capture.query import LogReader, aware

_REPLACES = "ferryman.replaces"
_HOUR = dt.timedelta(hours=1)
#: The column whose time decides a row's age in each table.
_AGE_COLUMN: dict[LogTable, str] = {
    "predictions": "time",
    "feedback": "received_at",
    "reviews": "time",
}


@dataclass(frozen=True)
class EraseReport:
    """Rows removed by :func:`erase`, per table.

    Attributes:
        predictions: Prediction records removed.
        feedback: Feedback rows removed.
        reviews: Review verdicts removed.
        request_ids: Distinct requests matched.
    """

    predictions: int
    feedback: int
    reviews: int
    request_ids: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {
            "predictions": self.predictions,
            "feedback": self.feedback,
            "reviews": self.reviews,
            "request_ids": self.request_ids,
        }


@dataclass(frozen=True)
class RetentionReport:
    """What :func:`apply_retention` removed.

    Attributes:
        rows: Rows removed, per table.
        files: Segment files deleted.
    """

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rows": dict(self.rows), "files": self.files}


@dataclass(frozen=True)
class CompactionReport:
    """What :func:`compact` did.

    Attributes:
        merged: Segment files merged (and deleted).
        written: Compacted files written.
        rows: Rows in the compacted files.
        skipped: Whether another process held the maintenance lock, so nothing was done.
    """

    merged: int = 0
    written: int = 0
    rows: int = 0
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "merged": self.merged,
            "written": self.written,
            "rows": self.rows,
            "skipped": self.skipped,
        }


def erase(
    reader: LogReader,
    storage: LogStorage,
    where: str,
    *,
    flush: Callable[[], object] | None = None,
) -> EraseReport:
    """Remove every record of the requests whose prediction records match ``where``.

    ``where`` is a SQL condition over the ``predictions`` view (its columns, ``inputs``,
    passthrough columns, ``endpoint``), e.g. ``user_id = '123'``; for a hashed column
    compare with ``pii_hash('123')``. Every prediction record (primary, shadow), feedback
    row and review verdict of a matched request is removed from every segment.

    Raises:
        QueryError: ``where`` is not a valid condition (DuckDB's message).
    """
    sql = f"SELECT DISTINCT request_id FROM predictions WHERE ({where})"
    check_read_only(sql)
    with storage.maintenance_lock():
        if flush is not None:
            flush()
        matched = reader.arrow(sql).column("request_id").combine_chunks()
        counts: dict[LogTable, int] = dict.fromkeys(TABLES, 0)
        if len(matched):
            for table in TABLES:
                for segment in storage.segments(table):
                    counts[table] += _remove_rows(storage, segment, matched)
    return EraseReport(
        predictions=counts["predictions"],
        feedback=counts["feedback"],
        reviews=counts["reviews"],
        request_ids=len(matched),
    )


def apply_retention(
    storage: LogStorage,
    ttl: Mapping[str, dt.timedelta],
    *,
    now: dt.datetime,
    default: dt.timedelta | None = None,
) -> RetentionReport:
    """Remove records older than their endpoint's time to live.

    Args:
        storage: The log.
        ttl: Endpoint -> how long its records are kept.
        now: The current time (aware).
        default: TTL of endpoints not in ``ttl``; ``None`` keeps them.
    """
    now = aware(now, "now")
    rows: dict[str, int] = dict.fromkeys(TABLES, 0)
    files = 0
    with storage.maintenance_lock():
        for table in TABLES:
            for endpoint in storage.endpoints(table):
                keep = ttl.get(endpoint, default)
                if keep is None:
                    continue
                cutoff = now - keep
                segments = storage.segments(table, endpoint)
                remaining: set[dt.date] = set()
                for segment in segments:
                    if segment.start + _HOUR <= cutoff:
                        rows[table] += storage.read(segment.path, ["request_id"]).num_rows
                        storage.delete([segment.path])
                        files += 1
                        continue
                    if segment.start < cutoff:
                        removed, kept = _remove_older(storage, segment, cutoff)
                        rows[table] += removed
                        if not kept:
                            files += 1
                            continue
                    remaining.add(segment.day)
                for day in {segment.day for segment in segments} - remaining:
                    storage.remove_partition(table, endpoint, day)
    return RetentionReport(rows=rows, files=files)


def compact(
    storage: LogStorage, *, now: dt.datetime, settle: dt.timedelta = dt.timedelta(minutes=10)
) -> CompactionReport:
    """Merge the segments of every hour that ended at least ``settle`` ago.

    Args:
        storage: The log.
        now: The current time (aware).
        settle: How long after an hour ends its segments may still arrive (a writer's
            last flush); only older hours are merged.
    """
    now = aware(now, "now")
    merged = written = rows = 0
    with storage.maintenance_lock(wait=False) as locked:
        if not locked:
            return CompactionReport(skipped=True)
        for table in TABLES:
            groups: dict[tuple[str, dt.date, int], list[Segment]] = {}
            for segment in storage.segments(table):
                if segment.start + _HOUR + settle <= now:
                    groups.setdefault((segment.endpoint, segment.day, segment.hour), []).append(
                        segment
                    )
            for (endpoint, _, _), group in groups.items():
                group = _finish_interrupted(storage, group)
                if len(group) < 2:
                    continue
                combined = concat([storage.read(s.path) for s in group]).sort_by("time")
                path = storage.segment_path(
                    table, endpoint, group[0].start, f"compacted-{process_token()}"
                )
                storage.write(
                    path,
                    combined.replace_schema_metadata(None),
                    metadata={_REPLACES: json.dumps([s.name for s in group])},
                )
                storage.delete([s.path for s in group])
                merged += len(group)
                written += 1
                rows += combined.num_rows
    return CompactionReport(merged=merged, written=written, rows=rows)


def _finish_interrupted(storage: LogStorage, group: list[Segment]) -> list[Segment]:
    """Delete segments a compacted file already holds (a compaction that died midway)."""
    replaced: set[str] = set()
    for segment in group:
        if "-compacted-" in segment.name:
            replaced.update(json.loads(storage.metadata(segment.path).get(_REPLACES, "[]")))
    leftovers = [s for s in group if s.name in replaced]
    storage.delete([s.path for s in leftovers])
    return [s for s in group if s.name not in replaced]


def _remove_rows(storage: LogStorage, segment: Segment, request_ids: pa.Array) -> int:
    ids = storage.read(segment.path, ["request_id"]).column("request_id")
    hit = pc.is_in(ids, value_set=request_ids)
    count = int(pc.sum(hit).as_py() or 0)
    if count:
        _rewrite(storage, segment, pc.invert(hit))
    return count


def _remove_older(storage: LogStorage, segment: Segment, cutoff: dt.datetime) -> tuple[int, bool]:
    """Remove rows older than ``cutoff``; return how many, and whether the file remains."""
    column = _AGE_COLUMN[segment.table]
    times = storage.read(segment.path, [column]).column(column)
    old = pc.fill_null(pc.less(times, pa.scalar(cutoff, times.type)), False)
    count = int(pc.sum(old).as_py() or 0)
    if not count:
        return 0, True
    return count, _rewrite(storage, segment, pc.invert(old))


def _rewrite(storage: LogStorage, segment: Segment, keep: pa.ChunkedArray | pa.Array) -> bool:
    """Keep only the rows where ``keep`` is true; return whether the file remains."""
    table = storage.read(segment.path)
    kept = table.filter(keep)
    if kept.num_rows == 0:
        storage.delete([segment.path])
        return False
    metadata = storage.metadata(segment.path)
    storage.write(segment.path, kept.replace_schema_metadata(None), metadata=metadata)
    return True
