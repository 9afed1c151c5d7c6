"""A rollout's status for people: phase, traffic split, gates now, and what happens next."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ferryman.errors import FerrymanError
from ferryman.monitoring.base import MetricSource
from ferryman.rollout.ab_test import OutcomeLog, experiment
from ferryman.rollout.base import Phase, Rollout, Strategy
from ferryman.rollout.gates import GateSetResult
from ferryman.rollout.service import RolloutService


def describe(
    service: RolloutService,
    rollout: Rollout,
    *,
    metrics: MetricSource | None,
    now: datetime,
    events: int = 10,
    log: OutcomeLog | None = None,
) -> dict[str, Any]:
    """Return the rollout's status as a JSON-safe dict.

    Keys: everything in :meth:`Rollout.to_dict`, plus ``traffic`` (percent to stable and
    candidate, share mirrored), ``gates`` (each gate's current value against its
    threshold over the current stage's window, when gates and metrics exist), ``next``
    (a sentence: what happens next and when), ``events`` (the latest history) and, for
    an A/B test with the prediction log at hand, ``experiment`` (see
    :func:`ferryman.rollout.ab_test.experiment`).
    """
    data = rollout.to_dict()
    data["traffic"] = {
        "stable": 100.0 - rollout.weight if rollout.is_active else 0.0,
        "candidate": rollout.weight if rollout.is_active else 0.0,
        "mirrored": rollout.mirror if rollout.is_active else 0.0,
    }
    gates: GateSetResult | None = None
    if rollout.is_active and rollout.options.gates and metrics is not None:
        from ferryman.rollout.controller import RolloutController

        controller = RolloutController(service=service, metrics=metrics)
        gates = controller.evaluate_gates(rollout, now)
        data["gates"] = gates.to_dict()
    else:
        data["gates"] = None
    data["next"] = next_step_text(rollout, now)
    if rollout.strategy is Strategy.AB_TEST and log is not None:
        try:
            data["experiment"] = experiment(rollout, log)
        except FerrymanError as exc:  # e.g. no log segments yet
            data["experiment"] = {"error": str(exc)}
    history = service.events(rollout.id)
    data["events"] = [event.to_dict() for event in history[-events:]]
    return data


def next_step_text(rollout: Rollout, now: datetime) -> str:
    """One sentence on what happens next to ``rollout``, and when."""
    endpoint = rollout.endpoint
    options = rollout.options
    if not rollout.is_active:
        return f"nothing: the rollout ended {rollout.phase.value}"
    if rollout.phase is Phase.PAUSED:
        return (
            f"paused: `ferryman rollout resume {endpoint}` continues; `rollback` returns "
            f"all traffic to {rollout.stable}"
        )
    if rollout.phase is Phase.WAITING:
        if rollout.strategy is Strategy.CANARY:
            following = options.steps[min(rollout.step + 1, len(options.steps) - 1)]
            return f"waiting for `ferryman rollout promote {endpoint}` to go to {following:g} %"
        return f"waiting for `ferryman rollout promote {endpoint}` (or abort)"
    bake_end = rollout.stage_started_at + timedelta(seconds=options.bake_seconds)
    gates = "every gate passes" if options.gates else "nothing fails"
    left = options.failure_limit - rollout.failures
    if rollout.strategy is Strategy.RECREATE:
        return "replacing: finishes once a server reports the candidate serving"
    if rollout.strategy is Strategy.BLUE_GREEN and rollout.stage == "preview":
        return (
            f"loading green {rollout.candidate} beside blue; switches all traffic once it is "
            "warm and its smoke requests match blue's"
        )
    if rollout.strategy is Strategy.BLUE_GREEN:
        until = rollout.stage_started_at + timedelta(seconds=options.keep_previous_seconds)
        return (
            f"blue {rollout.stable} stays loaded for instant rollback until "
            f"{until.isoformat(timespec='seconds')}, then is unloaded"
        )
    if rollout.strategy is Strategy.SHADOW:
        after = {
            "canary": "continues as a canary",
            "promote": "switches all traffic",
            None: "waits for promote",
        }[options.then]
        return (
            f"mirroring {rollout.mirror:.0%} of requests; after {_when(bake_end, now)} and if "
            f"{gates}, {after} ({left} gate failure(s) left before rollback)"
        )
    if rollout.strategy is Strategy.AB_TEST:
        return (
            f"A/B test: {100 - rollout.weight:g} % / {rollout.weight:g} %; collecting outcomes "
            f"until `promote` (candidate wins) or `rollback` (stable stays)"
        )
    steps = options.steps
    if rollout.step >= len(steps) - 2:
        target = "all traffic (finish)"
    else:
        target = f"{steps[rollout.step + 1]:g} %"
    how = "promote" if options.manual else "automatic"
    return (
        f"step {rollout.step + 1} of {len(steps)} at {rollout.weight:g} %: after "
        f"{_when(bake_end, now)} and if {gates}, {target} ({how}); {left} gate failure(s) "
        "left before rollback"
    )


def _when(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "the bake time (done)"
    return f"{seconds:.0f} s more baking"


__all__ = ["describe", "next_step_text"]
