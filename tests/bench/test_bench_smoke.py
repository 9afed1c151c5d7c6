"""The registry benchmark's smoke run: it finishes and reports every figure.

The benchmark runs once, in a subprocess with tiny sizes, and the tests read its JSON.
Timings are only checked to be positive: the machines are shared and noisy, so no test
asserts how long anything takes.
"""

from __future__ import annotations

import math
import subprocess
from typing import Any

import pytest

from tests.bench._smoke import BENCH, smoke_fixtures

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench-smoke")]

SCRIPT = BENCH / "registry.py"
FLAVORS = ["sklearn", "onnx", "xgboost", "lightgbm", "mlflow", "python"]
LARGE_MODELS = ["sklearn", "lightgbm", "xgboost"]
FLAVOR_SUMMARIES = ["register_s", "load_predict_s", "floor_load_predict_s"]
LARGE_SUMMARIES = ["ferryman_load_s", "floor_load_s", "sha256_s"]


smoke_run, results = smoke_fixtures(SCRIPT, "registry.json")


def test_registry_benchmark_smoke_run_exits_successfully(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]


def test_registry_benchmark_prints_both_tables(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    assert "| Flavor" in smoke_run.stdout and "| Model" in smoke_run.stdout


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("summary", FLAVOR_SUMMARIES)
def test_registry_benchmark_times_every_flavor(
    results: dict[str, Any], flavor: str, summary: str
) -> None:
    figures = results["flavors"][flavor][summary]
    assert figures["median"] > 0 and figures["p90"] > 0 and len(figures["runs"]) == 1


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("key", ["artifact_bytes", "load_ratio"])
def test_registry_benchmark_sizes_and_compares_every_flavor(
    results: dict[str, Any], flavor: str, key: str
) -> None:
    assert results["flavors"][flavor][key] > 0


@pytest.mark.parametrize("model", LARGE_MODELS)
@pytest.mark.parametrize("summary", LARGE_SUMMARIES)
def test_registry_benchmark_times_every_large_model_and_its_floor(
    results: dict[str, Any], model: str, summary: str
) -> None:
    figures = results["large_models"][model][summary]
    assert figures["median"] > 0 and figures["p90"] > 0 and len(figures["runs"]) == 1


@pytest.mark.parametrize("model", LARGE_MODELS)
@pytest.mark.parametrize("key", ["artifact_bytes", "ratio"])
def test_registry_benchmark_sizes_and_compares_every_large_model(
    results: dict[str, Any], model: str, key: str
) -> None:
    assert results["large_models"][model][key] > 0


@pytest.mark.parametrize("model", LARGE_MODELS)
def test_registry_benchmark_reports_load_overhead_of_every_large_model(
    results: dict[str, Any], model: str
) -> None:
    # A difference of two noisy timings: finite, but it may be slightly negative.
    assert math.isfinite(results["large_models"][model]["overhead_s"])


@pytest.mark.parametrize("key", ["cpu", "logical_cores", "usable_cores", "python", "packages"])
def test_registry_benchmark_records_the_machine(results: dict[str, Any], key: str) -> None:
    assert results["machine"][key]


def test_registry_benchmark_records_package_versions(results: dict[str, Any]) -> None:
    assert all(results["machine"]["packages"][name] for name in ("ferryman", "numpy", "skops"))
