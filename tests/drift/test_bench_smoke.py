"""The drift benchmarks' smoke runs finish and report every figure.

Each benchmark runs once, in a subprocess with tiny sizes (and without Evidently, whose
own virtual environment the full run creates), and the tests read its JSON. Timings
are only checked to be positive: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.bench._smoke import BENCH, run_smoke

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("drift-bench-smoke")]


def _smoke(script: str, output: Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    return run_smoke(BENCH / "drift" / script, cwd=cwd, output_dir=output), output


@pytest.fixture(scope="module")
def data_drift(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    done, output = _smoke(
        "data_drift.py", tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("cwd")
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads((output / "drift.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def concept(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    done, output = _smoke(
        "concept.py", tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("cwd")
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads((output / "drift_concept.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("contender", ["ferryman-profile", "ferryman-data", "scipy-loop"])
def test_data_drift_smoke_times_every_contender_and_scores_recall(
    data_drift: tuple[str, dict[str, Any]], contender: str
) -> None:
    result = data_drift[1]["sizes"]["2000"][contender]
    assert result["seconds"] > 0 and result["peak_rss"] > 0
    assert 0 <= result["recall"] <= 1 and isinstance(result["false_positives"], list)


def test_data_drift_smoke_finds_every_injected_column_with_ferryman(
    data_drift: tuple[str, dict[str, Any]],
) -> None:
    result = data_drift[1]["sizes"]["2000"]["ferryman-profile"]
    assert (result["recall"], result["false_positives"]) == (1.0, [])


def test_data_drift_smoke_prints_a_markdown_table(data_drift: tuple[str, dict[str, Any]]) -> None:
    assert "| rows" in data_drift[0] and "ferryman-profile" in data_drift[0]


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley", "ddm", "ddm_2sd", "baseline"])
def test_concept_smoke_reports_delay_misses_and_false_alarms(
    concept: tuple[str, dict[str, Any]], detector: str
) -> None:
    result = concept[1]["streams"]["errors 10% -> 20%"][detector]
    assert {"median_delay", "missed", "false_alarms"} <= set(result)
    assert result["false_alarms"]["per_10k"] >= 0


def test_concept_smoke_prints_a_markdown_table(concept: tuple[str, dict[str, Any]]) -> None:
    assert "| stream" in concept[0] and "page_hinkley" in concept[0]


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley", "ddm", "ddm_2sd"])
def test_concept_smoke_matches_the_baseline_to_each_detector(
    concept: tuple[str, dict[str, Any]], detector: str
) -> None:
    entry = concept[1]["matched"][detector]
    assert isinstance(entry["beats_baseline"], bool) and isinstance(entry["meets_configured"], bool)
    assert entry["configured"]["per_10k"] > 0
    for kind in entry["kinds"].values():
        assert 1.0 <= kind["baseline_z"] <= 8.0
        for change in kind["changes"].values():
            assert {"mean_delay", "missed"} <= set(change["baseline"])
            assert isinstance(change["beats"], bool)
    assert "At matched false-alarm rates" in concept[0]
