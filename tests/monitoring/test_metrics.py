"""ServingMetrics: its own registry per instance, exact values for a known stream."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from ferryman.monitoring import ServingMetrics
from ferryman.monitoring import metrics as metrics_module
from ferryman.monitoring.metrics import BATCH_BUCKETS, LATENCY_BUCKETS
from ferryman.server.metrics import serving


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


def _histogram(name: str, buckets: tuple[float, ...], values: list[float]) -> dict[str, float]:
    """What prometheus-client's own histogram exposes after observing ``values`` one by one."""
    registry = CollectorRegistry()
    histogram = Histogram(name, "reference", registry=registry, buckets=buckets)
    for observed in values:
        histogram.observe(observed)
    return {
        sample.labels.get("le", sample.name): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _exposed(metrics: ServingMetrics, name: str, **labels: str) -> dict[str, float]:
    return {
        sample.labels.get("le", sample.name): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name.startswith(name)
        and not sample.name.endswith("_created")
        and all(sample.labels.get(key) == wanted for key, wanted in labels.items())
    }


# Every bucket bound itself (Prometheus's "le": a value on a bound counts in its bucket),
# values between and beyond them, and zero.
_SECONDS = st.one_of(
    st.sampled_from([0.0, *LATENCY_BUCKETS]),
    st.floats(0.0, 20.0, allow_nan=False, allow_infinity=False),
)


@given(
    seconds=st.lists(_SECONDS, min_size=1, max_size=60),
    rows=st.lists(st.sampled_from([1, 2, 3, *BATCH_BUCKETS, 5000, 20000]), min_size=1),
)
def test_queued_requests_expose_exactly_what_direct_observations_would(
    seconds: list[float], rows: list[int]
) -> None:
    metrics = ServingMetrics.create(CollectorRegistry())
    churn = metrics.endpoint("churn", "native")
    calls = [rows[i % len(rows)] for i in range(len(seconds))]
    for value_s, batch_rows in zip(seconds, calls, strict=True):
        churn.record(
            version="churn/3",
            status=200,
            seconds=value_s,
            queue_seconds=value_s / 2,
            compute_seconds=value_s / 4,
            batch_rows=batch_rows,
        )
    queued = metrics.pending

    duration = _exposed(metrics, "ferryman_request_duration_seconds", endpoint="churn")
    queue = _exposed(metrics, "ferryman_queue_seconds", endpoint="churn")
    batch = _exposed(metrics, "ferryman_batch_size", endpoint="churn")

    assert queued == len(seconds)
    assert metrics.pending == 0  # collecting the registry applied them
    for exposed, expected in (
        (duration, _histogram("ferryman_request_duration_seconds", LATENCY_BUCKETS, seconds)),
        (queue, _histogram("ferryman_queue_seconds", LATENCY_BUCKETS, [s / 2 for s in seconds])),
        (batch, _histogram("ferryman_batch_size", BATCH_BUCKETS, [float(r) for r in calls])),
    ):
        assert exposed.keys() == expected.keys()
        for key, number in expected.items():
            assert exposed[key] == pytest.approx(number, rel=1e-12, abs=1e-12), key


def test_a_full_queue_is_applied_by_the_recording_call(
    metrics: ServingMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_module, "MAX_PENDING", 3)
    churn = metrics.endpoint("churn", "native")

    for _ in range(2):
        churn.record(version="churn/3", status=200, seconds=0.01)
    waiting = metrics.pending
    churn.record(version="churn/3", status=200, seconds=0.01)

    assert (waiting, metrics.pending) == (2, 0)


def test_a_serving_process_applies_the_queue_without_a_scrape(
    metrics: ServingMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ferryman.server.metrics.APPLY_SECONDS", 0.01)
    churn = metrics.endpoint("churn", "native")

    async def serve() -> tuple[int, int]:
        async with serving(metrics, interval=5.0):
            churn.record(version="churn/3", status=200, seconds=0.01)
            before = metrics.pending
            for _ in range(200):  # bounded: 2 s at most
                await asyncio.sleep(0.01)
                if metrics.pending == 0:
                    break
            return before, metrics.pending

    assert asyncio.run(serve()) == (1, 0)
    assert (
        value(
            metrics,
            "ferryman_requests_total",
            endpoint="churn",
            version="churn/3",
            protocol="native",
            role="primary",
            status="200",
        )
        == 1
    )


def test_model_load_time_is_a_gauge_per_endpoint_and_version(metrics: ServingMetrics) -> None:
    metrics.observe_model_load("churn", "churn/3", 1.5)

    assert value(metrics, "ferryman_model_load_seconds", endpoint="churn", version="churn/3") == 1.5


def test_single_process_exposition_has_process_metrics(metrics: ServingMetrics) -> None:
    text = metrics.exposition().decode()

    assert "process_resident_memory_bytes " in text
    assert "process_cpu_seconds_total " in text
    assert "process_open_fds " in text
    assert metrics.multiprocess_dir is None
