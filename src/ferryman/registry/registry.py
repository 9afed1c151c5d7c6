"""The model registry: models, immutable versions, aliases with history, status and audit.

All writes go through :meth:`Database.write` transactions that lock the model row they
change (``SELECT … FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` serialises SQLite
writers), bump the model's version counter atomically, and append the audit entry in the
same transaction. Artifacts are uploaded before the transaction: a failed registration
can leave an unreferenced blob (harmless, content-addressed) but never a version without
its artifact or an artifact half-written.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, defer

from ferryman.config import Settings
from ferryman.errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    InvalidInputError,
    InvalidTransitionError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from ferryman.flavors import detect_flavor, get_flavor
from ferryman.registry import audit
from ferryman.registry._records import (
    TRANSITIONS,
    AliasEvent,
    ModelInfo,
    VersionInfo,
    VersionStatus,
)
from ferryman.registry._refs import ModelRef, check_alias, check_name
from ferryman.registry.lineage import capture_lineage
from ferryman.registry.model import Model
from ferryman.signature import Signature, build_profile, infer_signature
from ferryman.store import ArtifactStore, BlobRef, Database
from ferryman.store._tables import (
    AliasEventRow,
    AliasRow,
    AuditHeadRow,
    AuditRow,
    ModelRow,
    VersionRow,
    utcnow,
)

_METRIC_FILTER = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(>=|<=|==|!=|>|<)\s*(-?[\d.eE+-]+)\s*$")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class Registry:
    """Register, find, alias, govern and load model versions.

    Args:
        database: The metadata store.
        artifacts: The content-addressed artifact store.
        cache_dir: Local directory where loaders may unpack artifacts.
        user: Who is acting; recorded in ``created_by`` fields and the audit log.
        unknown_columns: What loaded models do with input columns the signature does not
            know: ``"reject"`` or ``"ignore"``.
    """

    def __init__(
        self,
        *,
        database: Database,
        artifacts: ArtifactStore,
        cache_dir: Path,
        user: str,
        unknown_columns: Literal["reject", "ignore"] = "reject",
    ) -> None:
        self.database = database
        self.artifacts = artifacts
        self.cache_dir = cache_dir
        self.user = user
        self.unknown_columns = unknown_columns

    def __repr__(self) -> str:
        return f"Registry(database={self.database!r}, user={self.user!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """Build a registry (not yet opened) from the settings in force."""
        return cls(
            database=Database(
                url=settings.resolved_database_url, migrate_on_start=settings.migrate_on_start
            ),
            artifacts=ArtifactStore(
                uri=settings.resolved_artifact_uri,
                storage_options=settings.artifact_storage_options,
                cache_dir=settings.home / "cache" / "artifacts",
            ),
            cache_dir=settings.home / "cache",
            user=settings.user,
            unknown_columns=settings.unknown_columns,
        )

    def acting_as(self, user: str) -> Registry:
        """Return a registry on the same stores that records ``user`` as the actor."""
        return Registry(
            database=self.database,
            artifacts=self.artifacts,
            cache_dir=self.cache_dir,
            user=user,
            unknown_columns=self.unknown_columns,
        )

    def open(self) -> Registry:
        """Connect to the metadata store (applying migrations when configured)."""
        self.database.open()
        return self

    def close(self) -> None:
        """Release database connections."""
        self.database.close()

    def __enter__(self) -> Registry:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models -------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        owner_team: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelInfo:
        """Create a registered model.

        Raises:
            AlreadyExistsError: A model with this name exists.
            InvalidInputError: The name is not valid.
        """
        check_name(name)
        with self.database.write() as session:
            if _find_model_row(session, name) is not None:
                raise AlreadyExistsError(f"Model {name!r} already exists")
            row = self._insert_model(session, name, description, owner_team, dict(tags or {}))
            return ModelInfo.from_row(row, {})

    def get_model(self, name: str) -> ModelInfo:
        """Return the model called ``name``.

        Raises:
            ModelNotFoundError: No such model.
        """
        with self.database.read() as session:
            row = _get_model_row(session, name)
            return ModelInfo.from_row(row, _aliases_of(session, row.id))

    def find_model(self, name: str) -> ModelInfo | None:
        """Return the model called ``name``, or ``None``."""
        with self.database.read() as session:
            row = _find_model_row(session, name)
            return ModelInfo.from_row(row, _aliases_of(session, row.id)) if row else None

    def list_models(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        owner_team: str | None = None,
        name_contains: str | None = None,
    ) -> list[ModelInfo]:
        """List models, filtered by tags (all must match), owner team and name substring."""
        with self.database.read() as session:
            query = select(ModelRow).order_by(ModelRow.name)
            if owner_team is not None:
                query = query.where(ModelRow.owner_team == owner_team)
            if name_contains:
                query = query.where(ModelRow.name.contains(name_contains, autoescape=True))
            rows = [r for r in session.scalars(query) if _tags_match(r.tags, tags)]
            aliases = _aliases_by_model(session)
            return [ModelInfo.from_row(r, aliases.get(r.id, {})) for r in rows]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner_team: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> ModelInfo:
        """Change a model's description, owner team or tags (a ``None`` tag value removes it)."""
        with self.database.write() as session:
            row = _get_model_row(session, name, lock=True)
            before = _model_state(row)
            if description is not None:
                row.description = description
            if owner_team is not None:
                row.owner_team = owner_team or None
            if tags:
                row.tags = _merge_tags(row.tags, tags)
            row.updated_at = utcnow()
            self._audit(session, "model.update", "model", name, before, _model_state(row))
            return ModelInfo.from_row(row, _aliases_of(session, row.id))

    # -- versions -----------------------------------------------------------------------

    def register(
        self,
        model: object,
        *,
        name: str,
        X: Any = None,
        y: Any = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        flavor: str | None = None,
        trusted: bool = False,
        flavor_options: Mapping[str, Any] | None = None,
        parent: int | None = None,
        owner_team: str | None = None,
        signature: Signature | None = None,
    ) -> VersionInfo:
        """Register a new version of ``name`` (creating the model on first use).

        Args:
            model: The model object (or, for the mlflow flavor, the model directory's path).
                Any object a flavor supports; see :mod:`ferryman.flavors`.
            name: The registered model's name.
            X: Training features, used for the signature, the reference profile and the
                data fingerprint. Strongly recommended; without it no input is validated.
            y: Training target, used for the output kind and the lineage fingerprint.
            metrics: Evaluation metrics, e.g. ``{"accuracy": 0.95}``; numbers only.
            params: Training parameters.
            tags: Version tags.
            description: Free text.
            flavor: Force a flavor instead of detecting it.
            trusted: Allow pickle-based formats, which run code when loaded.
            flavor_options: Flavor-specific options, e.g. ``{"trusted_types": [...]}``.
            parent: The version this one derives from; default: the latest version.
            owner_team: Owner team, used when the model is created by this call.
            signature: A signature to use instead of inferring one from ``X``.

        Returns:
            The new version.

        Raises:
            UnsupportedModelError: No flavor supports the object.
            InvalidInputError: Bad metrics, X/y lengths differ, empty data.
            UntrustedArtifactError: The format needs ``trusted=True``.
        """
        check_name(name)
        metric_values = _check_metrics(metrics)
        flavor_impl = get_flavor(flavor) if flavor else detect_flavor(model)
        if X is not None:
            _check_lengths(X, y)
            signature = signature or infer_signature(X, y)
        with tempfile.TemporaryDirectory(prefix="ferryman-save-") as tmp:
            saved = flavor_impl.save(
                model, Path(tmp), trusted=trusted, options=dict(flavor_options or {})
            )
            meta = dict(saved.meta)
            meta.setdefault("trusted", trusted)
            profile = None
            if X is not None and signature is not None:
                # Predict with the saved artifact, not the live object: this proves the
                # artifact round-trips before anything is stored, and gives the training
                # predictions for the output spec and the reference profile.
                loaded = flavor_impl.load(saved.path, meta, scratch=Path(tmp) / "scratch")
                prediction = loaded.predict(signature.validate(X))
                signature = infer_signature(X, y, predictions=prediction)
                profile = build_profile(X, predictions=prediction, y=y).to_dict()
            blob = self.artifacts.put_file(saved.path)
        lineage = capture_lineage(X, y, parent_version=parent)
        with self.database.write() as session:
            row = _find_model_row(session, name, lock=True)
            if row is None:
                row = self._insert_model(session, name, "", owner_team, {})
            if parent is not None and not _version_exists(session, row.id, parent):
                raise VersionNotFoundError(
                    f"Parent version {parent} of model {name!r} does not exist"
                )
            if parent is None and row.last_version:
                lineage["parent_version"] = row.last_version
            number = session.execute(
                update(ModelRow)
                .where(ModelRow.id == row.id)
                .values(last_version=ModelRow.last_version + 1, updated_at=utcnow())
                .returning(ModelRow.last_version)
            ).scalar_one()
            version = VersionRow(
                model_id=row.id,
                version=number,
                flavor=flavor_impl.name,
                flavor_meta=meta,
                artifact_sha256=blob.sha256,
                artifact_size=blob.size,
                signature=signature.to_dict() if signature is not None else None,
                profile=profile,
                metrics=metric_values,
                params=_jsonable_params(params),
                tags=dict(tags or {}),
                description=description,
                card="",
                status=VersionStatus.REGISTERED.value,
                lineage=lineage,
                created_by=self.user,
                created_at=utcnow(),
            )
            session.add(version)
            session.flush()
            info = VersionInfo.from_row(version, name, [])
            self._audit(
                session, "version.register", "version", info.ref, None, _version_state(info)
            )
            return info

    def get_version(
        self, ref: str | ModelRef, *, at: datetime | None = None, include_profile: bool = True
    ) -> VersionInfo:
        """Resolve a reference (``name``, ``name/3``, ``name@alias``) to a version.

        Args:
            ref: The reference.
            at: Resolve as of this time (timezone-aware): where the alias pointed then,
                or the latest version that existed then.
            include_profile: Read the reference profile (the largest field); loading a
                model does not need it.

        Raises:
            InvalidReferenceError: The reference is malformed.
            ModelNotFoundError, VersionNotFoundError, AliasNotFoundError: Nothing matches.
        """
        parsed = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
        if at is not None and at.tzinfo is None:
            raise InvalidInputError(f"Time {at.isoformat()} has no time zone; give one, e.g. UTC")
        with self.database.read() as session:
            model = _get_model_row(session, parsed.name)
            number = _resolve_number(session, model, parsed, at)
            query = select(VersionRow).where(
                VersionRow.model_id == model.id, VersionRow.version == number
            )
            if not include_profile:
                query = query.options(defer(VersionRow.profile))
            row = session.scalars(query).one_or_none()
            if row is None:
                raise VersionNotFoundError(
                    f"Model {parsed.name!r} has no version {number} "
                    f"(latest is {model.last_version or 'none'})"
                )
            aliases = _aliases_of_version(session, model.id, number)
            return VersionInfo.from_row(row, model.name, aliases, include_profile=include_profile)

    def list_versions(self, name: str) -> list[VersionInfo]:
        """All versions of a model, oldest first.

        Raises:
            ModelNotFoundError: No such model.
        """
        return self.search_versions(name=name)

    def search_versions(
        self,
        *,
        name: str | None = None,
        status: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        metrics: Sequence[str] = (),
        flavor: str | None = None,
    ) -> list[VersionInfo]:
        """Find versions by model, status, tags, alias and metric conditions.

        Args:
            name: Only this model's versions.
            status: One status or several.
            tags: Tags that must all match.
            alias: Only versions an alias of this name points to.
            metrics: Conditions such as ``"accuracy>=0.9"``; all must hold.
            flavor: Only versions of this flavor.

        Raises:
            InvalidInputError: A metric condition or status is malformed.
            ModelNotFoundError: ``name`` is given and no such model exists.
        """
        conditions = [_parse_metric_filter(text) for text in metrics]
        statuses = [status] if isinstance(status, str) else list(status or [])
        for value in statuses:
            _check_status(value)
        with self.database.read() as session:
            query = (
                select(VersionRow, ModelRow.name)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .order_by(ModelRow.name, VersionRow.version)
            )
            if name is not None:
                model = _get_model_row(session, name)
                query = query.where(VersionRow.model_id == model.id)
            if statuses:
                query = query.where(VersionRow.status.in_(statuses))
            if flavor is not None:
                query = query.where(VersionRow.flavor == flavor)
            alias_rows = session.execute(select(AliasRow.model_id, AliasRow.version, AliasRow.name))
            by_version: dict[tuple[int, int], list[str]] = {}
            for model_id, number, alias_name in alias_rows:
                by_version.setdefault((model_id, number), []).append(alias_name)
            result = []
            for row, model_name in session.execute(query):
                names = by_version.get((row.model_id, row.version), [])
                if alias is not None and alias not in names:
                    continue
                if not _tags_match(row.tags, tags):
                    continue
                if not all(_metric_holds(row.metrics, c) for c in conditions):
                    continue
                result.append(VersionInfo.from_row(row, model_name, names))
            return result

    def update_version(
        self,
        ref: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        signature: Mapping[str, Any] | Signature | None = None,
        card: str | None = None,
    ) -> VersionInfo:
        """Change a version's editable metadata: description, tags, signature, model card.

        The artifact, flavor, metrics, params and lineage are immutable.

        Raises:
            InvalidInputError: The new signature is malformed.
        """
        new_signature = None
        if signature is not None:
            new_signature = (
                signature if isinstance(signature, Signature) else Signature.from_dict(signature)
            )
        with self.database.write() as session:
            model, row = self._locked_version(session, ref)
            before = _version_state(VersionInfo.from_row(row, model.name, []))
            if description is not None:
                row.description = description
            if tags:
                row.tags = _merge_tags(row.tags, tags)
            if new_signature is not None:
                row.signature = new_signature.to_dict()
            if card is not None:
                row.card = card
            info = VersionInfo.from_row(
                row, model.name, _aliases_of_version(session, model.id, row.version)
            )
            self._audit(
                session, "version.update", "version", info.ref, before, _version_state(info)
            )
            return info

    def set_status(self, ref: str, status: str, *, comment: str | None = None) -> VersionInfo:
        """Move a version through its life cycle.

        Approval must come from someone other than the version's author. An archived
        version cannot be changed again, and a version an alias points to cannot be
        archived or rejected until the alias moves.

        Raises:
            InvalidTransitionError: The change is not allowed, with the reason.
        """
        target = _check_status(status)
        with self.database.write() as session:
            model, row = self._locked_version(session, ref)
            current = VersionStatus(row.status)
            label = f"{model.name}/{row.version}"
            if target not in TRANSITIONS[current]:
                allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
                raise InvalidTransitionError(
                    f"Version {label} is {current}; it cannot become {target} "
                    f"(allowed from {current}: {allowed})"
                )
            if target is VersionStatus.APPROVED and row.created_by == self.user:
                raise InvalidTransitionError(
                    f"Version {label} was registered by {self.user!r}; approval must come "
                    "from someone else"
                )
            aliases = _aliases_of_version(session, model.id, row.version)
            if target in (VersionStatus.ARCHIVED, VersionStatus.REJECTED) and aliases:
                raise InvalidTransitionError(
                    f"Version {label} is the target of alias(es) {', '.join(aliases)}; "
                    "move them first"
                )
            before = {"status": current.value}
            row.status, row.status_by, row.status_comment = target.value, self.user, comment
            info = VersionInfo.from_row(row, model.name, aliases)
            after = {"status": target.value, "comment": comment}
            self._audit(session, f"version.{_ACTIONS[target]}", "version", label, before, after)
            return info

    # -- aliases ------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> AliasEvent:
        """Point ``name@alias`` at ``version``, keeping the move in the alias history.

        Raises:
            VersionNotFoundError: No such version.
            InvalidTransitionError: The version is archived or rejected.
        """
        check_alias(alias)
        with self.database.write() as session:
            model = _get_model_row(session, name, lock=True)
            target = session.scalars(
                select(VersionRow).where(
                    VersionRow.model_id == model.id, VersionRow.version == version
                )
            ).one_or_none()
            if target is None:
                raise VersionNotFoundError(
                    f"Model {name!r} has no version {version} "
                    f"(latest is {model.last_version or 'none'})"
                )
            if target.status in (VersionStatus.ARCHIVED, VersionStatus.REJECTED):
                raise InvalidTransitionError(
                    f"Version {name}/{version} is {target.status}; an alias cannot point to it"
                )
            row = session.get(AliasRow, (model.id, alias))
            previous = row.version if row is not None else None
            now = utcnow()
            if row is None:
                session.add(
                    AliasRow(
                        model_id=model.id,
                        name=alias,
                        version=version,
                        updated_by=self.user,
                        updated_at=now,
                    )
                )
            else:
                row.version, row.updated_by, row.updated_at = version, self.user, now
            event = AliasEventRow(
                model_id=model.id,
                alias=alias,
                version=version,
                previous_version=previous,
                actor=self.user,
                at=now,
            )
            session.add(event)
            self._audit(
                session,
                "alias.set",
                "alias",
                f"{name}@{alias}",
                {"version": previous} if previous is not None else None,
                {"version": version},
                at=now,
            )
            return AliasEvent.from_row(event, name)

    def delete_alias(self, name: str, alias: str) -> AliasEvent:
        """Remove ``name@alias`` (its history is kept).

        Raises:
            AliasNotFoundError: The alias does not exist.
        """
        with self.database.write() as session:
            model = _get_model_row(session, name, lock=True)
            row = session.get(AliasRow, (model.id, alias))
            if row is None:
                raise AliasNotFoundError(f"Model {name!r} has no alias {alias!r}")
            now = utcnow()
            event = AliasEventRow(
                model_id=model.id,
                alias=alias,
                version=None,
                previous_version=row.version,
                actor=self.user,
                at=now,
            )
            session.add(event)
            self._audit(
                session,
                "alias.delete",
                "alias",
                f"{name}@{alias}",
                {"version": row.version},
                None,
                at=now,
            )
            session.delete(row)
            return AliasEvent.from_row(event, name)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of the model's aliases (or of one alias), oldest first."""
        with self.database.read() as session:
            model = _get_model_row(session, name)
            query = select(AliasEventRow).where(AliasEventRow.model_id == model.id)
            if alias is not None:
                query = query.where(AliasEventRow.alias == alias)
            rows = session.scalars(query.order_by(AliasEventRow.at, AliasEventRow.id))
            return [AliasEvent.from_row(r, name) for r in rows]

    # -- loading ------------------------------------------------------------------------

    def load(self, ref: str | ModelRef | VersionInfo) -> Model:
        """Load a version, verifying its artifact's hash, ready to predict.

        Raises:
            ArtifactIntegrityError: The stored artifact does not match its recorded hash.
            UntrustedArtifactError: The artifact needs a trusted loader it was not granted.
        """
        info = ref if isinstance(ref, VersionInfo) else self.get_version(ref, include_profile=False)
        label = f"model {info.name!r} version {info.version}"
        path = self.artifacts.fetch(BlobRef(info.artifact_sha256, info.artifact_size), label=label)
        scratch = self.cache_dir / "unpacked" / info.artifact_sha256
        loaded = get_flavor(info.flavor).load(path, info.flavor_meta, scratch=scratch)
        signature = Signature.from_dict(info.signature) if info.signature else None
        return Model(
            info=info, model=loaded, signature=signature, unknown_columns=self.unknown_columns
        )

    # -- audit --------------------------------------------------------------------------

    def audit_entries(
        self, *, entity: str | None = None, limit: int | None = None, since_seq: int = 0
    ) -> list[audit.AuditEntry]:
        """Audit entries, oldest first; ``entity`` filters: ``churn/3``, or ``churn`` and below."""
        with self.database.read() as session:
            query = select(AuditRow).where(AuditRow.seq > since_seq).order_by(AuditRow.seq)
            if entity is not None:
                query = query.where(
                    (AuditRow.entity == entity)
                    | AuditRow.entity.startswith(f"{entity}/", autoescape=True)
                    | AuditRow.entity.startswith(f"{entity}@", autoescape=True)
                )
            if limit is not None:
                total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
                query = query.offset(max(total - limit, 0))
            return [audit.AuditEntry.from_row(r) for r in session.scalars(query)]

    def verify_audit(self) -> audit.AuditReport:
        """Check the whole audit chain; the report names every edited or deleted entry."""
        with self.database.read() as session:
            rows = session.scalars(select(AuditRow).order_by(AuditRow.seq)).yield_per(1000)
            head = session.get(AuditHeadRow, 1)
            return audit.verify_chain(rows, head)

    # -- internals ----------------------------------------------------------------------

    def _insert_model(
        self,
        session: Session,
        name: str,
        description: str,
        owner_team: str | None,
        tags: dict[str, str],
    ) -> ModelRow:
        now = utcnow()
        values = dict(
            name=name,
            description=description,
            owner_team=owner_team,
            tags=tags,
            created_by=self.user,
            created_at=now,
            updated_at=now,
            last_version=0,
        )
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # ON CONFLICT DO NOTHING: a concurrent process may create the same model first.
        created = session.execute(
            insert(ModelRow).values(**values).on_conflict_do_nothing().returning(ModelRow.id)
        ).scalar_one_or_none()
        row = _get_model_row(session, name, lock=True)
        if created is not None:
            self._audit(session, "model.create", "model", name, None, _model_state(row))
        return row

    def _locked_version(self, session: Session, ref: str) -> tuple[ModelRow, VersionRow]:
        parsed = ModelRef.parse(ref)
        model = _get_model_row(session, parsed.name, lock=True)
        number = _resolve_number(session, model, parsed, None)
        row = session.scalars(
            select(VersionRow)
            .where(VersionRow.model_id == model.id, VersionRow.version == number)
            .with_for_update()
        ).one_or_none()
        if row is None:
            raise VersionNotFoundError(f"Model {parsed.name!r} has no version {number}")
        return model, row

    def _audit(
        self,
        session: Session,
        action: str,
        entity_type: str,
        entity: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        *,
        at: datetime | None = None,
    ) -> None:
        audit.append(
            session,
            actor=self.user,
            action=action,
            entity_type=entity_type,
            entity=entity,
            before=before,
            after=after,
            at=at,
        )


_ACTIONS = {
    VersionStatus.APPROVED: "approve",
    VersionStatus.REJECTED: "reject",
    VersionStatus.ARCHIVED: "archive",
    VersionStatus.REGISTERED: "register",
}


def _find_model_row(session: Session, name: str, *, lock: bool = False) -> ModelRow | None:
    query = select(ModelRow).where(ModelRow.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _get_model_row(session: Session, name: str, *, lock: bool = False) -> ModelRow:
    row = _find_model_row(session, name, lock=lock)
    if row is None:
        raise ModelNotFoundError(f"No model named {name!r}. List models with: ferryman models list")
    return row


def _version_exists(session: Session, model_id: int, number: int) -> bool:
    query = select(VersionRow.id).where(
        VersionRow.model_id == model_id, VersionRow.version == number
    )
    return session.scalar(query) is not None


def _resolve_number(session: Session, model: ModelRow, ref: ModelRef, at: datetime | None) -> int:
    if ref.version is not None:
        return ref.version
    if ref.alias is not None:
        if at is None:
            alias = session.get(AliasRow, (model.id, ref.alias))
            if alias is None:
                raise AliasNotFoundError(f"Model {model.name!r} has no alias {ref.alias!r}")
            return alias.version
        event = session.scalars(
            select(AliasEventRow)
            .where(
                AliasEventRow.model_id == model.id,
                AliasEventRow.alias == ref.alias,
                AliasEventRow.at <= at,
            )
            .order_by(AliasEventRow.at.desc(), AliasEventRow.id.desc())
            .limit(1)
        ).one_or_none()
        if event is None or event.version is None:
            raise AliasNotFoundError(
                f"Alias {model.name}@{ref.alias} did not point to any version at {at.isoformat()}"
            )
        return event.version
    query = select(func.max(VersionRow.version)).where(
        VersionRow.model_id == model.id, VersionRow.status != VersionStatus.ARCHIVED.value
    )
    if at is not None:
        query = query.where(VersionRow.created_at <= at)
    number = session.scalar(query)
    if number is None:
        when = f" at {at.isoformat()}" if at is not None else ""
        raise VersionNotFoundError(f"Model {model.name!r} has no live (non-archived) version{when}")
    return int(number)


def _aliases_of(session: Session, model_id: int) -> dict[str, int]:
    rows = session.execute(
        select(AliasRow.name, AliasRow.version).where(AliasRow.model_id == model_id)
    )
    return dict(sorted((name, version) for name, version in rows))


def _aliases_by_model(session: Session) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    for model_id, name, version in session.execute(
        select(AliasRow.model_id, AliasRow.name, AliasRow.version).order_by(AliasRow.name)
    ):
        result.setdefault(model_id, {})[name] = version
    return result


def _aliases_of_version(session: Session, model_id: int, number: int) -> list[str]:
    return list(
        session.scalars(
            select(AliasRow.name).where(AliasRow.model_id == model_id, AliasRow.version == number)
        )
    )


def _tags_match(tags: Mapping[str, Any], wanted: Mapping[str, str] | None) -> bool:
    return not wanted or all(str(tags.get(k)) == str(v) for k, v in wanted.items())


def _merge_tags(tags: Mapping[str, Any], changes: Mapping[str, str | None]) -> dict[str, Any]:
    merged = dict(tags)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


def _check_status(value: str) -> VersionStatus:
    try:
        return VersionStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in VersionStatus)
        raise InvalidInputError(f"Unknown status {value!r}. Available: {allowed}") from None


def _check_metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(
                f"Metric {key!r} must be a number, got {type(value).__name__} {value!r}"
            )
        if not math.isfinite(value):
            raise InvalidInputError(f"Metric {key!r} must be finite, got {value!r}")
        values[str(key)] = float(value)
    return values


def _jsonable_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        out[str(key)] = value if isinstance(value, str | int | float | bool | None) else repr(value)
    return out


def _parse_metric_filter(text: str) -> tuple[str, str, float]:
    match = _METRIC_FILTER.match(text)
    if match is None:
        raise InvalidInputError(
            f"Invalid metric condition {text!r}: expected NAME OP NUMBER with OP one of "
            ">, >=, <, <=, ==, != (e.g. accuracy>=0.9)"
        )
    try:
        threshold = float(match[3])
    except ValueError:
        raise InvalidInputError(f"Invalid number in metric condition {text!r}") from None
    return match[1], match[2], threshold


def _metric_holds(metrics: Mapping[str, Any], condition: tuple[str, str, float]) -> bool:
    name, op, threshold = condition
    value = metrics.get(name)
    return value is not None and _COMPARE[op](float(value), threshold)


def _check_lengths(X: Any, y: Any) -> None:
    n_rows = _length(X)
    if n_rows == 0:
        raise InvalidInputError("X is empty: expected at least one training row")
    if y is not None and _length(y) != n_rows:
        raise InvalidInputError(
            f"X and y have different lengths: X has {n_rows} rows, y has {_length(y)}"
        )


def _length(data: Any) -> int:
    if hasattr(data, "num_rows"):
        return int(data.num_rows)
    if hasattr(data, "shape"):
        return int(data.shape[0]) if len(data.shape) else 0
    return len(data)


def _model_state(row: ModelRow) -> dict[str, Any]:
    return {"description": row.description, "owner_team": row.owner_team, "tags": dict(row.tags)}


def _version_state(info: VersionInfo) -> dict[str, Any]:
    return {
        "flavor": info.flavor,
        "artifact_sha256": info.artifact_sha256,
        "status": info.status.value,
        "description": info.description,
        "tags": info.tags,
        "metrics": info.metrics,
        "signature_sha256": (
            hashlib.sha256(audit.canonical_json(info.signature).encode()).hexdigest()
            if info.signature is not None
            else None
        ),
        "card_chars": len(info.card),
    }
