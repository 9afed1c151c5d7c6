"""The rollout serving benchmark's smoke run: it finishes and reports every figure.

The benchmark runs once, in a subprocess, for one second per endpoint, and the tests
read its JSON. It drives the server with ``wrk``, so without ``wrk`` on PATH the module
is skipped. No test asserts a throughput, a latency or a ratio: the machines are shared
and noisy. What the tests do check is what the benchmark set up: both rollouts running,
the canary answering from both versions, and every shadow copy accounted for.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.bench._smoke import BENCH, NEEDS_WRK, smoke_fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("bench-smoke"),
    NEEDS_WRK,
]

SCRIPT = BENCH / "serving" / "rollouts.py"
ENDPOINTS = ["plain", "canary", "shadow"]
ROLLOUTS = ["canary", "shadow"]
SUMMARIES = ["requests_per_s", "p50_s", "p99_s"]


smoke_run, results = smoke_fixtures(SCRIPT, "serving_rollouts.json")


def test_rollouts_benchmark_smoke_run_exits_successfully(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]


def test_rollouts_benchmark_prints_the_results_and_targets(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert "| Endpoint" in smoke_run.stdout and "| Target" in smoke_run.stdout


@pytest.mark.parametrize(
    "key",
    [
        "config",
        "machine",
        "cpus",
        "rollouts",
        "answers_by_version",
        "results",
        "ratios",
        "canary_split",
        "mirroring",
        "targets",
    ],
)
def test_rollouts_benchmark_writes_every_section(results: dict[str, Any], key: str) -> None:
    assert key in results


@pytest.mark.parametrize("endpoint", ROLLOUTS)
def test_rollouts_benchmark_measures_with_the_rollout_running(
    results: dict[str, Any], endpoint: str
) -> None:
    state = results["rollouts"][endpoint]
    assert (state["strategy"], state["phase"]) == (endpoint, "running")


def test_rollouts_benchmark_sees_the_canary_answer_from_both_versions(
    results: dict[str, Any],
) -> None:
    assert set(results["answers_by_version"]["canary"]) == {"cancer/1", "cancer/2"}


@pytest.mark.parametrize("endpoint", ["plain", "shadow"])
def test_rollouts_benchmark_sees_the_stable_version_answer_without_a_canary(
    results: dict[str, Any], endpoint: str
) -> None:
    assert set(results["answers_by_version"][endpoint]) == {"cancer/1"}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("summary", SUMMARIES)
def test_rollouts_benchmark_measures_every_endpoint(
    results: dict[str, Any], endpoint: str, summary: str
) -> None:
    figures = results["results"][endpoint][summary]
    assert figures["median"] > 0 and len(figures["runs"]) == 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_rollouts_benchmark_gets_no_error_responses(results: dict[str, Any], endpoint: str) -> None:
    assert results["results"][endpoint]["non_2xx"] == 0


@pytest.mark.parametrize("endpoint", ROLLOUTS)
@pytest.mark.parametrize("summary", SUMMARIES)
def test_rollouts_benchmark_compares_each_rollout_with_no_rollout(
    results: dict[str, Any], endpoint: str, summary: str
) -> None:
    assert results["ratios"][endpoint][summary] > 0


def test_rollouts_benchmark_counts_canary_requests_of_the_candidate(
    results: dict[str, Any],
) -> None:
    split = results["canary_split"]
    assert 0 < split["candidate"] < split["requests"]


def test_rollouts_benchmark_counts_completed_shadow_copies(results: dict[str, Any]) -> None:
    mirroring = results["mirroring"]
    assert 0 < mirroring["completed"] <= mirroring["mirrored"]


def test_rollouts_benchmark_reads_completed_copies_from_the_store_too(
    results: dict[str, Any],
) -> None:
    mirroring = results["mirroring"]
    assert mirroring["stored_shadow_requests"] == mirroring["completed"] > 0


def test_rollouts_benchmark_reports_both_targets_as_pass_or_fail(results: dict[str, Any]) -> None:
    targets = results["targets"]
    assert len(targets) == 2 and all(isinstance(target["passed"], bool) for target in targets)
