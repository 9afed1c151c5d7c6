"""The alert rule store: rules, their evaluation state and history in the metadata store.

Public names are re-exported by :mod:`ferryman.monitoring.alerts`.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ferryman.errors import AlertRuleNotFoundError, AlreadyExistsError, InvalidInputError
from ferryman.monitoring._alert_rules import (
    STATES,
    AlertRule,
    AlertState,
    Severity,
    Webhook,
    WebhookFormat,
)
from ferryman.registry import audit
from ferryman.store import Database
from ferryman.store._tables import AlertEventRow, AlertRuleRow

#: Where a stored rule comes from: ``ferryman alerts add`` / the API, or the settings.
RuleSource = Literal["api", "config"]


@dataclass(frozen=True)
class AlertRuleInfo:
    """A stored rule with its current state.

    Attributes:
        rule: The rule.
        source: ``"api"`` or ``"config"``.
        created_by: Who added it.
        created_at: When (UTC).
        state: ``inactive``, ``pending``, ``firing`` or ``resolved``.
        state_since: When the current state began; ``None`` until the first transition.
        active_since: When the condition started holding (pending or firing), or ``None``.
        last_value: The metric's value at the last evaluation (``None``: no data).
        last_threshold: The threshold at the last evaluation.
        evaluated_at: When the rule was last evaluated, or ``None``.
    """

    rule: AlertRule
    source: RuleSource
    created_by: str
    created_at: datetime
    state: AlertState
    state_since: datetime | None
    active_since: datetime | None
    last_value: float | None
    last_threshold: float | None
    evaluated_at: datetime | None

    @classmethod
    def from_row(cls, row: AlertRuleRow) -> AlertRuleInfo:
        """Build the view of one ``alert_rules`` row."""
        return cls(
            rule=rule_from_row(row),
            source="config" if row.source == "config" else "api",
            created_by=row.created_by,
            created_at=row.created_at,
            state=STATES.get(row.state, "inactive"),
            state_since=row.state_since,
            active_since=row.active_since,
            last_value=row.last_value,
            last_threshold=row.last_threshold,
            evaluated_at=row.evaluated_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict: the rule's fields, then its origin and state."""
        return {
            **self.rule.to_dict(),
            "source": self.source,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "state": self.state,
            "state_since": iso(self.state_since),
            "active_since": iso(self.active_since),
            "last_value": self.last_value,
            "last_threshold": self.last_threshold,
            "evaluated_at": iso(self.evaluated_at),
        }


@dataclass(frozen=True)
class AlertEvent:
    """One transition of a rule, from its history.

    Attributes:
        id: Increasing identifier.
        rule: The rule's name.
        endpoint: The endpoint it watches.
        version: The version it is limited to, or ``None``.
        state: The state entered: ``pending``, ``firing``, ``resolved`` or ``inactive``.
        severity: The rule's severity then.
        condition: The rule's condition then.
        value: The metric's value (``None``: no data in the window).
        threshold: The threshold.
        started_at: When the condition started holding.
        at: When the transition happened (UTC).
        message: A sentence for people.
    """

    id: int
    rule: str
    endpoint: str
    version: str | None
    state: AlertState
    severity: str
    condition: str
    value: float | None
    threshold: float | None
    started_at: datetime | None
    at: datetime
    message: str

    @classmethod
    def from_row(cls, row: AlertEventRow) -> AlertEvent:
        """Build the view of one ``alert_events`` row."""
        return cls(
            id=row.id,
            rule=row.rule,
            endpoint=row.endpoint,
            version=row.version,
            state=STATES.get(row.state, "inactive"),
            severity=row.severity,
            condition=row.condition,
            value=row.value,
            threshold=row.threshold,
            started_at=row.started_at,
            at=row.at,
            message=row.message,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "id": self.id,
            "rule": self.rule,
            "endpoint": self.endpoint,
            "version": self.version,
            "state": self.state,
            "severity": self.severity,
            "condition": self.condition,
            "value": self.value,
            "threshold": self.threshold,
            "started_at": iso(self.started_at),
            "at": self.at.isoformat(),
            "message": self.message,
        }


def rule_from_row(row: AlertRuleRow) -> AlertRule:
    return AlertRule(
        name=row.name,
        endpoint=row.endpoint,
        when=row.condition,
        window=timedelta(seconds=row.window_seconds),
        # The stored values were validated on the way in, and AlertRule checks them again.
        severity=cast(Severity, row.severity),
        version=row.version,
        role=row.role,
        webhooks=tuple(
            Webhook(url=h["url"], format=cast(WebhookFormat, h["format"])) for h in row.webhooks
        ),
    )


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class AlertService:
    """Add, list and remove alert rules and read their history, with audit entries.

    Args:
        database: The metadata store (opened on first use).
        user: Who is acting; recorded in ``created_by`` and the audit log.
    """

    def __init__(self, *, database: Database, user: str) -> None:
        self.database = database
        self.user = user

    def __repr__(self) -> str:
        return f"AlertService(database={self.database!r}, user={self.user!r})"

    def add(self, rule: AlertRule) -> AlertRuleInfo:
        """Store a new rule; the engine evaluates it from its next round on.

        Raises:
            AlreadyExistsError: A rule with that name exists.
        """
        try:
            with self.database.write() as session:
                if find_rule_row(session, rule.name) is not None:
                    raise AlreadyExistsError(
                        f"Alert rule {rule.name!r} already exists; remove it first with: "
                        f"ferryman alerts remove {rule.name}"
                    )
                row = _new_row(rule, source="api", user=self.user)
                session.add(row)
                session.flush()
                self._audit(session, "alert.add", rule.name, None, _audited(rule))
                return AlertRuleInfo.from_row(row)
        except IntegrityError as exc:  # a concurrent add of the same name
            raise AlreadyExistsError(f"Alert rule {rule.name!r} already exists") from exc

    def get(self, name: str) -> AlertRuleInfo:
        """Return the rule called ``name`` with its state.

        Raises:
            AlertRuleNotFoundError: No such rule.
        """
        with self.database.read() as session:
            row = find_rule_row(session, name)
            if row is None:
                raise _not_found(name)
            return AlertRuleInfo.from_row(row)

    def list(self, *, endpoint: str | None = None) -> builtins.list[AlertRuleInfo]:
        """Return every rule (only ``endpoint``'s, if given), sorted by name."""
        query = select(AlertRuleRow).order_by(AlertRuleRow.name)
        if endpoint is not None:
            query = query.where(AlertRuleRow.endpoint == endpoint)
        with self.database.read() as session:
            return [AlertRuleInfo.from_row(row) for row in session.scalars(query)]

    def remove(self, name: str) -> None:
        """Remove the rule called ``name``; its history stays.

        Raises:
            AlertRuleNotFoundError: No such rule.
            InvalidInputError: The rule comes from configuration (remove it there).
        """
        with self.database.write() as session:
            row = find_rule_row(session, name, lock=True)
            if row is None:
                raise _not_found(name)
            if row.source == "config":
                raise InvalidInputError(
                    f"Alert rule {name!r} comes from the server's configuration; remove it "
                    "from there (alert_rules) and restart the server."
                )
            before = _audited(rule_from_row(row))
            session.delete(row)
            self._audit(session, "alert.remove", name, before, None)

    def history(
        self, *, endpoint: str | None = None, rule: str | None = None, limit: int = 50
    ) -> builtins.list[AlertEvent]:
        """Return the latest transitions, newest first.

        Args:
            endpoint: Only this endpoint's rules.
            rule: Only this rule.
            limit: Most events returned (integer >= 1).

        Raises:
            InvalidInputError: ``limit`` is not an integer >= 1.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(f"Invalid limit {limit!r}: expected an integer >= 1.")
        query = select(AlertEventRow).order_by(AlertEventRow.id.desc()).limit(limit)
        if endpoint is not None:
            query = query.where(AlertEventRow.endpoint == endpoint)
        if rule is not None:
            query = query.where(AlertEventRow.rule == rule)
        with self.database.read() as session:
            return [AlertEvent.from_row(row) for row in session.scalars(query)]

    def configure(self, rules: Sequence[AlertRule]) -> None:
        """Make the stored configuration rules exactly ``rules``.

        New rules are added, changed ones updated (keeping their state), and
        configuration rules no longer listed removed; rules added through the API are
        left alone. Each change is audited; an unchanged configuration writes nothing,
        so every server process may call this at start.

        Raises:
            InvalidInputError: Two rules share a name.
            AlreadyExistsError: A rule's name is taken by a rule added through the API.
        """
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidInputError(
                f"Alert rule name(s) {', '.join(duplicates)} appear more than once in the "
                "configuration."
            )
        try:
            self._configure(rules)
        except IntegrityError:  # another process inserted the same rules first
            self._configure(rules)

    def _configure(self, rules: Sequence[AlertRule]) -> None:
        wanted = {rule.name: rule for rule in rules}
        with self.database.write() as session:
            rows = {
                row.name: row
                for row in session.scalars(
                    select(AlertRuleRow)
                    .where((AlertRuleRow.source == "config") | AlertRuleRow.name.in_(list(wanted)))
                    .order_by(AlertRuleRow.name)
                    .with_for_update()
                )
            }
            changes: builtins.list[tuple[str, str, Any, Any]] = []
            for name, row in rows.items():
                if row.source != "config" and name in wanted:
                    raise AlreadyExistsError(
                        f"Alert rule {name!r} from the configuration has the name of a rule "
                        "added with 'ferryman alerts add'; rename one of them."
                    )
                if name not in wanted:
                    changes.append(("alert.remove", name, _audited(rule_from_row(row)), None))
                    session.delete(row)
            for name, rule in wanted.items():
                stored = rows.get(name)
                if stored is None:
                    session.add(_new_row(rule, source="config", user=self.user))
                    changes.append(("alert.add", name, None, _audited(rule)))
                    continue
                current = rule_from_row(stored)
                if current != rule:
                    _write_definition(stored, rule)
                    changes.append(("alert.update", name, _audited(current), _audited(rule)))
            session.flush()
            for action, name, before, after in changes:
                self._audit(session, action, name, before, after)

    def _audit(
        self,
        session: Session,
        action: str,
        name: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        audit.append(
            session,
            actor=self.user,
            action=action,
            entity_type="alert_rule",
            # ':' cannot occur in model names, so these never mix with a model's entries.
            entity=f"alert:{name}",
            before=before,
            after=after,
        )


def find_rule_row(session: Session, name: str, *, lock: bool = False) -> AlertRuleRow | None:
    query = select(AlertRuleRow).where(AlertRuleRow.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _not_found(name: str) -> AlertRuleNotFoundError:
    return AlertRuleNotFoundError(
        f"No alert rule named {name!r}. List rules with: ferryman alerts list"
    )


def _new_row(rule: AlertRule, *, source: RuleSource, user: str) -> AlertRuleRow:
    row = AlertRuleRow(
        name=rule.name,
        source=source,
        created_by=user,
        created_at=datetime.now(UTC),
        state="inactive",
    )
    _write_definition(row, rule)
    return row


def _write_definition(row: AlertRuleRow, rule: AlertRule) -> None:
    row.endpoint = rule.endpoint
    row.version = rule.version
    row.role = rule.role
    row.condition = rule.when
    row.window_seconds = int(rule.window.total_seconds())
    row.severity = rule.severity
    row.webhooks = [hook.to_dict() for hook in rule.webhooks]


def _audited(rule: AlertRule) -> dict[str, Any]:
    """The rule for the audit log, webhook URLs redacted (Slack's carry a secret)."""
    data = rule.to_dict()
    data["webhooks"] = [{"url": h.redacted, "format": h.format} for h in rule.webhooks]
    return data


__all__ = [
    "AlertEvent",
    "AlertRuleInfo",
    "AlertService",
    "RuleSource",
    "find_rule_row",
    "iso",
    "rule_from_row",
]
