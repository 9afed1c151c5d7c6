"""A/B test: users split between stable (control) and candidate (treatment) by a sticky key.

Assignment is a salted hash of a caller-supplied key (a header or a request field, e.g.
a user id) into buckets, so a user stays in one arm for the whole test. Outcomes arrive
later through ``POST /v1/feedback`` (``outcome``: a conversion 0/1 or a numeric reward,
by request id) and are joined with the prediction log to the arm that served each
request. :func:`experiment` analyses the arms with :mod:`ferryman.rollout.significance`:
per-arm rates or means with 95 % intervals, lift, the fixed-horizon test and the
always-valid sequential test (mSPRT), the sample-ratio-mismatch check, and a verdict.
The rollout never ends by itself: a person promotes the candidate or rolls it back.
"""

from __future__ import annotations

from typing import Any, Protocol

from ferryman.rollout.base import Rollout
from ferryman.rollout.significance import MIN_OUTCOMES, ABTestPlan, ArmStats, analyze

#: Expected control conversion rate used to plan a fixed-horizon test (the worst case:
#: the largest variance, so the largest sample size).
PLANNING_RATE = 0.5
#: Expected standard deviation of a numeric outcome, in outcome units, for planning.
PLANNING_STD = 1.0


class OutcomeLog(Protocol):
    """What the analysis needs of the prediction log (``LogStore`` has it)."""

    def query(self, sql: str, *, endpoint: str | None = None) -> Any:
        """Run one SELECT; the result has ``records()``."""
        ...


def plan(rollout: Rollout) -> ABTestPlan:
    """The A/B plan of ``rollout``: arms (stable first), weights, outcome, test, alpha."""
    options = rollout.options
    binary = options.outcome == "binary"
    fixed = options.test == "fixed"
    return ABTestPlan(
        arms=(rollout.stable, rollout.candidate),
        weights=options.weights,
        outcome="binary" if binary else "numeric",
        minimum_effect=options.minimum_effect,
        test="fixed" if fixed else "sequential",
        alpha=options.alpha,
        baseline_rate=PLANNING_RATE if binary and fixed else None,
        baseline_std=PLANNING_STD if not binary and fixed else None,
    )


def experiment(rollout: Rollout, log: OutcomeLog) -> dict[str, Any]:
    """Analyse an A/B rollout's arms from the prediction log and the feedback so far.

    Returns a JSON-safe dict: ``assigned`` (requests per arm since the test started),
    ``outcomes`` (per arm: count, sum, sum of squares) and ``analysis`` (see
    :class:`~ferryman.rollout.significance.ABAnalysis`), or ``waiting`` with a reason
    while an arm has fewer than two outcomes.
    """
    since = rollout.created_at.isoformat(sep=" ").replace("+00:00", "")
    arms = (rollout.stable, rollout.candidate)
    arm_list = ", ".join(f"'{arm}'" for arm in arms)
    assigned_rows = log.query(
        f"""
        SELECT model_version AS arm, count(DISTINCT request_id) AS n
        FROM predictions
        WHERE role = 'primary' AND status = 200 AND time >= TIMESTAMP '{since}'
          AND model_version IN ({arm_list})
        GROUP BY 1
        """,
        endpoint=rollout.endpoint,
    ).records()
    outcome_rows = log.query(
        f"""
        SELECT p.model_version AS arm, count(*) AS n, sum(f.outcome) AS total,
               sum(f.outcome * f.outcome) AS squares
        FROM predictions p JOIN feedback f ON p.request_id = f.request_id AND p."row" = f."row"
        WHERE p.role = 'primary' AND p.status = 200 AND p.time >= TIMESTAMP '{since}'
          AND p.model_version IN ({arm_list}) AND f.outcome IS NOT NULL
        GROUP BY 1
        """,
        endpoint=rollout.endpoint,
    ).records()
    assigned = {arm: 0 for arm in arms}
    assigned.update({row["arm"]: int(row["n"]) for row in assigned_rows})
    stats = {arm: ArmStats() for arm in arms}
    for row in outcome_rows:
        stats[row["arm"]] = ArmStats(
            count=int(row["n"]), total=float(row["total"]), total_squares=float(row["squares"])
        )
    result: dict[str, Any] = {
        "assigned": assigned,
        "outcomes": {
            arm: {"count": s.count, "sum": s.total, "sum_of_squares": s.total_squares}
            for arm, s in stats.items()
        },
    }
    short = [arm for arm, s in stats.items() if s.count < MIN_OUTCOMES]
    if short:
        result["analysis"] = None
        result["waiting"] = (
            f"waiting for outcomes: {', '.join(short)} has fewer than {MIN_OUTCOMES}; send "
            "them with POST /v1/feedback {request_id, outcome}"
        )
        return result
    result["analysis"] = analyze(plan(rollout), stats, assigned=assigned).to_dict()
    return result


__all__ = ["PLANNING_RATE", "PLANNING_STD", "OutcomeLog", "experiment", "plan"]
