"""The registry benchmark's smoke run: it finishes and reports every figure.

The benchmark runs once, in a subprocess with tiny sizes, and the tests read its JSON.
Timings are only checked to be positive: the machines are shared and noisy, so no test
asserts how long anything takes.
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

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "registry.py"
FLAVORS = ["sklearn", "onnx", "xgboost", "lightgbm", "mlflow", "python"]
LARGE_MODELS = ["sklearn", "lightgbm", "xgboost"]
FLAVOR_SUMMARIES = ["register_s", "load_predict_s", "floor_load_predict_s"]
LARGE_SUMMARIES = ["ferryman_load_s", "floor_load_s", "sha256_s"]


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the smoke run writes its JSON to."""
    return tmp_path_factory.mktemp("bench-smoke-results")


@pytest.fixture(scope="module")
def smoke_run(
    tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``bench/registry.py --smoke`` once, from an empty working directory."""
    # The developer's FERRYMAN_* settings must not reach the benchmark.
    env = {key: value for key, value in os.environ.items() if not key.startswith("FERRYMAN_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--output-dir", str(output_dir)],
        cwd=tmp_path_factory.mktemp("bench-smoke-cwd"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a performance assertion
        check=False,
    )


@pytest.fixture(scope="module")
def results(smoke_run: subprocess.CompletedProcess[str], output_dir: Path) -> dict[str, Any]:
    """The JSON document the smoke run wrote."""
    path = output_dir / "registry.json"
    if not path.is_file():
        pytest.fail(
            f"The smoke run wrote no {path}; its stderr ends with:\n{smoke_run.stderr[-3000:]}"
        )
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


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
