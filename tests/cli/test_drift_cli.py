"""``ferryman drift report ENDPOINT``: drift of an endpoint's captured traffic, in process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.capture import CaptureWriter, LogStore
from ferryman.cli import main
from ferryman.config import Settings
from ferryman.flavors.base import Prediction
from ferryman.registry import Registry
from ferryman.serving.endpoints import EndpointService
from tests.drift.traffic import Traffic, capture, traffic

Run = Callable[..., tuple[int, str, str]]
NUMERIC = ["age", "income"]


def answered(model: LogisticRegression, data: Traffic) -> Traffic:
    """The numeric inputs and the model's own answers to them."""
    inputs = data.inputs[NUMERIC]
    prediction = Prediction(
        model.predict(inputs), model.predict_proba(inputs), [int(c) for c in model.classes_]
    )
    return Traffic(inputs, prediction)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """A registry with churn/1 (profiled), endpoints churn and quiet serving it, and 2,000
    captured records of churn with age shifted by half a standard deviation."""
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_USER", "alice")
    training = traffic(3000, seed=0)
    model = LogisticRegression().fit(training.inputs[NUMERIC], training.prediction.predictions)
    settings = Settings()
    with Registry.from_settings(settings) as registry:
        registry.register(model, name="churn", X=training.inputs[NUMERIC])
        endpoints = EndpointService(database=registry.database, user="alice")
        endpoints.create("churn", model="churn/1")
        endpoints.create("quiet", model="churn/1")
        endpoints.create("scoring", model="churn/1")
    writer = CaptureWriter(root=settings.home.resolve() / "logs")
    capture(writer, answered(model, traffic(2000, seed=1, age_shift=0.5)))
    training.inputs[NUMERIC].to_parquet(tmp_path / "training.parquet")
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["drift", "report", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def document(cli: Run, *args: str) -> dict[str, Any]:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def drifted(report: dict[str, Any]) -> list[str]:
    return [f["name"] for f in report["features"] if f["drifted"]]


def test_an_endpoints_window_is_compared_with_the_served_versions_profile(cli: Run) -> None:
    report = document(cli, "churn", "--window", "24h")

    assert drifted(report) == ["age"]
    assert (report["endpoint"], report["status"], report["window"]["rows"]) == ("churn", "ok", 2000)
    assert report["reference"] == "churn/1 (stored reference profile)"
    assert report["prediction_drift"]["status"] == "ok"


def test_the_window_can_be_the_latest_records(cli: Run) -> None:
    report = document(cli, "churn", "--window", "500")

    assert (report["window"]["rows"], report["window"]["last_records"]) == (500, 500)


def test_an_endpoint_without_traffic_is_insufficient_data(cli: Run) -> None:
    report = document(cli, "quiet")

    assert report["status"] == "insufficient-data" and not report["dataset_drift"]
    assert {f["status"] for f in report["features"]} == {"insufficient-data"}


def test_an_endpoint_can_be_compared_with_a_data_file(cli: Run, tmp_path: Path) -> None:
    training = tmp_path / "training.parquet"

    report = document(cli, "churn", "--reference", str(training), "--no-multivariate")

    assert drifted(report) == ["age"] and report["reference"] == str(training)


def test_a_file_is_compared_with_the_version_an_endpoint_serves(cli: Run, tmp_path: Path) -> None:
    current = tmp_path / "current.parquet"
    traffic(1000, seed=5, age_shift=0.5).inputs[NUMERIC].to_parquet(current)

    report = document(cli, "scoring", "--current", str(current))

    assert drifted(report) == ["age"]
    assert report["reference"] == "churn/1 (stored reference profile)"


def test_the_report_is_written_and_the_window_shown(cli: Run, tmp_path: Path) -> None:
    target = tmp_path / "drift.html"

    code, out, err = cli("churn", "--out", str(target))

    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Window: churn: 2,000 captured records" in out


BAD_INPUT = [
    ("unknown endpoint", ("nosuch",), "no endpoint named 'nosuch'"),
    ("model reference without a file", ("churn/1",), "'churn/1' is a model reference"),
    ("window with a file", ("churn", "--current", "c.csv", "--window", "1h"), "--window applies"),
    ("bad window", ("churn", "--window", "soon"), "Invalid window 'soon'"),
    (
        "prediction column with an endpoint",
        ("churn", "--prediction-column", "score"),
        "--prediction-column applies to --current FILE",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_exits_2_with_one_line(cli: Run, args: tuple[str, ...], message: str) -> None:
    code, _, err = cli(*args)

    assert code == 2
    assert message in " ".join(err.split()) and len(err.strip().splitlines()) <= 2


def test_fail_on_drift_exits_1_when_the_endpoints_dataset_drifted(cli: Run) -> None:
    assert cli("churn", "--fail-on-drift")[0] == 1  # age: 1 of 2 features, the default 50 %
    assert cli("churn", "--fail-on-drift", "--drift-share", "0.6")[0] == 0


def test_the_concept_section_is_shown_with_the_feedback(cli: Run, tmp_path: Path) -> None:
    before = document(cli, "churn")["concept"]
    LogStore(root=tmp_path / "home" / "logs").submit_feedback(
        [
            {"request_id": f"r-{start}", "row": row, "label": 1}
            for start in range(0, 2000, 500)
            for row in range(500)
        ]
    )

    code, out, err = cli("churn")
    after = document(cli, "churn")["concept"]

    assert (before["status"], before["labelled_rows"]) == ("insufficient-data", 0)
    assert code == 0, err
    assert "Concept drift:" in out and "2,000 of 2,000 records labelled" in out
    assert "Realised accuracy:" in out and "page_hinkley" in out
    assert (after["status"], after["labelled_rows"]) == ("ok", 2000)
    assert after["performance"]["reference"] is None  # churn/1 was registered without metrics


def test_the_concept_minimum_follows_min_rows(cli: Run, tmp_path: Path) -> None:
    LogStore(root=tmp_path / "home" / "logs").submit_feedback(
        [{"request_id": "r-0", "row": row, "label": 1} for row in range(50)]
    )

    default = document(cli, "churn")["concept"]
    lowered = document(cli, "churn", "--min-rows", "50")["concept"]

    assert (default["status"], default["labelled_rows"]) == ("insufficient-data", 50)
    assert (lowered["status"], lowered["min_rows"]) == ("ok", 50)
