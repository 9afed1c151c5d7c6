"""Routing: a pure, deterministic function of the key and the weights."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferryman.rollout.router import Router, bucket


@pytest.mark.parametrize("weight", [2.0, 10.0, 25.0, 50.0, 90.0])
def test_canary_routes_configured_fraction_to_candidate(weight: float) -> None:
    router = Router(weight=weight, salt="rollout-7")
    share = sum(router.routes_to_candidate(f"request-{i}") for i in range(10_000)) / 100
    assert abs(share - weight) <= 2.0


def test_raising_the_weight_keeps_every_key_already_on_the_candidate() -> None:
    small, large = Router(weight=10.0, salt="s"), Router(weight=25.0, salt="s")
    keys = [f"user-{i}" for i in range(5_000)]
    assert all(large.routes_to_candidate(k) for k in keys if small.routes_to_candidate(k))


def test_different_salts_split_users_differently() -> None:
    keys = [f"user-{i}" for i in range(2_000)]
    first = {k for k in keys if Router(weight=50.0, salt="a").routes_to_candidate(k)}
    second = {k for k in keys if Router(weight=50.0, salt="b").routes_to_candidate(k)}
    assert first != second


def test_zero_and_full_weights_route_everything_one_way() -> None:
    assert not any(Router(weight=0.0, salt="s").routes_to_candidate(str(i)) for i in range(100))
    assert all(Router(weight=100.0, salt="s").routes_to_candidate(str(i)) for i in range(100))


def test_mirroring_samples_the_configured_share_independently_of_routing() -> None:
    router = Router(weight=0.0, salt="s", mirror=0.3)
    share = sum(router.mirrors(f"r-{i}") for i in range(10_000)) / 10_000
    assert abs(share - 0.3) <= 0.02


@pytest.mark.parametrize(("weight", "mirror"), [(-1.0, 0.0), (101.0, 0.0), (10.0, 1.5)])
def test_out_of_range_weights_are_refused(weight: float, mirror: float) -> None:
    with pytest.raises(ValueError, match="is not a"):
        Router(weight=weight, salt="s", mirror=mirror)


@given(key=st.text(max_size=40), salt=st.text(min_size=1, max_size=20))
def test_the_same_key_always_gets_the_same_bucket(key: str, salt: str) -> None:
    assert bucket(salt, key) == bucket(salt, key)
    assert 0 <= bucket(salt, key) < 10_000


@given(key=st.text(max_size=40), weight=st.floats(0, 100))
def test_routing_is_monotone_in_the_weight(key: str, weight: float) -> None:
    if Router(weight=weight, salt="s").routes_to_candidate(key):
        assert Router(weight=min(100.0, weight + 5), salt="s").routes_to_candidate(key)
