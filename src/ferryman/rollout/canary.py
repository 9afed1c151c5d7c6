"""Canary: the candidate takes a growing share of live traffic, step by step, under gates.

Steps default to 10, 25, 50 and 100 % of traffic. Each step bakes for ``bake_seconds``
while the gates are evaluated over the step's window (candidate against stable); when
every gate passes after the bake, the next step starts (or, with ``manual``, the rollout
waits for ``ferryman rollout promote``). Passing the step before 100 % finishes the
rollout: the candidate takes all traffic and the endpoint's alias moves to it. Gates
failing ``failure_limit`` times in one step roll it back.
"""

from __future__ import annotations

from datetime import datetime

from ferryman.rollout._evidence import baked, gate_failure
from ferryman.rollout.base import Decision, Phase, Rollout
from ferryman.rollout.gates import GateSetResult


def decide(rollout: Rollout, gates: GateSetResult | None, now: datetime) -> Decision | None:
    """What a running canary should do now, given its gates' latest evaluation.

    Args:
        rollout: The rollout.
        gates: The gates over the current step's window, or ``None`` when it has none.
        now: The current time (UTC).
    """
    if rollout.phase is not Phase.RUNNING:
        return None
    failure = gate_failure(rollout, gates)
    if failure is not None:
        return failure
    if not baked(rollout, now) or (gates is not None and gates.status != "pass"):
        return None
    return next_step(rollout, evidence={"gates": gates.to_dict()} if gates else {})


def next_step(
    rollout: Rollout, *, evidence: dict[str, object], manual: bool | None = None
) -> Decision:
    """The move after the current step: the next weight, a wait, or the finish."""
    steps = rollout.options.steps
    current = f"step {rollout.step + 1} of {len(steps)} ({rollout.weight:g} %)"
    if rollout.step >= len(steps) - 2:
        return Decision(
            "finish",
            f"{current} passed; {rollout.candidate} takes all traffic",
            detail=dict(evidence),
        )
    following = rollout.step + 1
    wait = rollout.options.manual if manual is None else manual
    if wait:
        return Decision(
            "wait",
            f"{current} passed; waiting for promote to {steps[following]:g} %",
            changes={"phase": Phase.WAITING},
            detail=dict(evidence),
        )
    return Decision(
        "step",
        f"{current} passed; {rollout.candidate} now gets {steps[following]:g} % of traffic",
        changes={"step": following, "weight": steps[following]},
        detail=dict(evidence),
    )
