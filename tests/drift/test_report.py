"""Reports: the JSON contract, the standalone HTML page, and every section's status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ferryman.drift import DriftReport, drift_report
from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from ferryman.signature import build_profile
from tests.drift.conftest import dataset, profile

FEATURE_KEYS = {
    "name",
    "kind",
    "test",
    "statistic",
    "p_value",
    "effect_size",
    "threshold",
    "drifted",
    "status",
}


@pytest.fixture(scope="module")
def report() -> DriftReport:
    data = dataset(10_000)
    return drift_report(data.reference.iloc[:2000], data.current.iloc[:2000])


def test_json_report_has_the_documented_keys(report: DriftReport) -> None:
    document: dict[str, Any] = json.loads(report.to_json())
    assert isinstance(document["dataset_drift"], bool)
    assert all(set(feature) >= FEATURE_KEYS for feature in document["features"])
    assert {"status", "drifted", "statistic", "threshold"} <= set(document["multivariate"])
    assert {"status", "drifted", "features"} <= set(document["prediction_drift"])


def test_json_report_is_strict_json_without_nan(report: DriftReport) -> None:
    json.loads(report.to_json(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_multivariate_section_runs_when_the_reference_is_data(report: DriftReport) -> None:
    assert report.multivariate.status == "ok" and report.multivariate.result is not None
    assert report.multivariate.result.drifted


def test_html_report_is_standalone_with_a_plot_per_feature(report: DriftReport) -> None:
    page = report.to_html()
    assert "<script src=" not in page  # no CDN: Plotly's JavaScript is embedded
    assert "Plotly.newPlot" in page and page.count("plotly-graph-div") >= 25
    assert all(f"id='f-{name}'" in page for name in dataset(10_000).reference.columns)


@pytest.mark.parametrize("suffix", [".json", ".html"])
def test_write_chooses_the_format_by_suffix(
    report: DriftReport, tmp_path: Path, suffix: str
) -> None:
    path = report.write(tmp_path / f"report{suffix}")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("{") if suffix == ".json" else text.startswith("<!DOCTYPE html>")


def test_write_rejects_other_suffixes(report: DriftReport, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"expected \.html or \.json"):
        report.write(tmp_path / "report.pdf")


def test_a_profile_reference_marks_the_multivariate_section_unavailable() -> None:
    result = drift_report(profile(10_000), dataset(10_000).current)
    assert result.multivariate.status == "unavailable"
    assert "keeps no rows" in result.multivariate.message


def test_prediction_drift_against_the_profiles_training_predictions() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    y = (X["a"] + rng.normal(0, 0.5, 4000) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    stored = build_profile(
        X,
        predictions=Prediction(
            predictions=model.predict(X),
            probabilities=model.predict_proba(X),
            classes=[0, 1],
        ),
    )
    shifted = pd.DataFrame({"a": rng.normal(1.0, 1, 2000), "b": rng.normal(size=2000)})
    current = shifted.assign(
        prediction=model.predict(shifted),
        **{"probability[1]": model.predict_proba(shifted)[:, 1]},
    )
    result = drift_report(stored, current)
    assert result.predictions.status == "ok" and result.predictions.drifted
    assert {f.name for f in result.predictions.result.features} == {  # type: ignore[union-attr]
        "prediction",
        "probability[1]",
    }
    assert "prediction" not in {f.name for f in result.data.features}


def test_prediction_drift_against_a_baseline_dataframe() -> None:
    rng = np.random.default_rng(1)
    baseline = pd.DataFrame({"x": rng.normal(size=2000), "score": rng.beta(2, 5, 2000)})
    current = pd.DataFrame({"x": rng.normal(size=2000), "score": rng.beta(2, 2, 2000)})
    result = drift_report(baseline, current, prediction_columns=["score"])
    assert result.predictions.drifted
    assert [f.name for f in result.data.features] == ["x"]


def test_prediction_section_says_why_it_did_not_run() -> None:
    result = drift_report(profile(10_000), dataset(10_000).current)
    assert result.predictions.status == "unavailable"
    assert "no training predictions" in result.predictions.message
