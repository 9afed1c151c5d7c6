"""Shadow: the candidate gets a mirrored copy of live requests; callers never see it.

Responses always come from the stable version. Mirrored copies go through a bounded
queue to the candidate on its own model thread, asynchronously (``serving.mirror``), so a
slow or failing candidate never slows or fails a caller; drops are counted. Gates read
the comparison metrics (``agreement``, ``mean_abs_diff``, the candidate's latency and
error rate with role ``shadow``). When they pass after the bake, the rollout continues
as a canary (``then=canary``), switches fully (``then=promote``), or waits for a person.
"""

from __future__ import annotations

from datetime import datetime

from ferryman.rollout._evidence import baked, gate_failure
from ferryman.rollout.base import Decision, Phase, Rollout, Strategy
from ferryman.rollout.gates import GateSetResult


def decide(rollout: Rollout, gates: GateSetResult | None, now: datetime) -> Decision | None:
    """What a running shadow rollout should do now, given its gates' latest evaluation."""
    if rollout.phase is not Phase.RUNNING:
        return None
    failure = gate_failure(rollout, gates)
    if failure is not None:
        return failure
    if not baked(rollout, now) or (gates is not None and gates.status != "pass"):
        return None
    evidence = {"gates": gates.to_dict()} if gates else {}
    then = rollout.options.then
    if then == "canary":
        first = rollout.options.steps[0]
        return Decision(
            "step",
            f"shadow checks passed; continuing as a canary at {first:g} %",
            changes={
                "strategy": Strategy.CANARY,
                "stage": "step",
                "step": 0,
                "weight": first,
                "mirror": 0.0,
            },
            detail=evidence,
        )
    if then == "promote":
        return Decision(
            "finish", "shadow checks passed; the candidate takes all traffic", detail=evidence
        )
    return Decision(
        "wait",
        "shadow checks passed; waiting for promote (or abort)",
        changes={"phase": Phase.WAITING},
        detail=evidence,
    )


def promotion(rollout: Rollout) -> Decision:
    """What ``promote`` does to a shadow rollout: continue as a canary, or switch."""
    if rollout.options.then == "canary":
        first = rollout.options.steps[0]
        return Decision(
            "step",
            f"promoted from shadow to a canary at {first:g} %",
            changes={
                "strategy": Strategy.CANARY,
                "stage": "step",
                "step": 0,
                "weight": first,
                "mirror": 0.0,
                "phase": Phase.RUNNING,
            },
        )
    return Decision("finish", "promoted from shadow; the candidate takes all traffic")
