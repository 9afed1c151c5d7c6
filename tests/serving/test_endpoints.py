"""Serving endpoints: validated, persisted, audited, and cheap to watch for changes."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    EndpointNotFoundError,
    InvalidInputError,
    InvalidReferenceError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from ferryman.registry import Registry
from ferryman.serving.endpoints import EndpointService


@pytest.fixture
def registry_with_churn(registry: Registry) -> Registry:
    """``churn`` versions 1-3: production -> 2, version 3 archived."""
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    for _ in range(3):
        registry.register(model, name="churn")
    registry.set_alias("churn", "production", 2)
    registry.set_status("churn/3", "archived")
    return registry


@pytest.fixture
def endpoints(registry_with_churn: Registry) -> EndpointService:
    return EndpointService(database=registry_with_churn.database, user="alice")


def test_create_stores_the_configuration_with_documented_defaults(
    endpoints: EndpointService,
) -> None:
    config = endpoints.create("churn", model="churn@production")

    assert endpoints.get("churn") == config
    assert (config.name, config.model, config.created_by) == ("churn", "churn@production", "alice")
    assert (config.max_batch_size, config.max_latency_ms, config.timeout_ms) == (1, 5.0, 10_000.0)
    assert (config.unknown_columns, config.passthrough, config.description) == ("reject", (), "")
    assert config.micro_batching is False
    assert config.created_at == config.updated_at


def test_create_keeps_every_given_setting(endpoints: EndpointService) -> None:
    config = endpoints.create(
        "churn-fast",
        model="churn/2",
        max_batch_size=64,
        max_latency_ms=2.5,
        timeout_ms=500,
        unknown_columns="ignore",
        passthrough=["customer_id", "request_source"],
        description="batched",
    )

    assert endpoints.get("churn-fast").to_dict() == config.to_dict()
    assert config.micro_batching is True
    assert config.passthrough == ("customer_id", "request_source")
    assert (config.max_batch_size, config.timeout_ms, config.unknown_columns) == (
        64,
        500.0,
        "ignore",
    )


def test_to_dict_is_json_safe(endpoints: EndpointService) -> None:
    config = endpoints.create("churn", model="churn", passthrough=["customer_id"])

    data = json.loads(json.dumps(config.to_dict()))

    assert data["passthrough"] == ["customer_id"]
    assert data["created_at"] == config.created_at.isoformat()
    assert data["generation"] == config.generation


def test_get_unknown_endpoint_raises_endpoint_not_found(endpoints: EndpointService) -> None:
    with pytest.raises(EndpointNotFoundError, match=r"No endpoint named 'nope'.*endpoints list"):
        endpoints.get("nope")


def test_find_unknown_endpoint_returns_none(endpoints: EndpointService) -> None:
    assert endpoints.find("nope") is None


def test_list_returns_every_endpoint_sorted_by_name(endpoints: EndpointService) -> None:
    for name in ("b", "c", "a"):
        endpoints.create(name, model="churn")

    assert [c.name for c in endpoints.list()] == ["a", "b", "c"]


def test_duplicate_endpoint_is_rejected(endpoints: EndpointService) -> None:
    endpoints.create("churn", model="churn")

    with pytest.raises(AlreadyExistsError, match="Endpoint 'churn' already exists"):
        endpoints.create("churn", model="churn/1")


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "name-with-space": ({"name": "my endpoint"}, r"Invalid endpoint name 'my endpoint'"),
    "name-empty": ({"name": ""}, r"Invalid endpoint name ''"),
    "batch-size-zero": ({"max_batch_size": 0}, r"max_batch_size 0: expected an integer >= 1"),
    "batch-size-float": ({"max_batch_size": 2.5}, r"max_batch_size 2.5: expected an integer"),
    "batch-size-bool": ({"max_batch_size": True}, r"max_batch_size True: expected an integer"),
    "latency-zero": (
        {"max_latency_ms": 0},
        r"max_latency_ms 0: expected a number of milliseconds > 0",
    ),
    "latency-negative": ({"max_latency_ms": -1.0}, r"max_latency_ms -1.0: expected"),
    "latency-nan": ({"max_latency_ms": math.nan}, r"max_latency_ms nan: expected"),
    "latency-text": ({"max_latency_ms": "5"}, r"max_latency_ms '5': expected"),
    "timeout-infinite": ({"timeout_ms": math.inf}, r"timeout_ms inf: expected"),
    "latency-above-timeout": (
        {"max_latency_ms": 200.0, "timeout_ms": 100.0},
        r"max_latency_ms 200: expected at most timeout_ms \(100\)",
    ),
    "unknown-columns": (
        {"unknown_columns": "drop"},
        r"unknown_columns 'drop': expected one of reject, ignore",
    ),
    "passthrough-string": (
        {"passthrough": "customer_id"},
        r"passthrough 'customer_id': expected a list of column names",
    ),
    "passthrough-empty-name": ({"passthrough": [""]}, r"passthrough column '': expected"),
    "passthrough-duplicate": (
        {"passthrough": ["id", "id"]},
        r"column\(s\) id appear twice",
    ),
}


@pytest.mark.parametrize(("changes", "message"), INVALID.values(), ids=INVALID.keys())
def test_create_rejects_invalid_values_naming_field_value_and_range(
    endpoints: EndpointService, changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"name": "churn", "model": "churn"} | changes

    with pytest.raises(InvalidInputError, match=message):
        endpoints.create(**arguments)
    assert endpoints.list() == []


UNRESOLVABLE: dict[str, tuple[str, type[Exception], str]] = {
    "malformed": ("churn@@x", InvalidReferenceError, r"Invalid model reference 'churn@@x'"),
    "unknown-model": ("fraud", ModelNotFoundError, r"No model named 'fraud'"),
    "unknown-version": ("churn/9", VersionNotFoundError, r"no version 9 \(latest is 3\)"),
    "unknown-alias": ("churn@staging", AliasNotFoundError, r"no alias 'staging'"),
    "archived-version": ("churn/3", InvalidInputError, r"churn/3 is archived"),
}


@pytest.mark.parametrize(
    ("ref", "error", "message"), UNRESOLVABLE.values(), ids=UNRESOLVABLE.keys()
)
def test_create_requires_a_model_reference_that_resolves_now(
    endpoints: EndpointService, ref: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        endpoints.create("churn", model=ref)


def test_model_reference_is_stored_normalised(endpoints: EndpointService) -> None:
    assert endpoints.create("churn", model="  churn/2 ").model == "churn/2"


def test_every_change_moves_the_change_marker_and_stamps_the_endpoint(
    endpoints: EndpointService,
) -> None:
    assert endpoints.change_marker() == 0

    created = endpoints.create("churn", model="churn")
    after_create = endpoints.change_marker()
    updated = endpoints.update("churn", max_batch_size=8)
    after_update = endpoints.change_marker()
    endpoints.delete("churn")
    after_delete = endpoints.change_marker()

    assert (created.generation, updated.generation) == (after_create, after_update)
    assert 0 < after_create < after_update < after_delete


def test_change_marker_moves_for_any_endpoint(endpoints: EndpointService) -> None:
    endpoints.create("a", model="churn")
    endpoints.create("b", model="churn")
    before = endpoints.change_marker()

    endpoints.update("a", description="new")

    assert endpoints.change_marker() > before
    assert endpoints.get("b").generation < endpoints.get("a").generation


def test_update_changes_only_the_given_settings(endpoints: EndpointService) -> None:
    created = endpoints.create("churn", model="churn", passthrough=["id"], timeout_ms=800)

    updated = endpoints.update("churn", model="churn@production", max_batch_size=16)

    assert (updated.model, updated.max_batch_size) == ("churn@production", 16)
    assert (updated.passthrough, updated.timeout_ms) == (("id",), 800.0)
    assert (updated.created_at, updated.created_by) == (created.created_at, "alice")
    assert updated.updated_at > created.updated_at


def test_update_without_an_effective_change_writes_nothing(
    endpoints: EndpointService, registry_with_churn: Registry
) -> None:
    created = endpoints.create("churn", model="churn", max_batch_size=4)
    audit_before = len(registry_with_churn.audit_entries())

    same = endpoints.update("churn", max_batch_size=4, model="churn")

    assert same == created
    assert endpoints.change_marker() == created.generation
    assert len(registry_with_churn.audit_entries()) == audit_before


def test_update_validates_against_the_current_settings(endpoints: EndpointService) -> None:
    endpoints.create("churn", model="churn", timeout_ms=100)

    with pytest.raises(InvalidInputError, match=r"at most timeout_ms \(100\)"):
        endpoints.update("churn", max_latency_ms=150)


def test_update_to_an_unresolvable_model_is_rejected(endpoints: EndpointService) -> None:
    endpoints.create("churn", model="churn")

    with pytest.raises(AliasNotFoundError, match="no alias 'canary'"):
        endpoints.update("churn", model="churn@canary")
    assert endpoints.get("churn").model == "churn"


def test_passthrough_can_be_emptied(endpoints: EndpointService) -> None:
    endpoints.create("churn", model="churn", passthrough=["id"])

    assert endpoints.update("churn", passthrough=[]).passthrough == ()


def test_update_or_delete_of_unknown_endpoint_raises_endpoint_not_found(
    endpoints: EndpointService,
) -> None:
    with pytest.raises(EndpointNotFoundError):
        endpoints.update("nope", max_batch_size=2)
    with pytest.raises(EndpointNotFoundError):
        endpoints.delete("nope")


def test_deleted_endpoint_is_gone_and_its_name_reusable(endpoints: EndpointService) -> None:
    endpoints.create("churn", model="churn")

    endpoints.delete("churn")

    assert endpoints.find("churn") is None
    assert endpoints.create("churn", model="churn/1").model == "churn/1"


def test_every_change_is_audited_with_before_and_after(
    endpoints: EndpointService, registry_with_churn: Registry
) -> None:
    endpoints.create("churn", model="churn")
    endpoints.update("churn", max_batch_size=8)
    endpoints.delete("churn")

    entries = registry_with_churn.audit_entries(entity="endpoint:churn")

    assert [(e.action, e.entity_type, e.actor) for e in entries] == [
        ("endpoint.create", "endpoint", "alice"),
        ("endpoint.update", "endpoint", "alice"),
        ("endpoint.delete", "endpoint", "alice"),
    ]
    assert entries[0].before is None
    assert (entries[1].before["max_batch_size"], entries[1].after["max_batch_size"]) == (1, 8)
    assert entries[2].after is None
    assert registry_with_churn.verify_audit().ok


def test_endpoint_audit_entries_do_not_mix_with_the_model_of_the_same_name(
    endpoints: EndpointService, registry_with_churn: Registry
) -> None:
    endpoints.create("churn", model="churn")

    model_entries = registry_with_churn.audit_entries(entity="churn")

    assert all(e.entity_type != "endpoint" for e in model_entries)


def test_concurrent_creates_get_distinct_generations(endpoints: EndpointService) -> None:
    names = [f"e{i}" for i in range(8)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        configs = list(pool.map(lambda n: endpoints.create(n, model="churn"), names))

    assert sorted(c.generation for c in configs) == list(range(1, 9))
    assert endpoints.change_marker() == 8
