"""GET /metrics: request metrics of the prediction routes, in process and with workers."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferryman.monitoring.metrics import APPLY_SECONDS
from ferryman.server.metrics import error_kind
from tests.server.conftest import ServeApp, StartServer
from tests.serving._store import WAIT

PREDICT = "/v1/endpoints/{}/predict"
GOOD = {"instances": [{"x": 1.0, "delay": 0}, {"x": 2.0, "delay": 0}]}
MISTYPED = {"instances": [{"x": "high", "delay": 0}]}
MODEL_FAILS = {"instances": [{"x": -1.0, "delay": 0}]}  # the toy model raises for x < 0
TOY = {"endpoint": "toy", "version": "toy/1", "role": "primary"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        found
        for (sample, sample_labels), found in samples(text).items()
        if sample == name and wanted <= sample_labels
    )


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=WAIT
    )


@pytest.mark.anyio
async def test_a_known_request_stream_gives_exact_counters_and_histogram_counts(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        for _ in range(5):
            assert (await served.client.post(PREDICT.format("toy"), json=GOOD)).status_code == 200
        for _ in range(2):
            response = await served.client.post(PREDICT.format("toy"), json=MISTYPED)
            assert response.status_code == 400
        response = await served.client.post(PREDICT.format("toy"), json=MODEL_FAILS)
        assert response.status_code == 500
        text = (await served.client.get("/metrics")).text

    native = {**TOY, "protocol": "native"}
    assert value(text, "ferryman_requests_total", **native, status="200") == 5
    assert value(text, "ferryman_requests_total", **native, status="400") == 2
    assert value(text, "ferryman_requests_total", **native, status="500") == 1
    assert value(text, "ferryman_errors_total", endpoint="toy", kind="schema_validation") == 2
    assert value(text, "ferryman_errors_total", endpoint="toy", kind="prediction_error") == 1
    assert value(text, "ferryman_request_duration_seconds_count", **native) == 8
    assert value(text, "ferryman_batch_size_count", endpoint="toy") == 5
    assert value(text, "ferryman_batch_size_sum", endpoint="toy") == 10
    assert value(text, "ferryman_queue_seconds_count", endpoint="toy") == 5
    assert value(text, "ferryman_compute_seconds_count", endpoint="toy") == 5
    assert value(text, "ferryman_requests_in_flight", endpoint="toy") == 0


@pytest.mark.anyio
async def test_each_protocol_is_labelled_and_other_routes_are_not_counted(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        await served.client.post(PREDICT.format("toy"), json=GOOD)
        await served.client.post(
            "/v2/models/toy/versions/1/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]},
                    {"name": "delay", "shape": [1], "datatype": "FP64", "data": [0.0]},
                ]
            },
        )
        await served.client.post(
            "/v1/endpoints/toy/invocations", json={"dataframe_records": [{"x": 1.0, "delay": 0}]}
        )
        await served.client.get("/healthz")
        text = (await served.client.get("/metrics")).text

    for protocol in ("native", "oip_v2", "mlflow"):
        assert value(text, "ferryman_requests_total", **TOY, protocol=protocol, status="200") == 1
    assert value(text, "ferryman_requests_total") == 3


@pytest.mark.anyio
async def test_unknown_endpoints_share_one_empty_label_so_series_stay_bounded(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        for name in ("nope", "nada", "nix"):
            await served.client.post(PREDICT.format(name), json=GOOD)
        text = (await served.client.get("/metrics")).text

    assert value(text, "ferryman_requests_total", endpoint="", status="404") == 3
    assert value(text, "ferryman_errors_total", endpoint="", kind="endpoint_not_found") == 3
    assert "nope" not in text


@pytest.mark.anyio
async def test_model_load_time_is_reported_per_endpoint_and_version(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        text = (await served.client.get("/metrics")).text

    assert value(text, "ferryman_model_load_seconds", endpoint="toy", version="toy/1") > 0


@pytest.mark.anyio
async def test_metrics_are_prometheus_text_that_promtool_accepts(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        await served.client.post(PREDICT.format("toy"), json=GOOD)
        await served.client.post(PREDICT.format("toy"), json=MISTYPED)
        response = await served.client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain; version=")
    result = promtool_check(response.text)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.anyio
async def test_each_app_counts_only_its_own_requests(serve_app: ServeApp) -> None:
    async with serve_app() as first:
        await first.client.post(PREDICT.format("toy"), json=GOOD)
    async with serve_app() as second:
        text = (await second.client.get("/metrics")).text

    assert value(text, "ferryman_requests_total") == 0


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, b'{"error": "bad", "code": "schema_validation"}', "schema_validation"),
        (401, b'{"error": "no token", "code": "unauthorized"}', "unauthorized"),
        (400, b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "m"}', "schema_validation"),
        (400, b'{"error_code": "BAD_REQUEST", "message": "m"}', "malformed_request"),
        (400, b'{"error": "column x"}', "bad_request"),
        (500, b'{"error": "x must not be negative", "error_id": "1"}', "prediction_error"),
        (500, b'{"error": "internal server error; quote error id 1"}', "internal_error"),
        (504, b'{"error": "too slow"}', "prediction_timeout"),
        (502, b"", "http_502"),
    ],
    ids=[
        "native-code",
        "auth-code",
        "mlflow-schema",
        "mlflow-malformed",
        "oip-400",
        "model-failed",
        "bug",
        "timeout",
        "unknown-status",
    ],
)
def test_error_kind_is_the_body_code_or_follows_the_status(
    status: int, body: bytes, kind: str
) -> None:
    assert error_kind(status, body) == kind


@pytest.mark.slow
def test_workers_write_to_one_fresh_directory_and_metrics_add_up_across_them(
    start_server: StartServer, home: Path
) -> None:
    server = start_server("--workers", "2")
    directories = list((home / "run").glob("metrics-*"))
    for _ in range(20):
        # A new connection per request, so both worker processes take turns accepting.
        response = httpx.post(f"{server.url}{PREDICT.format('toy')}", json=GOOD, timeout=WAIT)
        assert response.status_code == 200
    # Each worker applies its queued requests every APPLY_SECONDS (a scrape applies only
    # those of the worker that answers it).
    time.sleep(APPLY_SECONDS + 0.5)
    texts = [httpx.get(f"{server.url}/metrics", timeout=WAIT).text for _ in range(6)]
    server.stop()

    assert len(directories) == 1
    for text in texts:  # whichever worker answers the scrape sees every worker's requests
        assert value(text, "ferryman_requests_total", **TOY, status="200") == 20
        assert value(text, "ferryman_batch_size_sum", endpoint="toy") == 40
    pids = {
        labels
        for name, labels in samples(texts[-1])
        if name == "ferryman_process_resident_memory_bytes"
    }
    assert len(pids) == 2
    result = promtool_check(texts[-1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert not directories[0].exists()  # removed when the server stopped
