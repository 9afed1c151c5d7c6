"""``ferryman deploy`` and ``ferryman rollout …``, run in process on a fresh store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.cli import main
from ferryman.config import Settings
from ferryman.registry import Registry
from ferryman.serving import EndpointService


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_USER", "alice")
    with Registry.from_settings(Settings()) as registry:
        for c in (1.0, 0.1, 0.01):
            model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
            registry.register(model, name="churn")
        registry.set_alias("churn", "production", 1)
        EndpointService(database=registry.database, user="alice").create(
            "churn", model="churn@production"
        )
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _json(cli: Any, *args: str) -> Any:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_deploy_starts_a_canary_with_the_given_options(cli: Any) -> None:
    rollout = _json(
        cli,
        "deploy",
        "churn",
        "churn/2",
        "--strategy",
        "canary",
        "--steps",
        "20,50,100",
        "--bake",
        "2m",
        "--gate",
        "error_rate < 0.01",
        "--gate",
        "p99_latency_ms < 1.2 * stable",
        "--failure-limit",
        "3",
        "--manual",
    )
    assert (rollout["strategy"], rollout["weight"], rollout["phase"]) == ("canary", 20.0, "running")
    options = rollout["options"]
    assert options["steps"] == [20.0, 50.0, 100.0]
    assert options["bake_seconds"] == 120.0
    assert options["gates"] == ["error_rate < 0.01", "p99_latency_ms < 1.2 * stable"]
    assert (options["failure_limit"], options["manual"]) == (3, True)


def test_status_shows_split_and_what_happens_next(cli: Any) -> None:
    cli("deploy", "churn", "churn/2", "--strategy", "canary", "--bake", "60s")
    status = _json(cli, "rollout", "status", "churn")
    assert status["traffic"] == {"stable": 90.0, "candidate": 10.0, "mirrored": 0.0}
    assert status["next"].startswith("step 1 of 4 at 10 %")
    code, out, _ = cli("rollout", "status", "churn")
    assert code == 0 and "stable churn/1 → candidate churn/2" in out


def test_commands_steer_the_rollout_and_history_keeps_every_step(cli: Any) -> None:
    cli("deploy", "churn", "churn/2", "--strategy", "canary", "--steps", "50,100")
    assert _json(cli, "rollout", "pause", "churn")["phase"] == "paused"
    assert _json(cli, "rollout", "resume", "churn")["phase"] == "running"
    assert _json(cli, "rollout", "promote", "churn")["phase"] == "succeeded"
    assert _json(cli, "rollout", "rollback", "churn", "--reason", "bad")["phase"] == "rolled_back"
    history = _json(cli, "rollout", "history", "churn")
    kinds = [event["kind"] for event in history[0]["events"]]
    assert kinds == ["started", "paused", "resumed", "succeeded", "rolled-back"]


def test_deploy_reads_a_smoke_file_for_blue_green(cli: Any, tmp_path: Path) -> None:
    smoke = tmp_path / "smoke.json"
    smoke.write_text(json.dumps([{"x0": 1.0}, {"x0": 2.5}]))
    rollout = _json(
        cli, "deploy", "churn", "churn/3", "--strategy", "blue-green", "--smoke-file", str(smoke)
    )
    assert rollout["stage"] == "preview"
    assert rollout["options"]["smoke_rows"] == [{"x0": 1.0}, {"x0": 2.5}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy", "churn", "churn/2", "--strategy", "big-bang"), "Unknown strategy 'big-bang'"),
        (("deploy", "churn", "churn/2", "--strategy", "canary", "--steps", "ten"), "--steps"),
        (("deploy", "churn", "churn/2", "--strategy", "canary", "--bake", "soon"), "bake"),
        (("deploy", "churn", "churn/2", "--strategy", "ab-test"), "routing key"),
        (("deploy", "churn", "churn/9", "--strategy", "canary"), "no version 9"),
        (("deploy", "nope", "churn/2", "--strategy", "canary"), "No endpoint named 'nope'"),
        (
            ("deploy", "churn", "churn/2", "--strategy", "canary", "--gate", "error_rate <"),
            "Invalid condition",
        ),
        (("rollout", "promote", "churn"), "has no active rollout"),
        (("rollout", "status", "churn"), "has no rollout"),
    ],
    ids=[
        "strategy",
        "steps",
        "bake",
        "ab-without-key",
        "version",
        "endpoint",
        "gate",
        "promote-nothing",
        "status-nothing",
    ],
)
def test_bad_input_exits_2_with_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    code, _, err = cli(*args)
    assert code == 2
    assert message in err
