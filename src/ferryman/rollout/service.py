"""Rollouts as persisted state machines: start, move, pause, promote, roll back, and history.

Every transition is one write transaction that locks the rollout's row, changes it,
appends an event to its history (who or what caused it, why, and the evidence: gate
values, downtime, smoke-test results), writes an audit entry, and bumps the serving
change counter, so every server process picks up the new weights within one polling
interval. At most one rollout per endpoint is active; a new one must wait until the
current one ends.

Finishing a rollout moves the registry with it: when the endpoint follows an alias of
the candidate's model (``churn@production``), the alias moves to the candidate; when it
names a version, the endpoint is pointed at the candidate. A rollback leaves both on the
stable version (or, after a finished rollout, moves them back).
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferryman.errors import (
    EndpointNotFoundError,
    InvalidInputError,
    InvalidTransitionError,
    RolloutNotFoundError,
)
from ferryman.registry import ModelRef, Registry, audit
from ferryman.rollout.base import (
    Phase,
    Rollout,
    RolloutEvent,
    RolloutOptions,
    RolloutView,
    Strategy,
)
from ferryman.serving.endpoints import EndpointService, next_generation
from ferryman.store._tables import EndpointRow, RolloutEventRow, RolloutRow, utcnow

_ACTIVE_PHASES = tuple(phase.value for phase in Phase if phase.is_active)


def _initial_state(strategy: Strategy, options: RolloutOptions) -> dict[str, Any]:
    """The first stage, candidate weight and mirror share of each strategy."""
    if strategy is Strategy.RECREATE:
        return {"stage": "replacing", "weight": 100.0, "mirror": 0.0}
    if strategy is Strategy.BLUE_GREEN:
        return {"stage": "preview", "weight": 0.0, "mirror": 0.0}
    if strategy is Strategy.CANARY:
        return {"stage": "step", "weight": options.steps[0], "mirror": 0.0}
    if strategy is Strategy.SHADOW:
        return {"stage": "mirroring", "weight": 0.0, "mirror": options.sample}
    stable_weight, candidate_weight = options.weights
    share = 100.0 * candidate_weight / (stable_weight + candidate_weight)
    return {"stage": "experiment", "weight": share, "mirror": 0.0}


class RolloutService:
    """Start and move rollouts, and read their state and history.

    Args:
        registry: The model registry (its database is the metadata store); it resolves
            references and moves aliases when a rollout finishes.
        user: Who is acting; recorded in events and the audit log.
        gate_modules: Module prefixes ``python:MODULE:ATTRIBUTE`` gates may be imported
            from, when a rollout starts and at each evaluation (the ``gate_modules``
            setting, ``FERRYMAN_GATE_MODULES``); empty: ``python:`` gates are refused.
    """

    def __init__(self, *, registry: Registry, user: str, gate_modules: Sequence[str] = ()) -> None:
        self.registry = registry
        self.database = registry.database
        self.user = user
        self.gate_modules = tuple(gate_modules)

    def __repr__(self) -> str:
        return (
            f"RolloutService(registry={self.registry!r}, user={self.user!r}, "
            f"gate_modules={self.gate_modules!r})"
        )

    # -- reading ----------------------------------------------------------------------------

    def get(self, endpoint: str) -> Rollout:
        """Return the endpoint's active rollout, or else its latest one.

        Raises:
            RolloutNotFoundError: The endpoint never had a rollout.
        """
        with self.database.read() as session:
            row = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.endpoint == endpoint)
                .order_by(RolloutRow.id.desc())
                .limit(1)
            ).one_or_none()
            if row is None:
                raise RolloutNotFoundError(
                    f"Endpoint {endpoint!r} has no rollout. Start one with: "
                    f"ferryman deploy {endpoint} MODEL_REF --strategy canary"
                )
            return _rollout(row)

    def find_active(self, endpoint: str) -> Rollout | None:
        """Return the endpoint's active rollout, or ``None``."""
        with self.database.read() as session:
            row = _active_row(session, endpoint)
            return _rollout(row) if row is not None else None

    def get_by_id(self, rollout_id: int) -> Rollout:
        """Return rollout ``rollout_id``.

        Raises:
            RolloutNotFoundError: No such rollout.
        """
        with self.database.read() as session:
            row = session.get(RolloutRow, rollout_id)
            if row is None:
                raise RolloutNotFoundError(f"No rollout with id {rollout_id}")
            return _rollout(row)

    def active(self) -> builtins.list[Rollout]:
        """Every active rollout, oldest first."""
        with self.database.read() as session:
            rows = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.phase.in_(_ACTIVE_PHASES))
                .order_by(RolloutRow.id)
            )
            return [_rollout(row) for row in rows]

    def views(self) -> dict[str, RolloutView]:
        """What server processes route by: each endpoint's active rollout."""
        return {rollout.endpoint: rollout.view() for rollout in self.active()}

    def history(self, endpoint: str, *, limit: int = 20) -> builtins.list[Rollout]:
        """The endpoint's rollouts, newest first."""
        if limit < 1:
            raise InvalidInputError(f"Invalid limit {limit}: expected an integer >= 1")
        with self.database.read() as session:
            rows = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.endpoint == endpoint)
                .order_by(RolloutRow.id.desc())
                .limit(limit)
            )
            return [_rollout(row) for row in rows]

    def events(self, rollout_id: int) -> builtins.list[RolloutEvent]:
        """Rollout ``rollout_id``'s history, oldest first."""
        with self.database.read() as session:
            rows = session.scalars(
                select(RolloutEventRow)
                .where(RolloutEventRow.rollout_id == rollout_id)
                .order_by(RolloutEventRow.id)
            )
            return [_event(row) for row in rows]

    # -- starting ---------------------------------------------------------------------------

    def start(
        self,
        endpoint: str,
        model: str,
        *,
        strategy: Strategy | str,
        options: RolloutOptions | None = None,
    ) -> Rollout:
        """Start changing ``endpoint`` to the version ``model`` resolves to now.

        Args:
            endpoint: The endpoint's name.
            model: The candidate's model reference (``churn/4``, ``churn@staging``).
            strategy: How: recreate, blue-green, canary, shadow or ab-test.
            options: The rollout's settings; default: :class:`RolloutOptions` defaults.

        Raises:
            EndpointNotFoundError: No such endpoint.
            InvalidTransitionError: The endpoint has an active rollout already, or the
                candidate is the version it serves.
            InvalidInputError: An option is out of range.
            ModelNotFoundError, VersionNotFoundError, AliasNotFoundError: ``model`` does
                not resolve.
        """
        strategy = Strategy.parse(strategy) if isinstance(strategy, str) else strategy
        options = (options or RolloutOptions()).checked(strategy, gate_modules=self.gate_modules)
        candidate = self.registry.get_version(model, include_profile=False)
        with self.database.write() as session:
            row = session.scalars(
                select(EndpointRow).where(EndpointRow.name == endpoint).with_for_update()
            ).one_or_none()
            if row is None:
                raise EndpointNotFoundError(
                    f"No endpoint named {endpoint!r}. List endpoints with: ferryman endpoints list"
                )
            current = _active_row(session, endpoint)
            if current is not None:
                raise InvalidTransitionError(
                    f"Endpoint {endpoint!r} already has an active {current.strategy} rollout "
                    f"(#{current.id}, {current.phase}) to {current.candidate}; promote, abort "
                    f"or roll it back first: ferryman rollout status {endpoint}"
                )
            endpoint_ref = ModelRef.parse(row.model)
            stable = self.registry.get_version(endpoint_ref, include_profile=False)
            if stable.ref == candidate.ref:
                raise InvalidTransitionError(
                    f"Endpoint {endpoint!r} already serves {candidate.ref}; "
                    "choose another version to deploy"
                )
            state = _initial_state(strategy, options)
            now = utcnow()
            rollout = RolloutRow(
                endpoint=endpoint,
                strategy=strategy.value,
                stable=stable.ref,
                candidate=candidate.ref,
                alias=endpoint_ref.alias,
                phase=Phase.RUNNING.value,
                step=0,
                failures=0,
                options=options.to_dict(),
                salt=secrets.token_hex(8),
                created_by=self.user,
                created_at=now,
                updated_at=now,
                stage_started_at=now,
                evaluated_at=None,
                finished_at=None,
                **state,
            )
            session.add(rollout)
            session.flush()
            self._record(
                session,
                rollout,
                kind="started",
                actor=self.user,
                message=(
                    f"{strategy.value} rollout of {endpoint!r} from {stable.ref} to "
                    f"{candidate.ref} started"
                ),
                detail={"options": options.to_dict()},
                serving_change=True,
            )
            return _rollout(rollout)

    # -- moving -----------------------------------------------------------------------------

    def transition(
        self,
        rollout_id: int,
        *,
        kind: str,
        message: str,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
        expect_phase: tuple[Phase, ...] | None = None,
        **changes: Any,
    ) -> Rollout:
        """Change rollout ``rollout_id`` and record why, in one transaction.

        Args:
            rollout_id: The rollout.
            kind: The event's kind, e.g. ``step``, ``paused``, ``gate-failed``.
            message: One line for people.
            actor: Who or what caused it; default: this service's user.
            detail: Evidence stored with the event.
            expect_phase: Refuse unless the rollout is in one of these phases.
            **changes: Columns to set: ``phase`` (a :class:`Phase`), ``stage``,
                ``step``, ``weight``, ``mirror``, ``failures``, ``strategy``,
                ``evaluated_at``; a new ``stage`` or ``step`` restarts the stage clock.

        Raises:
            RolloutNotFoundError: No such rollout.
            InvalidTransitionError: The rollout is not in an expected phase.
        """
        with self.database.write() as session:
            row = session.get(RolloutRow, rollout_id, with_for_update=True)
            if row is None:
                raise RolloutNotFoundError(f"No rollout with id {rollout_id}")
            if expect_phase is not None and Phase(row.phase) not in expect_phase:
                raise InvalidTransitionError(
                    f"Rollout #{row.id} of {row.endpoint!r} is {row.phase}, not "
                    f"{' or '.join(p.value for p in expect_phase)}; it cannot be {kind}"
                )
            return self._apply(session, row, kind, message, actor, detail, changes)

    def _apply(
        self,
        session: Session,
        row: RolloutRow,
        kind: str,
        message: str,
        actor: str | None,
        detail: Mapping[str, Any] | None,
        changes: Mapping[str, Any],
    ) -> Rollout:
        now = utcnow()
        routing_before = (row.phase, row.weight, row.mirror, row.stage, row.strategy)
        for key, value in changes.items():
            if key in ("stage", "step") and value != getattr(row, key):
                row.stage_started_at = now
                row.failures = 0
            setattr(row, key, value.value if isinstance(value, Phase | Strategy) else value)
        if not Phase(row.phase).is_active and row.finished_at is None:
            row.finished_at = now
        row.updated_at = now
        routing_after = (row.phase, row.weight, row.mirror, row.stage, row.strategy)
        self._record(
            session,
            row,
            kind=kind,
            actor=actor or self.user,
            message=message,
            detail=dict(detail or {}),
            serving_change=routing_before != routing_after,
        )
        return _rollout(row)

    def mark_evaluated(self, rollout_id: int, at: datetime) -> None:
        """Remember when gates were last evaluated (no event: evaluations are frequent)."""
        with self.database.write() as session:
            row = session.get(RolloutRow, rollout_id, with_for_update=True)
            if row is not None:
                row.evaluated_at = at

    def note(
        self,
        rollout_id: int,
        *,
        kind: str,
        message: str,
        actor: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Add an observation to a rollout's history without changing it (e.g. downtime)."""
        with self.database.write() as session:
            row = session.get(RolloutRow, rollout_id)
            if row is None:
                raise RolloutNotFoundError(f"No rollout with id {rollout_id}")
            session.add(_event_row(row, kind, actor, message, dict(detail or {})))

    def _record(
        self,
        session: Session,
        row: RolloutRow,
        *,
        kind: str,
        actor: str,
        message: str,
        detail: dict[str, Any],
        serving_change: bool,
    ) -> None:
        session.add(_event_row(row, kind, actor, message, detail))
        if serving_change:
            next_generation(session)
        audit.append(
            session,
            actor=actor,
            action=f"rollout.{kind}",
            entity_type="rollout",
            entity=f"endpoint:{row.endpoint}",
            after={
                "rollout": row.id,
                "strategy": row.strategy,
                "phase": row.phase,
                "stage": row.stage,
                "weight": row.weight,
                "candidate": row.candidate,
                "message": message,
            },
        )

    # -- people's commands ------------------------------------------------------------------

    def promote(self, endpoint: str) -> Rollout:
        """Move the rollout forward now, as a person deciding.

        Canary: the next step (or the finish after the step before 100 %). Blue-green:
        the switch, skipping the remaining checks (or, after the switch, unloading blue
        now). Shadow: continue as a canary (``then=canary``) or switch fully. A/B test
        and recreate: the candidate takes all traffic.

        Raises:
            RolloutNotFoundError: No active rollout.
            InvalidTransitionError: It is paused (resume it first).
        """
        from ferryman.rollout import canary, shadow

        rollout = self._active(endpoint)
        if rollout.phase is Phase.PAUSED:
            raise InvalidTransitionError(
                f"Rollout #{rollout.id} of {endpoint!r} is paused; resume it first: "
                f"ferryman rollout resume {endpoint}"
            )
        who = f"promoted by {self.user}"
        if rollout.strategy is Strategy.CANARY:
            decision = canary.next_step(rollout, evidence={}, manual=False)
        elif rollout.strategy is Strategy.SHADOW:
            decision = shadow.promotion(rollout)
        elif rollout.strategy is Strategy.BLUE_GREEN and rollout.stage == "preview":
            return self.finish(
                rollout, actor=self.user, message=f"{who}: switched to green", keep_stable=True
            )
        elif rollout.strategy is Strategy.BLUE_GREEN:
            return self.transition(
                rollout.id,
                kind="succeeded",
                message=f"{who}: blue {rollout.stable} unloaded",
                phase=Phase.SUCCEEDED,
            )
        else:
            return self.finish(
                rollout, actor=self.user, message=f"{who}: {rollout.candidate} takes all traffic"
            )
        if decision.kind == "finish":
            return self.finish(rollout, actor=self.user, message=f"{who}: {decision.message}")
        changes = dict(decision.changes)
        changes.setdefault("phase", Phase.RUNNING)
        return self.transition(
            rollout.id, kind="promoted", message=f"{who}: {decision.message}", **changes
        )

    def pause(self, endpoint: str) -> Rollout:
        """Hold the rollout where it is: traffic stays split, gates stop advancing it.

        Raises:
            RolloutNotFoundError: No active rollout.
            InvalidTransitionError: It is not running.
        """
        rollout = self._active(endpoint)
        return self.transition(
            rollout.id,
            kind="paused",
            message=f"paused by {self.user}",
            phase=Phase.PAUSED,
            expect_phase=(Phase.RUNNING, Phase.WAITING),
        )

    def resume(self, endpoint: str) -> Rollout:
        """Let a paused rollout go on from where it stopped.

        Raises:
            RolloutNotFoundError: No active rollout.
            InvalidTransitionError: It is not paused.
        """
        rollout = self._active(endpoint)
        return self.transition(
            rollout.id,
            kind="resumed",
            message=f"resumed by {self.user}",
            phase=Phase.RUNNING,
            expect_phase=(Phase.PAUSED,),
        )

    def abort(self, endpoint: str, *, reason: str = "") -> Rollout:
        """Stop the rollout: all traffic back to the stable version; the alias stays.

        Raises:
            RolloutNotFoundError: No active rollout.
        """
        rollout = self._active(endpoint)
        why = f": {reason}" if reason else ""
        return self.transition(
            rollout.id,
            kind="aborted",
            message=f"aborted by {self.user}{why}; all traffic on {rollout.stable}",
            phase=Phase.ABORTED,
            weight=0.0,
            mirror=0.0,
            expect_phase=(Phase.RUNNING, Phase.PAUSED, Phase.WAITING),
        )

    def rollback(
        self,
        endpoint: str,
        *,
        reason: str = "",
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Rollout:
        """Return the endpoint to its last stable version, at any time.

        An active rollout ends ``rolled_back`` with all traffic on the stable version.
        After a rollout that succeeded, the alias (or the endpoint's version) moves back
        to the version it replaced.

        Raises:
            RolloutNotFoundError: The endpoint never had a rollout.
            InvalidTransitionError: Its latest rollout already ended without success.
        """
        rollout = self.get(endpoint)
        why = f": {reason}" if reason else ""
        who = actor or self.user
        if rollout.is_active:
            if rollout.stage == "keeping":  # blue-green after the switch: alias moved
                self._point_endpoint(rollout, rollout.stable)
            return self.transition(
                rollout.id,
                kind="rolled-back",
                actor=who,
                message=f"rolled back by {who}{why}; all traffic on {rollout.stable}",
                detail=detail,
                phase=Phase.ROLLED_BACK,
                weight=0.0,
                mirror=0.0,
                expect_phase=(Phase.RUNNING, Phase.PAUSED, Phase.WAITING),
            )
        if rollout.phase is not Phase.SUCCEEDED:
            raise InvalidTransitionError(
                f"Endpoint {endpoint!r}'s latest rollout (#{rollout.id}) ended {rollout.phase}; "
                f"it already serves {rollout.stable}"
            )
        self._point_endpoint(rollout, rollout.stable)
        return self.transition(
            rollout.id,
            kind="rolled-back",
            actor=who,
            message=f"rolled back by {who} after success{why}; {endpoint!r} serves "
            f"{rollout.stable} again",
            detail=detail,
            phase=Phase.ROLLED_BACK,
            weight=0.0,
        )

    def finish(
        self,
        rollout: Rollout,
        *,
        actor: str,
        message: str,
        detail: Mapping[str, Any] | None = None,
        keep_stable: bool = False,
    ) -> Rollout:
        """Make the candidate the endpoint's version (alias or reference) and end the rollout.

        Args:
            rollout: The rollout to finish.
            actor: Who or what decided.
            message: Why, for the history.
            detail: Evidence.
            keep_stable: Blue-green: keep the old version loaded (stage ``keeping``) for
                instant rollback instead of ending now.
        """
        self._point_endpoint(rollout, rollout.candidate)
        if keep_stable:
            return self.transition(
                rollout.id,
                kind="switched",
                actor=actor,
                message=message,
                detail=detail,
                stage="keeping",
                weight=100.0,
                mirror=0.0,
                phase=Phase.RUNNING,
            )
        return self.transition(
            rollout.id,
            kind="succeeded",
            actor=actor,
            message=message,
            detail=detail,
            phase=Phase.SUCCEEDED,
            weight=100.0,
            mirror=0.0,
        )

    def _point_endpoint(self, rollout: Rollout, version_ref: str) -> None:
        """Make the endpoint resolve to ``version_ref`` (move its alias, or its reference)."""
        target = ModelRef.parse(version_ref)
        assert target.version is not None  # rollouts store name/N
        with self.database.read() as session:
            row = session.scalars(
                select(EndpointRow).where(EndpointRow.name == rollout.endpoint)
            ).one_or_none()
            current = ModelRef.parse(row.model) if row is not None else None
        if current is None:
            raise EndpointNotFoundError(f"Endpoint {rollout.endpoint!r} no longer exists")
        if current.alias is not None and current.name == target.name:
            self.registry.acting_as(self.user).set_alias(target.name, current.alias, target.version)
            return
        # The endpoint names a version, follows the latest, or serves another model:
        # pin it to the candidate so the choice sticks.
        EndpointService(database=self.database, user=self.user).update(
            rollout.endpoint, model=str(target)
        )

    def _active(self, endpoint: str) -> Rollout:
        rollout = self.find_active(endpoint)
        if rollout is None:
            raise RolloutNotFoundError(
                f"Endpoint {endpoint!r} has no active rollout; see: "
                f"ferryman rollout history {endpoint}"
            )
        return rollout


def _active_row(session: Session, endpoint: str) -> RolloutRow | None:
    return session.scalars(
        select(RolloutRow)
        .where(RolloutRow.endpoint == endpoint, RolloutRow.phase.in_(_ACTIVE_PHASES))
        .order_by(RolloutRow.id.desc())
        .limit(1)
    ).one_or_none()


def _event_row(
    row: RolloutRow, kind: str, actor: str, message: str, detail: dict[str, Any]
) -> RolloutEventRow:
    return RolloutEventRow(
        rollout_id=row.id,
        at=utcnow(),
        actor=actor,
        kind=kind,
        phase=row.phase,
        weight=row.weight,
        message=message,
        detail=detail,
    )


def _rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        id=row.id,
        endpoint=row.endpoint,
        strategy=Strategy(row.strategy),
        stable=row.stable,
        candidate=row.candidate,
        alias=row.alias,
        phase=Phase(row.phase),
        stage=row.stage,
        step=row.step,
        weight=row.weight,
        mirror=row.mirror,
        failures=row.failures,
        options=RolloutOptions.from_dict(row.options),
        salt=row.salt,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        stage_started_at=row.stage_started_at,
        evaluated_at=row.evaluated_at,
        finished_at=row.finished_at,
    )


def _event(row: RolloutEventRow) -> RolloutEvent:
    return RolloutEvent(
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        phase=Phase(row.phase),
        weight=row.weight,
        message=row.message,
        detail=dict(row.detail),
    )


def elapsed_seconds(since: datetime, now: datetime) -> float:
    """Seconds from ``since`` to ``now`` (both timezone-aware)."""
    return (now - since).total_seconds()


__all__ = ["RolloutService", "elapsed_seconds"]
