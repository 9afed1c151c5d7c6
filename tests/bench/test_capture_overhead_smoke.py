"""The capture overhead benchmark's smoke run: it finishes and reports every figure.

The benchmark runs once, in a subprocess, for one second per endpoint, and the tests
read its JSON. It drives the server with ``wrk``, so without ``wrk`` on PATH the module
is skipped. No test asserts a throughput, a latency or a ratio: the machines are shared
and noisy. What the tests do check is what the benchmark set up: the logged endpoint's
every answered request is in the prediction log, and the unlogged endpoint's none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.bench._smoke import BENCH, NEEDS_WRK, smoke_fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("bench-smoke"),
    NEEDS_WRK,
]

PY_SPY = Path(sys.executable).with_name("py-spy")
SCRIPT = BENCH / "capture" / "serving_overhead.py"
ENDPOINTS = ["logged", "unlogged"]
SUMMARIES = ["requests_per_s", "p50_s", "p99_s", "server_cpu_per_request_s"]


smoke_run, results = smoke_fixtures(SCRIPT, "capture_serving_overhead.json")


def test_capture_benchmark_smoke_run_exits_successfully(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]


def test_capture_benchmark_prints_the_results_and_the_target(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert "| Workload" in smoke_run.stdout and "| Target" in smoke_run.stdout


@pytest.mark.parametrize(
    "key",
    [
        "config",
        "machine",
        "cpus",
        "load_average",
        "sample_rates",
        "results",
        "ratios",
        "log",
        "capture_thread",
    ],
)
def test_capture_benchmark_writes_every_section(results: dict[str, Any], key: str) -> None:
    assert key in results


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("summary", SUMMARIES)
def test_capture_benchmark_measures_both_endpoints(
    results: dict[str, Any], endpoint: str, summary: str
) -> None:
    figures = results["results"][endpoint][summary]
    assert figures["median"] > 0 and len(figures["runs"]) == 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_capture_benchmark_gets_no_error_responses(results: dict[str, Any], endpoint: str) -> None:
    assert results["results"][endpoint]["non_2xx"] == 0


@pytest.mark.parametrize("figure", SUMMARIES)
def test_capture_benchmark_compares_capture_with_no_capture(
    results: dict[str, Any], figure: str
) -> None:
    assert results["ratios"][figure] > 0


def test_capture_benchmark_logs_every_request_of_the_logged_endpoint(
    results: dict[str, Any],
) -> None:
    log = results["log"]
    assert log["stored"]["logged"] == log["answered"]["logged"] > 0


def test_capture_benchmark_logs_nothing_of_the_unlogged_endpoint(results: dict[str, Any]) -> None:
    log = results["log"]
    assert log["stored"]["unlogged"] == 0 < log["answered"]["unlogged"]


def test_capture_benchmark_reports_the_target_as_pass_or_fail(results: dict[str, Any]) -> None:
    targets = results["targets"]
    assert len(targets) == 1 and isinstance(targets[0]["passed"], bool)


def test_capture_benchmark_measures_the_capture_thread_or_says_why_not(
    results: dict[str, Any],
) -> None:
    thread = results["capture_thread"]
    assert (thread["skipped"] is None) == ("logged" in thread and "unlogged" in thread)


@pytest.mark.skipif(not PY_SPY.is_file(), reason="py-spy is not installed beside this Python")
def test_capture_benchmark_charges_cpu_to_the_capture_thread_of_the_logged_endpoint(
    results: dict[str, Any],
) -> None:
    logged = results["capture_thread"]["logged"]
    assert logged["cpu_per_request_s"]["median"] > 0 and logged["share_of_server_cpu"]["median"] > 0
