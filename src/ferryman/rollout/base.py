"""What every strategy shares: the strategy and phase names, options, and the rollout record.

A rollout changes one endpoint from its *stable* version to a *candidate* under one
strategy. Its state is a small record persisted in the metadata store (see
:class:`~ferryman.rollout.service.RolloutService`): the phase (``running``, ``paused``,
``waiting`` for a person, or one of the ends ``succeeded``, ``rolled_back``,
``aborted``), the strategy's stage (e.g. ``step`` for canary, ``preview`` then
``keeping`` for blue-green), the candidate's share of live traffic and of mirrored
traffic. Server processes read that record (:class:`RolloutView`) and route by it; the
controller moves it along.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ferryman.errors import InvalidInputError


class Strategy(StrEnum):
    """The five ways to change the model behind a live endpoint."""

    RECREATE = "recreate"
    BLUE_GREEN = "blue-green"
    CANARY = "canary"
    SHADOW = "shadow"
    AB_TEST = "ab-test"

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """Return the strategy called ``text``.

        Raises:
            InvalidInputError: Unknown name; the message lists the valid ones.
        """
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(member.value for member in cls)
            raise InvalidInputError(f"Unknown strategy {text!r}. Available: {valid}") from None


class Phase(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"  # for a person to promote (manual steps, shadow, A/B tests)
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def is_active(self) -> bool:
        """Whether the rollout still routes traffic (not one of the three ends)."""
        return self in _ACTIVE


_ACTIVE = frozenset({Phase.RUNNING, Phase.PAUSED, Phase.WAITING})

#: Buckets of the routing hash: weights have a resolution of 0.01 percentage points.
BUCKETS = 10_000

_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION_RE = re.compile(rf"^(?:{_NUMBER}h)?\s*(?:{_NUMBER}m)?\s*(?:{_NUMBER}s)?$")


#: The longest duration a rollout option may name (ten years); longer ones are typos.
MAX_DURATION_SECONDS = 3650 * 86_400.0


def parse_duration(text: str | float | int, *, field_name: str = "duration") -> float:
    """Return the seconds in ``text``: ``90``, ``90s``, ``5m``, ``1h30m``.

    Raises:
        InvalidInputError: Not a duration, or negative.
    """
    if isinstance(text, bool):
        raise InvalidInputError(f"Invalid {field_name} {text!r}: expected e.g. 30s, 5m or 1h")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        stripped = text.strip()
        try:
            seconds = float(stripped)
        except ValueError:
            match = _DURATION_RE.match(stripped)
            if not stripped or match is None or not any(match.groups()):
                raise InvalidInputError(
                    f"Invalid {field_name} {text!r}: expected e.g. 30s, 5m, 1h30m or seconds"
                ) from None
            hours, minutes, secs = (float(group or 0) for group in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"Invalid {field_name} {text!r}: expected a duration >= 0")
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidInputError(
            f"Invalid {field_name} {text!r}: expected at most {MAX_DURATION_SECONDS:.0f} "
            "seconds (ten years)"
        )
    return seconds


@dataclass(frozen=True)
class RoutingKey:
    """Where the sticky routing key of a request comes from.

    Attributes:
        source: ``header`` (an HTTP header) or ``field`` (a request column, e.g. a
            passthrough ``user_id``; the first row's value is used).
        name: The header or column name; headers are matched case-insensitively.
    """

    source: str
    name: str

    @classmethod
    def parse(cls, text: str) -> RoutingKey:
        """Parse ``header:X-User-Id`` or ``field:user_id``.

        Raises:
            InvalidInputError: Anything else.
        """
        source, _, name = text.partition(":")
        source = source.strip().lower()
        name = name.strip()
        if source not in ("header", "field") or not name:
            raise InvalidInputError(
                f"Invalid routing key {text!r}: expected header:NAME (e.g. header:X-User-Id) "
                "or field:NAME (e.g. field:user_id)"
            )
        return cls(source, name.lower() if source == "header" else name)

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


@dataclass(frozen=True)
class RolloutOptions:
    """A rollout's settings; every strategy reads the ones that concern it.

    Attributes:
        steps: Canary traffic steps, percent of live traffic, increasing, ending at 100.
        bake_seconds: Seconds each canary step (or the shadow phase, or a blue-green
            switch) runs before gates may advance it.
        gates: Gate expressions, e.g. ``error_rate < 0.01``; all must pass to advance.
        failure_limit: Failed gate evaluations (in one step) that trigger a rollback.
        manual: Pause before each canary step until someone runs ``promote``.
        keep_previous_seconds: Seconds blue stays loaded after a blue-green switch.
        smoke_rows: Requests (records) replayed against green and blue before a switch.
        smoke_tolerance: Largest share of smoke rows whose outputs may differ.
        sample: Share of live requests mirrored to a shadow candidate, in (0, 1].
        then: After a shadow's gates pass: ``canary`` continues as a canary, ``promote``
            switches fully, ``None`` waits for a person.
        key: Where sticky routing keys come from (required for A/B tests).
        weights: A/B arm weights, percent, stable (control) first.
        min_samples: Requests a window needs before a gate can decide.
        interval_seconds: Seconds between gate evaluations.
        alpha: A/B significance level.
        minimum_effect: A/B smallest difference of interest (absolute), for sample size
            and the ``no-difference`` verdict.
        outcome: A/B outcome kind: ``binary`` (conversion 0/1) or ``numeric`` (reward).
        test: A/B decision rule: ``sequential`` (always valid) or ``fixed`` horizon.
    """

    steps: tuple[float, ...] = (10.0, 25.0, 50.0, 100.0)
    bake_seconds: float = 60.0
    gates: tuple[str, ...] = ()
    failure_limit: int = 2
    manual: bool = False
    keep_previous_seconds: float = 600.0
    smoke_rows: tuple[dict[str, Any], ...] = ()
    smoke_tolerance: float = 0.0
    sample: float = 1.0
    then: str | None = None
    key: RoutingKey | None = None
    weights: tuple[float, ...] = (50.0, 50.0)
    min_samples: int = 100
    interval_seconds: float = 10.0
    alpha: float = 0.05
    minimum_effect: float = 0.01
    outcome: str = "binary"
    test: str = "sequential"

    def checked(self, strategy: Strategy, *, gate_modules: Sequence[str] = ()) -> RolloutOptions:
        """Return these options validated for ``strategy``.

        Args:
            strategy: The rollout's strategy.
            gate_modules: Module prefixes ``python:`` gates may be imported from (the
                ``gate_modules`` setting); empty: every ``python:`` gate is refused.

        Raises:
            InvalidInputError: A value is out of range, or a ``python:`` gate cannot be
                used (see :meth:`~ferryman.rollout.gates.Gate.from_reference`); the
                message names the option.
        """
        steps = tuple(float(step) for step in self.steps)
        if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
            raise InvalidInputError(
                f"Invalid steps {list(self.steps)!r}: expected increasing percentages in "
                "(0, 100], e.g. 10,25,50,100"
            )
        if steps[-1] != 100:
            steps = (*steps, 100.0)
        from ferryman.rollout.gates import GateSet

        # Parse errors now; python: gates are imported, if their module is allowed.
        GateSet(self.gates, min_samples=max(1, self.min_samples), allowed_modules=gate_modules)
        if self.failure_limit < 1:
            raise InvalidInputError(
                f"Invalid failure_limit {self.failure_limit}: expected an integer >= 1"
            )
        if not 0 < self.sample <= 1:
            raise InvalidInputError(f"Invalid sample {self.sample!r}: expected a share in (0, 1]")
        if not 0 <= self.smoke_tolerance <= 1:
            raise InvalidInputError(
                f"Invalid smoke_tolerance {self.smoke_tolerance!r}: expected a share in [0, 1]"
            )
        if self.then not in (None, "canary", "promote"):
            raise InvalidInputError(
                f"Invalid then {self.then!r}: expected canary or promote (or nothing)"
            )
        if self.min_samples < 1:
            raise InvalidInputError(f"Invalid min_samples {self.min_samples}: expected >= 1")
        if self.interval_seconds <= 0:
            raise InvalidInputError(
                f"Invalid interval {self.interval_seconds!r}: expected seconds > 0"
            )
        if self.outcome not in ("binary", "numeric"):
            raise InvalidInputError(
                f"Invalid outcome {self.outcome!r}: expected binary (conversions) or numeric "
                "(rewards)"
            )
        if self.test not in ("sequential", "fixed"):
            raise InvalidInputError(f"Invalid A/B test {self.test!r}: expected sequential or fixed")
        if not 0 < self.alpha < 1:
            raise InvalidInputError(f"Invalid alpha {self.alpha!r}: expected a value in (0, 1)")
        if strategy is Strategy.AB_TEST:
            if self.key is None:
                raise InvalidInputError(
                    "An A/B test needs a routing key so each user stays in one arm: "
                    "--key header:X-User-Id or --key field:user_id"
                )
            if len(self.weights) != 2 or any(w <= 0 for w in self.weights):
                raise InvalidInputError(
                    f"Invalid weights {list(self.weights)!r}: expected two positive weights, "
                    "stable (control) first, e.g. 50,50"
                )
        return replace(self, steps=steps)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (``from_dict`` reads it back)."""
        return {
            "steps": list(self.steps),
            "bake_seconds": self.bake_seconds,
            "gates": list(self.gates),
            "failure_limit": self.failure_limit,
            "manual": self.manual,
            "keep_previous_seconds": self.keep_previous_seconds,
            "smoke_rows": list(self.smoke_rows),
            "smoke_tolerance": self.smoke_tolerance,
            "sample": self.sample,
            "then": self.then,
            "key": str(self.key) if self.key is not None else None,
            "weights": list(self.weights),
            "min_samples": self.min_samples,
            "interval_seconds": self.interval_seconds,
            "alpha": self.alpha,
            "minimum_effect": self.minimum_effect,
            "outcome": self.outcome,
            "test": self.test,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutOptions:
        """Build options from :meth:`to_dict`'s output (unknown keys are ignored).

        Raises:
            InvalidInputError: A value has the wrong type.
        """
        known = {name for name in cls.__dataclass_fields__}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known and v is not None}
        try:
            for name in ("steps", "weights"):
                if name in values:
                    values[name] = tuple(float(v) for v in values[name])
            if "gates" in values:
                values["gates"] = tuple(str(g) for g in values["gates"])
            if "smoke_rows" in values:
                rows = values["smoke_rows"]
                if not isinstance(rows, Sequence) or not all(isinstance(r, dict) for r in rows):
                    raise InvalidInputError("Invalid smoke_rows: expected a list of records")
                values["smoke_rows"] = tuple(rows)
            if isinstance(values.get("key"), str):
                values["key"] = RoutingKey.parse(values["key"])
            for name in ("bake_seconds", "keep_previous_seconds", "interval_seconds"):
                if name in values:
                    values[name] = parse_duration(values[name], field_name=name)
            for name in ("sample", "smoke_tolerance", "alpha", "minimum_effect"):
                if name in values:
                    values[name] = float(values[name])
            for name in ("failure_limit", "min_samples"):
                if name in values:
                    if isinstance(values[name], bool) or int(values[name]) != values[name]:
                        raise InvalidInputError(
                            f"Invalid {name} {values[name]!r}: expected an integer"
                        )
                    values[name] = int(values[name])
            if "manual" in values and not isinstance(values["manual"], bool):
                raise InvalidInputError(f"Invalid manual {values['manual']!r}: expected true/false")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(f"Invalid rollout options: {exc}") from None
        return cls(**values)


@dataclass(frozen=True)
class RolloutView:
    """What a server process needs to route one endpoint's traffic during a rollout.

    Attributes:
        id: The rollout's id.
        endpoint: The endpoint it changes.
        strategy: Its strategy.
        phase: Its phase.
        stage: The strategy's stage (e.g. ``step``, ``preview``, ``keeping``).
        stable: The stable version, ``name/N``.
        candidate: The candidate version, ``name/N``.
        weight: The candidate's share of live traffic, percent.
        mirror: The share of live requests mirrored to the candidate, in [0, 1].
        key: Where sticky routing keys come from, if anywhere.
        salt: Salt of the routing hash (fixed per rollout).
    """

    id: int
    endpoint: str
    strategy: Strategy
    phase: Phase
    stage: str
    stable: str
    candidate: str
    weight: float
    mirror: float
    key: RoutingKey | None
    salt: str

    @property
    def replaces_in_place(self) -> bool:
        """Whether the stable version must be unloaded before the candidate loads."""
        return self.strategy is Strategy.RECREATE


@dataclass(frozen=True)
class RolloutEvent:
    """One transition or observation in a rollout's history.

    Attributes:
        at: When (UTC).
        actor: Who or what caused it: a user name, ``gate``, ``controller``, a process.
        kind: What happened, e.g. ``started``, ``step``, ``gate-failed``, ``rolled-back``.
        phase: The phase after it.
        weight: The candidate's traffic share after it, percent.
        message: One line for people.
        detail: Evidence: gate results, downtime, smoke-test outcomes.
    """

    at: datetime
    actor: str
    kind: str
    phase: Phase
    weight: float
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "kind": self.kind,
            "phase": self.phase.value,
            "weight": self.weight,
            "message": self.message,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Rollout:
    """One rollout as stored.

    Attributes:
        id: Its id (increasing).
        endpoint: The endpoint it changes.
        strategy: Its strategy.
        stable: The stable version, ``name/N``.
        candidate: The candidate version, ``name/N``.
        alias: The alias the endpoint follows (moved to the candidate on success), if any.
        phase: Where it stands.
        stage: The strategy's stage.
        step: Index into ``options.steps`` (canary).
        weight: The candidate's share of live traffic, percent.
        mirror: Share of live requests mirrored to the candidate.
        failures: Failed gate evaluations in the current step.
        options: Its options.
        salt: Salt of the routing hash.
        created_by: Who started it.
        created_at: When it started (UTC).
        updated_at: When it last changed (UTC).
        stage_started_at: When the current step or stage began (UTC).
        evaluated_at: When gates were last evaluated (UTC), if ever.
        finished_at: When it ended (UTC), if it has.
    """

    id: int
    endpoint: str
    strategy: Strategy
    stable: str
    candidate: str
    alias: str | None
    phase: Phase
    stage: str
    step: int
    weight: float
    mirror: float
    failures: int
    options: RolloutOptions
    salt: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    stage_started_at: datetime
    evaluated_at: datetime | None
    finished_at: datetime | None

    @property
    def is_active(self) -> bool:
        """Whether it still routes traffic."""
        return self.phase.is_active

    def view(self) -> RolloutView:
        """What server processes route by."""
        return RolloutView(
            id=self.id,
            endpoint=self.endpoint,
            strategy=self.strategy,
            phase=self.phase,
            stage=self.stage,
            stable=self.stable,
            candidate=self.candidate,
            weight=self.weight,
            mirror=self.mirror,
            key=self.options.key,
            salt=self.salt,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "strategy": self.strategy.value,
            "stable": self.stable,
            "candidate": self.candidate,
            "alias": self.alias,
            "phase": self.phase.value,
            "stage": self.stage,
            "step": self.step,
            "weight": self.weight,
            "mirror": self.mirror,
            "failures": self.failures,
            "options": self.options.to_dict(),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "stage_started_at": self.stage_started_at.isoformat(),
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


@dataclass(frozen=True)
class Decision:
    """What the controller should do with a rollout now: a transition and its reason.

    Strategies return decisions; the controller carries them out through the
    :class:`~ferryman.rollout.service.RolloutService`, which persists them.

    Attributes:
        kind: ``step`` (change weights or stage), ``finish`` (the candidate becomes the
            endpoint's version), ``switch`` (blue-green: finish, keeping blue loaded),
            ``rollback``, ``wait`` (for a person: phase ``waiting``), ``gate-failed``
            (count a failed evaluation), ``succeed`` (end a blue-green keep period).
        message: One line for the history.
        changes: Columns to set (see :meth:`RolloutService.transition`).
        detail: Evidence (gate results, smoke outcomes).
    """

    kind: str
    message: str
    changes: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


__all__ = [
    "BUCKETS",
    "Decision",
    "Phase",
    "Rollout",
    "RolloutEvent",
    "RolloutOptions",
    "RolloutView",
    "RoutingKey",
    "Strategy",
    "parse_duration",
]
