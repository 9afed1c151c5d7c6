"""A real S3 API for tests: moto in server mode, one bucket per test (a pytest plugin)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.store.artifacts import ArtifactStore

_STARTUP_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False  # e.g. the port was taken between choosing and binding it
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the server is up
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run moto's S3 server in a subprocess on 127.0.0.1 and yield its endpoint URL.

    A subprocess (rather than ``ThreadedMotoServer``) keeps the server out of this
    process: pytest's warnings-as-errors filters cannot turn a warning inside the server
    into a failed request, no server thread outlives the session, and the server does not
    compete with the tests for the GIL.
    """
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with log_path.open("wb") as log:
        for _attempt in range(3):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            if _wait_until_serving(url, process):
                break
            _stop(process)
        else:
            pytest.fail(f"moto server did not start; log:\n{log_path.read_text()}")
        try:
            yield url
        finally:
            _stop(process)


@pytest.fixture
def s3_client(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 S3 client for the moto server, with dummy credentials in the environment."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Never read the developer's real AWS configuration or probe instance metadata.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.client("s3", endpoint_url=s3_server)


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A fresh, empty bucket for one test."""
    name = f"ferryman-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store(s3_server: str, s3_bucket: str, tmp_path: Path) -> ArtifactStore:
    """An artifact store at ``s3://<fresh bucket>/artifacts`` on the moto server."""
    return ArtifactStore(
        uri=f"s3://{s3_bucket}/artifacts",
        storage_options={
            "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
            "key": "testing",
            "secret": "testing",
        },
        cache_dir=tmp_path / "cache",
    )
