"""The app in process and real server processes, over a fresh copy of the prepared store.

See :mod:`tests.serving._store` for the endpoints and models the store holds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from ferryman.config import Settings
from ferryman.registry import Registry
from ferryman.server import create_app
from ferryman.serving import EndpointService, RuntimePool
from tests.serving._store import WAIT, fresh_copy, template


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template(tmp_path_factory)


@pytest.fixture
def home(template_home: Path, tmp_path: Path) -> Path:
    """A fresh copy of the prepared store."""
    return fresh_copy(template_home, tmp_path)


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home, user="alice", endpoint_refresh_seconds=3600.0)


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    with Registry.from_settings(settings) as opened:
        yield opened


@pytest.fixture
def endpoints(registry: Registry) -> EndpointService:
    return EndpointService(database=registry.database, user="alice")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Served:
    """An app running in process, its client and its runtime pool."""

    app: Starlette
    client: httpx.AsyncClient

    @property
    def pool(self) -> RuntimePool:
        pool: RuntimePool = self.app.state.pool
        return pool


ServeApp = Callable[..., Any]


@pytest.fixture
def serve_app(home: Path) -> ServeApp:
    """Start the app in process (lifespan included) with settings overrides."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[Served]:
        values: dict[str, Any] = {"home": home, "user": "alice", "endpoint_refresh_seconds": 3600}
        values.update(overrides)
        app = create_app(Settings(**values))
        async with app.router.lifespan_context(app):
            await app.state.pool.wait_loaded()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as c:
                yield Served(app, c)

    return serve


# -- real server processes ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A ``ferryman serve`` subprocess on a loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT)
        return self.process.returncode


StartServer = Callable[..., ServerProcess]


@contextmanager
def server_starter(home: Path, folder: Path) -> Iterator[StartServer]:
    """Start ``python -m ferryman.cli.serve`` processes on ``home`` (logs and working
    directory in ``folder``), each once /readyz says ready; stop them all at the end."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        log = folder / f"server-{port}.log"
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("FERRYMAN_")
        }
        environment.update(
            FERRYMAN_HOME=str(home), FERRYMAN_USER="alice", FERRYMAN_ENDPOINT_REFRESH_SECONDS="0.2"
        )
        environment.update(env or {})
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "ferryman.cli.serve", "--port", str(port), *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=environment,
            )
        server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        wait_ready(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def start_server(home: Path, tmp_path: Path) -> Iterator[StartServer]:
    """Start ``python -m ferryman.cli.serve`` on the store; wait until /readyz says ready."""
    with server_starter(home, tmp_path) as start:
        yield start


def wait_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not become ready:\n{server.output()}")
