"""``ferryman replay`` and ``ferryman rollout report``, on a small app of their own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from ferryman.capture import CaptureWriter
from ferryman.cli import replay
from ferryman.config import Settings
from ferryman.registry import Registry
from tests.rollout.diff_records import classified, submit

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.command("replay")(replay.replay)
app.command("report")(replay.shadow_report)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with ``churn/1`` registered and 20 requests it answered just now."""
    home = tmp_path / "home"
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    y = (X["a"] > 0).astype(int)
    with Registry.from_settings(Settings(home=home, user="alice")) as registry:
        registry.register(LogisticRegression().fit(X, y), name="churn", X=X, y=y)
        model = registry.load("churn/1")
    writer = CaptureWriter(root=home / "logs")
    for index in range(20):
        row = X.iloc[[index]].reset_index(drop=True)
        writer.submit(
            f"r{index}", "churn", "churn/1", "primary", row, model.predict_batch(row), 3.0
        )
    writer.flush()
    return home


@pytest.fixture
def run(home: Path) -> Any:
    env = {"FERRYMAN_HOME": str(home), "FERRYMAN_USER": "alice", "COLUMNS": "250"}

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_replay_prints_the_report_as_json(run: Any) -> None:
    code, out, err = run("replay", "churn", "churn/1", "--since", "1h", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["source"], report["rows_compared"], report["agreement_rate"]) == (
        "replay",
        20,
        1.0,
    )
    assert report["candidate"]["version"] == "churn/1"


def test_replay_writes_a_standalone_page_and_says_where(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "diff.html"
    code, out, err = run("replay", "churn", "churn/1", "--out", str(target))
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "20 rows compared" in out and "agreement 1.0000" in out
    assert f"Wrote {target}" in out.replace("\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("replay", "churn", "churn/1", "--since", "2020-01-01", "--until", "2020-01-02"),
            "No successful primary records of endpoint 'churn'",
        ),
        (("replay", "churn", "fraud/1"), "fraud"),
        (("replay", "churn", "churn/1", "--since", "yesterday"), "invalid --since 'yesterday'"),
        (("replay", "churn", "churn/1", "--out", "diff.pdf"), "expected a .html or .json file"),
        (("report", "churn", "--since", "1h"), "No shadow records for endpoint 'churn'"),
    ],
    ids=["no-records", "unknown-model", "bad-since", "bad-out", "no-shadow"],
)
def test_mistakes_exit_2_with_one_line(run: Any, args: tuple[str, ...], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_rollout_report_compares_captured_shadow_answers(run: Any, home: Path) -> None:
    writer = CaptureWriter(root=home / "logs")
    for index in range(4):
        submit(writer, f"s{index}", "primary", "churn/1", classified([1], [0.8]))
        answer = classified([0 if index == 2 else 1], [0.3 if index == 2 else 0.8])
        submit(writer, f"s{index}", "shadow", "churn/2", answer)
    writer.flush()

    code, out, err = run("report", "churn", "--since", "1h", "--json")

    assert code == 0, err
    report = json.loads(out)
    assert (report["source"], report["rows_compared"], report["agreement_rate"]) == (
        "shadow",
        4,
        0.75,
    )
    assert [d["request_id"] for d in report["disagreements"]] == ["s2"]
