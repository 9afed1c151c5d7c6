"""Read-only views of registry rows, returned to callers instead of ORM objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from ferryman.store._tables import AliasEventRow, ModelRow, VersionRow


class VersionStatus(StrEnum):
    """The life cycle of a version: registered, then approved or rejected, then archived."""

    REGISTERED = "registered"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"


#: Allowed status changes. Archiving is possible from every live status; an archived
#: version stays archived (register a new version instead).
TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.REGISTERED: frozenset(
        {VersionStatus.APPROVED, VersionStatus.REJECTED, VersionStatus.ARCHIVED}
    ),
    VersionStatus.APPROVED: frozenset({VersionStatus.REJECTED, VersionStatus.ARCHIVED}),
    VersionStatus.REJECTED: frozenset({VersionStatus.APPROVED, VersionStatus.ARCHIVED}),
    VersionStatus.ARCHIVED: frozenset(),
}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model."""

    name: str
    description: str
    owner_team: str | None
    tags: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    aliases: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: ModelRow, aliases: dict[str, int]) -> ModelInfo:
        return cls(
            name=row.name,
            description=row.description,
            owner_team=row.owner_team,
            tags=dict(row.tags),
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            latest_version=row.last_version or None,
            aliases=aliases,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (timestamps as ISO 8601)."""
        return _json_object(asdict(self))


@dataclass(frozen=True)
class VersionInfo:
    """One immutable model version and its metadata."""

    name: str
    version: int
    flavor: str
    flavor_meta: dict[str, Any]
    artifact_sha256: str
    artifact_size: int
    signature: dict[str, Any] | None
    profile: dict[str, Any] | None
    metrics: dict[str, float]
    params: dict[str, Any]
    tags: dict[str, str]
    description: str
    card: str
    status: VersionStatus
    status_by: str | None
    status_comment: str | None
    lineage: dict[str, Any]
    created_by: str
    created_at: datetime
    aliases: list[str] = field(default_factory=list)

    @cached_property
    def ref(self) -> str:
        """The canonical reference of this version, ``name/N`` (made once: the serving
        path reads it several times per request)."""
        return f"{self.name}/{self.version}"

    @property
    def trusted(self) -> bool:
        """Whether the version was registered with ``trusted=True`` (pickle-based formats)."""
        return bool(self.flavor_meta.get("trusted", False))

    @classmethod
    def from_row(
        cls, row: VersionRow, name: str, aliases: list[str], *, include_profile: bool = True
    ) -> VersionInfo:
        return cls(
            name=name,
            version=row.version,
            flavor=row.flavor,
            flavor_meta=dict(row.flavor_meta),
            artifact_sha256=row.artifact_sha256,
            artifact_size=row.artifact_size,
            signature=row.signature,
            profile=row.profile if include_profile else None,
            metrics=dict(row.metrics),
            params=dict(row.params),
            tags=dict(row.tags),
            description=row.description,
            card=row.card,
            status=VersionStatus(row.status),
            status_by=row.status_by,
            status_comment=row.status_comment,
            lineage=dict(row.lineage),
            created_by=row.created_by,
            created_at=row.created_at,
            aliases=sorted(aliases),
        )

    def to_dict(self, *, include_profile: bool = False) -> dict[str, Any]:
        """Return a JSON-safe dict; the (large) reference profile only on request."""
        data = asdict(self)
        data["ref"] = self.ref
        if not include_profile:
            data.pop("profile")
        return _json_object(data)


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: which version it pointed to from ``at`` on (None: deleted)."""

    model: str
    alias: str
    version: int | None
    previous_version: int | None
    actor: str
    at: datetime

    @classmethod
    def from_row(cls, row: AliasEventRow, model: str) -> AliasEvent:
        return cls(model, row.alias, row.version, row.previous_version, row.actor, row.at)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return _json_object(asdict(self))


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in value.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return str(value)
    return value
