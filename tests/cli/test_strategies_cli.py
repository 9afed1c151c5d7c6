"""``ferryman strategies`` and ``ferryman advise``, on a small Typer app of their own."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from ferryman.cli import strategies

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.command("strategies")(strategies.strategies)
app.command("advise")(strategies.advise)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_strategies_shows_the_five_side_by_side() -> None:
    code, out, _ = run("strategies")

    assert code == 0
    header = next(line for line in out.splitlines() if "recreate" in line)
    positions = [header.index(n) for n in ("recreate", "shadow", "canary", "ab-test", "blue-green")]
    assert positions == sorted(positions)
    for aspect in ("downtime", "extra capacity", "rollback", "testing in production", "fits when"):
        assert aspect in out


def test_strategies_json_lists_every_aspect() -> None:
    code, out, _ = run("strategies", "--json")

    data = json.loads(out)
    assert code == 0
    assert [p["strategy"] for p in data] == [
        "recreate",
        "shadow",
        "canary",
        "ab-test",
        "blue-green",
    ]
    assert data[0]["has_downtime"] is True
    assert {"downtime", "extra_capacity", "human_involvement", "fits_when"} <= set(data[0])


def test_advise_recommends_canary_for_the_issue_example() -> None:
    code, out, _ = run(
        "advise",
        "--max-downtime",
        "0s",
        "--budget",
        "low",
        "--need-production-testing",
        "--automated-rollback",
    )

    assert code == 0
    assert "Recommended: canary" in out
    assert "max downtime 0s" in out


def test_advise_json_carries_the_ranking_and_reasons() -> None:
    code, out, _ = run("advise", "--measure-outcome", "--max-downtime", "5m", "--json")

    data = json.loads(out)
    assert code == 0
    assert data["recommended"] == "ab-test"
    assert data["constraints"]["max_downtime_seconds"] == 300.0
    assert data["ranking"][0]["strategy"] == "ab-test"


def test_advise_explains_impossible_combinations() -> None:
    code, out, _ = run("advise", "--measure-outcome", "--max-exposure", "0%")

    assert code == 0
    assert "No strategy meets every constraint" in out
    assert "conflict:" in out


def test_advise_passes_exposure_and_load_time_through() -> None:
    code, out, _ = run(
        "advise", "--max-exposure", "5%", "--load-time", "20s", "--max-downtime", "1m", "--json"
    )

    data = json.loads(out)
    assert code == 0
    assert data["constraints"]["max_exposure"] == pytest.approx(0.05)
    assert data["constraints"]["load_seconds"] == 20.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--budget", "huge"), "invalid --budget 'huge': expected one of low, medium, high"),
        (("--max-downtime", "soon"), "Invalid --max-downtime 'soon'"),
        (("--load-time", "-5s"), "Invalid --load-time '-5s'"),
        (("--max-exposure", "150%"), "invalid --max-exposure '150%'"),
        (("--max-exposure", "some"), "invalid --max-exposure 'some'"),
    ],
    ids=["budget", "duration", "negative-load", "exposure-range", "exposure-text"],
)
def test_advise_rejects_bad_input_with_exit_code_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = run("advise", *args)

    assert code == 2
    assert out == ""
    assert message in " ".join(err.split())
