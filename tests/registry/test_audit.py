"""The audit chain detects edited and deleted entries and names them."""

from __future__ import annotations

from sqlalchemy import text

from ferryman.registry import Registry


def _five_entries(registry: Registry) -> None:
    for name in ("a", "b", "c", "d", "e"):
        registry.create_model(name)


def _sql(registry: Registry, statement: str) -> None:
    with registry.database.engine.begin() as conn:
        conn.execute(text(statement))


def test_untouched_chain_verifies(registry: Registry) -> None:
    _five_entries(registry)
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.head_seq) == (True, 5, 5)


def test_edited_entry_is_named(registry: Registry) -> None:
    _five_entries(registry)
    _sql(registry, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    report = registry.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited")]
    assert "entry 3 was edited" in report.problems[0].message


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(registry: Registry) -> None:
    _five_entries(registry)
    _sql(
        registry,
        "UPDATE audit_log SET hash = CASE WHEN substr(hash, 1, 1) = '0' THEN '1' ELSE '0' END "
        "|| substr(hash, 2) WHERE seq = 2",
    )
    report = registry.verify_audit()
    assert {(p.seq, p.kind) for p in report.problems} == {(2, "edited"), (3, "broken-link")}


def test_deleted_middle_entry_is_named(registry: Registry) -> None:
    _five_entries(registry)
    _sql(registry, "DELETE FROM audit_log WHERE seq = 2")
    report = registry.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "deleted")]
    assert "entry 2 deleted" in report.problems[0].message


def test_deleted_newest_entries_are_named(registry: Registry) -> None:
    _five_entries(registry)
    _sql(registry, "DELETE FROM audit_log WHERE seq >= 4")
    report = registry.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "deleted")]
    assert "entries 4-5 deleted from the end" in report.problems[0].message


def test_audit_list_filters_by_entity_and_limits_to_newest(registry: Registry) -> None:
    _five_entries(registry)
    assert [e.entity for e in registry.audit_entries(limit=2)] == ["d", "e"]
    assert [e.entity for e in registry.audit_entries(entity="c")] == ["c"]
