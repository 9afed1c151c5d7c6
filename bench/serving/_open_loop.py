"""An open-loop HTTP/1.1 load generator for loopback servers, in pure Python asyncio.

``wrk`` is closed-loop: each connection sends its next request when the previous answer
arrives, so a slow server is offered less load and queueing shows up as lower throughput,
not as latency; with ``c`` connections always waiting, latency is at least
``c / throughput`` (Little's law). An open loop fixes when every request is *due* in
advance, at a given rate (constant or Poisson inter-arrival times, seeded), whatever the
server does. Here:

- ``connections`` keep-alive connections are opened before the first request;
- each request is sent on a free connection (one request per connection at a time); when
  none is free it waits, first come first served, and its latency still counts from the
  time it was due, so a server that falls behind is charged for it (no coordinated
  omission);
- latency is the time from when a request was due to when its response was complete;
- responses are parsed minimally: status line, ``Content-Length``, body;
- the run is bounded by a duration, a request count and, per request, a timeout.

The generator itself can fall behind (its event loop busy parsing answers, its core taken
by other work): how late it issued requests against their due times is reported as the
*send lag*, and a run whose 99th percentile of send lag exceeds ``max_send_lag_s`` is
flagged as not kept up, i.e. its latencies say as much about the generator as about the
server.

:func:`run` runs the generator in a subprocess pinned to a core with ``taskset``, as the
serving benchmarks pin ``wrk``, and returns its :class:`OpenLoopResult`; :func:`generate`
is the coroutine itself. As a script::

    python bench/serving/_open_loop.py --url http://127.0.0.1:8000/predict \\
        --body-file body.json --rate 500 --seconds 10

prints the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from _pinned import run_pinned

#: How inter-arrival times are drawn.
Arrivals = Literal["poisson", "constant"]
ARRIVALS: tuple[Arrivals, ...] = ("poisson", "constant")
#: Hosts the generator accepts: it is meant for servers on this machine only.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Default seconds a request may take, once sent, before it counts as a timeout.
TIMEOUT_S = 10.0
#: Default 99th percentile of send lag above which the generator did not keep up.
MAX_SEND_LAG_S = 0.001
#: The schedule starts this long after the connections are open.
_START_DELAY_S = 0.01
#: Timers fire up to about a millisecond off: the last stretch before a request is due
#: is spent yielding to the event loop (which keeps reading answers) instead of sleeping.
#: Kept short: on a core shared with other work, a generator that spins longer uses up
#: its share of the core and is then descheduled for whole time slices (with 1 ms, the
#: send lag p99 at 400 req/s on a busy machine reached 100-250 ms in some runs).
_SPIN_S = 0.0005


class _ProtocolError(Exception):
    """The server's answer is not an HTTP/1.1 response this parser understands."""


@dataclass(frozen=True)
class OpenLoopResult:
    """One open-loop run. Latencies are from when a request was due, in seconds.

    Attributes:
        loop: The event loop used, ``uvloop`` or ``asyncio``.
        arrivals: ``poisson`` or ``constant`` inter-arrival times.
        rate_per_s: The rate asked for, in requests per second.
        connections: Keep-alive connections.
        requests: Requests scheduled.
        responses: Complete responses received, whatever their status.
        non_2xx: Responses whose status was not 2xx.
        timeouts: Requests not answered within the timeout of being sent, or not
            answered by the end of the run.
        socket_errors: Requests whose connection failed (reset, closed mid-response,
            an answer that is not HTTP/1.1 with a ``Content-Length``).
        duration_s: From the first request's due time to the last response.
        achieved_per_s: ``responses / duration_s``.
        min_s: Lowest latency, or ``None`` when nothing was answered (and so below).
        p50_s: Median latency.
        p90_s: 90th percentile of latency.
        p99_s: 99th percentile of latency.
        max_s: Highest latency.
        send_lag_p99_s: 99th percentile of how late the generator issued requests
            against their due times (its own lateness, not waiting for a connection).
        send_lag_max_s: The highest send lag.
        wait_p99_s: 99th percentile of the time from due to written on a connection:
            the send lag plus any wait for a free connection (a saturated server).
        kept_up: Whether ``send_lag_p99_s`` stayed within the run's ``max_send_lag_s``.
    """

    loop: str
    arrivals: str
    rate_per_s: float
    connections: int
    requests: int
    responses: int
    non_2xx: int
    timeouts: int
    socket_errors: int
    duration_s: float
    achieved_per_s: float
    min_s: float | None
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None
    max_s: float | None
    send_lag_p99_s: float
    send_lag_max_s: float
    wait_p99_s: float | None
    kept_up: bool

    @property
    def errors(self) -> int:
        """Requests that got no 2xx answer: non-2xx responses, timeouts and socket errors."""
        return self.non_2xx + self.timeouts + self.socket_errors

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready values."""
        return asdict(self)


def arrival_offsets(
    rate_per_s: float,
    seconds: float,
    *,
    arrivals: Arrivals = "poisson",
    seed: int = 0,
    max_requests: int | None = None,
) -> list[float]:
    """When each request is due, in seconds from the start of the run.

    Args:
        rate_per_s: Mean requests per second.
        seconds: Length of the schedule: every request is due before it ends.
        arrivals: ``poisson`` (exponential inter-arrival times, drawn with ``seed``) or
            ``constant`` (``1 / rate_per_s`` apart, the first at 0).
        seed: Seed of the Poisson draws.
        max_requests: At most this many requests; ``None``: as many as fit.

    Raises:
        ValueError: A rate, duration or count is not positive, or ``arrivals`` is
            unknown; the message names the value.
    """
    if not rate_per_s > 0 or not math.isfinite(rate_per_s):
        raise ValueError(f"rate_per_s must be a positive number of requests, got {rate_per_s}.")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}.")
    if max_requests is not None and max_requests < 1:
        raise ValueError(f"max_requests must be at least 1 (or None), got {max_requests}.")
    if arrivals not in ARRIVALS:
        raise ValueError(f"Unknown arrivals {arrivals!r}. Available: {', '.join(ARRIVALS)}.")
    limit = max_requests if max_requests is not None else math.inf
    offsets: list[float] = []
    if arrivals == "constant":
        while len(offsets) < limit and len(offsets) / rate_per_s < seconds:
            offsets.append(len(offsets) / rate_per_s)
        return offsets
    draws = random.Random(seed)
    due = draws.expovariate(rate_per_s)
    while len(offsets) < limit and due < seconds:
        offsets.append(due)
        due += draws.expovariate(rate_per_s)
    return offsets


def request_bytes(url: str, body: bytes, content_type: str = "application/json") -> bytes:
    """The raw HTTP/1.1 ``POST`` of ``body`` to ``url``, keeping the connection alive.

    Raises:
        ValueError: ``url`` is not ``http://`` on a loopback host with a port.
    """
    host, port, path = _split(url)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def generate(
    url: str,
    request: bytes,
    offsets: Sequence[float],
    *,
    connections: int = 64,
    timeout_s: float = TIMEOUT_S,
    max_send_lag_s: float = MAX_SEND_LAG_S,
    arrivals: str = "poisson",
    rate_per_s: float | None = None,
) -> OpenLoopResult:
    """Send ``request`` at the due times ``offsets`` over ``connections`` connections.

    Args:
        url: The server, ``http://HOST:PORT/...`` on a loopback host (the path is in
            ``request``).
        request: The raw request, e.g. from :func:`request_bytes`.
        offsets: When each request is due, in seconds from the start, non-decreasing
            (e.g. from :func:`arrival_offsets`).
        connections: Keep-alive connections, opened before the first request is due.
        timeout_s: Seconds a sent request may wait for its answer; the run ends at
            most this long (and a second) after the last request is due.
        max_send_lag_s: The 99th percentile of send lag above which the result says
            the generator did not keep up.
        arrivals: How ``offsets`` were drawn, for the result.
        rate_per_s: The rate ``offsets`` were drawn at, for the result; ``None``:
            their count over their span.

    Raises:
        ValueError: A bad argument; the message names it.
        RuntimeError: The connections could not be opened.
    """
    host, port, _ = _split(url)
    if connections < 1:
        raise ValueError(f"connections must be at least 1, got {connections}.")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}.")
    if not offsets:
        raise ValueError("offsets is empty: schedule at least one request.")
    if any(later < earlier for earlier, later in itertools.pairwise(offsets)):
        raise ValueError("offsets must be non-decreasing due times, in seconds.")
    try:
        opened = await asyncio.gather(
            *(asyncio.open_connection(host, port) for _ in range(connections))
        )
    except OSError as exc:
        raise RuntimeError(f"Could not open {connections} connections to {url}: {exc}") from exc
    state = _State(host, port, request, timeout_s)
    workers = [asyncio.create_task(state.work(*pair)) for pair in opened]
    start = time.perf_counter() + _START_DELAY_S
    lags = await state.dispatch(start, offsets, len(workers))
    deadline = start + offsets[-1] + timeout_s + 1.0
    finished, unfinished = await asyncio.wait(
        workers, timeout=max(deadline - time.perf_counter(), 0)
    )
    for worker in unfinished:
        worker.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
    state.close()
    for worker in finished:
        worker.result()  # a worker's unexpected error is a bug in the generator: raise it

    latencies = sorted(state.latencies)
    answered = len(latencies)
    first_due = start + offsets[0]
    duration = (state.last_done or time.perf_counter()) - first_due
    lags.sort()
    send_lag_p99 = _percentile(lags, 0.99) or 0.0
    rate = rate_per_s if rate_per_s is not None else len(offsets) / max(offsets[-1], 1e-9)
    return OpenLoopResult(
        loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
        arrivals=arrivals,
        rate_per_s=rate,
        connections=connections,
        requests=len(offsets),
        responses=answered,
        non_2xx=state.non_2xx,
        # Requests neither answered nor failed by the deadline never got an answer.
        timeouts=len(offsets) - answered - state.socket_errors,
        socket_errors=state.socket_errors,
        duration_s=duration,
        achieved_per_s=answered / duration if duration > 0 else 0.0,
        min_s=latencies[0] if latencies else None,
        p50_s=_percentile(latencies, 0.50),
        p90_s=_percentile(latencies, 0.90),
        p99_s=_percentile(latencies, 0.99),
        max_s=latencies[-1] if latencies else None,
        send_lag_p99_s=send_lag_p99,
        send_lag_max_s=lags[-1],
        wait_p99_s=_percentile(sorted(state.waits), 0.99),
        kept_up=send_lag_p99 <= max_send_lag_s,
    )


def run(
    url: str,
    body_file: Path,
    *,
    rate_per_s: float,
    seconds: float,
    connections: int = 64,
    arrivals: Arrivals = "poisson",
    seed: int = 0,
    max_requests: int | None = None,
    timeout_s: float = TIMEOUT_S,
    max_send_lag_s: float = MAX_SEND_LAG_S,
    cpu: int | None = None,
) -> OpenLoopResult:
    """Run the generator in a fresh process, pinned to ``cpu`` like ``wrk``.

    Args:
        url: The loopback URL to ``POST`` to.
        body_file: The JSON body every request carries.
        rate_per_s: Mean requests per second.
        seconds: Length of the schedule.
        connections: Keep-alive connections.
        arrivals: ``poisson`` or ``constant`` inter-arrival times.
        seed: Seed of the Poisson draws.
        max_requests: At most this many requests; ``None``: as many as fit.
        timeout_s: Seconds a sent request may wait for its answer.
        max_send_lag_s: The send lag (99th percentile) the generator may have.
        cpu: The core to pin the process to with ``taskset``, or ``None``.

    Raises:
        RuntimeError: The generator failed; the message ends with its error output.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--url", url, "--body-file", str(body_file)),
        *("--rate", repr(rate_per_s), "--seconds", repr(seconds)),
        *("--connections", str(connections), "--arrivals", arrivals, "--seed", str(seed)),
        *("--timeout", repr(timeout_s), "--max-send-lag", repr(max_send_lag_s)),
    ]
    if max_requests is not None:
        command += ["--max-requests", str(max_requests)]
    # The timeout is a hang guard.
    output = run_pinned(
        command, cpu=cpu, timeout=seconds + 2 * timeout_s + 60, what="The open-loop generator"
    )
    return OpenLoopResult(**json.loads(output))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one open-loop load from the command line and print its result as JSON.

    Returns:
        0; bad arguments exit with status 2 (argparse), an unreachable server with 1.
    """
    args = _parser().parse_args(argv)
    try:
        request = request_bytes(args.url, args.body_file.read_bytes())
        offsets = arrival_offsets(
            args.rate,
            args.seconds,
            arrivals=args.arrivals,
            seed=args.seed,
            max_requests=args.max_requests,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    coroutine = generate(
        args.url,
        request,
        offsets,
        connections=args.connections,
        timeout_s=args.timeout,
        max_send_lag_s=args.max_send_lag,
        arrivals=args.arrivals,
        rate_per_s=args.rate,
    )
    try:
        result = _run_fast(coroutine)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict()))
    return 0


class _State:
    """What the dispatcher and the connection workers of one run share."""

    def __init__(self, host: str, port: int, request: bytes, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.request = request
        self.timeout_s = timeout_s
        self.pending: asyncio.Queue[float | None] = asyncio.Queue()
        self.latencies: list[float] = []
        self.waits: list[float] = []
        self.non_2xx = 0
        self.socket_errors = 0
        self.last_done: float | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def dispatch(self, start: float, offsets: Sequence[float], workers: int) -> list[float]:
        """Queue each request when it is due; return how late each was queued (seconds)."""
        lags: list[float] = []
        clock = time.perf_counter
        for offset in offsets:
            due = start + offset
            remaining = due - clock()
            if remaining > _SPIN_S:
                await asyncio.sleep(remaining - _SPIN_S)
            while clock() < due:
                await asyncio.sleep(0)
            lags.append(clock() - due)
            self.pending.put_nowait(due)
        for _ in range(workers):
            self.pending.put_nowait(None)
        return lags

    async def work(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve queued requests one at a time on one connection, reopening it on failure."""
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = (reader, writer)
        self.writers.add(writer)
        clock = time.perf_counter
        while (due := await self.pending.get()) is not None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    if connection is None:
                        connection = await asyncio.open_connection(self.host, self.port)
                        self.writers.add(connection[1])
                    self.waits.append(clock() - due)
                    status, keep_alive = await self._exchange(*connection)
            except TimeoutError:
                # Counted at the end, with the requests never answered.
                self._drop(connection)
                connection = None
                continue
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                _ProtocolError,
            ):
                self.socket_errors += 1
                self._drop(connection)
                connection = None
                continue
            done = clock()
            self.latencies.append(done - due)
            self.last_done = done
            if not 200 <= status < 300:
                self.non_2xx += 1
            if not keep_alive:
                self._drop(connection)
                connection = None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, bool]:
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or len(head) < 12 or not head[9:12].isdigit():
            raise _ProtocolError(f"not an HTTP/1.x status line: {head[:40]!r}")
        lowered = head.lower()
        marker = lowered.find(b"\r\ncontent-length:")
        if marker < 0:
            raise _ProtocolError("a response without Content-Length")
        end = lowered.index(b"\r\n", marker + 2)
        value = lowered[marker + len(b"\r\ncontent-length:") : end].strip()
        if not value.isdigit():
            raise _ProtocolError(f"a Content-Length that is not a number: {value[:20]!r}")
        length = int(value)
        if length:
            await reader.readexactly(length)
        return int(head[9:12]), b"\r\nconnection: close" not in lowered

    def _drop(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        """Close ``connection`` (if any); the next request opens a new one."""
        if connection is not None:
            connection[1].close()
            self.writers.discard(connection[1])

    def close(self) -> None:
        """Close every connection still open."""
        for writer in self.writers:
            writer.close()
        self.writers.clear()


def _split(url: str) -> tuple[str, int, str]:
    """``url``'s host, port and path (with query).

    Raises:
        ValueError: Not ``http://`` on a loopback host with an explicit port.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or host not in LOOPBACK or port is None:
        raise ValueError(
            f"Expected an http:// URL on a loopback host ({', '.join(LOOPBACK)}) with a "
            f"port, got {url!r}; the open-loop generator drives local servers only."
        )
    path = parts.path or "/"
    return host, port, f"{path}?{parts.query}" if parts.query else path


def _percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values, or ``None`` when there are none."""
    if not ordered:
        return None
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def _run_fast(coroutine: Coroutine[Any, Any, OpenLoopResult]) -> OpenLoopResult:
    """Run ``coroutine`` on uvloop when it is installed (it comes with uvicorn)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Open-loop HTTP/1.1 load on a loopback server; prints the result as JSON."
    )
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path to POST to")
    parser.add_argument("--body-file", type=Path, required=True, help="the JSON body")
    parser.add_argument("--rate", type=_positive_float, required=True, help="requests per s")
    parser.add_argument("--seconds", type=_positive_float, required=True, help="schedule length")
    parser.add_argument("--connections", type=_positive_int, default=64)
    parser.add_argument("--arrivals", choices=ARRIVALS, default="poisson")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-requests", type=_positive_int, default=None)
    parser.add_argument("--timeout", type=_positive_float, default=TIMEOUT_S)
    parser.add_argument("--max-send-lag", type=_positive_float, default=MAX_SEND_LAG_S)
    return parser


if __name__ == "__main__":
    sys.exit(main())
