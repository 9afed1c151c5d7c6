"""Prediction capture end to end: real ``ferryman serve`` processes, real HTTP, the real log.

A server is stopped with SIGTERM or killed with SIGKILL under load, and the records in the
log (``LogStore`` on the same ``FERRYMAN_HOME``) are compared with the responses the client
received, matched by their ``X-Request-ID``. Personal data planted in requests must not
appear in any file under ``FERRYMAN_HOME`` nor in the server's own output. A log that
cannot be written must not stop serving, and its losses show in ``/metrics``.

Every wait is bounded (``WAIT``); no test asserts a duration.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ferryman.capture import LogStore, keyed_hash
from ferryman.config import Settings
from ferryman.monitoring import ServingMetrics
from ferryman.registry import Registry
from ferryman.server.metrics import serving
from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp, ServerProcess, StartServer
from tests.server.test_rollouts_e2e import Load, wait_for
from tests.serving._store import WAIT

PREDICT = "/v1/endpoints/{}/predict"
#: The capture writer's flush interval: ``PredictionLog``'s default, as no setting changes it.
FLUSH_SECONDS = 1.0


class RecordingLoad(Load):
    """:class:`Load` on the toy endpoint that remembers every answer, until the server dies.

    Each request sends a new ``x``; for each response it keeps the ``X-Request-ID``, the
    status, the ``x`` sent and when the response arrived (``time.monotonic``). The first
    connection failure ends the load: the server was stopped or killed.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.answered: dict[str, tuple[int, float, float]] = {}
        self.unanswered = 0

    def _run(self) -> None:
        deadline = time.monotonic() + 3 * WAIT
        sent = 0
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent += 1
                x = float(sent)
                body = {"instances": [{"x": x, "delay": 0.0}]}
                try:
                    response = client.post(PREDICT.format("toy"), json=body)
                except httpx.TransportError:
                    self.unanswered += 1
                    return
                received = time.monotonic()
                self.statuses[response.status_code] += 1
                self.answered[response.headers["x-request-id"]] = (
                    response.status_code,
                    x,
                    received,
                )

    def __enter__(self) -> RecordingLoad:
        super().__enter__()
        return self

    def received_200(self) -> int:
        # list() copies the values in one step under the GIL; the load thread keeps adding.
        return sum(1 for status, _, _ in list(self.answered.values()) if status == 200)


def stored_records(home: Path) -> dict[str, list[tuple[int, float, float]]]:
    """The toy endpoint's records in the log: request id -> [(status, x, prediction)]."""
    store = LogStore.from_settings(Settings(home=home, user="alice"), max_rows=1_000_000)
    result = store.query(
        "SELECT request_id, status, inputs.x, prediction FROM predictions "
        "WHERE endpoint = 'toy' AND role = 'primary'"
    )
    assert not result.truncated
    records: dict[str, list[tuple[int, float, float]]] = {}
    for request_id, status, x, prediction in result.rows:
        records.setdefault(request_id, []).append((status, x, prediction))
    return records


def shut_down_cleanly(server: ServerProcess) -> bool:
    """Whether the server ran its shutdown to the end (uvicorn re-raises the SIGTERM after)."""
    code = server.process.poll()
    return code in (0, -signal.SIGTERM) and "Application shutdown complete." in server.output()


def segments(home: Path) -> list[Path]:
    return list((home / "logs" / "predictions").rglob("*.parquet"))


# -- durability ------------------------------------------------------------------------------


@pytest.mark.slow
def test_after_sigterm_every_answered_request_has_its_record(
    start_server: StartServer, home: Path
) -> None:
    server = start_server()
    with RecordingLoad(server.url) as load:
        wait_for(lambda: load.received_200() >= 300, "300 answered requests")
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(WAIT)
    assert shut_down_cleanly(server), server.output()
    records = stored_records(home)

    answered = {
        request_id: (status, x, x * 2.0) for request_id, (status, x, _) in load.answered.items()
    }
    assert load.received_200() >= 300
    assert {rid: records.get(rid) for rid in answered} == {
        rid: [record] for rid, record in answered.items()
    }
    # Besides those, at most the request whose answer was cut off by the shutdown.
    assert len(set(records) - set(answered)) <= load.unanswered <= 1


@pytest.mark.slow
def test_after_sigkill_at_most_the_last_flush_interval_is_lost(
    start_server: StartServer, home: Path
) -> None:
    server = start_server()
    with RecordingLoad(server.url) as load:
        wait_for(lambda: load.received_200() >= 100 and segments(home), "a flushed segment")
        started = min(received for _, _, received in load.answered.values())
        # Long enough that some answers are older than two flush intervals at the kill.
        wait_for(lambda: time.monotonic() - started > 3 * FLUSH_SECONDS, "3 flush intervals")
        killed_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(WAIT) == -signal.SIGKILL
    records = stored_records(home)

    old = {
        request_id: (status, x, x * 2.0)
        for request_id, (status, x, received) in load.answered.items()
        if received < killed_at - 2 * FLUSH_SECONDS
    }
    assert len(old) >= 50
    assert {rid: records.get(rid) for rid in old} == {rid: [record] for rid, record in old.items()}
    assert all(len(found) == 1 for found in records.values())
    assert len(set(records) - set(load.answered)) <= load.unanswered <= 1


# -- privacy -----------------------------------------------------------------------------------

SECRET = "capture-e2e-secret"
EMAILS = ["jane.doe@example.com", "ann.lee@example.org"]
PHONES = ["+44 20 7946 0958", "(415) 555-0132", "020 7946 0961"]
CARDS = ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"]
IPS = ["198.51.100.23", "2001:db8::8a2e:370:7334"]
#: Sent in a field the signature rejects (an email where an integer belongs).
REJECTED_EMAIL = "bob.smith@example.net"
REJECTED_CARD = "6011 1111 1111 1117"


def planted() -> list[str]:
    """Every planted string, and each card number's bare digits."""
    strings = [*EMAILS, *PHONES, *CARDS, *IPS, REJECTED_EMAIL, REJECTED_CARD]
    digits = ["".join(c for c in card if c.isdigit()) for card in (*CARDS, REJECTED_CARD)]
    return [*strings, *digits]


def support_requests() -> list[dict[str, object]]:
    """Valid requests on the ``support`` endpoint carrying personal data in passthrough fields."""
    bodies: list[dict[str, object]] = []
    for index, email in enumerate(EMAILS):
        note = (
            f"call {PHONES[index]} or {PHONES[2]}, card {CARDS[index]} / {CARDS[2]}, "
            f"seen from {IPS[index]}, write to {email}"
        )
        row = {"age": 30 + index, "income": 2.5, "city": "Oslo", "member": True}
        bodies.append({"instances": [{**row, "email": email, "note": note}]})
    return bodies


@pytest.fixture
def support_endpoint(home: Path) -> Iterator[str]:
    """The ``support`` endpoint on the mixed model: email hashed, note redacted."""
    with Registry.from_settings(Settings(home=home, user="alice")) as registry:
        EndpointService(database=registry.database, user="alice").create(
            "support",
            model="mixed/1",
            passthrough=["email", "note"],
            privacy={"email": "hash", "note": "redact"},
        )
    yield "support"


def decoded_parquet(path: Path) -> str:
    return json.dumps(pq.read_table(path).to_pylist(), default=str) + str(
        pq.read_metadata(path).schema
    )


@pytest.mark.slow
def test_no_planted_personal_data_reaches_any_file_under_home_or_the_server_output(
    start_server: StartServer, home: Path, support_endpoint: str
) -> None:
    server = start_server(env={"FERRYMAN_SECRET_KEY": SECRET})
    url = f"{server.url}{PREDICT.format(support_endpoint)}"
    ids: list[str] = []
    for body in support_requests():
        response = httpx.post(url, json=body, timeout=WAIT)
        assert response.status_code == 200, response.text
        ids.append(response.headers["x-request-id"])
    rejected = {
        "age": REJECTED_EMAIL,
        "income": 1.0,
        "city": "Oslo",
        "member": False,
        "email": REJECTED_EMAIL,
        "note": f"card {REJECTED_CARD}",
    }
    response = httpx.post(url, json={"instances": [rejected]}, timeout=WAIT)
    assert response.status_code == 400, response.text
    rejected_id = response.headers["x-request-id"]
    server.stop()
    assert shut_down_cleanly(server), server.output()

    store = LogStore.from_settings(Settings(home=home, user="alice", secret_key=SECRET))
    rows = store.query(
        "SELECT request_id, status, email, note FROM predictions ORDER BY time",
        endpoint=support_endpoint,
    ).rows
    assert [(row[0], row[1]) for row in rows] == [*((rid, 200) for rid in ids), (rejected_id, 400)]
    assert [row[2] for row in rows[:2]] == [keyed_hash(email, SECRET.encode()) for email in EMAILS]
    assert all("[EMAIL]" in row[3] and "[CARD]" in row[3] for row in rows[:2])
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.suffix == ".parquet" for path in files)
    found = []
    for path in files:
        text = path.read_bytes().decode("latin-1")
        if path.suffix == ".parquet":
            text += decoded_parquet(path)
        found += [(str(path.relative_to(home)), value) for value in planted() if value in text]
    output = server.output()
    found += [("server output", value) for value in planted() if value in output]
    assert found == []


# -- a log that cannot be written ----------------------------------------------------------------


def capture_value(text: str, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and wanted <= set(sample.labels.items())
    )


@pytest.mark.anyio
async def test_serving_continues_when_the_log_cannot_be_written_and_metrics_count_the_loss(
    serve_app: ServeApp, home: Path
) -> None:
    (home / "logs").write_text("a file where the log's directory belongs\n")
    body = {"instances": [{"x": 1.0, "delay": 0.0}, {"x": 2.0, "delay": 0.0}]}
    # The server's own sampler (app.py) counts into its /metrics every 5 s; a sampler of
    # our own on fresh metrics counts the same writer without waiting for it.
    metrics = ServingMetrics.create(CollectorRegistry())
    async with serve_app() as served:
        capture = served.app.state.capture
        async with serving(metrics, capture=capture, interval=3600.0):
            statuses = []
            for _ in range(5):
                response = await served.client.post(PREDICT.format("toy"), json=body)
                statuses.append(response.status_code)
            capture.writer.flush()
    text = metrics.exposition().decode()

    assert statuses == [200] * 5
    assert capture_value(text, "ferryman_capture_records_total", outcome="lost") == 10
    assert capture_value(text, "ferryman_capture_records_total", outcome="written") == 0
    assert capture_value(text, "ferryman_capture_failed_writes_total") >= 1
