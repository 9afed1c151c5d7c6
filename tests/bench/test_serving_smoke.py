"""The serving benchmark's smoke run: it finishes and reports every figure.

The benchmark runs once, in a subprocess, for one second per contender, and the tests
read its JSON. It drives the servers with ``wrk`` and its open-loop generator (C, built
with the machine's compiler), so without ``wrk`` or a C compiler the module is skipped.
MLServer takes part only if its environment (``.venv-peers/mlserver``) has been created
by a full run. No test asserts a throughput or a latency: the machines are shared and
noisy.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.bench._smoke import BENCH, NEEDS_CC, NEEDS_WRK, smoke_fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("bench-smoke"),
    NEEDS_WRK,
    NEEDS_CC,
]

SCRIPT = BENCH / "serving" / "throughput.py"
WORKLOADS = ["1 row x 1 conn", "1 row x 16 conn", "1 row x 64 conn", "32 rows x 16 conn"]
ALWAYS_MEASURED = ["ferryman-native", "ferryman-v2", "floor"]
SUMMARIES = ["requests_per_s", "p50_s", "p99_s"]


smoke_run, results = smoke_fixtures(SCRIPT, "serving.json")


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


@pytest.mark.parametrize("key", ["batch_s", "one_row_s", "ratio", "cpu_ratio"])
def test_serving_benchmark_times_the_batched_model(results: dict[str, Any], key: str) -> None:
    assert results["batching"][key] > 0


def test_serving_benchmark_charges_the_servers_cpu_to_each_endpoint(
    results: dict[str, Any], smoke_run: subprocess.CompletedProcess[str]
) -> None:
    cpu = results["batching"]["cpu_per_request_s"]
    assert cpu["batched"] > 0 and cpu["unbatched"] > 0
    assert "Server CPU per request" in smoke_run.stdout


OPEN_LOOP_RUNS = ["unbatched", "batched", "batched"]
OPEN_LOOP_FIGURES = ["rate_per_s", "achieved_per_s", "min_s", "p50_s", "p90_s", "p99_s", "max_s"]


def test_serving_benchmark_runs_micro_batching_open_loop(results: dict[str, Any]) -> None:
    runs = results["batching"]["open_loop"]["runs"]
    assert [run["contender"] for run in runs] == OPEN_LOOP_RUNS


@pytest.mark.parametrize("index", range(len(OPEN_LOOP_RUNS)))
def test_serving_benchmark_open_loop_answers_every_request(
    results: dict[str, Any], index: int
) -> None:
    result = results["batching"]["open_loop"]["runs"][index]["result"]
    assert result["requests"] > 0 and result["responses"] == result["requests"]


@pytest.mark.parametrize("index", range(len(OPEN_LOOP_RUNS)))
@pytest.mark.parametrize("figure", OPEN_LOOP_FIGURES)
def test_serving_benchmark_open_loop_reports_rates_and_latencies(
    results: dict[str, Any], index: int, figure: str
) -> None:
    run = results["batching"]["open_loop"]["runs"][index]
    assert (run | run["result"])[figure] > 0


@pytest.mark.parametrize("index", range(len(OPEN_LOOP_RUNS)))
def test_serving_benchmark_times_the_generator_against_the_echo_app_at_each_rate(
    results: dict[str, Any], index: int
) -> None:
    run = results["batching"]["open_loop"]["runs"][index]
    floor = run["generator_floor"]
    assert floor["rate_per_s"] == run["result"]["rate_per_s"]
    assert floor["requests"] > 0 and floor["responses"] == floor["requests"]
    assert floor["non_2xx"] == 0 and floor["p99_s"] > 0


@pytest.mark.parametrize("index", range(len(OPEN_LOOP_RUNS)))
def test_serving_benchmark_open_loop_reports_the_generators_send_lag(
    results: dict[str, Any], index: int
) -> None:
    result = results["batching"]["open_loop"]["runs"][index]["result"]
    assert result["send_lag_max_s"] >= result["send_lag_p99_s"] >= 0
    assert isinstance(result["kept_up"], bool)


@pytest.mark.parametrize("index", range(len(OPEN_LOOP_RUNS)))
@pytest.mark.parametrize("histogram", ["queue_s", "compute_s"])
def test_serving_benchmark_reads_the_batchers_histograms_around_the_open_loop(
    results: dict[str, Any], index: int, histogram: str
) -> None:
    server = results["batching"]["open_loop"]["runs"][index]["server_p99"][histogram]
    assert server["count"] > 0 and server["value_s"] > 0


def test_serving_benchmark_judges_the_batched_p99_on_the_open_loop_runs(
    results: dict[str, Any],
) -> None:
    names = [target["target"] for target in results["targets"] if "batched p99" in target["target"]]
    assert len(names) == 2 and all(", open loop at " in name for name in names)


def test_serving_benchmark_reports_every_target_as_pass_or_fail(results: dict[str, Any]) -> None:
    targets = results["targets"]
    assert targets and all(isinstance(target["passed"], bool) for target in targets)


def test_serving_benchmark_measures_mlserver_or_says_why_not(results: dict[str, Any]) -> None:
    measured = "mlserver" in results["workloads"]["1 row x 16 conn"]["results"]
    said_why = any(reason.startswith("mlserver") for reason in results["skipped"])
    assert measured != said_why


@pytest.mark.parametrize("model", ["hgb-300", "hgb-categorical"])
def test_serving_benchmark_measures_where_batching_pays(
    results: dict[str, Any], model: str
) -> None:
    found = results["batching"]["sweep"][model]
    assert found["nodes"] > 0 and found["ratio"] > 0 and found["cpu_ratio"] > 0
    assert found["call_s"]["one_row_s"] > 0 and found["call_s"]["batch_s"] > 0
    assert all(r["non_2xx"] == 0 for r in found["results"].values())


def test_serving_benchmark_sweep_covers_both_prediction_paths(results: dict[str, Any]) -> None:
    sweep = results["batching"]["sweep"]
    assert sweep["hgb-300"]["compiled"] and not sweep["hgb-categorical"]["compiled"]
    assert results["batching"]["compiled"]
