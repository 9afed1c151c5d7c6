"""What each strategy decides, given its state, its gates and the time (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ferryman.rollout import blue_green, canary, recreate, shadow
from ferryman.rollout.base import Phase, Rollout, RolloutOptions, Strategy
from ferryman.rollout.blue_green import SmokeResult
from ferryman.rollout.gates import GateResult, GateSetResult

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make_rollout(strategy: Strategy = Strategy.CANARY, **changes: object) -> Rollout:
    rollout = Rollout(
        id=1,
        endpoint="churn",
        strategy=strategy,
        stable="churn/1",
        candidate="churn/2",
        alias="production",
        phase=Phase.RUNNING,
        stage="step",
        step=0,
        weight=10.0,
        mirror=0.0,
        failures=0,
        options=RolloutOptions(bake_seconds=60, gates=("error_rate < 0.01",)),
        salt="s",
        created_by="alice",
        created_at=T0,
        updated_at=T0,
        stage_started_at=T0,
        evaluated_at=None,
        finished_at=None,
    )
    return replace(rollout, **changes)  # type: ignore[arg-type]


def gates(status: str, observed: float = 0.05) -> GateSetResult:
    result = GateResult(
        gate="error_rate < 0.01",
        status=status,  # type: ignore[arg-type]
        observed=observed,
        threshold=0.01,
        samples=500,
        min_samples=100,
        reason="",
        expression="error_rate < 0.01",
    )
    return GateSetResult(status=status, results=(result,))  # type: ignore[arg-type]


def test_canary_waits_out_the_bake_even_when_gates_pass() -> None:
    assert canary.decide(make_rollout(), gates("pass"), T0 + timedelta(seconds=30)) is None


def test_canary_advances_after_the_bake_when_every_gate_passes() -> None:
    decision = canary.decide(make_rollout(), gates("pass"), T0 + timedelta(seconds=61))
    assert decision is not None
    assert (decision.kind, decision.changes) == ("step", {"step": 1, "weight": 25.0})
    assert decision.detail["gates"]["status"] == "pass"


def test_canary_finishes_after_the_step_before_100_percent() -> None:
    rollout = make_rollout(step=2, weight=50.0)
    decision = canary.decide(rollout, gates("pass"), T0 + timedelta(seconds=61))
    assert decision is not None and decision.kind == "finish"


def test_canary_waits_on_inconclusive_gates() -> None:
    assert canary.decide(make_rollout(), gates("inconclusive"), T0 + timedelta(hours=1)) is None


def test_a_failing_gate_counts_then_rolls_back_at_the_limit() -> None:
    first = canary.decide(make_rollout(), gates("fail"), T0 + timedelta(seconds=5))
    assert first is not None and (first.kind, first.changes) == ("gate-failed", {"failures": 1})
    second = canary.decide(make_rollout(failures=1), gates("fail"), T0 + timedelta(seconds=5))
    assert second is not None and second.kind == "rollback"
    assert "error_rate < 0.01: 0.05 against 0.01" in second.message


def test_manual_canary_waits_for_a_person_between_steps() -> None:
    rollout = make_rollout(options=RolloutOptions(bake_seconds=0, manual=True))
    decision = canary.decide(rollout, None, T0)
    assert decision is not None
    assert (decision.kind, decision.changes) == ("wait", {"phase": Phase.WAITING})


def test_paused_rollouts_are_left_alone() -> None:
    assert canary.decide(make_rollout(phase=Phase.PAUSED), gates("fail"), T0) is None


def test_shadow_continues_as_canary_when_configured() -> None:
    rollout = make_rollout(
        Strategy.SHADOW,
        stage="mirroring",
        weight=0.0,
        mirror=1.0,
        options=RolloutOptions(bake_seconds=10, then="canary"),
    )
    decision = shadow.decide(rollout, None, T0 + timedelta(seconds=11))
    assert decision is not None
    assert decision.changes["strategy"] is Strategy.CANARY
    assert decision.changes["weight"] == 10.0


def test_shadow_waits_for_promotion_by_default() -> None:
    rollout = make_rollout(
        Strategy.SHADOW, stage="mirroring", options=RolloutOptions(bake_seconds=0)
    )
    decision = shadow.decide(rollout, None, T0)
    assert decision is not None and decision.kind == "wait"


def test_blue_green_switches_once_green_is_ready_and_smoke_rows_match() -> None:
    rollout = make_rollout(Strategy.BLUE_GREEN, stage="preview", weight=0.0)
    assert blue_green.decide(rollout, None, T0, green_ready=False, smoke=None) is None
    ok = SmokeResult(rows=20, mismatches=0, errors=0, source="sample-file")
    decision = blue_green.decide(rollout, None, T0, green_ready=True, smoke=ok)
    assert decision is not None and decision.kind == "switch"


def test_blue_green_rolls_back_when_green_disagrees_with_blue() -> None:
    rollout = make_rollout(Strategy.BLUE_GREEN, stage="preview", weight=0.0)
    bad = SmokeResult(rows=20, mismatches=5, errors=0, source="captured")
    decision = blue_green.decide(rollout, None, T0, green_ready=True, smoke=bad)
    assert decision is not None and decision.kind == "rollback"
    assert "5 of 20 smoke rows differ" in decision.message


def test_blue_green_unloads_blue_after_the_keep_period() -> None:
    rollout = make_rollout(
        Strategy.BLUE_GREEN,
        stage="keeping",
        weight=100.0,
        options=RolloutOptions(keep_previous_seconds=600),
    )
    assert (
        blue_green.decide(rollout, None, T0 + timedelta(seconds=599), green_ready=True, smoke=None)
        is None
    )
    done = blue_green.decide(
        rollout, None, T0 + timedelta(seconds=600), green_ready=True, smoke=None
    )
    assert done is not None and done.changes == {"phase": Phase.SUCCEEDED}


def test_recreate_finishes_with_the_worst_measured_downtime() -> None:
    rollout = make_rollout(Strategy.RECREATE, stage="replacing", weight=100.0)
    assert recreate.decide(rollout, []) is None
    decision = recreate.decide(rollout, [{"downtime_seconds": 0.25}, {"downtime_seconds": 0.75}])
    assert decision is not None and decision.kind == "finish"
    assert decision.detail["downtime_seconds"] == 0.75
