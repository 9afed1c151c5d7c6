"""The recorder micro-benchmark's smoke run: it finishes and reports every figure.

No test asserts how long anything takes: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench-smoke")]

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "monitoring" / "recorder_micro.py"
FIGURES = ["observe", "drain", "observe+drain", "floor", "inline"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench-monitoring")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FERRYMAN_")}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--output-dir", str(output)],
        cwd=output,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a performance assertion
        check=False,
    )
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
