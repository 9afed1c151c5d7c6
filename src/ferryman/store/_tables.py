"""The metadata tables, as SQLAlchemy 2 ORM mappings.

Schema changes go through an Alembic migration in ``migrations/versions``; a test checks
that the migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always returned timezone-aware (UTC).

    SQLite has no time zones; storing naive UTC everywhere keeps comparisons and the
    audit chain's canonical text identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Return the current time in UTC, truncated to microseconds (both backends keep them)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime}


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_team: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    flavor: Mapped[str] = mapped_column(String(50))
    flavor_meta: Mapped[dict[str, Any]]
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[dict[str, Any] | None]
    profile: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    card: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_by: Mapped[str | None] = mapped_column(String(200))
    status_comment: Mapped[str | None] = mapped_column(Text)
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class AliasRow(Base):
    __tablename__ = "aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class AliasEventRow(Base):
    __tablename__ = "alias_events"
    __table_args__ = (Index("ix_alias_events_lookup", "model_id", "alias", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    alias: Mapped[str] = mapped_column(String(100))
    version: Mapped[int | None] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class AuditRow(Base):
    """One audit entry; ``before`` and ``after`` hold canonical JSON text, hashed as stored."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(300), index=True)
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The chain's head: the last sequence number and hash, updated with every append.

    Appends lock this single row, which serialises them into one linear chain, and
    verification compares it with the last row to detect deleted tail entries.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class EndpointRow(Base):
    """A serving endpoint: a name, the model reference it serves and its runtime limits.

    ``generation`` is the value of the serving change counter (:class:`ServingStateRow`)
    at the endpoint's last change, so it strictly increases with every change.
    """

    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(320))
    max_batch_size: Mapped[int] = mapped_column(Integer)
    max_latency_ms: Mapped[float] = mapped_column(Float)
    timeout_ms: Mapped[float] = mapped_column(Float)
    unknown_columns: Mapped[str] = mapped_column(String(10))
    passthrough: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    privacy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    capture_sample_rate: Mapped[float] = mapped_column(Float, default=1.0)
    log_retention_days: Mapped[float | None] = mapped_column(Float, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    generation: Mapped[int] = mapped_column(BigInteger)


class ServingStateRow(Base):
    """The serving configuration's change counter: one row, bumped by every change.

    Servers poll ``generation`` (a primary-key lookup) to learn cheaply whether anything
    they serve changed. Every serving-configuration write locks this row first, which
    also serialises those writes.
    """

    __tablename__ = "serving_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class APITokenRow(Base):
    """An API token: its public id, role, endpoint scope and the SHA-256 of its secret."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    endpoints: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


# --- Windowed metrics (monitoring) -------------------------------------------------------
# Owned by ferryman.monitoring (window.py, source.py). Other tables go below this block.


class MetricWindowRow(Base):
    """One process's metric counts for one endpoint, version and role over one time bucket.

    Each server process owns its rows (``process`` is unique per process lifetime) and
    overwrites them with its cumulative counts for the bucket, so flushing is an
    idempotent upsert and readers sum rows across processes. ``data`` holds the counts
    and histograms as JSON (see :mod:`ferryman.monitoring.window`).
    """

    __tablename__ = "metric_windows"
    __table_args__ = (
        Index("ix_metric_windows_endpoint_start", "endpoint", "bucket_start"),
        Index("ix_metric_windows_bucket_start", "bucket_start"),
    )

    endpoint: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(320), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    process: Mapped[str] = mapped_column(String(100), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    bucket_seconds: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


# --- Alerts (monitoring) ------------------------------------------------------------------
# Owned by ferryman.monitoring.alerts; migration 0004_alerts. Other tables go below this block.


class AlertRuleRow(Base):
    """An alert rule and its evaluation state.

    ``source`` says where the rule comes from: ``api`` (``ferryman alerts add``) or
    ``config`` (the server's settings, synchronised at start). The state columns are
    written by the alert engine under a row lock, so only the process that makes a
    transition sends its notification, and a restarted server knows what already fired.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    endpoint: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(20))
    condition: Mapped[str] = mapped_column(Text)
    window_seconds: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(20))
    webhooks: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))
    state_since: Mapped[datetime | None]
    active_since: Mapped[datetime | None]
    last_value: Mapped[float | None] = mapped_column(Float)
    last_threshold: Mapped[float | None] = mapped_column(Float)
    evaluated_at: Mapped[datetime | None]


class AlertEventRow(Base):
    """One alert transition (pending, firing, resolved or back to inactive), kept as history.

    Rows name the rule rather than reference it, so history outlives a removed rule.
    """

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_endpoint_at", "endpoint", "at"),
        Index("ix_alert_events_rule_at", "rule", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    condition: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None]
    at: Mapped[datetime]
    message: Mapped[str] = mapped_column(Text)


# -- rollouts (ferryman.rollout) ----------------------------------------------------------


class RolloutRow(Base):
    """One rollout of an endpoint from a stable version to a candidate: its state machine."""

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_endpoint_id", "endpoint", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(20))
    stable: Mapped[str] = mapped_column(String(320))
    candidate: Mapped[str] = mapped_column(String(320))
    alias: Mapped[str | None] = mapped_column(String(200))
    phase: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    step: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    mirror: Mapped[float] = mapped_column(Float)
    failures: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    salt: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    stage_started_at: Mapped[datetime]
    evaluated_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class RolloutEventRow(Base):
    """One entry of a rollout's history: a transition or an observation, with evidence."""

    __tablename__ = "rollout_events"
    __table_args__ = (Index("ix_rollout_events_rollout_id", "rollout_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    phase: Mapped[str] = mapped_column(String(20))
    weight: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class LeaseRow(Base):
    """A named lease held by one process until it expires: leader election via the store."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
