"""Queue depths and shadow mirror metrics: exact values for a known stream, in one process
and summed over worker processes, and an exposition promtool accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ferryman.monitoring import ServingMetrics

ROOT = Path(__file__).resolve().parents[2]
WAIT = 120.0


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=WAIT
    )


def play(metrics: ServingMetrics) -> None:
    """The known stream: what one process saw."""
    queues = metrics.queues
    for _ in range(3):
        queues.count_mirror_drop("churn")
    queues.count_mirror_drop("fraud")
    for copies in (1, 3, 3, 40):
        queues.observe_mirror_batch("churn", copies)
    queues.set_depths(queues.mirror_depth, {"churn": 7, "fraud": 0})
    queues.set_depths(queues.batch_depth, {"churn": 2, "fraud": 5})
    queues.set_depths(queues.batch_depth, {"churn": 4})  # the latest sample wins


@pytest.fixture(scope="module")
def single_text() -> str:
    metrics = ServingMetrics.create(CollectorRegistry())
    play(metrics)
    return metrics.exposition().decode()


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("ferryman_mirror_dropped_total", {"endpoint": "churn"}, 3.0),
        ("ferryman_mirror_dropped_total", {"endpoint": "fraud"}, 1.0),
        ("ferryman_mirror_batch_size_count", {"endpoint": "churn"}, 4.0),
        ("ferryman_mirror_batch_size_sum", {"endpoint": "churn"}, 47.0),
        ("ferryman_mirror_batch_size_bucket", {"endpoint": "churn", "le": "2.0"}, 1.0),
        ("ferryman_mirror_batch_size_bucket", {"endpoint": "churn", "le": "4.0"}, 3.0),
        ("ferryman_mirror_batch_size_bucket", {"endpoint": "churn", "le": "64.0"}, 4.0),
        ("ferryman_mirror_queue_depth", {"endpoint": "churn"}, 7.0),
        ("ferryman_mirror_queue_depth", {"endpoint": "fraud"}, 0.0),
        ("ferryman_batch_queue_depth", {"endpoint": "churn"}, 4.0),
        ("ferryman_batch_queue_depth", {"endpoint": "fraud"}, 5.0),
    ],
    ids=lambda value: str(value) if not isinstance(value, dict) else "-".join(value.values()),
)
def test_a_known_stream_gives_exact_queue_metrics(
    single_text: str, name: str, labels: dict[str, str], expected: float
) -> None:
    assert sample(single_text, name, **labels) == expected


def test_promtool_accepts_the_queue_metrics(single_text: str) -> None:
    result = promtool_check(single_text)

    assert result.returncode == 0, result.stdout + result.stderr


# -- multiprocess mode --------------------------------------------------------------------------

_WORKER = """
import sys
from pathlib import Path
from prometheus_client import CollectorRegistry
from ferryman.monitoring import ServingMetrics

directory, drops, depth, stops = sys.argv[1:]
metrics = ServingMetrics.create(CollectorRegistry(), multiprocess_dir=Path(directory))
queues = metrics.queues
for _ in range(int(drops)):
    queues.count_mirror_drop("churn")
queues.observe_mirror_batch("churn", int(drops))
queues.set_depths(queues.mirror_depth, {"churn": int(depth)})
queues.set_depths(queues.batch_depth, {"churn": 10 * int(depth)})
if stops == "stops":
    metrics.mark_process_dead()
"""


@pytest.fixture(scope="module")
def multiprocess_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two workers: one dropped 2 copies and stopped with 6 waiting; one dropped 5, 3 waiting."""
    directory = tmp_path_factory.mktemp("prometheus")
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for worker in (("2", "6", "stops"), ("5", "3", "runs")):
        subprocess.run(
            [sys.executable, "-c", _WORKER, str(directory), *worker],
            cwd=ROOT,
            env=environment,
            check=True,
            timeout=WAIT,
        )
    reader = ServingMetrics.create(CollectorRegistry(), multiprocess_dir=directory)
    return reader.exposition().decode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ferryman_mirror_dropped_total", 7.0),  # summed over every worker, stopped included
        ("ferryman_mirror_batch_size_count", 2.0),
        ("ferryman_mirror_batch_size_sum", 7.0),
        ("ferryman_mirror_queue_depth", 3.0),  # summed over live workers only
        ("ferryman_batch_queue_depth", 30.0),
    ],
    ids=["dropped", "batches", "copies", "mirror-depth", "batch-depth"],
)
def test_workers_add_up_in_multiprocess_mode(
    multiprocess_text: str, name: str, expected: float
) -> None:
    assert sample(multiprocess_text, name, endpoint="churn") == expected


def test_promtool_accepts_the_multiprocess_queue_metrics(multiprocess_text: str) -> None:
    result = promtool_check(multiprocess_text)

    assert result.returncode == 0, result.stdout + result.stderr
