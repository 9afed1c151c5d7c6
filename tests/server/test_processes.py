"""Real ``ferryman serve`` processes on loopback ports: tritonclient, SIGTERM, workers, fuzzing."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from ferryman.config import Settings
from ferryman.registry import Registry
from tests.server.conftest import ServerProcess, StartServer, server_starter
from tests.serving._store import WAIT, fresh_copy

pytestmark = pytest.mark.slow


def triton_client(url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=url.removeprefix("http://"))


#: The tests of :func:`read_only_server` run on one pytest-xdist worker, so it starts once.
READ_ONLY = pytest.mark.xdist_group("read-only-server")


@pytest.fixture(scope="module")
def read_only_server(
    template_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the tests that only read and predict (starting one takes seconds)."""
    folder = tmp_path_factory.mktemp("read-only-server")
    with server_starter(fresh_copy(template_home, folder), folder) as start:
        yield start()


@READ_ONLY
def test_tritonclient_sees_a_live_ready_server_and_model_metadata(
    read_only_server: ServerProcess,
) -> None:
    client = triton_client(read_only_server.url)

    metadata = client.get_model_metadata("mixed")

    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.get_server_metadata()["extensions"] == []
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("age", "INT64"),
        ("income", "FP64"),
        ("city", "BYTES"),
        ("member", "BOOL"),
    ]


@READ_ONLY
def test_tritonclient_infers_on_a_table_signature_with_named_inputs(
    read_only_server: ServerProcess,
) -> None:
    client = triton_client(read_only_server.url)
    columns: list[tuple[str, str, np.ndarray]] = [
        ("age", "INT64", np.array([[30], [40]], dtype=np.int64)),
        ("income", "FP32", np.array([[1.5], [2.5]], dtype=np.float32)),
        ("city", "BYTES", np.array([["Oslo"], ["Bergen"]], dtype=object)),
        ("member", "BOOL", np.array([[True], [False]])),
    ]
    inputs = []
    for name, datatype, values in columns:
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=False)
        inputs.append(tensor)

    result = client.infer(
        "mixed",
        inputs,
        outputs=[triton.InferRequestedOutput("predict", binary_data=False)],
        request_id="triton-1",
    )

    assert result.as_numpy("predict").tolist() == [131, 40]
    assert result.get_response()["id"] == "triton-1"


@READ_ONLY
def test_tritonclient_infers_on_a_tensor_signature(read_only_server: ServerProcess) -> None:
    client = triton_client(read_only_server.url)
    values = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    tensor = triton.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(values, binary_data=False)

    result = client.infer(
        "iris",
        [tensor],
        model_version="1",
        outputs=[
            triton.InferRequestedOutput("predict", binary_data=False),
            triton.InferRequestedOutput("predict_proba", binary_data=False),
        ],
    )

    assert result.as_numpy("predict").tolist() == [0, 2]
    probabilities = result.as_numpy("predict_proba")
    assert isinstance(probabilities, np.ndarray)
    assert probabilities.shape == (2, 3)


@READ_ONLY
def test_tritonclient_reports_a_client_error_as_a_400(read_only_server: ServerProcess) -> None:
    client = triton_client(read_only_server.url)
    tensor = triton.InferInput("input-0", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32), binary_data=False)

    with pytest.raises(triton.InferenceServerException, match=r"expected \[n, 4\]") as caught:
        client.infer("iris", [tensor])
    assert caught.value.status() == "400"


def test_sigterm_lets_every_in_flight_request_finish_then_exits(
    start_server: StartServer, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    server = start_server(env={"FERRYMAN_MODEL_THREADS": "8", "TOY_MARKS": str(marks)})

    def slow_request(i: int) -> int:
        response = httpx.post(
            f"{server.url}/v1/endpoints/toy/predict",
            json={"instances": [{"x": float(i), "delay": 1.0}]},
            timeout=WAIT,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=6) as threads:
        futures = [threads.submit(slow_request, i) for i in range(6)]
        deadline = time.monotonic() + WAIT
        while len(list(marks.iterdir())) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)  # until every request is inside the model
        server.process.send_signal(signal.SIGTERM)
        statuses = [future.result(timeout=WAIT) for future in futures]

    assert statuses == [200] * 6
    # uvicorn re-raises the signal once drained, so the exit reads as "ended by SIGTERM".
    assert server.process.wait(WAIT) in (0, -signal.SIGTERM)
    assert "Waiting for connections to close" in server.output()


def test_workers_serve_the_same_endpoints_and_follow_an_alias_together(
    start_server: StartServer, home: Path
) -> None:
    server = start_server("--workers", "2")
    url = f"{server.url}/v1/endpoints/toy/predict"

    def version() -> str:
        # A new connection per request, so both worker processes take turns accepting.
        response = httpx.post(url, json={"instances": [{"x": 1.0, "delay": 0}]}, timeout=WAIT)
        assert response.status_code == 200
        model_version: str = response.json()["model_version"]
        return model_version

    assert {version() for _ in range(20)} == {"toy/1"}
    with Registry.from_settings(Settings(home=home, user="alice")) as registry:
        registry.set_alias("toy", "production", 2)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and {version() for _ in range(20)} != {"toy/2"}:
        time.sleep(0.2)

    assert {version() for _ in range(20)} == {"toy/2"}
    swaps = re.findall(
        r"\[(\d+)\] ferryman.serving: Endpoint 'toy' now serves toy/2", server.output()
    )
    assert len(set(swaps)) == 2  # each worker process swapped on its own


def test_binding_beyond_loopback_without_insecure_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ferryman.cli.serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=WAIT,
    )

    assert result.returncode == 2
    assert "refusing to bind to '0.0.0.0'" in result.stderr
    assert "--insecure" in result.stderr


SCHEMATHESIS_CONFIG = """
[parameters]
"path.endpoint" = "mixed"
"path.name" = "mixed"
"path.version" = "1"
"""


def test_schemathesis_finds_no_server_error_and_no_response_off_the_document(
    start_server: StartServer, tmp_path: Path
) -> None:
    # positive_data_acceptance is left out: the document describes the protocols, and a
    # body can fit it yet not the model's signature (a 400 naming the column is right).
    server = start_server("--default-endpoint", "mixed")
    (tmp_path / "schemathesis.toml").write_text(SCHEMATHESIS_CONFIG)

    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "25",
            "--seed",
            "20240601",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=480,  # a hang guard: about 35 s on a quiet machine, 150 s under heavy load
    )

    assert result.returncode == 0, result.stdout[-20000:]
    assert "passed" in result.stdout
