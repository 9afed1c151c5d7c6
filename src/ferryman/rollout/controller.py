"""The rollout controller: one leader among the server processes moves every rollout along.

Every server process runs a controller; each second it tries to take the
``rollout-controller`` lease in the metadata store, and only the holder acts. The leader
looks at every active rollout, evaluates its gates over the current stage's window when
an evaluation is due (every ``interval_seconds``), asks the rollout's strategy what to
do (:mod:`~ferryman.rollout.canary`, :mod:`~ferryman.rollout.blue_green`, …) and carries
the decision out through the :class:`~ferryman.rollout.service.RolloutService`, which
persists it. Because all state lives in the store, a restarted or new leader resumes
every rollout where it stood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from ferryman.errors import FerrymanError
from ferryman.monitoring.base import MetricSource, WindowSelector
from ferryman.monitoring.window import DEFAULT_BUCKET_SECONDS
from ferryman.rollout import blue_green, canary, recreate, shadow
from ferryman.rollout._evidence import gate_failure
from ferryman.rollout.base import Decision, Phase, Rollout, Strategy
from ferryman.rollout.blue_green import SmokeResult
from ferryman.rollout.gates import GateSet, GateSetResult
from ferryman.rollout.service import RolloutService
from ferryman.serving._warmup import sample_row
from ferryman.serving.codecs.base import DecodedBatch
from ferryman.serving.runtime import Deployment, RuntimePool
from ferryman.store._tables import utcnow
from ferryman.store.leases import Lease

logger = logging.getLogger("ferryman.rollout")

#: The lease the leader holds.
LEASE_NAME = "rollout-controller"

#: Relative difference above which two regression outputs count as different.
SMOKE_RTOL = 0.05


class RecentRequests(Protocol):
    """Where blue-green smoke checks find recent requests (the prediction log)."""

    def __call__(self, endpoint: str, limit: int) -> Sequence[Mapping[str, Any]]:
        """Return up to ``limit`` recent request rows (records) of ``endpoint``."""
        ...


def process_identity() -> str:
    """A name unique to this process: ``host:pid:random``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class RolloutController:
    """Moves active rollouts along when this process leads.

    Args:
        service: The rollout service (persists every decision).
        pool: This process's runtime pool, for blue-green readiness and smoke checks.
        metrics: Where gates read windowed metrics; ``None``: gates cannot be evaluated
            (rollouts with gates then wait).
        holder: This process's identity for the lease.
        interval_seconds: Seconds between ticks.
        lease_seconds: How long leadership lasts without renewal.
        recent_requests: Recent captured requests for smoke checks, if capture is on.
        notify: Called with a JSON-safe dict when a rollout finishes or rolls back
            (e.g. to send a webhook).
        clock: The current time (UTC), injectable for tests.
    """

    def __init__(
        self,
        *,
        service: RolloutService,
        pool: RuntimePool | None = None,
        metrics: MetricSource | None = None,
        holder: str | None = None,
        interval_seconds: float = 1.0,
        lease_seconds: float = 5.0,
        recent_requests: RecentRequests | None = None,
        notify: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.pool = pool
        self.metrics = metrics
        self.holder = holder or process_identity()
        self.interval_seconds = interval_seconds
        self.lease_seconds = lease_seconds
        self.recent_requests = recent_requests
        self.notify = notify
        self.clock = clock
        self.lease = Lease(
            database=service.database,
            name=LEASE_NAME,
            holder=self.holder,
            ttl_seconds=lease_seconds,
        )
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None

    def __repr__(self) -> str:
        return (
            f"RolloutController(holder={self.holder!r}, interval_seconds={self.interval_seconds}, "
            f"lease_seconds={self.lease_seconds})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start ticking in the background (call from the event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ferryman-rollout-controller")

    async def stop(self) -> None:
        """Stop ticking and hand the lease over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.lease.release)

    async def _run(self) -> None:
        while True:
            # Wait first: a process that just started has its models warming up.
            await asyncio.sleep(self.interval_seconds)
            try:
                if await asyncio.to_thread(self.lease.acquire):
                    await self.tick()
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if message != self._error:  # once per distinct failure
                    logger.exception("Rollout controller tick failed; retrying")
                self._error = message
            else:
                self._error = None

    # -- one pass ---------------------------------------------------------------------------

    async def tick(self) -> list[Decision]:
        """Look at every active rollout once and carry out what its strategy decides.

        Returns:
            The decisions carried out.
        """
        done: list[Decision] = []
        for rollout in await asyncio.to_thread(self.service.active):
            try:
                decision = await self._decide(rollout)
                if decision is not None:
                    await asyncio.to_thread(self._carry_out, rollout, decision)
                    done.append(decision)
            except FerrymanError as exc:  # e.g. a person paused it meanwhile
                logger.info("Rollout #%s of %r: %s", rollout.id, rollout.endpoint, exc)
        return done

    async def _decide(self, rollout: Rollout) -> Decision | None:
        now = self.clock()
        if rollout.strategy is Strategy.RECREATE:
            events = await asyncio.to_thread(self.service.events, rollout.id)
            replaced = [e.detail for e in events if e.kind == "replaced"]
            return recreate.decide(rollout, replaced)
        if rollout.strategy is Strategy.BLUE_GREEN and rollout.stage == "preview":
            if rollout.phase is not Phase.RUNNING:
                return None
            green = self._green(rollout)
            smoke = await self.smoke_test(rollout, green) if green is not None else None
            return blue_green.decide(rollout, None, now, green_ready=green is not None, smoke=smoke)
        gates: GateSetResult | None = None
        if rollout.options.gates:
            if rollout.phase is not Phase.RUNNING or not _due(rollout, now):
                return None
            gates = await asyncio.to_thread(self.evaluate_gates, rollout, now)
            await asyncio.to_thread(self.service.mark_evaluated, rollout.id, now)
        if rollout.strategy is Strategy.CANARY:
            return canary.decide(rollout, gates, now)
        if rollout.strategy is Strategy.SHADOW:
            return shadow.decide(rollout, gates, now)
        if rollout.strategy is Strategy.BLUE_GREEN:
            return blue_green.decide(rollout, gates, now, green_ready=True, smoke=None)
        # A/B tests end by a person's decision; gates (e.g. on errors) can still stop them.
        if rollout.phase is not Phase.RUNNING:
            return None
        return gate_failure(rollout, gates)

    def evaluate_gates(self, rollout: Rollout, now: datetime) -> GateSetResult:
        """Evaluate the rollout's gates over its current stage's window.

        The candidate's window is its ``shadow`` traffic during a shadow rollout, its
        ``primary`` traffic otherwise; ``stable`` in an expression means the stable
        version's primary traffic over the same window.
        """
        # Functions named by python: gates are imported here, at each evaluation: one this
        # process cannot import (or may not: the service's gate_modules) makes its gate
        # inconclusive instead of stopping the others.
        gates = GateSet(
            rollout.options.gates,
            min_samples=rollout.options.min_samples,
            import_now=False,
            allowed_modules=self.service.gate_modules,
        )
        if self.metrics is None:
            return GateSetResult(status="inconclusive", results=())
        until = max(now, rollout.stage_started_at) + _EPSILON
        # Metrics are kept in wall-clock buckets; start at the bucket the stage began in.
        started = rollout.stage_started_at
        since = started - timedelta(seconds=started.timestamp() % DEFAULT_BUCKET_SECONDS)
        role = "shadow" if rollout.strategy is Strategy.SHADOW else "primary"
        candidate = WindowSelector(
            endpoint=rollout.endpoint,
            since=since,
            until=until,
            version=rollout.candidate,
            role=role,
        )
        stable = WindowSelector(
            endpoint=rollout.endpoint,
            since=since,
            until=until,
            version=rollout.stable,
            role="primary",
        )
        return gates.evaluate(self.metrics, candidate, stable)

    def _carry_out(self, rollout: Rollout, decision: Decision) -> None:
        actor = _actor(decision)
        if decision.kind == "finish":
            self.service.finish(
                rollout, actor=actor, message=decision.message, detail=decision.detail
            )
        elif decision.kind == "switch":
            self.service.finish(
                rollout,
                actor=actor,
                message=decision.message,
                detail=decision.detail,
                keep_stable=True,
            )
        elif decision.kind == "rollback":
            self.service.rollback(
                rollout.endpoint, reason=decision.message, actor=actor, detail=decision.detail
            )
        else:
            self.service.transition(
                rollout.id,
                kind=decision.kind,
                message=decision.message,
                actor=actor,
                detail=decision.detail,
                expect_phase=(Phase.RUNNING,),
                **decision.changes,
            )
        logger.info("Rollout #%s of %r: %s", rollout.id, rollout.endpoint, decision.message)
        if self.notify is not None and decision.kind in ("finish", "switch", "rollback"):
            try:
                self.notify(
                    {
                        "event": f"rollout.{decision.kind}",
                        "rollout": rollout.id,
                        "endpoint": rollout.endpoint,
                        "strategy": rollout.strategy.value,
                        "stable": rollout.stable,
                        "candidate": rollout.candidate,
                        "message": decision.message,
                        "detail": decision.detail,
                    }
                )
            except Exception:  # a notification never stops a rollout
                logger.exception("Sending the rollout notification failed")

    # -- blue-green checks ------------------------------------------------------------------

    def _green(self, rollout: Rollout) -> Deployment | None:
        if self.pool is None:
            return None
        runtime = self.pool.find(rollout.endpoint)
        candidate = runtime.candidate if runtime is not None else None
        if candidate is None or candidate.version.ref != rollout.candidate:
            return None
        return candidate

    async def smoke_test(self, rollout: Rollout, green: Deployment) -> SmokeResult | None:
        """Replay smoke requests on green and blue and compare their outputs.

        Rows come from the rollout's sample file, else from recent captured requests,
        else one typical row built from the reference profile. Returns ``None`` while
        blue is not loaded in this process.
        """
        runtime = self.pool.find(rollout.endpoint) if self.pool is not None else None
        blue = runtime.deployment if runtime is not None else None
        if blue is None:
            return None
        rows, source = list(rollout.options.smoke_rows), "sample-file"
        if not rows and self.recent_requests is not None:
            recent = await asyncio.to_thread(self.recent_requests, rollout.endpoint, 100)
            rows, source = [dict(r) for r in recent], "captured"
        if not rows:
            rows = [sample_row(blue.version.signature, blue.version.info.profile)]
            source = "profile"
        try:
            expected = await blue.predict(DecodedBatch(rows))
        except Exception as exc:
            raise FerrymanError(f"blue could not answer the smoke requests: {exc}") from exc
        try:
            got = await green.predict(DecodedBatch(rows))
        except Exception as exc:
            return SmokeResult(
                rows=len(rows),
                mismatches=0,
                errors=len(rows),
                source=source,
                detail={"error": f"{type(exc).__name__}: {exc}"},
            )
        differs = _differs(expected.prediction.predictions, got.prediction.predictions)
        first = [int(i) for i in np.flatnonzero(differs)[:5]]
        return SmokeResult(
            rows=len(rows),
            mismatches=int(differs.sum()),
            errors=0,
            source=source,
            detail={"first_mismatches": first} if first else {},
        )


_EPSILON = timedelta(microseconds=1)


def _due(rollout: Rollout, now: datetime) -> bool:
    if rollout.evaluated_at is None:
        return True
    return (now - rollout.evaluated_at).total_seconds() >= rollout.options.interval_seconds


def _actor(decision: Decision) -> str:
    gates = decision.detail.get("gates")
    if decision.kind in ("rollback", "gate-failed") and isinstance(gates, dict):
        failed = [r["gate"] for r in gates.get("results", ()) if r.get("status") == "fail"]
        if failed:
            return "gate: " + ", ".join(failed)
    return "controller"


def _differs(expected: Any, got: Any) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Per row: whether two models' outputs differ (labels exactly, numbers by 5 %)."""
    a = np.asarray(expected)
    b = np.asarray(got)
    if a.shape != b.shape:
        return np.ones(len(a), dtype=bool)
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        close = np.isclose(a, b, rtol=SMOKE_RTOL, atol=1e-9, equal_nan=True)
    else:
        close = a == b
    if close.ndim > 1:
        close = close.reshape(len(close), -1).all(axis=1)
    return ~np.asarray(close, dtype=bool)


__all__ = ["LEASE_NAME", "RolloutController", "process_identity"]
