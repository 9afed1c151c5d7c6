"""The tamper-evident audit log: an append-only table chained by SHA-256 hashes.

Every change to the registry appends one entry (who, what, when, before and after) in
the same transaction as the change itself, so a change and its audit entry are stored
together or not at all. Each entry's hash covers its content and the previous entry's
hash; the chain's head (last sequence number and hash) is kept in its own row. Editing
an entry breaks its hash, deleting one leaves a gap or a broken link, and deleting the
newest entries leaves the head pointing past the end — :func:`verify_chain` names each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferryman.store._tables import AuditHeadRow, AuditRow, utcnow

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Serialise ``value`` the one way the audit chain hashes it (sorted keys, compact)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity: str,
    before: str | None,
    after: str | None,
) -> str:
    """Hash one entry's content chained to the previous entry's hash."""
    payload = canonical_json(
        [seq, at.isoformat(), actor, action, entity_type, entity, before, after]
    )
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry."""

    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity: str
    before: Any
    after: Any
    hash: str

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity_type=row.entity_type,
            entity=row.entity,
            before=json.loads(row.before) if row.before is not None else None,
            after=json.loads(row.after) if row.after is not None else None,
            hash=row.hash,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity": self.entity,
            "before": self.before,
            "after": self.after,
            "hash": self.hash,
        }


ProblemKind = Literal["edited", "deleted", "broken-link", "head-mismatch"]


@dataclass(frozen=True)
class AuditProblem:
    """One inconsistency found in the chain."""

    seq: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class AuditReport:
    """The result of verifying the whole chain."""

    checked: int
    head_seq: int
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_seq": self.head_seq,
            "problems": [p.__dict__ for p in self.problems],
        }


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's write transaction.

    Locks the chain head, so concurrent appends from any number of processes form one
    linear chain. Call it last in a transaction (after the domain rows are locked) so
    that every transaction takes locks in the same order.
    """
    head = session.scalars(
        select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        head = AuditHeadRow(id=1, seq=0, hash=GENESIS)
        session.add(head)
    when = at or utcnow()
    row = AuditRow(
        seq=head.seq + 1,
        at=when,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity=entity,
        before=canonical_json(before) if before is not None else None,
        after=canonical_json(after) if after is not None else None,
        prev_hash=head.hash,
        hash="",
    )
    row.hash = _row_hash(row)
    session.add(row)
    head.seq, head.hash = row.seq, row.hash
    session.flush()
    return AuditEntry.from_row(row)


def _row_hash(row: AuditRow) -> str:
    return entry_hash(
        prev_hash=row.prev_hash,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity=row.entity,
        before=row.before,
        after=row.after,
    )


def verify_chain(rows: Iterable[AuditRow], head: AuditHeadRow | None) -> AuditReport:
    """Check every entry's hash, every link and the head; name each problem found."""
    problems: list[AuditProblem] = []
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    for row in rows:
        checked += 1
        if row.seq != expected_seq:
            missing = (
                f"entry {expected_seq}"
                if row.seq == expected_seq + 1
                else f"entries {expected_seq}-{row.seq - 1}"
            )
            problems.append(
                AuditProblem(expected_seq, "deleted", f"{missing} deleted (gap before {row.seq})")
            )
        elif row.prev_hash != prev_hash:
            problems.append(
                AuditProblem(
                    row.seq,
                    "broken-link",
                    f"entry {row.seq} no longer links to entry {row.seq - 1}: "
                    f"entry {row.seq - 1} was edited or replaced",
                )
            )
        if _row_hash(row) != row.hash:
            problems.append(
                AuditProblem(
                    row.seq,
                    "edited",
                    f"entry {row.seq} was edited: its content does not match its hash",
                )
            )
        expected_seq, prev_hash = row.seq + 1, row.hash
    head_seq = head.seq if head is not None else 0
    last_seq = expected_seq - 1
    if head_seq > last_seq:
        missing = (
            f"entry {head_seq}"
            if head_seq == last_seq + 1
            else (f"entries {last_seq + 1}-{head_seq}")
        )
        problems.append(
            AuditProblem(last_seq + 1, "deleted", f"{missing} deleted from the end of the log")
        )
    elif head is not None and (head_seq != last_seq or head.hash != prev_hash):
        problems.append(
            AuditProblem(head_seq, "head-mismatch", "the chain head does not match the last entry")
        )
    return AuditReport(checked=checked, head_seq=head_seq, problems=problems)
