"""Helpers for alert tests: a real webhook receiver on loopback and a fixed metric source.

Loaded as a plugin by ``tests/conftest.py``, so every test can ask for ``receiver``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ferryman.monitoring.base import METRIC_CATALOGUE, Measurement, WindowSelector


class Receiver:
    """A real HTTP server on a loopback port that records what is POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.status = 200
        self.received = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                with receiver.received:
                    receiver.paths.append(self.path)
                    receiver.bodies.append(body)
                    receiver.received.notify_all()
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running :class:`Receiver`, shut down after the test."""
    server = Receiver()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        thread.join(10)


class Fixed:
    """A MetricSource with one value for every metric.

    Args:
        value: The value every measurement has (500 samples).
        names: The metric names it offers (default: the whole catalogue).
    """

    def __init__(self, value: float, names: Sequence[str] | None = None) -> None:
        self.value = value
        self.names = list(names) if names is not None else sorted(METRIC_CATALOGUE)

    def measure(
        self, metric: str, labels: Mapping[str, str], selector: WindowSelector
    ) -> Measurement:
        return Measurement(self.value, 500)

    def metric_names(self) -> Sequence[str]:
        return self.names
