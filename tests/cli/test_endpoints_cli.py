"""The ``ferryman endpoints`` commands, run in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.cli import main
from ferryman.config import Settings
from ferryman.registry import Registry


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_USER", "alice")
    with Registry.from_settings(Settings()) as registry:
        registry.register(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="churn")
        registry.set_alias("churn", "production", 1)
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["endpoints", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _json(cli: Any, *args: str) -> Any:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_create_then_show_returns_the_stored_configuration(cli: Any) -> None:
    created = _json(
        cli,
        "create",
        "churn",
        "--model",
        "churn@production",
        "--max-batch-size",
        "32",
        "--max-latency-ms",
        "2",
        "--timeout-ms",
        "500",
        "--unknown-columns",
        "ignore",
        "--passthrough",
        "customer_id",
        "--passthrough",
        "region",
        "--description",
        "churn scores",
    )

    assert _json(cli, "show", "churn") == created
    assert {k: created[k] for k in ("model", "max_batch_size", "timeout_ms", "passthrough")} == {
        "model": "churn@production",
        "max_batch_size": 32,
        "timeout_ms": 500.0,
        "passthrough": ["customer_id", "region"],
    }
    assert (created["unknown_columns"], created["created_by"]) == ("ignore", "alice")


def test_create_prints_a_one_line_summary(cli: Any) -> None:
    code, out, _ = cli("create", "churn", "--model", "churn")

    assert code == 0
    assert out.strip() == "Created endpoint churn serving churn"


def test_list_shows_every_endpoint(cli: Any) -> None:
    cli("create", "churn", "--model", "churn")
    cli("create", "churn-batched", "--model", "churn/1", "--max-batch-size", "8")

    code, out, _ = cli("list")

    assert code == 0
    assert "churn-batched" in out
    assert [e["name"] for e in _json(cli, "list")] == ["churn", "churn-batched"]


def test_update_changes_only_the_given_options(cli: Any) -> None:
    cli("create", "churn", "--model", "churn", "--passthrough", "id")

    updated = _json(cli, "update", "churn", "--max-batch-size", "16", "--model", "churn/1")

    assert (updated["max_batch_size"], updated["model"], updated["passthrough"]) == (
        16,
        "churn/1",
        ["id"],
    )


def test_update_can_clear_the_passthrough_columns(cli: Any) -> None:
    cli("create", "churn", "--model", "churn", "--passthrough", "id")

    assert _json(cli, "update", "churn", "--clear-passthrough")["passthrough"] == []


def test_update_without_options_exits_2(cli: Any) -> None:
    cli("create", "churn", "--model", "churn")

    code, _, err = cli("update", "churn")

    assert code == 2
    assert "nothing to change" in err


def test_delete_removes_the_endpoint(cli: Any) -> None:
    cli("create", "churn", "--model", "churn")

    assert _json(cli, "delete", "churn") == {"name": "churn", "deleted": True}
    assert _json(cli, "list") == []


ERRORS = {
    "batch-size-zero": (
        ("create", "churn", "--model", "churn", "--max-batch-size", "0"),
        "Invalid max_batch_size 0: expected an integer >= 1",
    ),
    "unknown-columns": (
        ("create", "churn", "--model", "churn", "--unknown-columns", "drop"),
        "Invalid unknown_columns 'drop': expected one of reject, ignore",
    ),
    "unknown-model": (("create", "churn", "--model", "fraud"), "No model named 'fraud'"),
    "unknown-alias": (("create", "churn", "--model", "churn@staging"), "no alias 'staging'"),
    "show-unknown": (("show", "nope"), "No endpoint named 'nope'"),
    "delete-unknown": (("delete", "nope"), "No endpoint named 'nope'"),
    "missing-model": (("create", "churn"), "Missing option '--model'"),
}


@pytest.mark.parametrize(("args", "message"), ERRORS.values(), ids=ERRORS.keys())
def test_errors_exit_2_with_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli(*args)

    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""
