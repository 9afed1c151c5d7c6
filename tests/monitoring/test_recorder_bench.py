"""The recorder micro-benchmark's smoke run: it finishes and reports every figure.

No test asserts how long anything takes: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.bench._smoke import BENCH, run_smoke

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench-smoke")]

SCRIPT = BENCH / "monitoring" / "recorder_micro.py"
FIGURES = ["observe", "drain", "observe+drain", "floor", "inline"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench-monitoring")
    run = run_smoke(SCRIPT, cwd=output, output_dir=output)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| request" in run.stdout
    document: dict[str, Any] = json.loads((output / "monitoring_recorder.json").read_text())
    return document


@pytest.mark.parametrize("workload", ["1-row", "32-row"])
@pytest.mark.parametrize("figure", FIGURES)
def test_the_benchmark_reports_every_figure_per_request(
    results: dict[str, Any], workload: str, figure: str
) -> None:
    summary = results["results"][workload]["microseconds"][figure]

    assert math.isfinite(summary["median"]) and summary["median"] > 0
    assert len(summary["runs"]) == results["rounds"]
