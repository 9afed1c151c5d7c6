"""Prometheus metrics of the prediction log: records written, lost, dropped, sampled out.

The server's sampler (``ferryman.server.metrics``) adds what the capture writer counted
since its previous sample; these tests drive it with writers whose log root is a file,
so that no segment can ever be written (as root too, where permissions would not stop it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ferryman.capture import CaptureWriter, EndpointCapture, PredictionLog
from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from ferryman.monitoring import ServingMetrics
from ferryman.monitoring.metrics import CAPTURE_OUTCOMES
from ferryman.server.metrics import CaptureSampler, serving

ROOT = Path(__file__).resolve().parents[2]
RECORDS = "ferryman_capture_records_total"
FAILED = "ferryman_capture_failed_writes_total"
PENDING = "ferryman_capture_pending"


@pytest.fixture
def metrics() -> ServingMetrics:
    return ServingMetrics.create(CollectorRegistry())


@pytest.fixture
def unwritable(tmp_path: Path) -> Path:
    """A log root that is a file: every segment write fails."""
    root = tmp_path / "logs"
    root.write_text("not a directory\n")
    return root


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def submit(writer: CaptureWriter, count: int, *, endpoint: str = "churn", rows: int = 1) -> None:
    """Submit ``count`` requests of ``rows`` rows each."""
    for index in range(count):
        writer.submit(
            f"{endpoint}-{index}-{writer.records_lost}-{writer.pending}",
            endpoint,
            f"{endpoint}/1",
            "primary",
            np.ones((rows, 2)),
            Prediction(np.zeros(rows)),
            1.0,
            columns=["a", "b"],
        )


def value(metrics: ServingMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def outcomes(metrics: ServingMetrics) -> dict[str, float | None]:
    return {outcome: value(metrics, RECORDS, outcome=outcome) for outcome in CAPTURE_OUTCOMES}


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


# -- the metrics ---------------------------------------------------------------------------


def test_every_outcome_is_exposed_at_zero_before_anything_is_captured(
    metrics: ServingMetrics,
) -> None:
    assert outcomes(metrics) == dict.fromkeys(CAPTURE_OUTCOMES, 0.0)
    assert value(metrics, FAILED) == 0.0
    assert value(metrics, PENDING) == 0.0


def test_negative_increases_are_refused_with_the_offending_count(
    metrics: ServingMetrics,
) -> None:
    with pytest.raises(ValueError, match=r"negative increases \{'lost': -2\}"):
        metrics.capture.add(written=3, lost=-2)

    assert outcomes(metrics)["written"] == 0.0


# -- the sampler ---------------------------------------------------------------------------


def test_records_of_a_writer_that_cannot_write_are_counted_as_lost(
    metrics: ServingMetrics, unwritable: Path
) -> None:
    writer = CaptureWriter(root=unwritable)
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 3, rows=2)
    writer.flush()

    sampler.sample()

    assert outcomes(metrics) == {"written": 0.0, "lost": 6.0, "dropped": 0.0, "sampled_out": 0.0}
    assert value(metrics, FAILED) == 1.0


def test_each_sample_adds_only_what_was_counted_since_the_previous_one(
    metrics: ServingMetrics, unwritable: Path
) -> None:
    writer = CaptureWriter(root=unwritable)
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 3)
    writer.flush()
    sampler.sample()
    sampler.sample()
    submit(writer, 2)
    writer.flush()

    sampler.sample()

    assert value(metrics, RECORDS, outcome="lost") == 5.0
    assert value(metrics, FAILED) == 2.0


def test_written_records_are_counted(metrics: ServingMetrics, tmp_path: Path) -> None:
    writer = CaptureWriter(root=tmp_path / "logs")
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 4, rows=3)
    writer.flush()

    sampler.sample()

    assert outcomes(metrics) == {"written": 12.0, "lost": 0.0, "dropped": 0.0, "sampled_out": 0.0}
    assert value(metrics, FAILED) == 0.0


def test_requests_left_out_by_the_sampling_rate_are_counted(
    metrics: ServingMetrics, unwritable: Path
) -> None:
    writer = CaptureWriter(root=unwritable)
    writer.configure("quiet", EndpointCapture(sample_rate=0.0))
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 7, endpoint="quiet", rows=2)

    sampler.sample()

    assert value(metrics, RECORDS, outcome="sampled_out") == 7.0
    assert value(metrics, PENDING) == 0.0


def test_records_refused_by_a_full_buffer_are_counted_as_dropped_and_the_backlog_shown(
    metrics: ServingMetrics, unwritable: Path
) -> None:
    writer = CaptureWriter(root=unwritable, max_pending=2)
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 5, rows=3)

    sampler.sample()

    assert value(metrics, RECORDS, outcome="dropped") == 9.0
    assert value(metrics, PENDING) == 2.0


def test_the_backlog_gauge_falls_after_a_flush(metrics: ServingMetrics, unwritable: Path) -> None:
    writer = CaptureWriter(root=unwritable)
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 4)
    sampler.sample()
    writer.flush()

    sampler.sample()

    assert value(metrics, PENDING) == 0.0


# -- while serving ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_serving_counts_losses_while_it_runs_and_once_more_when_it_stops(
    metrics: ServingMetrics, unwritable: Path
) -> None:
    log = PredictionLog(root=unwritable, maintenance_interval=None)
    async with serving(metrics, capture=log, interval=3600.0):
        submit(log.writer, 2)
        log.writer.flush()
        submit(log.writer, 3)
        log.writer.flush()
        # The first sample ran when serving started, before any of this.
        assert value(metrics, RECORDS, outcome="lost") == 0.0

    assert value(metrics, RECORDS, outcome="lost") == 5.0
    assert value(metrics, FAILED) == 2.0


@pytest.mark.anyio
async def test_serving_without_a_prediction_log_counts_nothing(metrics: ServingMetrics) -> None:
    async with serving(metrics):
        pass

    assert outcomes(metrics) == dict.fromkeys(CAPTURE_OUTCOMES, 0.0)


@pytest.mark.anyio
@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")], ids=["zero", "negative", "nan"])
async def test_serving_refuses_an_interval_that_is_not_positive(
    metrics: ServingMetrics, interval: float
) -> None:
    with pytest.raises(InvalidInputError, match="interval must be a positive number of seconds"):
        async with serving(metrics, interval=interval):
            pass


def test_promtool_accepts_the_exposition_with_losses(
    metrics: ServingMetrics, unwritable: Path
) -> None:
    writer = CaptureWriter(root=unwritable, max_pending=1)
    sampler = CaptureSampler(metrics.capture, writer)
    submit(writer, 3)
    writer.flush()
    sampler.sample()

    result = promtool_check(metrics.exposition().decode())

    assert result.returncode == 0, result.stdout + result.stderr


# -- multiprocess mode --------------------------------------------------------------------------

_WORKER = """
import sys
from pathlib import Path
import numpy as np
from prometheus_client import CollectorRegistry
from ferryman.capture import CaptureWriter
from ferryman.flavors.base import Prediction
from ferryman.monitoring import ServingMetrics
from ferryman.server.metrics import CaptureSampler

directory, root, name, lost, pending, stops = sys.argv[1:]
metrics = ServingMetrics.create(CollectorRegistry(), multiprocess_dir=Path(directory))
writer = CaptureWriter(root=root)
sampler = CaptureSampler(metrics.capture, writer)

def submit(count):
    for index in range(count):
        writer.submit(f"{name}-{index}-{writer.pending}", "churn", "churn/1", "primary",
                      np.ones((1, 2)), Prediction(np.zeros(1)), 1.0, columns=["a", "b"])

submit(int(lost))
writer.flush()
sampler.sample()
submit(int(pending))
sampler.sample()
if stops == "stops":
    metrics.mark_process_dead()
"""


@pytest.fixture(scope="module")
def multiprocess_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two workers: one lost 3 records and stopped with 4 pending, one lost 5 with 2 pending."""
    directory = tmp_path_factory.mktemp("prometheus")
    root = tmp_path_factory.mktemp("capture") / "logs"
    root.write_text("not a directory\n")
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for worker in (("a", "3", "4", "stops"), ("b", "5", "2", "runs")):
        subprocess.run(
            [sys.executable, "-c", _WORKER, str(directory), str(root), *worker],
            cwd=ROOT,
            env=environment,
            check=True,
            timeout=120,
        )
    reader = ServingMetrics.create(CollectorRegistry(), multiprocess_dir=directory)
    return reader.exposition().decode()


def multiprocess_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        (RECORDS, {"outcome": "lost"}, 8.0),
        (RECORDS, {"outcome": "written"}, 0.0),
        (RECORDS, {"outcome": "dropped"}, 0.0),
        (FAILED, {}, 2.0),
        (PENDING, {}, 2.0),  # the stopped worker's backlog no longer counts
    ],
    ids=["lost", "written", "dropped", "failed-writes", "pending-of-live-workers"],
)
def test_workers_add_up_in_multiprocess_mode(
    multiprocess_text: str, name: str, labels: dict[str, str], expected: float
) -> None:
    found = multiprocess_samples(multiprocess_text).get((name, frozenset(labels.items())))

    assert found == expected


def test_promtool_accepts_the_multiprocess_exposition(multiprocess_text: str) -> None:
    result = promtool_check(multiprocess_text)

    assert result.returncode == 0, result.stdout + result.stderr


# -- the documented alert rule ------------------------------------------------------------------


def documented_alert_rules() -> str:
    """The YAML block under "Alerting on lost records" in docs/monitoring.md."""
    text = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    section = text.split("### Alerting on lost records", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert found is not None, "no yaml block under 'Alerting on lost records'"
    return found.group(1)


LOST = 'ferryman_capture_records_total{job="ferryman", instance="a:8000", outcome="%s"}'
FIRING = {"severity": "critical", "job": "ferryman", "instance": "a:8000", "outcome": "lost"}


def test_the_documented_alert_rule_fires_on_lost_records_and_resolves(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    (tmp_path / "rules.yml").write_text(documented_alert_rules())
    # 12 records lost at minute 10; records written all along; nothing ever dropped.
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": LOST % "lost", "values": "0x9 12x20"},
                    {"series": LOST % "written", "values": "0+100x30"},
                    {"series": LOST % "dropped", "values": "0x30"},
                ],
                "alert_rule_test": [
                    {"eval_time": "9m", "alertname": "FerrymanCaptureRecordsLost"},
                    {
                        "eval_time": "12m",
                        "alertname": "FerrymanCaptureRecordsLost",
                        "exp_alerts": [
                            {
                                "exp_labels": FIRING,
                                "exp_annotations": {
                                    "summary": "Prediction records lost on a:8000",
                                    "description": "About 12 prediction records were lost in "
                                    "the last 5 minutes. lost: the log storage cannot be "
                                    "written (disk full, read-only, unreachable; see the "
                                    "server log for the error). dropped: the capture buffer "
                                    "was full.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "20m", "alertname": "FerrymanCaptureRecordsLost"},
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(json.dumps(tests))  # YAML is a superset of JSON

    result = subprocess.run(
        [promtool, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
