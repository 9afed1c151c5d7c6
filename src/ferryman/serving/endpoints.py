"""Serving endpoints: named entry points (``churn``) that serve a model reference.

An endpoint names the model reference it serves (``churn@production``, ``churn/3`` or
``churn``, resolved again whenever a server loads it, so moving an alias moves the
endpoint) and the runtime limits for it: micro-batching (``max_batch_size``, 1 = off;
``max_latency_ms``, how long a batch may wait to fill), the per-request ``timeout_ms``,
what to do with input columns the model does not know, and ``passthrough`` columns that
requests may carry but the model never sees.

Change detection: the one-row table ``serving_state`` holds a global counter. Every
change to the serving configuration (create, update, delete) increments it in the same
transaction and stamps the changed endpoint's ``generation`` with the new value. A server
polls :meth:`EndpointService.change_marker` (a primary-key lookup) and reloads only when
the value moved; a deletion moves it too, which ``max(endpoints.generation)`` would not
show. Every write locks the counter row, so serving-configuration writes are serialised
on both backends; locks are always taken in the same order: the endpoint row being
changed, then the counter, then the audit head.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ferryman.capture.privacy import PrivacyPolicy
from ferryman.errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    EndpointNotFoundError,
    InvalidInputError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from ferryman.registry import ModelRef, VersionStatus, audit
from ferryman.registry._refs import NAME_RE
from ferryman.store import Database
from ferryman.store._tables import (
    AliasRow,
    EndpointRow,
    ModelRow,
    ServingStateRow,
    VersionRow,
    utcnow,
)

#: What a server does with input columns the model's signature does not know.
UnknownColumns = Literal["reject", "ignore"]

_UNKNOWN_COLUMNS: tuple[str, ...] = get_args(UnknownColumns)
_UNSERVABLE = (VersionStatus.ARCHIVED.value, VersionStatus.REJECTED.value)


@dataclass(frozen=True)
class EndpointConfig:
    """One serving endpoint's configuration.

    Attributes:
        name: The endpoint's name, e.g. ``churn``.
        model: The model reference it serves, e.g. ``churn@production``.
        max_batch_size: Most requests' rows combined into one model call; 1 turns
            micro-batching off.
        max_latency_ms: Longest time (milliseconds) a request waits for a batch to fill.
        timeout_ms: Longest time (milliseconds) a request may take before it fails.
        unknown_columns: ``"reject"`` or ``"ignore"`` input columns the model does not know.
        passthrough: Columns a request may carry that are never fed to the model.
        privacy: Per-column privacy actions for the prediction log (``keep``, ``hash``,
            ``drop``, ``redact``); columns not named are kept.
        capture_sample_rate: Share of requests recorded in the prediction log, in [0, 1].
        log_retention_days: Days records are kept in the prediction log; ``None``: until
            erased.
        description: Free text.
        created_by: Who created the endpoint.
        created_at: When it was created (UTC).
        updated_at: When it last changed (UTC).
        generation: The serving change counter's value at its last change.
    """

    name: str
    model: str
    max_batch_size: int
    max_latency_ms: float
    timeout_ms: float
    unknown_columns: UnknownColumns
    passthrough: tuple[str, ...]
    privacy: dict[str, str]
    capture_sample_rate: float
    log_retention_days: float | None
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    generation: int

    @property
    def micro_batching(self) -> bool:
        """Whether concurrent requests are combined into batches (``max_batch_size > 1``)."""
        return self.max_batch_size > 1

    @classmethod
    def from_row(cls, row: EndpointRow) -> EndpointConfig:
        """Build the view of one ``endpoints`` row."""
        return cls(
            name=row.name,
            model=row.model,
            max_batch_size=row.max_batch_size,
            max_latency_ms=row.max_latency_ms,
            timeout_ms=row.timeout_ms,
            unknown_columns="ignore" if row.unknown_columns == "ignore" else "reject",
            passthrough=tuple(row.passthrough),
            privacy=dict(row.privacy or {}),
            capture_sample_rate=row.capture_sample_rate,
            log_retention_days=row.log_retention_days,
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            generation=row.generation,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (timestamps as ISO 8601, passthrough as a list)."""
        return {
            "name": self.name,
            "model": self.model,
            "max_batch_size": self.max_batch_size,
            "max_latency_ms": self.max_latency_ms,
            "timeout_ms": self.timeout_ms,
            "unknown_columns": self.unknown_columns,
            "passthrough": list(self.passthrough),
            "privacy": dict(self.privacy),
            "capture_sample_rate": self.capture_sample_rate,
            "log_retention_days": self.log_retention_days,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "generation": self.generation,
        }


class EndpointService:
    """Create, read, change and delete serving endpoints, with audit and change tracking.

    Args:
        database: The metadata store (opened on first use).
        user: Who is acting; recorded in ``created_by`` and the audit log.
    """

    def __init__(self, *, database: Database, user: str) -> None:
        self.database = database
        self.user = user

    def __repr__(self) -> str:
        return f"EndpointService(database={self.database!r}, user={self.user!r})"

    def create(
        self,
        name: str,
        *,
        model: str,
        max_batch_size: int = 1,
        max_latency_ms: float = 5.0,
        timeout_ms: float = 10_000.0,
        unknown_columns: UnknownColumns = "reject",
        passthrough: Sequence[str] = (),
        privacy: Mapping[str, str] | None = None,
        capture_sample_rate: float = 1.0,
        log_retention_days: float | None = None,
        description: str = "",
    ) -> EndpointConfig:
        """Create an endpoint serving ``model``.

        Args:
            name: Endpoint name: 1-200 letters, digits, ``.``, ``_`` or ``-``.
            model: Model reference (``churn@production``, ``churn/3`` or ``churn``); it
                must resolve to a servable version now.
            max_batch_size: Integer >= 1; 1 turns micro-batching off.
            max_latency_ms: Milliseconds > 0, at most ``timeout_ms``.
            timeout_ms: Milliseconds > 0.
            unknown_columns: ``"reject"`` or ``"ignore"``.
            passthrough: Column names accepted but never fed to the model.
            privacy: ``{column: keep|hash|drop|redact}`` for the prediction log.
            capture_sample_rate: Share of requests logged, in [0, 1].
            log_retention_days: Days the log keeps records (> 0), or ``None``.
            description: Free text.

        Raises:
            InvalidInputError: A value is out of range; the message names the field.
            InvalidReferenceError: ``model`` is not a model reference.
            ModelNotFoundError, VersionNotFoundError, AliasNotFoundError: The reference
                does not resolve.
            AlreadyExistsError: An endpoint called ``name`` exists.
        """
        _check_name(name)
        values = _checked(
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            timeout_ms=timeout_ms,
            unknown_columns=unknown_columns,
            passthrough=passthrough,
            privacy=privacy or {},
            capture_sample_rate=capture_sample_rate,
            log_retention_days=log_retention_days,
            description=description,
        )
        try:
            with self.database.write() as session:
                generation = next_generation(session)
                if _find_row(session, name) is not None:
                    raise AlreadyExistsError(
                        f"Endpoint {name!r} already exists; change it with: "
                        f"ferryman endpoints update {name}"
                    )
                now = utcnow()
                row = EndpointRow(
                    name=name,
                    model=_resolvable_ref(session, model),
                    created_by=self.user,
                    created_at=now,
                    updated_at=now,
                    generation=generation,
                    **values,
                )
                session.add(row)
                session.flush()
                self._audit(session, "endpoint.create", name, None, _state(row))
                return EndpointConfig.from_row(row)
        except IntegrityError as exc:  # a concurrent writer bypassing the counter lock
            raise AlreadyExistsError(f"Endpoint {name!r} already exists") from exc

    def get(self, name: str) -> EndpointConfig:
        """Return the endpoint called ``name``.

        Raises:
            EndpointNotFoundError: No such endpoint.
        """
        config = self.find(name)
        if config is None:
            raise _not_found(name)
        return config

    def find(self, name: str) -> EndpointConfig | None:
        """Return the endpoint called ``name``, or ``None``."""
        with self.database.read() as session:
            row = _find_row(session, name)
            return EndpointConfig.from_row(row) if row is not None else None

    def list(self) -> builtins.list[EndpointConfig]:
        """Return every endpoint, sorted by name."""
        with self.database.read() as session:
            rows = session.scalars(select(EndpointRow).order_by(EndpointRow.name))
            return [EndpointConfig.from_row(row) for row in rows]

    def update(
        self,
        name: str,
        *,
        model: str | None = None,
        max_batch_size: int | None = None,
        max_latency_ms: float | None = None,
        timeout_ms: float | None = None,
        unknown_columns: UnknownColumns | None = None,
        passthrough: Sequence[str] | None = None,
        privacy: Mapping[str, str] | None = None,
        capture_sample_rate: float | None = None,
        log_retention_days: float | None = None,
        description: str | None = None,
    ) -> EndpointConfig:
        """Change some of an endpoint's settings; ``None`` keeps a setting as it is.

        ``log_retention_days=0`` removes the retention limit (records kept until erased).

        The arguments mean what they mean for :meth:`create`; a new ``model`` must
        resolve. When nothing actually changes, nothing is written: the generation
        stays and no audit entry is added.

        Raises:
            EndpointNotFoundError: No such endpoint.
            InvalidInputError, InvalidReferenceError, ModelNotFoundError,
            VersionNotFoundError, AliasNotFoundError: As for :meth:`create`.
        """
        new_model = str(ModelRef.parse(model)) if model is not None else None
        with self.database.write() as session:
            row = _find_row(session, name, lock=True)
            if row is None:
                raise _not_found(name)
            before = _state(row)
            values = _checked(
                max_batch_size=_pick(max_batch_size, row.max_batch_size),
                max_latency_ms=_pick(max_latency_ms, row.max_latency_ms),
                timeout_ms=_pick(timeout_ms, row.timeout_ms),
                unknown_columns=_pick(unknown_columns, row.unknown_columns),
                passthrough=_pick(passthrough, row.passthrough),
                privacy=_pick(privacy, row.privacy),
                capture_sample_rate=_pick(capture_sample_rate, row.capture_sample_rate),
                log_retention_days=(
                    row.log_retention_days
                    if log_retention_days is None
                    else (None if log_retention_days == 0 else log_retention_days)
                ),
                description=_pick(description, row.description),
            )
            if new_model is not None and new_model != row.model:
                values["model"] = _resolvable_ref(session, new_model)
            if all(before[key] == value for key, value in values.items()):
                return EndpointConfig.from_row(row)
            row.generation = next_generation(session)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            self._audit(session, "endpoint.update", name, before, _state(row))
            return EndpointConfig.from_row(row)

    def delete(self, name: str) -> None:
        """Delete the endpoint called ``name``.

        Raises:
            EndpointNotFoundError: No such endpoint.
        """
        with self.database.write() as session:
            row = _find_row(session, name, lock=True)
            if row is None:
                raise _not_found(name)
            next_generation(session)
            before = _state(row)
            session.delete(row)
            self._audit(session, "endpoint.delete", name, before, None)

    def change_marker(self) -> int:
        """Return the serving change counter; it moves whenever any endpoint changes.

        One primary-key lookup: cheap enough to poll every second from every process.
        """
        with self.database.read() as session:
            value = session.scalar(
                select(ServingStateRow.generation).where(ServingStateRow.id == 1)
            )
            return int(value or 0)

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
            entity_type="endpoint",
            # ':' cannot occur in model names, so endpoint entries never mix with a
            # model's when the audit log is filtered by entity.
            entity=f"endpoint:{name}",
            before=before,
            after=after,
        )


def next_generation(session: Session) -> int:
    """Increment the serving change counter inside the caller's write transaction.

    Call it in every transaction that changes serving configuration, after locking the
    rows it changes and before :func:`ferryman.registry.audit.append`: it locks the
    counter row, which serialises those writes.

    Returns:
        The new counter value, to stamp on the changed rows.
    """
    value = session.execute(
        update(ServingStateRow)
        .where(ServingStateRow.id == 1)
        .values(generation=ServingStateRow.generation + 1)
        .returning(ServingStateRow.generation)
    ).scalar_one_or_none()
    if value is None:  # a schema built without the migration's seed row
        session.add(ServingStateRow(id=1, generation=1))
        session.flush()
        return 1
    return int(value)


def _find_row(session: Session, name: str, *, lock: bool = False) -> EndpointRow | None:
    query = select(EndpointRow).where(EndpointRow.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _not_found(name: str) -> EndpointNotFoundError:
    return EndpointNotFoundError(
        f"No endpoint named {name!r}. List endpoints with: ferryman endpoints list"
    )


def _pick(value: Any, current: Any) -> Any:
    return current if value is None else value


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInputError(
            f"Invalid endpoint name {name!r}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def _checked(
    *,
    max_batch_size: Any,
    max_latency_ms: Any,
    timeout_ms: Any,
    unknown_columns: Any,
    passthrough: Any,
    privacy: Any,
    capture_sample_rate: Any,
    log_retention_days: Any,
    description: Any,
) -> dict[str, Any]:
    """Validate the settings and return them as column values."""
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
        raise InvalidInputError(
            f"Invalid max_batch_size {max_batch_size!r}: expected an integer >= 1 "
            "(1 turns micro-batching off)"
        )
    if max_batch_size < 1:
        raise InvalidInputError(
            f"Invalid max_batch_size {max_batch_size}: expected an integer >= 1 "
            "(1 turns micro-batching off)"
        )
    latency = _milliseconds("max_latency_ms", max_latency_ms)
    timeout = _milliseconds("timeout_ms", timeout_ms)
    if latency > timeout:
        raise InvalidInputError(
            f"Invalid max_latency_ms {latency:g}: expected at most timeout_ms ({timeout:g}), "
            "or requests could time out while waiting for a batch to fill"
        )
    if unknown_columns not in _UNKNOWN_COLUMNS:
        raise InvalidInputError(
            f"Invalid unknown_columns {unknown_columns!r}: expected one of "
            f"{', '.join(_UNKNOWN_COLUMNS)}"
        )
    if not isinstance(description, str):
        raise InvalidInputError(f"Invalid description {description!r}: expected text")
    if (
        isinstance(capture_sample_rate, bool)
        or not isinstance(capture_sample_rate, int | float)
        or not 0 <= capture_sample_rate <= 1
    ):
        raise InvalidInputError(
            f"Invalid capture_sample_rate {capture_sample_rate!r}: expected a share in [0, 1] "
            "(1 logs every request)"
        )
    if log_retention_days is not None and (
        isinstance(log_retention_days, bool)
        or not isinstance(log_retention_days, int | float)
        or not math.isfinite(log_retention_days)
        or log_retention_days <= 0
    ):
        raise InvalidInputError(
            f"Invalid log_retention_days {log_retention_days!r}: expected days > 0 (or none)"
        )
    return {
        "max_batch_size": max_batch_size,
        "max_latency_ms": latency,
        "timeout_ms": timeout,
        "unknown_columns": unknown_columns,
        "passthrough": _columns(passthrough),
        "privacy": PrivacyPolicy.from_mapping(privacy).to_dict(),
        "capture_sample_rate": float(capture_sample_rate),
        "log_retention_days": None if log_retention_days is None else float(log_retention_days),
        "description": description,
    }


def _milliseconds(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"Invalid {field} {value!r}: expected a number of milliseconds > 0")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"Invalid {field} {value!r}: expected a number of milliseconds > 0")
    return float(value)


def _columns(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError(
            f"Invalid passthrough {value!r}: expected a list of column names, e.g. ['customer_id']"
        )
    columns = list(value)
    for column in columns:
        if not isinstance(column, str) or not column.strip():
            raise InvalidInputError(
                f"Invalid passthrough column {column!r}: expected a non-empty column name"
            )
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise InvalidInputError(
            f"Invalid passthrough {columns!r}: column(s) {', '.join(duplicates)} appear twice"
        )
    return columns


def _resolvable_ref(session: Session, text: str) -> str:
    """Check that ``text`` resolves to a servable version now; return it normalised."""
    ref = ModelRef.parse(text)
    model = session.scalars(select(ModelRow).where(ModelRow.name == ref.name)).one_or_none()
    if model is None:
        raise ModelNotFoundError(
            f"No model named {ref.name!r} (from model reference {text!r}). "
            "List models with: ferryman models list"
        )
    if ref.version is not None:
        status = session.scalar(
            select(VersionRow.status).where(
                VersionRow.model_id == model.id, VersionRow.version == ref.version
            )
        )
        if status is None:
            raise VersionNotFoundError(
                f"Model {ref.name!r} has no version {ref.version} "
                f"(latest is {model.last_version or 'none'})"
            )
        if status in _UNSERVABLE:
            raise InvalidInputError(
                f"Version {ref} is {status}; an endpoint cannot serve it. "
                "Choose a registered or approved version"
            )
    elif ref.alias is not None:
        if session.get(AliasRow, (model.id, ref.alias)) is None:
            raise AliasNotFoundError(
                f"Model {ref.name!r} has no alias {ref.alias!r}. Set it with: "
                f"ferryman models alias {ref.name} {ref.alias} VERSION"
            )
    else:
        live = session.scalar(
            select(func.count())
            .select_from(VersionRow)
            .where(VersionRow.model_id == model.id, VersionRow.status.not_in(_UNSERVABLE))
        )
        if not live:
            raise VersionNotFoundError(
                f"Model {ref.name!r} has no servable version (registered or approved)"
            )
    return str(ref)


def _state(row: EndpointRow) -> dict[str, Any]:
    return {
        "model": row.model,
        "max_batch_size": row.max_batch_size,
        "max_latency_ms": row.max_latency_ms,
        "timeout_ms": row.timeout_ms,
        "unknown_columns": row.unknown_columns,
        "passthrough": list(row.passthrough),
        "privacy": dict(row.privacy or {}),
        "capture_sample_rate": row.capture_sample_rate,
        "log_retention_days": row.log_retention_days,
        "description": row.description,
    }


__all__ = ["EndpointConfig", "EndpointService", "UnknownColumns", "next_generation"]
