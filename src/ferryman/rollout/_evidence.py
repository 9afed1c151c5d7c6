"""Shared steps of the strategies' decisions: counting gate failures, waiting out a bake."""

from __future__ import annotations

from datetime import datetime

from ferryman.rollout.base import Decision, Rollout
from ferryman.rollout.gates import GateSetResult


def gate_failure(rollout: Rollout, gates: GateSetResult | None) -> Decision | None:
    """A rollback once gates failed ``failure_limit`` times in a stage, else a count.

    Returns ``None`` when the gates did not fail.
    """
    if gates is None or gates.status != "fail":
        return None
    failures = rollout.failures + 1
    described = "; ".join(
        f"{r.gate}: {_number(r.observed)} against {_number(r.threshold)}" for r in gates.failed
    )
    evidence = {"gates": gates.to_dict(), "failures": failures}
    limit = rollout.options.failure_limit
    if failures >= limit:
        return Decision(
            "rollback",
            f"gate failed {failures} of {limit} allowed time(s) ({described}); rolled back to "
            f"{rollout.stable}",
            detail=evidence,
        )
    return Decision(
        "gate-failed",
        f"gate failed ({described}); {failures} of {limit} failures before rollback",
        changes={"failures": failures},
        detail=evidence,
    )


def baked(rollout: Rollout, now: datetime, seconds: float | None = None) -> bool:
    """Whether the current stage has run for its bake time (or ``seconds``)."""
    wanted = rollout.options.bake_seconds if seconds is None else seconds
    return (now - rollout.stage_started_at).total_seconds() >= wanted


def _number(value: float | None) -> str:
    return "no data" if value is None else f"{value:.6g}"
