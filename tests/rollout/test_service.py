"""Rollouts as persisted state machines, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.errors import (
    EndpointNotFoundError,
    InvalidInputError,
    InvalidTransitionError,
    RolloutNotFoundError,
)
from ferryman.registry import Registry
from ferryman.rollout.base import Phase, RolloutOptions, RoutingKey, Strategy
from ferryman.rollout.service import RolloutService
from ferryman.serving import EndpointService
from ferryman.store.leases import Lease


@pytest.fixture
def service(registry: Registry) -> RolloutService:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] > 0).astype(int)
    for c in (1.0, 0.5, 0.1):
        registry.register(LogisticRegression(C=c).fit(X, y), name="churn", X=X, y=y)
    registry.set_alias("churn", "production", 1)
    EndpointService(database=registry.database, user="alice").create(
        "churn", model="churn@production"
    )
    return RolloutService(registry=registry, user="alice")


def test_start_records_stable_candidate_and_first_step(service: RolloutService) -> None:
    rollout = service.start("churn", "churn/2", strategy="canary")
    assert (rollout.stable, rollout.candidate, rollout.alias) == (
        "churn/1",
        "churn/2",
        "production",
    )
    assert (rollout.phase, rollout.stage, rollout.weight) == (Phase.RUNNING, "step", 10.0)
    assert [e.kind for e in service.events(rollout.id)] == ["started"]


@pytest.mark.parametrize(
    ("strategy", "stage", "weight", "mirror"),
    [
        (Strategy.RECREATE, "replacing", 100.0, 0.0),
        (Strategy.BLUE_GREEN, "preview", 0.0, 0.0),
        (Strategy.CANARY, "step", 10.0, 0.0),
        (Strategy.SHADOW, "mirroring", 0.0, 0.5),
        (Strategy.AB_TEST, "experiment", 25.0, 0.0),
    ],
    ids=lambda v: str(v),
)
def test_each_strategy_starts_in_its_first_stage(
    service: RolloutService, strategy: Strategy, stage: str, weight: float, mirror: float
) -> None:
    options = RolloutOptions(
        sample=0.5, weights=(75.0, 25.0), key=RoutingKey.parse("header:X-User-Id")
    )
    rollout = service.start("churn", "churn/2", strategy=strategy, options=options)
    assert (rollout.stage, rollout.weight, rollout.mirror) == (stage, weight, mirror)


def test_a_second_active_rollout_is_refused(service: RolloutService) -> None:
    service.start("churn", "churn/2", strategy="canary")
    with pytest.raises(InvalidTransitionError, match="already has an active canary rollout"):
        service.start("churn", "churn/3", strategy="canary")


def test_deploying_the_served_version_is_refused(service: RolloutService) -> None:
    with pytest.raises(InvalidTransitionError, match="already serves churn/1"):
        service.start("churn", "churn@production", strategy="canary")


def test_unknown_endpoint_and_bad_options_are_refused(service: RolloutService) -> None:
    with pytest.raises(EndpointNotFoundError, match="No endpoint named 'nope'"):
        service.start("nope", "churn/2", strategy="canary")
    with pytest.raises(InvalidInputError, match="Unknown strategy 'canry'"):
        service.start("churn", "churn/2", strategy="canry")
    with pytest.raises(InvalidInputError, match="Invalid steps"):
        service.start("churn", "churn/2", strategy="canary", options=RolloutOptions(steps=(50, 10)))
    with pytest.raises(InvalidInputError, match="A/B test needs a routing key"):
        service.start("churn", "churn/2", strategy="ab-test")
    assert service.find_active("churn") is None


def test_finish_moves_the_alias_to_the_candidate(
    service: RolloutService, registry: Registry
) -> None:
    rollout = service.start("churn", "churn/3", strategy="canary")
    finished = service.finish(rollout, actor="controller", message="all steps passed")
    assert finished.phase is Phase.SUCCEEDED
    assert finished.finished_at is not None
    assert registry.get_version("churn@production").version == 3
    assert service.find_active("churn") is None


def test_rollback_of_an_active_rollout_leaves_the_alias_on_stable(
    service: RolloutService, registry: Registry
) -> None:
    service.start("churn", "churn/2", strategy="canary")
    rolled = service.rollback("churn", reason="error rate", actor="gate: error_rate < 0.01")
    assert (rolled.phase, rolled.weight) == (Phase.ROLLED_BACK, 0.0)
    assert registry.get_version("churn@production").version == 1
    last = service.events(rolled.id)[-1]
    assert (last.kind, last.actor) == ("rolled-back", "gate: error_rate < 0.01")
    assert "error rate" in last.message


def test_rollback_after_success_moves_the_alias_back(
    service: RolloutService, registry: Registry
) -> None:
    rollout = service.start("churn", "churn/2", strategy="canary")
    service.finish(rollout, actor="controller", message="done")
    service.rollback("churn")
    assert registry.get_version("churn@production").version == 1
    with pytest.raises(InvalidTransitionError, match="already serves churn/1"):
        service.rollback("churn")


def test_finish_pins_an_endpoint_that_names_a_version(
    service: RolloutService, registry: Registry
) -> None:
    endpoints = EndpointService(database=registry.database, user="alice")
    endpoints.update("churn", model="churn/1")
    rollout = service.start("churn", "churn/3", strategy="recreate")
    assert rollout.alias is None
    service.finish(rollout, actor="controller", message="replaced")
    assert endpoints.get("churn").model == "churn/3"


def test_pause_resume_and_abort(service: RolloutService) -> None:
    service.start("churn", "churn/2", strategy="canary")
    assert service.pause("churn").phase is Phase.PAUSED
    with pytest.raises(InvalidTransitionError, match="is paused; resume it first"):
        service.promote("churn")
    assert service.resume("churn").phase is Phase.RUNNING
    with pytest.raises(
        InvalidTransitionError, match="is running, not paused; it cannot be resumed"
    ):
        service.resume("churn")
    aborted = service.abort("churn", reason="changed my mind")
    assert (aborted.phase, aborted.weight) == (Phase.ABORTED, 0.0)
    with pytest.raises(RolloutNotFoundError, match="has no active rollout"):
        service.pause("churn")


def test_promote_walks_a_canary_through_its_steps_to_the_finish(
    service: RolloutService, registry: Registry
) -> None:
    service.start(
        "churn", "churn/2", strategy="canary", options=RolloutOptions(steps=(10, 50, 100))
    )
    assert service.promote("churn").weight == 50.0
    finished = service.promote("churn")
    assert finished.phase is Phase.SUCCEEDED
    assert registry.get_version("churn@production").version == 2
    kinds = [e.kind for e in service.events(finished.id)]
    assert kinds == ["started", "promoted", "succeeded"]


def test_promote_switches_blue_green_then_unloads_blue(service: RolloutService) -> None:
    service.start("churn", "churn/2", strategy="blue-green")
    switched = service.promote("churn")
    assert (switched.stage, switched.weight, switched.phase) == ("keeping", 100.0, Phase.RUNNING)
    assert service.promote("churn").phase is Phase.SUCCEEDED


def test_shadow_promotes_into_a_canary_when_configured(service: RolloutService) -> None:
    service.start("churn", "churn/2", strategy="shadow", options=RolloutOptions(then="canary"))
    canary = service.promote("churn")
    assert (canary.strategy, canary.weight, canary.mirror) == (Strategy.CANARY, 10.0, 0.0)


def test_every_transition_is_audited_and_bumps_the_serving_counter(
    service: RolloutService, registry: Registry
) -> None:
    endpoints = EndpointService(database=registry.database, user="alice")
    before = endpoints.change_marker()
    service.start("churn", "churn/2", strategy="canary")
    service.pause("churn")
    assert endpoints.change_marker() == before + 2
    actions = [e.action for e in registry.audit_entries(entity="endpoint:churn")]
    assert actions[-2:] == ["rollout.started", "rollout.paused"]
    assert registry.verify_audit().ok


def test_history_lists_newest_first(service: RolloutService) -> None:
    service.start("churn", "churn/2", strategy="canary")
    service.abort("churn")
    service.start("churn", "churn/3", strategy="shadow")
    assert [r.candidate for r in service.history("churn")] == ["churn/3", "churn/2"]
    assert list(service.views()) == ["churn"]


def test_a_lease_has_one_holder_until_it_expires(registry: Registry) -> None:
    from datetime import timedelta

    from ferryman.store._tables import utcnow

    now = utcnow()
    first = Lease(database=registry.database, name="leader", holder="a", ttl_seconds=5)
    second = Lease(database=registry.database, name="leader", holder="b", ttl_seconds=5)
    assert first.acquire(now)
    assert not second.acquire(now + timedelta(seconds=1))
    assert first.acquire(now + timedelta(seconds=2))  # renewal
    assert second.acquire(now + timedelta(seconds=8))  # expired: taken over
    assert first.holder_now(now + timedelta(seconds=9)) == "b"
    second.release()
    assert first.holder_now(now + timedelta(seconds=9)) is None
