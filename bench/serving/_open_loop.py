"""An open-loop HTTP/1.1 load generator for loopback servers.

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

This module draws the schedule (:func:`arrival_offsets`), builds the request
(:func:`request_bytes`) and computes the statistics; the sending and timing is done by
``openloop.c``, a single-threaded epoll loop that :func:`engine` compiles with the
machine's C compiler (once per version of the source, under ``bench/serving/build/``).
The engine is in C because the generator's own latency must stay well below what it
measures: the asyncio generator it replaced kept its core about 80 % busy at 2,500
requests/s and added 1.5-5 ms at the 99th percentile by itself.

The generator can still fall behind (its core taken by other work): how late it noticed
requests were due is reported as the *send lag*, and a run whose 99th percentile of send
lag exceeds ``max_send_lag_s`` is flagged as not kept up, i.e. its latencies say as much
about the generator as about the server.

:func:`run` runs the engine pinned to a core with ``taskset``, as the serving benchmarks
pin ``wrk``, and returns its :class:`OpenLoopResult`. As a script::

    python bench/serving/_open_loop.py --url http://127.0.0.1:8000/predict \\
        --body-file body.json --rate 500 --seconds 10

prints the result as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
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
#: The engine's source, and where its builds are kept (one per version of the source).
ENGINE_SOURCE = Path(__file__).resolve().parent / "openloop.c"
BUILD_DIR = ENGINE_SOURCE.parent / "build"
#: One request's record in the engine's output (see ``openloop.c``).
_RECORD = np.dtype(
    [("lag", "<f8"), ("wait", "<f8"), ("latency", "<f8"), ("status", "<i4"), ("outcome", "<i4")]
)
_ANSWERED, _SOCKET_ERROR = 1, 2


@dataclass(frozen=True)
class OpenLoopResult:
    """One open-loop run. Latencies are from when a request was due, in seconds.

    Attributes:
        engine: What sent the requests: ``epoll`` (``openloop.c``).
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

    engine: str
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
    """Send ``body_file``'s body to ``url`` on an open-loop schedule; time every answer.

    Args:
        url: The loopback URL to ``POST`` to.
        body_file: The JSON body every request carries.
        rate_per_s: Mean requests per second.
        seconds: Length of the schedule.
        connections: Keep-alive connections, opened before the first request is due.
        arrivals: ``poisson`` or ``constant`` inter-arrival times.
        seed: Seed of the Poisson draws.
        max_requests: At most this many requests; ``None``: as many as fit.
        timeout_s: Seconds a sent request may wait for its answer; the run ends at most
            this long (and a second) after the last request is due.
        max_send_lag_s: The send lag (99th percentile) the generator may have.
        cpu: The core to pin the engine to with ``taskset``, or ``None``.

    Raises:
        ValueError: A bad argument; the message names it.
        OSError: ``body_file`` cannot be read.
        RuntimeError: The engine could not be built, or failed (e.g. the connections
            could not be opened); the message ends with its error output.
    """
    host, port, _ = _split(url)
    if connections < 1:
        raise ValueError(f"connections must be at least 1, got {connections}.")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}.")
    request = request_bytes(url, body_file.read_bytes())
    offsets = arrival_offsets(
        rate_per_s, seconds, arrivals=arrivals, seed=seed, max_requests=max_requests
    )
    if not offsets:
        raise ValueError(
            f"No request is due within {seconds} s at {rate_per_s} per s ({arrivals}, seed "
            f"{seed}): schedule at least one."
        )
    with tempfile.TemporaryDirectory(prefix="open-loop-") as folder:
        work = Path(folder)
        (work / "request").write_bytes(request)
        np.asarray(offsets, dtype="<f8").tofile(work / "due")
        command = [
            str(engine()),
            *(host, str(port), str(work / "request"), str(work / "due")),
            *(str(connections), repr(timeout_s), str(work / "out")),
        ]
        # The timeout is a hang guard.
        run_pinned(
            command, cpu=cpu, timeout=seconds + 2 * timeout_s + 60, what="The open-loop generator"
        )
        output = (work / "out").read_bytes()
    duration = float(np.frombuffer(output[:8], dtype="<f8")[0])
    records = np.frombuffer(output[8:], dtype=_RECORD)
    return _result(records, duration, arrivals, rate_per_s, connections, max_send_lag_s)


def engine() -> Path:
    """The engine's executable, built from ``openloop.c`` with the machine's C compiler.

    Raises:
        RuntimeError: No C compiler (``$CC``, ``cc`` or ``gcc``), or the build failed.
    """
    source = ENGINE_SOURCE.read_bytes()
    target = BUILD_DIR / f"openloop-{hashlib.sha256(source).hexdigest()[:16]}"
    if target.exists():
        return target
    compiler = c_compiler()
    if compiler is None:
        raise RuntimeError(
            "The open-loop generator needs a C compiler (cc or gcc; apt-get install gcc)."
        )
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    built = subprocess.run(
        [compiler, "-O2", "-o", str(partial), str(ENGINE_SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"Building {ENGINE_SOURCE.name} failed: {built.stderr.strip()[-2000:]}")
    partial.replace(target)  # atomic: concurrent builds each install a whole file
    return target


def c_compiler() -> str | None:
    """The C compiler that builds the engine: ``$CC``, else ``cc`` or ``gcc`` on the path."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _result(
    records: np.ndarray,
    duration: float,
    arrivals: str,
    rate_per_s: float,
    connections: int,
    max_send_lag_s: float,
) -> OpenLoopResult:
    """The statistics of one run from the engine's per-request records."""
    answered = records[records["outcome"] == _ANSWERED]
    latencies = sorted(answered["latency"].tolist())
    lags = sorted(records["lag"].tolist())
    socket_errors = int(np.count_nonzero(records["outcome"] == _SOCKET_ERROR))
    send_lag_p99 = _percentile(lags, 0.99) or 0.0
    status = answered["status"]
    return OpenLoopResult(
        engine="epoll",
        arrivals=arrivals,
        rate_per_s=rate_per_s,
        connections=connections,
        requests=len(records),
        responses=len(answered),
        non_2xx=int(np.count_nonzero((status < 200) | (status >= 300))),
        # Requests neither answered nor failed by the deadline never got an answer.
        timeouts=len(records) - len(answered) - socket_errors,
        socket_errors=socket_errors,
        duration_s=duration,
        achieved_per_s=len(answered) / duration if duration > 0 else 0.0,
        min_s=latencies[0] if latencies else None,
        p50_s=_percentile(latencies, 0.50),
        p90_s=_percentile(latencies, 0.90),
        p99_s=_percentile(latencies, 0.99),
        max_s=latencies[-1] if latencies else None,
        send_lag_p99_s=send_lag_p99,
        send_lag_max_s=lags[-1],
        wait_p99_s=_percentile(sorted(answered["wait"].tolist()), 0.99),
        kept_up=send_lag_p99 <= max_send_lag_s,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one open-loop load from the command line and print its result as JSON.

    Returns:
        0; bad arguments exit with status 2 (argparse), an unreachable server with 1.
    """
    args = _parser().parse_args(argv)
    try:
        result = run(
            args.url,
            args.body_file,
            rate_per_s=args.rate,
            seconds=args.seconds,
            connections=args.connections,
            arrivals=args.arrivals,
            seed=args.seed,
            max_requests=args.max_requests,
            timeout_s=args.timeout,
            max_send_lag_s=args.max_send_lag,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict()))
    return 0


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
