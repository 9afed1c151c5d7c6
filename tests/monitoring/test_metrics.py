"""ServingMetrics: its own registry per instance, exact values for a known stream."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from ferryman.monitoring import ServingMetrics


@pytest.fixture
def metrics() -> ServingMetrics:
    return ServingMetrics.create(CollectorRegistry())


def value(metrics: ServingMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_instance_has_its_own_registry() -> None:
    first = ServingMetrics.create(CollectorRegistry())
    second = ServingMetrics.create(CollectorRegistry())

    first.endpoint("churn", "native").record(version="churn/3", status=200, seconds=0.01)

    assert value(first, "ferryman_requests_in_flight", endpoint="churn") == 0.0
    assert (
        second.registry.get_sample_value("ferryman_requests_in_flight", {"endpoint": "churn"})
        is None
    )


def test_a_known_stream_gives_exact_counts_by_status_and_error_kind(
    metrics: ServingMetrics,
) -> None:
    churn = metrics.endpoint("churn", "native")
    for _ in range(5):
        churn.record(
            version="churn/3",
            status=200,
            seconds=0.002,
            queue_seconds=0.0001,
            compute_seconds=0.001,
            batch_rows=4,
        )
    for _ in range(2):
        churn.record(version="churn/3", status=400, seconds=0.001, kind="schema_validation")
    churn.record(version="churn/3", status=500, seconds=0.003, kind="prediction_error")

    labels = {"endpoint": "churn", "version": "churn/3", "protocol": "native", "role": "primary"}
    assert value(metrics, "ferryman_requests_total", **labels, status="200") == 5
    assert value(metrics, "ferryman_requests_total", **labels, status="400") == 2
    assert value(metrics, "ferryman_requests_total", **labels, status="500") == 1
    assert value(metrics, "ferryman_errors_total", endpoint="churn", kind="schema_validation") == 2
    assert value(metrics, "ferryman_errors_total", endpoint="churn", kind="prediction_error") == 1
    assert value(metrics, "ferryman_request_duration_seconds_count", **labels) == 8
    assert value(metrics, "ferryman_request_duration_seconds_bucket", **labels, le="0.0025") == 7
    assert value(metrics, "ferryman_batch_size_count", endpoint="churn") == 5
    assert value(metrics, "ferryman_batch_size_sum", endpoint="churn") == 20
    assert value(metrics, "ferryman_queue_seconds_count", endpoint="churn") == 5
    assert value(metrics, "ferryman_compute_seconds_bucket", endpoint="churn", le="0.001") == 5


def test_model_load_time_is_a_gauge_per_endpoint_and_version(metrics: ServingMetrics) -> None:
    metrics.observe_model_load("churn", "churn/3", 1.5)

    assert value(metrics, "ferryman_model_load_seconds", endpoint="churn", version="churn/3") == 1.5


def test_single_process_exposition_has_process_metrics(metrics: ServingMetrics) -> None:
    text = metrics.exposition().decode()

    assert "process_resident_memory_bytes " in text
    assert "process_cpu_seconds_total " in text
    assert "process_open_fds " in text
    assert metrics.multiprocess_dir is None
