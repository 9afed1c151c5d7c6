"""Leases in the metadata store: one holder at a time, until it stops renewing.

Leader election for work that exactly one process of a deployment must do (the rollout
controller): every process tries to take the lease every second; the holder renews it,
and when the holder dies the lease expires and another process takes over. Taking and
renewing are one short write transaction on either backend (SQLite serialises writers;
PostgreSQL locks the row, and two first-time inserts race on the primary key, where the
loser simply is not the leader).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ferryman.store._tables import LeaseRow, utcnow
from ferryman.store.database import Database


class Lease:
    """A named lease for ``holder``.

    Args:
        database: The metadata store.
        name: The lease's name, e.g. ``rollout-controller``.
        holder: Who takes it: unique per process, e.g. ``host:pid:random``.
        ttl_seconds: How long a taken lease lasts without renewal.
    """

    def __init__(
        self, *, database: Database, name: str, holder: str, ttl_seconds: float = 5.0
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds!r}")
        self.database = database
        self.name = name
        self.holder = holder
        self.ttl_seconds = ttl_seconds

    def __repr__(self) -> str:
        return f"Lease(name={self.name!r}, holder={self.holder!r}, ttl_seconds={self.ttl_seconds})"

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; return whether this holder has it now."""
        now = now or utcnow()
        expires = now + timedelta(seconds=self.ttl_seconds)
        try:
            with self.database.write() as session:
                row = session.scalars(
                    select(LeaseRow).where(LeaseRow.name == self.name).with_for_update()
                ).one_or_none()
                if row is None:
                    session.add(LeaseRow(name=self.name, holder=self.holder, expires_at=expires))
                    return True
                if row.holder == self.holder or row.expires_at <= now:
                    row.holder, row.expires_at = self.holder, expires
                    return True
                return False
        except IntegrityError:  # another process inserted it first
            return False

    def release(self) -> None:
        """Give the lease up now if this holder has it (so a successor need not wait)."""
        with self.database.write() as session:
            row = session.scalars(
                select(LeaseRow).where(LeaseRow.name == self.name).with_for_update()
            ).one_or_none()
            if row is not None and row.holder == self.holder:
                session.delete(row)

    def holder_now(self, now: datetime | None = None) -> str | None:
        """Who holds the lease now, or ``None`` when nobody does."""
        now = now or utcnow()
        with self.database.read() as session:
            row = session.get(LeaseRow, self.name)
            if row is None or row.expires_at <= now:
                return None
            return row.holder


__all__ = ["Lease"]
