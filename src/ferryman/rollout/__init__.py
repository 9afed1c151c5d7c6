"""Rollouts: changing the model behind a live endpoint safely, under one of five strategies.

A *rollout* moves an endpoint from its stable version to a candidate. The strategy
decides who sees the candidate and when: *recreate* swaps them with a short outage,
*shadow* mirrors traffic to the candidate without exposing anyone, *canary* shifts
traffic in gated steps, an *A/B test* splits users between the versions to measure an
outcome, and *blue-green* switches all traffic at once with the old version kept warm.

:func:`advise` recommends a strategy for a team's constraints (downtime, budget,
testing in production, rollback, outcome measurement, people), from the side-by-side
table :data:`STRATEGY_PROFILES`. :func:`analyze` gives an A/B test's statistics and
verdict: per-arm summaries, lift, fixed-horizon and always-valid sequential tests, and
the sample-ratio mismatch check.
"""

from __future__ import annotations

from ferryman.rollout.advisor import (
    BUDGETS,
    STRATEGY_PROFILES,
    Advice,
    Budget,
    ConstraintCheck,
    Constraints,
    RankedStrategy,
    StrategyProfile,
    advise,
)
from ferryman.rollout.gates import (
    DEFAULT_MIN_SAMPLES,
    Gate,
    GateCheck,
    GateMeasurements,
    GateOutcome,
    GateResult,
    GateSet,
    GateSetResult,
    GateStatus,
    GateVerdict,
    combine_statuses,
)
from ferryman.rollout.significance import (
    ABAnalysis,
    ABTestPlan,
    ABVerdict,
    ArmStats,
    ArmSummary,
    Comparison,
    Interval,
    Lift,
    OutcomeKind,
    SignificanceResult,
    SRMResult,
    TestKind,
    analyze,
    lift,
    msprt,
    required_sample_size,
    sample_ratio_mismatch,
    summarize_arm,
    two_proportion_ztest,
    welch_ttest,
)

__all__ = [
    "BUDGETS",
    "DEFAULT_MIN_SAMPLES",
    "STRATEGY_PROFILES",
    "ABAnalysis",
    "ABTestPlan",
    "ABVerdict",
    "Advice",
    "ArmStats",
    "ArmSummary",
    "Budget",
    "Comparison",
    "ConstraintCheck",
    "Constraints",
    "Gate",
    "GateCheck",
    "GateMeasurements",
    "GateOutcome",
    "GateResult",
    "GateSet",
    "GateSetResult",
    "GateStatus",
    "GateVerdict",
    "Interval",
    "Lift",
    "OutcomeKind",
    "RankedStrategy",
    "SRMResult",
    "SignificanceResult",
    "StrategyProfile",
    "TestKind",
    "advise",
    "analyze",
    "combine_statuses",
    "lift",
    "msprt",
    "required_sample_size",
    "sample_ratio_mismatch",
    "summarize_arm",
    "two_proportion_ztest",
    "welch_ttest",
]
