"""``ferryman logs …``, ``ferryman performance`` and ``ferryman review`` on a local Typer app."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer

from ferryman.capture import CaptureWriter, EndpointCapture, PrivacyPolicy
from ferryman.cli import logs as logs_cli
from tests.capture.conftest import Clock, submit_one

Runner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FERRYMAN_HOME", str(home))
    monkeypatch.setenv("FERRYMAN_USER", "carol")
    monkeypatch.setenv("FERRYMAN_SECRET_KEY", "cli-secret")
    return home


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Runner:
    root = typer.Typer()
    root.add_typer(logs_cli.app, name="logs")
    root.command("performance")(logs_cli.performance)
    root.command("review")(logs_cli.review)

    def run(*args: str) -> tuple[int, str, str]:
        result = root(args=list(args), prog_name="ferryman", standalone_mode=False)
        out, err = capsys.readouterr()
        return (result if isinstance(result, int) else 0), out, err

    return run


@pytest.fixture
def recorded(home: Path) -> None:
    """Records stamped now, so the default windows of the commands include them."""
    clock = Clock(datetime.now(UTC))
    writer = CaptureWriter(root=home / "logs", secret=b"cli-secret", clock=clock)
    writer.configure(
        "churn", EndpointCapture(privacy=PrivacyPolicy.from_mapping({"user_id": "hash"}))
    )
    submit_one(writer, "a", proba=0.55, passthrough={"user_id": ["123"]})
    clock.advance(1)
    submit_one(writer, "b", proba=0.95, passthrough={"user_id": ["456"]})
    writer.stop()


def test_tail_prints_a_table_and_json(cli: Runner, recorded: None) -> None:
    code, out, _ = cli("logs", "tail", "churn", "-n", "1", "--json")
    human_code, human, _ = cli("logs", "tail", "churn")

    document = json.loads(out)
    assert code == human_code == 0
    assert document["rows"][0][document["columns"].index("request_id")] == "b"
    assert "request id" in human and "churn/1" in human


def test_query_with_json_output(cli: Runner, recorded: None) -> None:
    code, out, _ = cli(
        "logs", "query", "SELECT request_id FROM predictions ORDER BY 1", "-e", "churn", "--json"
    )

    assert code == 0
    assert json.loads(out) == {
        "columns": ["request_id"],
        "rows": [["a"], ["b"]],
        "truncated": False,
    }


def test_query_error_exits_2_with_one_line(cli: Runner, recorded: None) -> None:
    code, _, err = cli("logs", "query", "SELEC 1")

    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "Parser Error" in err


def test_export_writes_a_file(cli: Runner, recorded: None, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"

    code, stdout, _ = cli("logs", "export", "churn", "--out", str(out), "--json")

    assert code == 0
    assert json.loads(stdout)["rows"] == 2
    assert pq.read_table(out).num_rows == 2


def test_erase_by_hashed_column(cli: Runner, recorded: None) -> None:
    code, out, _ = cli("logs", "erase", "--where", "user_id = pii_hash('123')", "--yes", "--json")
    _, left, _ = cli("logs", "query", "SELECT request_id FROM predictions", "--json")

    assert code == 0
    assert json.loads(out) == {"predictions": 1, "feedback": 0, "reviews": 0, "request_ids": 1}
    assert json.loads(left)["rows"] == [["b"]]


def test_retention_and_compact_run(cli: Runner, recorded: None) -> None:
    code, out, _ = cli("logs", "retention", "--older-than", "30d", "--json")
    compact_code, compacted, _ = cli("logs", "compact", "--json")
    bad_code, _, err = cli("logs", "retention", "--older-than", "soon")

    assert code == compact_code == 0
    assert json.loads(out)["rows"] == {"predictions": 0, "feedback": 0, "reviews": 0}
    assert json.loads(compacted)["merged"] == 0
    assert bad_code == 2 and "Invalid window 'soon'" in err


def test_performance_and_review(cli: Runner, recorded: None, home: Path) -> None:
    from ferryman.capture import LogStore

    LogStore(root=home / "logs").submit_feedback([{"request_id": "a", "label": 1}])

    code, out, _ = cli("performance", "churn", "--window", "1h", "--json")
    listed_code, listed, _ = cli("review", "churn", "--json")
    mark_code, marked, _ = cli(
        "review", "churn", "--mark", "a", "--verdict", "unsure", "--comment", "close call", "--json"
    )
    _, after, _ = cli("review", "churn", "--json")

    assert code == listed_code == mark_code == 0
    assert json.loads(out)["versions"][0]["metrics"]["accuracy"] == 1.0
    assert [c["request_id"] for c in json.loads(listed)] == ["a"]
    assert json.loads(marked)["reviewer"] == "carol"
    assert json.loads(after) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("logs", "tail", "../x"), "Invalid endpoint name"),
        (("logs", "export", "churn", "--out", "x", "--format", "xml"), "invalid --format 'xml'"),
        (("review", "churn", "--mark", "a"), "--mark needs --verdict"),
        (("review", "churn", "--verdict", "ok"), "--verdict needs --mark"),
        (("review", "churn", "--mark", "zz", "--verdict", "ok"), "no captured prediction"),
        (("performance", "churn", "--task", "ranking"), "invalid --task 'ranking'"),
        (("logs", "tail", "churn", "--since", "noon"), "invalid time 'noon'"),
    ],
    ids=["endpoint", "format", "mark", "verdict", "unknown-id", "task", "time"],
)
def test_mistakes_exit_2_with_a_reason(
    cli: Runner, recorded: None, args: tuple[str, ...], message: str
) -> None:
    code, _, err = cli(*args)

    assert code == 2
    assert message in err
