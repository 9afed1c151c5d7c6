"""The serving benchmark's smoke run: it finishes and reports every figure.

The benchmark runs once, in a subprocess, for one second per contender, and the tests
read its JSON. It drives the servers with ``wrk``, so without ``wrk`` on PATH the module
is skipped. MLServer takes part only if its environment (``.venv-peers/mlserver``) has
been created by a full run. No test asserts a throughput or a latency: the machines are
shared and noisy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("bench-smoke"),
    pytest.mark.skipif(
        shutil.which("wrk") is None,
        reason="wrk is not installed (apt-get install -y wrk); the serving benchmark needs it",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "serving" / "throughput.py"
WORKLOADS = ["1 row x 1 conn", "1 row x 16 conn", "1 row x 64 conn", "32 rows x 16 conn"]
ALWAYS_MEASURED = ["ferryman-native", "ferryman-v2", "floor"]
SUMMARIES = ["requests_per_s", "p50_s", "p99_s"]


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the smoke run writes its JSON to."""
    return tmp_path_factory.mktemp("serving-smoke-results")


@pytest.fixture(scope="module")
def smoke_run(
    tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``bench/serving/throughput.py --smoke`` once, from an empty working directory."""
    # The developer's FERRYMAN_* settings must not reach the benchmark.
    env = {key: value for key, value in os.environ.items() if not key.startswith("FERRYMAN_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--output-dir", str(output_dir)],
        cwd=tmp_path_factory.mktemp("serving-smoke-cwd"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a performance assertion
        check=False,
    )


@pytest.fixture(scope="module")
def results(smoke_run: subprocess.CompletedProcess[str], output_dir: Path) -> dict[str, Any]:
    """The JSON document the smoke run wrote."""
    path = output_dir / "serving.json"
    if not path.is_file():
        pytest.fail(
            f"The smoke run wrote no {path}; its stderr ends with:\n{smoke_run.stderr[-3000:]}"
        )
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def test_serving_benchmark_smoke_run_exits_successfully(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]


def test_serving_benchmark_prints_the_results_and_targets(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert "| Workload" in smoke_run.stdout and "| Target" in smoke_run.stdout


@pytest.mark.parametrize(
    "key",
    ["config", "machine", "servers", "cpus", "workloads", "batching", "targets", "skipped"],
)
def test_serving_benchmark_writes_every_section(results: dict[str, Any], key: str) -> None:
    assert key in results


def test_serving_benchmark_measures_every_workload(results: dict[str, Any]) -> None:
    assert list(results["workloads"]) == WORKLOADS


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("contender", ALWAYS_MEASURED)
@pytest.mark.parametrize("summary", SUMMARIES)
def test_serving_benchmark_measures_ferryman_and_the_floor(
    results: dict[str, Any], workload: str, contender: str, summary: str
) -> None:
    figures = results["workloads"][workload]["results"][contender][summary]
    assert figures["median"] > 0 and len(figures["runs"]) == 1


@pytest.mark.parametrize("workload", WORKLOADS)
def test_serving_benchmark_compares_ferryman_with_the_floor(
    results: dict[str, Any], workload: str
) -> None:
    ratios = results["workloads"][workload]["ratios"]
    assert ratios["ferryman-native/floor"] > 0 and ratios["ferryman-v2/floor"] > 0


@pytest.mark.parametrize("workload", WORKLOADS)
def test_serving_benchmark_gets_no_error_responses(results: dict[str, Any], workload: str) -> None:
    assert all(r["non_2xx"] == 0 for r in results["workloads"][workload]["results"].values())


@pytest.mark.parametrize("contender", ["batched", "unbatched"])
def test_serving_benchmark_measures_micro_batching(results: dict[str, Any], contender: str) -> None:
    assert results["batching"]["results"][contender]["requests_per_s"]["median"] > 0


@pytest.mark.parametrize("key", ["batch_s", "one_row_s", "ratio"])
def test_serving_benchmark_times_the_batched_model(results: dict[str, Any], key: str) -> None:
    assert results["batching"][key] > 0


def test_serving_benchmark_reports_every_target_as_pass_or_fail(results: dict[str, Any]) -> None:
    targets = results["targets"]
    assert targets and all(isinstance(target["passed"], bool) for target in targets)


def test_serving_benchmark_measures_mlserver_or_says_why_not(results: dict[str, Any]) -> None:
    measured = "mlserver" in results["workloads"]["1 row x 16 conn"]["results"]
    said_why = any(reason.startswith("mlserver") for reason in results["skipped"])
    assert measured != said_why
