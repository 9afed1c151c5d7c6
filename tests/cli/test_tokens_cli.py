"""The ``ferryman tokens`` commands, run in process."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ferryman.cli import main
from ferryman.config import Settings
from ferryman.security import Principal, Role, TokenService
from ferryman.store import Database

TOKEN = re.compile(r"fm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_USER", "alice")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["tokens", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def service(cli: Any) -> Iterator[TokenService]:
    """A token service on the CLI's database, as a server would use it."""
    database = Database(url=Settings().resolved_database_url)
    yield TokenService(database=database, user="server")
    database.close()


def _json(cli: Any, *args: str) -> Any:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_create_prints_the_token_once_and_it_authenticates(cli: Any, service: TokenService) -> None:
    code, out, err = cli("create", "ci", "--role", "deployer", "--endpoint", "churn")

    printed = TOKEN.findall(out)
    assert code == 0
    assert "not be shown again" in err
    assert len(printed) == 1
    assert service.authenticate(printed[0]) == Principal("ci", Role.DEPLOYER, frozenset({"churn"}))


def test_create_with_json_includes_the_token_and_list_never_does(cli: Any) -> None:
    created = _json(cli, "create", "ci", "--role", "viewer")
    _, table, _ = cli("list")

    listed = _json(cli, "list")

    assert TOKEN.fullmatch(created["token"])
    assert created["token"] not in json.dumps(listed)
    assert created["token"].split("_", 2)[2] not in table
    assert [(t["name"], t["role"], t["status"]) for t in listed] == [("ci", "viewer", "active")]


def test_expires_in_sets_the_expiry(cli: Any) -> None:
    created = _json(cli, "create", "ci", "--role", "viewer", "--expires-in", "30d")

    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )

    assert lifetime == timedelta(days=30)


def test_revoke_marks_the_token_revoked(cli: Any, service: TokenService) -> None:
    token = _json(cli, "create", "ci", "--role", "predictor")["token"]

    revoked = _json(cli, "revoke", "ci")

    assert revoked["status"] == "revoked"
    assert [t["status"] for t in _json(cli, "list")] == ["revoked"]
    assert service.authenticate(token) is None


ERRORS = {
    "unknown-role": (
        ("create", "ci", "--role", "root"),
        "Unknown role 'root'. Available: admin, deployer, predictor, viewer",
    ),
    "bad-lifetime-unit": (
        ("create", "ci", "--role", "viewer", "--expires-in", "30x"),
        "invalid --expires-in '30x'",
    ),
    "zero-lifetime": (
        ("create", "ci", "--role", "viewer", "--expires-in", "0d"),
        "invalid --expires-in '0d'",
    ),
    "endless-lifetime": (
        ("create", "ci", "--role", "viewer", "--expires-in", "99999999999w"),
        "too long",
    ),
    "revoke-unknown": (("revoke", "nope"), "No API token named 'nope'"),
    "missing-role": (("create", "ci"), "Missing option '--role'"),
}


@pytest.mark.parametrize(("args", "message"), ERRORS.values(), ids=ERRORS.keys())
def test_errors_exit_2_with_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli(*args)

    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""
