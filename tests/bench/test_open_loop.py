"""The open-loop load generator counts, times and flags what a tiny local server does.

Each test starts an asyncio HTTP/1.1 server on a loopback port that answers every
request in a known way (a status, a delay, closing the connection, or never), then
checks the generator's counts, errors and latency accounting against it. The only
timings asserted are lower bounds that the server's own delays impose. The generator's
engine is C (``bench/serving/openloop.c``), built with the machine's compiler: without one
these tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bench._smoke import BENCH

# The serving benchmarks import their helpers as top-level modules from their folder.
sys.path.insert(0, str(BENCH / "serving"))

import _open_loop
from _open_loop import OpenLoopResult, arrival_offsets, request_bytes

BODY = b'{"instances": [{"x": 1.0}]}'

needs_compiler = pytest.mark.skipif(
    _open_loop.c_compiler() is None,
    reason="no C compiler (cc or gcc) to build the open-loop engine; apt-get install gcc",
)


@dataclass
class Behaviour:
    """How the test server answers, and what it saw."""

    status: int = 200
    delay_s: float = 0.0
    close: bool = False
    silent: bool = False
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    requests_per_connection: list[int] = field(default_factory=list)


async def _serve(
    behaviour: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    behaviour.connections += 1
    counts = behaviour.requests_per_connection
    counts.append(0)
    mine = len(counts) - 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            behaviour.bodies.append(await reader.readexactly(length))
            counts[mine] += 1
            if behaviour.silent:
                continue
            await asyncio.sleep(behaviour.delay_s)
            answer = b'{"ok": true}'
            extra = b"Connection: close\r\n" if behaviour.close else b""
            writer.write(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
                % (behaviour.status, extra, len(answer), answer)
            )
            await writer.drain()
            if behaviour.close:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def local_server(behaviour: Behaviour) -> AsyncIterator[str]:
    """Serve ``behaviour`` on 127.0.0.1; yield the URL to post to."""
    server = await asyncio.start_server(
        lambda r, w: _serve(behaviour, r, w), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/predict"
    finally:
        server.close()


@contextmanager
def threaded_server(behaviour: Behaviour) -> Iterator[str]:
    """Serve ``behaviour`` from a background thread's event loop; yield the URL."""
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[str] = loop.create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with local_server(behaviour) as url:
            ready.set_result(url)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    url = asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready, 10), loop).result()
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def load(
    behaviour: Behaviour,
    *,
    rate_per_s: float = 200.0,
    seconds: float = 0.25,
    connections: int = 4,
    timeout_s: float = 5.0,
    arrivals: _open_loop.Arrivals = "constant",
) -> OpenLoopResult:
    """Run the generator against a server that behaves as ``behaviour`` says."""
    with tempfile.TemporaryDirectory() as folder, threaded_server(behaviour) as url:
        body_file = Path(folder) / "body.json"
        body_file.write_bytes(BODY)
        return _open_loop.run(
            url,
            body_file,
            rate_per_s=rate_per_s,
            seconds=seconds,
            connections=connections,
            timeout_s=timeout_s,
            arrivals=arrivals,
            seed=1,
        )


def test_constant_arrivals_are_evenly_spaced_within_the_duration() -> None:
    assert arrival_offsets(4.0, 1.0, arrivals="constant") == [0.0, 0.25, 0.5, 0.75]


def test_poisson_arrivals_are_reproducible_with_a_seed() -> None:
    assert arrival_offsets(500.0, 1.0, seed=3) == arrival_offsets(500.0, 1.0, seed=3)


def test_poisson_arrivals_are_ordered_and_within_the_duration() -> None:
    offsets = arrival_offsets(500.0, 1.0, seed=3)
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 1.0


def test_arrivals_stop_at_max_requests() -> None:
    assert len(arrival_offsets(1000.0, 10.0, max_requests=7)) == 7


@pytest.mark.parametrize(
    ("rate", "seconds", "arrivals", "message"),
    [
        (0.0, 1.0, "poisson", "rate_per_s must be a positive number"),
        (10.0, -1.0, "poisson", "seconds must be positive"),
        (10.0, 1.0, "uniform", "Unknown arrivals 'uniform'. Available: poisson, constant"),
    ],
    ids=["zero-rate", "negative-duration", "unknown-arrivals"],
)
def test_arrival_offsets_reject_bad_parameters(
    rate: float, seconds: float, arrivals: _open_loop.Arrivals, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        arrival_offsets(rate, seconds, arrivals=arrivals)


@pytest.mark.parametrize(
    "url",
    ["http://example.com:80/predict", "https://127.0.0.1:8000/", "http://127.0.0.1/predict"],
    ids=["remote-host", "https", "no-port"],
)
def test_request_bytes_rejects_anything_but_loopback_http_with_a_port(url: str) -> None:
    with pytest.raises(ValueError, match="loopback host"):
        request_bytes(url, BODY)


def test_request_bytes_posts_the_body_with_its_length() -> None:
    request = request_bytes("http://127.0.0.1:8000/v1/predict?x=1", BODY)
    assert request.startswith(b"POST /v1/predict?x=1 HTTP/1.1\r\n")
    assert request.endswith(b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


@needs_compiler
def test_every_scheduled_request_reaches_the_server_and_is_answered() -> None:
    behaviour = Behaviour()
    result = load(behaviour, rate_per_s=200.0, seconds=0.25)
    assert (result.requests, result.responses, len(behaviour.bodies)) == (50, 50, 50)


@needs_compiler
def test_the_generator_sends_the_body_it_was_given() -> None:
    behaviour = Behaviour()
    load(behaviour, rate_per_s=100.0, seconds=0.05)
    assert set(behaviour.bodies) == {BODY}


@needs_compiler
def test_an_answering_server_causes_no_errors() -> None:
    result = load(Behaviour())
    assert (result.errors, result.non_2xx, result.timeouts, result.socket_errors) == (0, 0, 0, 0)


@needs_compiler
def test_latency_includes_the_servers_delay() -> None:
    result = load(Behaviour(delay_s=0.02), connections=64)
    assert result.min_s is not None and result.min_s >= 0.02


@needs_compiler
def test_latency_counts_from_the_due_time_when_no_connection_is_free() -> None:
    # One connection, answers 50 ms apart, requests due 10 ms apart: the 10th request
    # (due at 90 ms) cannot be answered before 10 x 50 ms, so it waited >= 410 ms.
    result = load(Behaviour(delay_s=0.05), rate_per_s=100.0, seconds=0.1, connections=1)
    assert result.max_s is not None and result.max_s >= 0.41
    assert result.wait_p99_s is not None and result.wait_p99_s >= 0.36


@needs_compiler
def test_error_statuses_are_answers_counted_as_non_2xx() -> None:
    result = load(Behaviour(status=503))
    assert (result.responses, result.non_2xx) == (result.requests, result.requests)


@needs_compiler
def test_unanswered_requests_count_as_timeouts_without_latencies() -> None:
    result = load(Behaviour(silent=True), rate_per_s=100.0, seconds=0.05, timeout_s=0.1)
    assert (result.responses, result.timeouts, result.p99_s) == (0, result.requests, None)


@needs_compiler
def test_a_server_closing_each_connection_still_answers_every_request() -> None:
    behaviour = Behaviour(close=True)
    result = load(behaviour, rate_per_s=100.0, seconds=0.1, connections=2)
    assert (result.responses, result.errors) == (result.requests, 0)
    assert behaviour.connections > 2


@needs_compiler
def test_free_connections_carry_requests_in_turn() -> None:
    # Requests 10 ms apart, each answered at once: every connection is free when the
    # next is due. Taken in turn, no connection idles long enough for a server's
    # keep-alive timeout; a stack of free connections would send all on the first.
    behaviour = Behaviour()
    result = load(behaviour, rate_per_s=100.0, seconds=0.2, connections=4)
    counts = behaviour.requests_per_connection
    assert result.responses == sum(counts) == 20
    assert len(counts) == 4 and min(counts) >= 1 and max(counts) <= 2 * min(counts), counts


@needs_compiler
def test_the_result_reports_the_rate_and_how_late_the_generator_was() -> None:
    result = load(Behaviour(), arrivals="poisson")
    assert result.rate_per_s == 200.0 and result.achieved_per_s > 0
    assert 0 <= result.send_lag_p99_s <= result.send_lag_max_s
    assert isinstance(result.kept_up, bool)


def test_run_rejects_a_schedule_without_requests(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_bytes(BODY)
    with pytest.raises(ValueError, match="No request is due within"):
        _open_loop.run(
            "http://127.0.0.1:9/", tmp_path / "body.json", rate_per_s=0.001, seconds=0.001
        )


@needs_compiler
def test_run_says_when_the_server_is_unreachable(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_bytes(BODY)
    with threaded_server(Behaviour()) as url:
        pass  # stopped again: nothing listens on the port any more
    with pytest.raises(RuntimeError, match="Could not open 1 connections"):
        _open_loop.run(
            url,
            tmp_path / "body.json",
            rate_per_s=10.0,
            seconds=0.1,
            connections=1,
            arrivals="constant",
        )


@needs_compiler
def test_run_drives_the_server_from_a_separate_process(tmp_path: Path) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(BODY)
    behaviour = Behaviour()
    with threaded_server(behaviour) as url:
        result = _open_loop.run(
            url, body_file, rate_per_s=100.0, seconds=0.2, connections=2, arrivals="constant"
        )
    assert (result.requests, result.responses, len(behaviour.bodies)) == (20, 20, 20)
    assert result.engine == "epoll"


def test_the_command_line_rejects_a_bad_rate(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["--url", "http://127.0.0.1:9/", "--body-file", "x", "--seconds", "1"]
    with pytest.raises(SystemExit) as exit_info:
        _open_loop.main([*arguments, "--rate", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive number, got '0'" in capsys.readouterr().err


def test_the_command_line_rejects_a_remote_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(BODY)
    arguments = ["--url", "http://10.0.0.1:80/", "--body-file", str(body_file)]
    code = _open_loop.main([*arguments, "--rate", "10", "--seconds", "1"])
    assert code == 2 and "loopback host" in capsys.readouterr().err
