"""The strategy advisor: a table of the five strategies, and a ranked, reasoned choice."""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import InvalidInputError
from ferryman.rollout import advisor
from ferryman.rollout.advisor import BUDGETS, STRATEGY_PROFILES, Advice, advise
from ferryman.rollout.base import Strategy


def _fits(advice: Advice, strategy: Strategy) -> dict[str, str]:
    ranked = next(r for r in advice.ranking if r.strategy is strategy)
    return {c.constraint: c.fit for c in ranked.checks}


def test_docstring_examples_run() -> None:
    result = doctest.testmod(advisor, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_the_table_lists_the_five_strategies_in_reference_order() -> None:
    assert list(STRATEGY_PROFILES) == [
        Strategy.RECREATE,
        Strategy.SHADOW,
        Strategy.CANARY,
        Strategy.AB_TEST,
        Strategy.BLUE_GREEN,
    ]
    assert all(key is profile.strategy for key, profile in STRATEGY_PROFILES.items())


def test_the_table_matches_the_reference_facts() -> None:
    profiles = STRATEGY_PROFILES
    assert [s for s, p in profiles.items() if p.has_downtime] == [Strategy.RECREATE]
    assert [s for s, p in profiles.items() if p.exposure == "none"] == [Strategy.SHADOW]
    assert [s for s, p in profiles.items() if p.measures_outcome] == [Strategy.AB_TEST]
    assert [s for s, p in profiles.items() if not p.automated_rollback] == [Strategy.RECREATE]
    assert profiles[Strategy.BLUE_GREEN].cost == "high"
    assert profiles[Strategy.RECREATE].cost == "none"


def test_zero_downtime_low_budget_testing_and_automatic_rollback_recommend_canary() -> None:
    advice = advise(
        max_downtime_seconds=0, budget="low", need_production_testing=True, automated_rollback=True
    )

    assert advice.recommended is Strategy.CANARY
    assert [r.strategy for r in advice.ranking] == [
        Strategy.CANARY,
        Strategy.AB_TEST,
        Strategy.SHADOW,
        Strategy.BLUE_GREEN,
        Strategy.RECREATE,
    ]
    assert _fits(advice, Strategy.RECREATE) == {
        "budget low": "meets",
        "max downtime 0s": "violates",
        "production testing": "violates",
        "automated rollback": "violates",
        "no human in the loop": "meets",
    }
    assert advice.conflicts == ()


def test_measuring_a_business_outcome_recommends_the_ab_test() -> None:
    advice = advise(measure_business_outcome=True)

    assert advice.recommended is Strategy.AB_TEST
    assert _fits(advice, Strategy.CANARY)["business outcome"] == "violates"


def test_no_constraint_recommends_the_cheapest_simplest_strategy() -> None:
    assert advise().recommended is Strategy.RECREATE


def test_zero_exposure_with_production_testing_recommends_shadow() -> None:
    advice = advise(max_exposure=0, need_production_testing=True, budget="medium")

    assert advice.recommended is Strategy.SHADOW
    assert "no human in the loop" in advice.summary  # shadow's caveat is stated


def test_a_high_budget_lets_blue_green_meet_the_budget() -> None:
    assert _fits(advise(budget="high"), Strategy.BLUE_GREEN)["budget high"] == "meets"
    assert _fits(advise(budget="medium"), Strategy.BLUE_GREEN)["budget medium"] == "violates"


def test_human_review_rules_out_recreate_and_no_review_leaves_caveats() -> None:
    with_review = advise(human_review=True)
    without = advise(human_review=False)

    assert _fits(with_review, Strategy.RECREATE)["human review"] == "violates"
    assert _fits(with_review, Strategy.AB_TEST)["human review"] == "meets"
    assert _fits(without, Strategy.AB_TEST)["no human in the loop"] == "partly"
    assert _fits(without, Strategy.CANARY)["no human in the loop"] == "meets"


@pytest.mark.parametrize(
    ("max_downtime", "load", "fit"),
    [
        (0.0, None, "violates"),
        (30.0, None, "partly"),
        (30.0, 10.0, "meets"),
        (30.0, 60.0, "violates"),
    ],
    ids=["zero", "unknown-load", "load-fits", "load-too-long"],
)
def test_recreate_downtime_is_judged_against_the_load_time(
    max_downtime: float, load: float | None, fit: str
) -> None:
    advice = advise(max_downtime_seconds=max_downtime, load_seconds=load)

    assert _fits(advice, Strategy.RECREATE)[f"max downtime {max_downtime:g}s"] == fit


def test_outcome_measurement_without_exposure_is_explained_as_a_conflict() -> None:
    advice = advise(measure_business_outcome=True, max_exposure=0)

    assert advice.recommended is None
    assert advice.conflicts == (
        "max exposure 0% and business outcome contradict each other: max exposure 0% leaves "
        "shadow, business outcome leaves ab-test",
    )
    assert advice.summary.startswith("No strategy meets every constraint")
    assert advice.ranking[0].violations == 1


def test_zero_exposure_on_a_low_budget_conflicts_because_shadow_costs_compute() -> None:
    advice = advise(max_exposure=0, budget="low")

    assert advice.recommended is None
    assert any(c.startswith("budget low and max exposure 0%") for c in advice.conflicts)


def test_advice_serializes_to_json() -> None:
    data = json.loads(json.dumps(advise(budget="low", automated_rollback=True).to_dict()))

    assert data["recommended"] == "canary"
    assert data["ranking"][0]["checks"][0]["constraint"] == "budget low"
    assert data["constraints"]["budget"] == "low"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"budget": "huge"}, "Unknown budget 'huge'. Available: low, medium, high."),
        ({"max_downtime_seconds": -1}, "max_downtime_seconds must be a number >= 0 seconds"),
        ({"load_seconds": float("nan")}, "load_seconds must be a number >= 0 seconds"),
        ({"max_exposure": 1.5}, r"max_exposure must be a share in \[0, 1\], got 1.5"),
    ],
    ids=["budget", "downtime", "load", "exposure"],
)
def test_advise_rejects_bad_constraints(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        advise(**arguments)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    max_downtime=st.none() | st.sampled_from([0.0, 5.0, 600.0]),
    budget=st.sampled_from(BUDGETS),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    max_exposure=st.none() | st.sampled_from([0.0, 0.05, 1.0]),
    load=st.none() | st.sampled_from([1.0, 60.0]),
)
def test_advice_ranks_every_strategy_once_and_is_deterministic(
    max_downtime: float | None,
    budget: advisor.Budget,
    flags: tuple[bool, bool, bool, bool],
    max_exposure: float | None,
    load: float | None,
) -> None:
    arguments = {
        "max_downtime_seconds": max_downtime,
        "budget": budget,
        "need_production_testing": flags[0],
        "automated_rollback": flags[1],
        "measure_business_outcome": flags[2],
        "human_review": flags[3],
        "max_exposure": max_exposure,
        "load_seconds": load,
    }
    advice = advise(**arguments)  # type: ignore[arg-type]

    assert advice == advise(**arguments)  # type: ignore[arg-type]
    assert sorted(r.strategy for r in advice.ranking) == sorted(STRATEGY_PROFILES)
    assert [r.rank for r in advice.ranking] == [1, 2, 3, 4, 5]
    violations = [r.violations for r in advice.ranking]
    assert violations == sorted(violations)
    assert (advice.recommended is None) == (violations[0] > 0) == bool(advice.conflicts)
