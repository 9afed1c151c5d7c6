"""The strategy advisor: the five deployment strategies side by side, and which one fits.

:data:`STRATEGY_PROFILES` is the table: for each strategy, its downtime, extra capacity,
the people it needs, rollback, testing in production, users exposed, what it teaches
and when it fits, in words and as a few closed values the advisor reasons on.

:func:`advise` checks every strategy against the team's constraints. Each constraint
that was given yields, per strategy, one :class:`ConstraintCheck`: ``meets``,
``partly`` (met with a caveat) or ``violates``. Strategies are ranked by, in order:

1. fewest violations;
2. fewest caveats;
3. lowest extra cost (none < low < medium < high);
4. least human involvement (none < optional < usual);
5. the table's order (recreate, shadow, canary, ab-test, blue-green).

The first strategy is recommended when it violates nothing. When none meets every
constraint, the advice says which constraints contradict each other (no strategy
meets both of a pair) and still ranks the strategies by how close they come.

Example:
    >>> advice = advise(max_downtime_seconds=0, budget="low", automated_rollback=True)
    >>> advice.recommended, [r.strategy.value for r in advice.ranking][:2]
    (<Strategy.CANARY: 'canary'>, ['canary', 'ab-test'])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any, Literal

from ferryman.errors import InvalidInputError
from ferryman.rollout.base import Strategy

#: How much the team can spend on extra capacity during a rollout.
Budget = Literal["low", "medium", "high"]
BUDGETS: tuple[Budget, ...] = ("low", "medium", "high")
#: Extra capacity a strategy costs, from nothing to double.
Cost = Literal["none", "low", "medium", "high"]
#: How much a strategy relies on people: never, if they want, or usually.
Involvement = Literal["none", "optional", "usual"]
#: A yes/no property that some strategies have only in part.
Degree = Literal["no", "partly", "yes"]
#: Who may see an unproven candidate: nobody, a share the team chooses, or everybody.
Exposure = Literal["none", "adjustable", "all"]
#: How a strategy fares against one constraint.
Fit = Literal["meets", "partly", "violates"]

_COSTS: tuple[Cost, ...] = ("none", "low", "medium", "high")
_INVOLVEMENTS: tuple[Involvement, ...] = ("none", "optional", "usual")
#: The highest extra cost each budget allows.
_BUDGET_ALLOWS: dict[Budget, Cost] = {"low": "low", "medium": "medium", "high": "high"}
_DEGREE_FIT: dict[Degree, Fit] = {"yes": "meets", "partly": "partly", "no": "violates"}


@dataclass(frozen=True)
class StrategyProfile:
    """One deployment strategy: prose for people, closed values for the advisor.

    Attributes:
        strategy: Which strategy.
        summary: What it does, in one sentence.
        downtime: Whether and why requests fail during the change.
        extra_capacity: What it costs beyond the stable version alone.
        human_involvement: What people do, if anything.
        rollback: How to go back, and how fast.
        production_testing: What the candidate is tried on before everyone gets it.
        users_exposed: Who is served by the candidate, and when.
        what_you_learn: What is known before full exposure.
        fits_when: The situation it suits.
        has_downtime: Requests fail while the versions change.
        cost: Extra capacity, from ``none`` to ``high`` (double).
        involvement: ``none``, ``optional`` or ``usual``.
        automated_rollback: A failing gate can take the candidate out automatically.
        tests_in_production: Whether it tries the candidate on real traffic first.
        exposure: Who may see an unproven candidate.
        measures_outcome: Whether it measures the candidate's effect on a business
            outcome (conversion, revenue) causally.
        outcome_evidence: Why it does or does not measure such an effect.
    """

    strategy: Strategy
    summary: str
    downtime: str
    extra_capacity: str
    human_involvement: str
    rollback: str
    production_testing: str
    users_exposed: str
    what_you_learn: str
    fits_when: str
    has_downtime: bool
    cost: Cost
    involvement: Involvement
    automated_rollback: bool
    tests_in_production: Degree
    exposure: Exposure
    measures_outcome: bool
    outcome_evidence: str


#: The five strategies, in the order they are shown.
STRATEGY_PROFILES: dict[Strategy, StrategyProfile] = {
    Strategy.RECREATE: StrategyProfile(
        strategy=Strategy.RECREATE,
        summary="Unload the stable version, then load the candidate.",
        downtime="Yes: 503 with Retry-After while the old model drains and the new one loads "
        "and warms up.",
        extra_capacity="None: one version is loaded at a time.",
        human_involvement="None: there is no point at which to stop and review.",
        rollback="Slow: another recreate, with another gap.",
        production_testing="None.",
        users_exposed="All, at once.",
        what_you_learn="Nothing before full exposure.",
        fits_when="Downtime is acceptable (internal endpoints, maintenance windows) and "
        "memory cannot hold two models.",
        has_downtime=True,
        cost="none",
        involvement="none",
        automated_rollback=False,
        tests_in_production="no",
        exposure="all",
        measures_outcome=False,
        outcome_evidence="No control group: every user gets the candidate at once.",
    ),
    Strategy.SHADOW: StrategyProfile(
        strategy=Strategy.SHADOW,
        summary="Mirror live requests to the candidate; answer from the stable version only.",
        downtime="None: responses always come from the stable version.",
        extra_capacity="Compute for the mirrored share: about double at 100%, less with --sample.",
        human_involvement="Usually someone reviews the diff report; an agreement gate can "
        "promote instead.",
        rollback="Trivial: stop mirroring; no user saw the candidate.",
        production_testing="Yes: real inputs, no effect on responses.",
        users_exposed="None.",
        what_you_learn="Output differences, latency and errors on real inputs.",
        fits_when="A risky or rewritten model to compare on real traffic before anyone "
        "depends on it.",
        has_downtime=False,
        cost="medium",
        involvement="usual",
        automated_rollback=True,
        tests_in_production="yes",
        exposure="none",
        measures_outcome=False,
        outcome_evidence="Users never see the candidate's outputs, so it cannot change what "
        "they do.",
    ),
    Strategy.CANARY: StrategyProfile(
        strategy=Strategy.CANARY,
        summary="Shift traffic in steps (10, 25, 50, 100%), checking gates after each bake time.",
        downtime="None: the candidate loads before it takes traffic.",
        extra_capacity="Little: the candidate runs beside the stable version; traffic is "
        "split, not copied.",
        human_involvement="Optional: gates decide; --manual waits for a person at each step.",
        rollback="Fast and automatic when a gate fails.",
        production_testing="Yes: a growing slice of live traffic.",
        users_exposed="The step's share, growing to all.",
        what_you_learn="Operational and model metrics (errors, latency, nulls, drift) on a slice.",
        fits_when="A routine model update: no downtime, little extra cost, automatic rollback.",
        has_downtime=False,
        cost="low",
        involvement="optional",
        automated_rollback=True,
        tests_in_production="yes",
        exposure="adjustable",
        measures_outcome=False,
        outcome_evidence="A slice shows outcome metrics, but without a sticky split and a "
        "significance test the difference is not causal.",
    ),
    Strategy.AB_TEST: StrategyProfile(
        strategy=Strategy.AB_TEST,
        summary="Split users between the versions by a sticky key; compare an outcome with a "
        "significance test.",
        downtime="None: the candidate loads before it takes traffic.",
        extra_capacity="About none: users are split between the versions, not duplicated.",
        human_involvement="Usually a person acts on the verdict.",
        rollback="Fast: set the candidate arm's weight to 0.",
        production_testing="Yes: live users, each kept in one arm.",
        users_exposed="The arm's weight, sticky per user.",
        what_you_learn="The causal effect on a business outcome (conversion, revenue), with a "
        "confidence interval.",
        fits_when="You must know whether the model improves an outcome and can wait for "
        "enough feedback.",
        has_downtime=False,
        cost="low",
        involvement="usual",
        automated_rollback=True,
        tests_in_production="yes",
        exposure="adjustable",
        measures_outcome=True,
        outcome_evidence="A significance test on a sticky split measures the effect causally.",
    ),
    Strategy.BLUE_GREEN: StrategyProfile(
        strategy=Strategy.BLUE_GREEN,
        summary="Load the candidate (green) beside the live version (blue), check it, switch "
        "all traffic at once.",
        downtime="None: the switch drops no request.",
        extra_capacity="Double: two full deployments until blue is unloaded.",
        human_involvement="Optional: a person can approve the switch.",
        rollback="Instant while blue is still loaded (--keep-previous).",
        production_testing="Partly: smoke requests (a file or replayed captured traffic) "
        "before the switch; live traffic only after.",
        users_exposed="All, at the switch.",
        what_you_learn="Smoke results compared with blue's, then live metrics after the switch.",
        fits_when="An all-or-nothing change that needs instant rollback and can afford double "
        "capacity for a while.",
        has_downtime=False,
        cost="high",
        involvement="optional",
        automated_rollback=True,
        tests_in_production="partly",
        exposure="all",
        measures_outcome=False,
        outcome_evidence="No control group: every user switches at once.",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """What the team needs from a rollout; ``None`` or ``False`` means no constraint.

    Args:
        max_downtime_seconds: Longest tolerable outage, in seconds; ``None`` for any.
        budget: Extra capacity the team can pay for: ``low``, ``medium`` or ``high``.
        need_production_testing: The candidate must be tried on real traffic before
            every user gets it.
        automated_rollback: A bad candidate must be taken out without a person.
        measure_business_outcome: The rollout must measure the candidate's effect on a
            business outcome (conversion, revenue).
        human_review: A person must be able to review before full exposure; when
            ``False``, strategies that usually need a person get a caveat.
        max_exposure: Largest share of users, in [0, 1], that an unproven candidate may
            serve; ``None`` for any.
        load_seconds: How long draining, loading and warming up a model takes, to judge
            recreate's downtime; ``None`` if unknown.

    Raises:
        InvalidInputError: An unknown budget or a number out of range.
    """

    max_downtime_seconds: float | None = None
    budget: Budget = "medium"
    need_production_testing: bool = False
    automated_rollback: bool = False
    measure_business_outcome: bool = False
    human_review: bool = False
    max_exposure: float | None = None
    load_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise InvalidInputError(
                f"Unknown budget {self.budget!r}. Available: {', '.join(BUDGETS)}."
            )
        for name in ("max_downtime_seconds", "load_seconds"):
            value = getattr(self, name)
            if value is not None and not _non_negative(value):
                raise InvalidInputError(f"{name} must be a number >= 0 seconds, got {value!r}.")
        if self.max_exposure is not None and not (
            _non_negative(self.max_exposure) and self.max_exposure <= 1
        ):
            raise InvalidInputError(
                f"max_exposure must be a share in [0, 1], got {self.max_exposure!r}."
            )


@dataclass(frozen=True)
class ConstraintCheck:
    """How one strategy fares against one constraint.

    Attributes:
        constraint: The constraint, in words, e.g. ``max downtime 0s``.
        fit: ``meets``, ``partly`` or ``violates``.
        reason: Why.
    """

    constraint: str
    fit: Fit
    reason: str


@dataclass(frozen=True)
class RankedStrategy:
    """One strategy's place in the advice.

    Attributes:
        rank: 1 for the best fit.
        strategy: The strategy.
        violations: Constraints it violates.
        caveats: Constraints it meets only partly.
        checks: One check per given constraint.
    """

    rank: int
    strategy: Strategy
    violations: int
    caveats: int
    checks: tuple[ConstraintCheck, ...]


@dataclass(frozen=True)
class Advice:
    """The advisor's answer.

    Attributes:
        constraints: What was asked.
        recommended: The best strategy if it violates no constraint, else ``None``.
        ranking: Every strategy, best fit first.
        conflicts: Pairs of constraints no strategy meets together, in words.
        summary: The answer in one or two sentences.
    """

    constraints: Constraints
    recommended: Strategy | None
    ranking: tuple[RankedStrategy, ...]
    conflicts: tuple[str, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """Return the advice as JSON-ready dicts, lists and strings."""
        return asdict(self)


def advise(
    *,
    max_downtime_seconds: float | None = None,
    budget: Budget = "medium",
    need_production_testing: bool = False,
    automated_rollback: bool = False,
    measure_business_outcome: bool = False,
    human_review: bool = False,
    max_exposure: float | None = None,
    load_seconds: float | None = None,
) -> Advice:
    """Rank the five strategies against the team's constraints and recommend one.

    Deterministic: the same constraints always give the same advice. Arguments are
    those of :class:`Constraints`; the module docstring gives the ranking rules.

    Raises:
        InvalidInputError: An unknown budget or a number out of range.
    """
    constraints = Constraints(
        max_downtime_seconds=max_downtime_seconds,
        budget=budget,
        need_production_testing=need_production_testing,
        automated_rollback=automated_rollback,
        measure_business_outcome=measure_business_outcome,
        human_review=human_review,
        max_exposure=max_exposure,
        load_seconds=load_seconds,
    )
    order = list(STRATEGY_PROFILES)
    checked = {s: _checks(p, constraints) for s, p in STRATEGY_PROFILES.items()}

    def key(strategy: Strategy) -> tuple[int, int, int, int, int]:
        fits = [c.fit for c in checked[strategy]]
        profile = STRATEGY_PROFILES[strategy]
        return (
            fits.count("violates"),
            fits.count("partly"),
            _COSTS.index(profile.cost),
            _INVOLVEMENTS.index(profile.involvement),
            order.index(strategy),
        )

    ranking = tuple(
        RankedStrategy(rank, strategy, key(strategy)[0], key(strategy)[1], checked[strategy])
        for rank, strategy in enumerate(sorted(order, key=key), start=1)
    )
    best = ranking[0]
    recommended = best.strategy if best.violations == 0 else None
    conflicts = _conflicts(checked) if recommended is None else ()
    return Advice(constraints, recommended, ranking, conflicts, _summary(ranking, conflicts))


def _checks(profile: StrategyProfile, c: Constraints) -> tuple[ConstraintCheck, ...]:
    checks = [_budget(profile, c.budget)]
    if c.max_downtime_seconds is not None:
        checks.append(_downtime(profile, c.max_downtime_seconds, c.load_seconds))
    if c.max_exposure is not None:
        checks.append(_exposure(profile, c.max_exposure))
    if c.need_production_testing:
        label = "production testing"
        degree = profile.tests_in_production
        checks.append(ConstraintCheck(label, _fit(degree), profile.production_testing))
    if c.automated_rollback:
        fit: Fit = "meets" if profile.automated_rollback else "violates"
        checks.append(ConstraintCheck("automated rollback", fit, profile.rollback))
    if c.measure_business_outcome:
        fit = "meets" if profile.measures_outcome else "violates"
        checks.append(ConstraintCheck("business outcome", fit, profile.outcome_evidence))
    checks.append(_people(profile, c.human_review))
    return tuple(checks)


def _budget(profile: StrategyProfile, budget: Budget) -> ConstraintCheck:
    covered = _COSTS[: _COSTS.index(_BUDGET_ALLOWS[budget]) + 1]
    label = f"budget {budget}"
    if profile.cost in covered:
        return ConstraintCheck(
            label, "meets", f"{profile.extra_capacity} Extra cost: {profile.cost}."
        )
    words = ", ".join(covered[:-1]) + f" or {covered[-1]}"
    reason = (
        f"{profile.extra_capacity} Extra cost: {profile.cost}; a {budget} budget covers {words}."
    )
    return ConstraintCheck(label, "violates", reason)


def _downtime(profile: StrategyProfile, limit: float, load: float | None) -> ConstraintCheck:
    label = f"max downtime {_seconds(limit)}"
    if not profile.has_downtime:
        return ConstraintCheck(label, "meets", profile.downtime)
    if limit == 0 or (load is not None and load > limit):
        gap = "" if load is None else f" About {_seconds(load)}."
        return ConstraintCheck(label, "violates", profile.downtime + gap)
    if load is None:
        reason = f"Fits only if draining, loading and warming up take under {_seconds(limit)}."
        return ConstraintCheck(label, "partly", reason)
    return ConstraintCheck(label, "meets", f"A gap of about {_seconds(load)} is tolerated.")


def _exposure(profile: StrategyProfile, limit: float) -> ConstraintCheck:
    label = f"max exposure {limit:.0%}"
    exposed = f"Users exposed: {_clause(profile.users_exposed)}."
    if profile.exposure == "none" or limit >= 1:
        return ConstraintCheck(label, "meets", exposed)
    if profile.exposure == "adjustable" and limit > 0:
        return ConstraintCheck(
            label,
            "meets",
            f"{exposed} Keep its share at or below {limit:.0%} until it proves itself.",
        )
    return ConstraintCheck(label, "violates", exposed)


def _people(profile: StrategyProfile, human_review: bool) -> ConstraintCheck:
    if human_review:
        fit: Fit = "violates" if profile.involvement == "none" else "meets"
        return ConstraintCheck("human review", fit, profile.human_involvement)
    fit = "partly" if profile.involvement == "usual" else "meets"
    return ConstraintCheck("no human in the loop", fit, profile.human_involvement)


def _fit(degree: Degree) -> Fit:
    return _DEGREE_FIT[degree]


def _conflicts(checked: dict[Strategy, tuple[ConstraintCheck, ...]]) -> tuple[str, ...]:
    """Name each pair of constraints that no strategy meets together."""
    labels = [c.constraint for c in next(iter(checked.values()))]
    meeting = {
        label: [s for s, checks in checked.items() if _fit_of(checks, label) != "violates"]
        for label in labels
    }
    conflicts = []
    for first, second in combinations(labels, 2):
        if not set(meeting[first]) & set(meeting[second]):
            conflicts.append(
                f"{first} and {second} contradict each other: {first} leaves "
                f"{_names(meeting[first])}, {second} leaves {_names(meeting[second])}"
            )
    if not conflicts:
        conflicts.append("no single strategy meets all the constraints together")
    return tuple(conflicts)


def _fit_of(checks: tuple[ConstraintCheck, ...], label: str) -> Fit:
    return next(c.fit for c in checks if c.constraint == label)


def _summary(ranking: tuple[RankedStrategy, ...], conflicts: tuple[str, ...]) -> str:
    best = ranking[0]
    if best.violations == 0:
        caveats = [c for c in best.checks if c.fit == "partly"]
        text = f"Use {best.strategy.value}: it meets every constraint"
        if caveats:
            text += " (" + "; ".join(f"{c.constraint}: {_clause(c.reason)}" for c in caveats) + ")"
        if ranking[1].violations == 0:
            text += f". Next best: {ranking[1].strategy.value}"
        return text + "."
    broken = [c.constraint for c in best.checks if c.fit == "violates"]
    return (
        f"No strategy meets every constraint: {'; '.join(conflicts)}. Closest: "
        f"{best.strategy.value}, which violates {', '.join(broken)}."
    )


def _clause(sentence: str) -> str:
    """A sentence as a clause: lower-case start, no final full stop."""
    return sentence[:1].lower() + sentence[1:].rstrip(".")


def _names(strategies: list[Strategy]) -> str:
    return ", ".join(s.value for s in strategies) or "none"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _non_negative(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
