"""The registry's behaviour, on SQLite and on real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from ferryman.errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    ArtifactIntegrityError,
    InvalidInputError,
    InvalidReferenceError,
    InvalidTransitionError,
    ModelNotFoundError,
    SchemaValidationError,
    UnsupportedModelError,
    VersionNotFoundError,
)
from ferryman.registry import Registry, VersionStatus

Data = tuple[pd.DataFrame, "pd.Series[Any]"]


def _register(registry: Registry, classifier: Pipeline, cancer: Data, **kw: Any) -> Any:
    X, y = cancer
    return registry.register(classifier, name=kw.pop("name", "churn"), X=X, y=y, **kw)


def _as(registry: Registry, user: str) -> Registry:
    return registry.acting_as(user)


def test_versions_are_numbered_from_one_per_model(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    numbers = [_register(registry, classifier, cancer).version for _ in range(3)]
    other = _register(registry, classifier, cancer, name="fraud").version
    assert (numbers, other) == ([1, 2, 3], 1)


def test_register_records_signature_profile_metrics_and_lineage(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    info = _register(
        registry,
        classifier,
        cancer,
        metrics={"accuracy": 0.97},
        params={"C": 1.0},
        tags={"team": "risk"},
        description="first",
    )
    stored = registry.get_version("churn/1")
    assert stored.flavor == "sklearn"
    assert stored.signature is not None and len(stored.signature["columns"]) == 30
    assert stored.profile is not None
    assert stored.metrics == {"accuracy": 0.97} and stored.params == {"C": 1.0}
    assert stored.lineage["data"]["rows"] == len(cancer[0])
    assert stored.status is VersionStatus.REGISTERED
    assert stored.created_by == "alice" and stored == info


def test_second_version_records_the_first_as_parent(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    second = _register(registry, classifier, cancer)
    assert second.lineage["parent_version"] == 1


def test_loaded_version_predicts_like_the_original(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    model = registry.load("churn")
    X = cancer[0].head(50)
    np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), classifier.predict_proba(X))


def test_loaded_version_rejects_input_that_breaks_its_signature(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    bad = cancer[0].head(3).astype(object)
    bad.iloc[2, 0] = "large"
    with pytest.raises(SchemaValidationError, match="row 2") as info:
        registry.load("churn/1").predict(bad)
    assert info.value.column == "mean radius"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("churn", 3), ("churn/2", 2), ("churn@production", 1)],
    ids=["latest", "number", "alias"],
)
def test_every_reference_form_resolves(
    registry: Registry, classifier: Pipeline, cancer: Data, ref: str, expected: int
) -> None:
    for _ in range(3):
        _register(registry, classifier, cancer)
    registry.set_alias("churn", "production", 1)
    assert registry.get_version(ref).version == expected


def test_latest_skips_archived_versions(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    _register(registry, classifier, cancer)
    registry.set_status("churn/2", "archived")
    assert registry.get_version("churn").version == 1


@pytest.mark.parametrize("ref", ["", "churn/", "churn/0", "churn@", "a b", "churn@1x/2"])
def test_malformed_references_are_refused_with_the_accepted_forms(
    registry: Registry, ref: str
) -> None:
    with pytest.raises(InvalidReferenceError, match="Invalid model reference"):
        registry.get_version(ref)


def test_unknown_model_version_and_alias_each_name_what_is_missing(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    with pytest.raises(ModelNotFoundError, match="'nope'"):
        registry.get_version("nope")
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        registry.get_version("churn/9")
    with pytest.raises(AliasNotFoundError, match="no alias 'prod'"):
        registry.get_version("churn@prod")


def test_alias_history_answers_where_an_alias_pointed_at_a_past_time(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    for _ in range(3):
        _register(registry, classifier, cancer)
    first = registry.set_alias("churn", "production", 1)
    second = registry.set_alias("churn", "production", 3)
    history = registry.alias_history("churn", "production")
    assert [(e.previous_version, e.version) for e in history] == [(None, 1), (1, 3)]
    assert registry.get_version("churn@production", at=first.at).version == 1
    assert registry.get_version("churn@production", at=second.at).version == 3
    with pytest.raises(AliasNotFoundError, match="did not point"):
        registry.get_version("churn@production", at=first.at - timedelta(seconds=1))


def test_deleted_alias_stays_in_history_and_stops_resolving(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    set_event = registry.set_alias("churn", "staging", 1)
    registry.delete_alias("churn", "staging")
    with pytest.raises(AliasNotFoundError):
        registry.get_version("churn@staging")
    assert registry.get_version("churn@staging", at=set_event.at).version == 1
    assert [e.version for e in registry.alias_history("churn", "staging")] == [1, None]


def test_approval_must_come_from_someone_other_than_the_author(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    with pytest.raises(InvalidTransitionError, match="someone else"):
        registry.set_status("churn/1", "approved")
    approved = _as(registry, "bob").set_status("churn/1", "approved", comment="looks good")
    assert (approved.status, approved.status_by) == (VersionStatus.APPROVED, "bob")


def test_a_version_behind_an_alias_cannot_be_archived(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    registry.set_alias("churn", "production", 1)
    with pytest.raises(InvalidTransitionError, match="production"):
        registry.set_status("churn/1", "archived")


def test_archived_versions_cannot_change_status_or_take_an_alias(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    registry.set_status("churn/1", "archived")
    with pytest.raises(InvalidTransitionError, match="archived"):
        _as(registry, "bob").set_status("churn/1", "approved")
    with pytest.raises(InvalidTransitionError, match="archived"):
        registry.set_alias("churn", "production", 1)


def test_unknown_status_lists_the_valid_ones(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="Available: registered, approved"):
        registry.search_versions(status="done")


def test_search_filters_by_tag_status_alias_and_metric(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer, metrics={"auc": 0.90}, tags={"stage": "a"})
    _register(registry, classifier, cancer, metrics={"auc": 0.95}, tags={"stage": "b"})
    _register(registry, classifier, cancer, metrics={"auc": 0.99}, tags={"stage": "b"})
    registry.set_alias("churn", "production", 2)
    _as(registry, "bob").set_status("churn/3", "approved")

    def numbers(**kw: Any) -> list[int]:
        return [v.version for v in registry.search_versions(name="churn", **kw)]

    assert numbers(tags={"stage": "b"}) == [2, 3]
    assert numbers(status="approved") == [3]
    assert numbers(alias="production") == [2]
    assert numbers(metrics=["auc>=0.95"]) == [2, 3]
    assert numbers(metrics=["auc>0.91", "auc<0.99"]) == [2]


def test_malformed_metric_condition_explains_the_syntax(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="NAME OP NUMBER"):
        registry.search_versions(metrics=["auc is high"])


def test_models_are_listed_with_aliases_and_filtered_by_tag(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    registry.create_model("fraud", owner_team="risk", tags={"domain": "payments"})
    _register(registry, classifier, cancer)
    registry.set_alias("churn", "production", 1)
    assert [m.name for m in registry.list_models()] == ["churn", "fraud"]
    assert [m.name for m in registry.list_models(tags={"domain": "payments"})] == ["fraud"]
    assert registry.get_model("churn").aliases == {"production": 1}


def test_duplicate_model_name_is_refused(registry: Registry) -> None:
    registry.create_model("fraud")
    with pytest.raises(AlreadyExistsError, match="'fraud' already exists"):
        registry.create_model("fraud")


@pytest.mark.parametrize("name", ["", "-x", "a/b", "x" * 201, "na me"])
def test_invalid_model_names_are_refused(registry: Registry, name: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid model name"):
        registry.create_model(name)


def test_unsupported_object_lists_flavors_and_stores_nothing(registry: Registry) -> None:
    with pytest.raises(UnsupportedModelError, match="sklearn"):
        registry.register(object(), name="churn")
    assert registry.find_model("churn") is None
    assert registry.audit_entries() == []


def test_mismatched_X_and_y_lengths_are_refused_naming_both(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    X, y = cancer
    with pytest.raises(InvalidInputError, match=r"569 rows, y has 10"):
        registry.register(classifier, name="churn", X=X, y=y[:10])
    assert registry.find_model("churn") is None


def test_empty_training_set_is_refused(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        registry.register(classifier, name="churn", X=cancer[0].head(0), y=cancer[1].head(0))


@pytest.mark.parametrize("value", [float("nan"), "high", True])
def test_non_numeric_or_non_finite_metrics_are_refused(
    registry: Registry, classifier: Pipeline, cancer: Data, value: object
) -> None:
    with pytest.raises(InvalidInputError, match="Metric 'auc'"):
        _register(registry, classifier, cancer, metrics={"auc": value})


def test_tampered_artifact_is_refused_naming_version_and_hashes(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    info = _register(registry, classifier, cancer)
    blob = next(Path(registry.artifacts.uri).rglob(info.artifact_sha256[2:]))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="'churn' version 1") as err:
        registry.load("churn/1")
    assert info.artifact_sha256 in str(err.value)


def test_editable_metadata_changes_and_is_audited(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    info = _register(registry, classifier, cancer, tags={"a": "1"})
    updated = registry.update_version(
        "churn/1", description="better words", tags={"a": None, "b": "2"}, card="# Churn model"
    )
    assert (updated.description, updated.tags, updated.card) == (
        "better words",
        {"b": "2"},
        "# Churn model",
    )
    assert updated.artifact_sha256 == info.artifact_sha256
    assert registry.audit_entries(entity="churn/1")[-1].action == "version.update"


def test_every_change_is_audited_with_actor_and_before_after(
    registry: Registry, classifier: Pipeline, cancer: Data
) -> None:
    _register(registry, classifier, cancer)
    registry.set_alias("churn", "production", 1)
    _as(registry, "bob").set_status("churn/1", "approved")
    entries = registry.audit_entries()
    assert [(e.action, e.actor, e.entity) for e in entries] == [
        ("model.create", "alice", "churn"),
        ("version.register", "alice", "churn/1"),
        ("alias.set", "alice", "churn@production"),
        ("version.approve", "bob", "churn/1"),
    ]
    assert (entries[3].before, entries[3].after) == (
        {"status": "registered"},
        {"status": "approved", "comment": None},
    )
    assert registry.verify_audit().ok
