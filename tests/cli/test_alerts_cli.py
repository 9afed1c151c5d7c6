"""``ferryman alerts``: add, list, remove and history, on a small parent app of their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ferryman.cli import alerts
from ferryman.monitoring.alerts import AlertEngine, WebhookNotifier
from ferryman.store import Database
from tests.alerting import Fixed

parent = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
parent.add_typer(alerts.app, name="alerts")

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "FERRYMAN_HOME": str(tmp_path / "home"),
        "FERRYMAN_DATABASE_URL": database_url,
        "FERRYMAN_USER": "alice",
        "COLUMNS": "250",
    }


@pytest.fixture
def run(env: dict[str, str]) -> Any:
    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(parent, ["alerts", *args], env=env)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def as_json(run: Any, *args: str) -> Any:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(url=database_url).open()
    try:
        yield db
    finally:
        db.close()


def test_add_then_list_shows_the_rule_with_its_state(run: Any) -> None:
    added = as_json(
        run,
        "add",
        "churn-nulls",
        "--endpoint",
        "churn",
        "--when",
        "null_rate>0.01 for 300s",
        "--window",
        "10m",
        "--severity",
        "critical",
        "--webhook",
        "https://hooks.example.com/a",
        "--webhook",
        "https://hooks.example.com/b",
        "--slack",
    )

    assert as_json(run, "list") == [added]
    assert {k: added[k] for k in ("when", "window", "severity", "source", "state")} == {
        "when": "null_rate > 0.01 for 5m",
        "window": "10m",
        "severity": "critical",
        "source": "api",
        "state": "inactive",
    }
    assert added["webhooks"] == [
        {"url": "https://hooks.example.com/a", "format": "slack"},
        {"url": "https://hooks.example.com/b", "format": "slack"},
    ]


def test_add_prints_a_one_line_summary(run: Any) -> None:
    code, out, _ = run("add", "lat", "-e", "churn", "--when", "p99_latency_ms > 200 for 2m")

    assert code == 0
    assert (
        out.strip()
        == "Added alert rule lat on churn: p99_latency_ms > 200 for 2m (window 5m, warning)"
    )


def test_list_filters_by_endpoint_and_renders_a_table(run: Any) -> None:
    run("add", "a", "-e", "churn", "--when", "error_rate > 0.1")
    run("add", "b", "-e", "fraud", "--when", 'missing_rate{feature="age"} > 0.2')

    code, out, _ = run("list")

    assert code == 0
    assert [r["name"] for r in as_json(run, "list", "--endpoint", "fraud")] == ["b"]
    assert "error_rate > 0.1" in out
    assert 'missing_rate{feature="age"} > 0.2' in out
    assert "inactive" in out and "log only" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--when", "null_rate 0.01"],
            "error: Invalid condition 'null_rate 0.01': expected a comparison operator (<, <=, "
            ">, >=, ==, !=) after 'null_rate' at column 11, found '0.01'.",
        ),
        (
            ["--when", "null_rate > 0.01", "--window", "5 minutes"],
            "error: Invalid duration '5 minutes': expected a duration such as 30s, 5m, 1h or "
            "1h30m (whole numbers of d, h, m and s, largest unit first).",
        ),
        (
            ["--when", "null_rate > 0.01", "--severity", "page"],
            "error: Alert rule 'r': unknown severity 'page'. Available: info, warning, critical.",
        ),
        (
            ["--when", "p99_latency_ms < 1.2 * stable"],
            "error: Alert rule 'r': the condition 'p99_latency_ms < 1.2 * stable' uses 'stable', "
            "which only rollout gates can compare with; give a number, e.g. p99_latency_ms < "
            "0.05.",
        ),
        (
            ["--when", "null_rate > 0.01", "--slack"],
            "error: --slack needs at least one --webhook URL",
        ),
        (
            ["--when", "null_rate > 0.01", "--webhook", "hooks.example.com"],
            "error: Invalid webhook URL 'hooks.example.com': expected an absolute http:// or "
            "https:// URL, e.g. https://hooks.example.com/alerts",
        ),
    ],
    ids=["syntax", "window", "severity", "stable", "slack", "url"],
)
def test_bad_input_exits_2_with_one_line(run: Any, args: list[str], message: str) -> None:
    code, out, err = run("add", "r", "-e", "churn", *args)

    assert (code, out) == (2, "")
    assert err.strip() == message
    assert as_json(run, "list") == []


def test_adding_a_rule_twice_exits_2(run: Any) -> None:
    run("add", "r", "-e", "churn", "--when", "null_rate > 0.01")

    code, _, err = run("add", "r", "-e", "churn", "--when", "null_rate > 0.02")

    assert code == 2
    assert err.strip().startswith("error: Alert rule 'r' already exists; remove it first with:")


def test_remove_deletes_the_rule(run: Any) -> None:
    run("add", "r", "-e", "churn", "--when", "null_rate > 0.01")

    assert as_json(run, "remove", "r") == {"name": "r", "removed": True}
    assert as_json(run, "list") == []


def test_removing_an_unknown_rule_exits_2(run: Any) -> None:
    code, _, err = run("remove", "nope")

    assert code == 2
    assert err.strip() == "error: No alert rule named 'nope'. List rules with: ferryman alerts list"


def test_history_shows_transitions_newest_first(run: Any, database: Database) -> None:
    run("add", "errors", "-e", "churn", "--when", "error_rate > 0.1 for 1m")
    run("add", "other", "-e", "fraud", "--when", "error_rate > 0.1")
    engine = AlertEngine(database=database, source=Fixed(0.5), notifier=WebhookNotifier())
    engine.evaluate_once(T0)
    engine.evaluate_once(T0 + timedelta(minutes=1))

    events = as_json(run, "history", "--endpoint", "churn")
    code, out, _ = run("history", "--limit", "1")

    assert [(e["rule"], e["state"]) for e in events] == [
        ("errors", "firing"),
        ("errors", "pending"),
    ]
    assert [e["rule"] for e in as_json(run, "history", "--rule", "other")] == ["other"]
    assert len(as_json(run, "history", "--limit", "2")) == 2
    assert code == 0
    assert "firing" in out and "errors is firing on endpoint churn" in out


def test_history_rejects_a_non_positive_limit(run: Any) -> None:
    code, _, err = run("history", "--limit", "0")

    assert code == 2
    assert err.strip() == "error: Invalid limit 0: expected an integer >= 1."
