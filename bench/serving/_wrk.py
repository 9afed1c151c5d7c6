"""Driving an HTTP server with ``wrk`` and reading its report.

``wrk`` is a closed-loop load generator: each connection sends its next request as soon
as the previous answer arrives, so throughput and latency are measured together. Every
run posts the same JSON body (read from a file by a small Lua script) and asks for the
latency distribution (``--latency``), whose 50th and 99th percentiles are parsed from
wrk's text report. :func:`measure` runs contenders in interleaved rounds (the order
reversed every other round) after a warm-up each; :func:`summarize_runs` and
:func:`throughput_ratio` turn the runs into medians and same-run ratios.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from _pinned import run_pinned
from _report import format_seconds
from _requests import Target
from _timing import median_ratio, summarize

#: Seconds a single request may take before wrk counts it as a timeout.
REQUEST_TIMEOUT_S = 10

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"
_PERCENTILE = re.compile(rf"^\s*(50|75|90|99)(?:\.0+)?%\s+{_DURATION}\s*$", re.MULTILINE)
_REQUESTS = re.compile(rf"^\s*(\d+) requests in {_DURATION},", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.MULTILINE)
_SOCKET = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)

_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open([[{path}]], "rb"))
wrk.body = file:read("*a")
file:close()
"""


class WrkMissingError(RuntimeError):
    """``wrk`` is not on PATH."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run.

    Attributes:
        requests: Responses received.
        duration_s: Length of the run, in seconds.
        requests_per_s: Responses per second, as wrk reports it.
        p50_s: Median latency, in seconds.
        p75_s: 75th percentile latency, in seconds.
        p90_s: 90th percentile latency, in seconds.
        p99_s: 99th percentile latency, in seconds.
        non_2xx: Responses whose status was not 2xx or 3xx.
        socket_errors: Connect, read, write and timeout errors, added up.
    """

    requests: int
    duration_s: float
    requests_per_s: float
    p50_s: float
    p75_s: float
    p90_s: float
    p99_s: float
    non_2xx: int
    socket_errors: int

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready values."""
        return asdict(self)


def wrk_path() -> str:
    """Return the path of ``wrk``.

    Raises:
        WrkMissingError: It is not installed; the message says how to install it.
    """
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissingError(
            "wrk is not on PATH; the serving benchmark drives every server with it. "
            "Install it with: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk"
        )
    return path


def write_script(body_path: Path, script_path: Path) -> Path:
    """Write the Lua script that makes wrk POST the JSON in ``body_path``; return its path."""
    script_path.write_text(_LUA.format(path=body_path.resolve()), encoding="utf-8")
    return script_path


def run_wrk(
    url: str,
    *,
    script: Path,
    connections: int,
    seconds: int,
    cpu: int | None,
) -> WrkResult:
    """Run wrk with one thread against ``url`` and return its parsed report.

    Args:
        url: The URL to POST to.
        script: The Lua script from :func:`write_script`.
        connections: Open connections, each with one request in flight.
        seconds: Length of the run.
        cpu: The core to pin wrk to with ``taskset``, or ``None`` for no pinning.

    Raises:
        WrkMissingError: wrk is not installed.
        RuntimeError: wrk failed or printed a report this parser does not understand.
    """
    command = [
        wrk_path(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        f"{REQUEST_TIMEOUT_S}s",
        "--latency",
        "--script",
        str(script),
        url,
    ]
    # The timeout is a hang guard.
    output = run_pinned(command, cpu=cpu, timeout=seconds + 2 * REQUEST_TIMEOUT_S + 30, what="wrk")
    return parse_report(output)


def parse_report(text: str) -> WrkResult:
    """Parse wrk's text report (run with ``--latency``).

    Raises:
        RuntimeError: A figure is missing; the message quotes the report.
    """
    percentiles = {int(p): _seconds(value, unit) for p, value, unit in _PERCENTILE.findall(text)}
    requests = _REQUESTS.search(text)
    rate = _RATE.search(text)
    if requests is None or rate is None or set(percentiles) != {50, 75, 90, 99}:
        raise RuntimeError(f"Could not read wrk's report:\n{text}")
    non_2xx = _NON_2XX.search(text)
    socket = _SOCKET.search(text)
    return WrkResult(
        requests=int(requests.group(1)),
        duration_s=_seconds(requests.group(2), requests.group(3)),
        requests_per_s=float(rate.group(1)),
        p50_s=percentiles[50],
        p75_s=percentiles[75],
        p90_s=percentiles[90],
        p99_s=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


@dataclass(frozen=True)
class Config:
    """How long to measure.

    Attributes:
        rounds: Measured runs per contender.
        seconds: Length of each measured run.
        warmup_seconds: Length of the unmeasured run of each contender before the first round.
        pause_seconds: Wait after every run (warm-up included), so that work a run left
            queued in the server (e.g. shadow copies) is done before the next run starts.
    """

    rounds: int
    seconds: int
    warmup_seconds: int
    pause_seconds: float = 0.0


def measure(
    targets: Mapping[str, Target],
    rows: pd.DataFrame,
    connections: int,
    config: Config,
    *,
    workdir: Path,
    cpu: int | None,
    progress: Callable[[str], None],
    on_run: Callable[[str, WrkResult | None], None] | None = None,
) -> dict[str, list[WrkResult]]:
    """Warm up every contender, then run ``config.rounds`` interleaved rounds of wrk.

    The contenders run in the order of ``targets`` in even rounds and in reverse order
    in odd ones, so that drift in the machine's load does not favour any of them.

    Args:
        targets: The contenders by name, in the order of even rounds.
        rows: The rows every request carries.
        connections: wrk's open connections.
        config: How long to measure.
        workdir: Where the request bodies and wrk scripts are written.
        cpu: The core to pin wrk to, or ``None``.
        progress: Called with a line of text after each measured run.
        on_run: Called after every run and its pause with the contender's name and its
            result (``None`` for a warm-up run), e.g. to read the server's counters.

    Returns:
        Each contender's measured runs, in round order.
    """
    scripts: dict[str, Path] = {}
    for name, target in targets.items():
        body = workdir / f"{name}-{len(rows)}.json"
        body.write_bytes(target.body(rows))
        scripts[name] = write_script(body, workdir / f"{name}-{len(rows)}.lua")
    names = list(targets)

    def run(name: str, seconds: int, *, warmup: bool) -> WrkResult:
        result = run_wrk(
            targets[name].url,
            script=scripts[name],
            connections=connections,
            seconds=seconds,
            cpu=cpu,
        )
        if config.pause_seconds:
            time.sleep(config.pause_seconds)
        if on_run is not None:
            on_run(name, None if warmup else result)
        return result

    for name in names:
        run(name, config.warmup_seconds, warmup=True)
    runs: dict[str, list[WrkResult]] = {name: [] for name in names}
    for index in range(config.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            result = run(name, config.seconds, warmup=False)
            runs[name].append(result)
            progress(
                f"  round {index + 1}: {name:<16} {result.requests_per_s:9.0f} req/s  "
                f"p99 {format_seconds(result.p99_s)}"
            )
    return runs


def summarize_runs(runs: Sequence[WrkResult]) -> dict[str, Any]:
    """Medians (and p90s) over rounds of throughput and latency, with every run."""
    return {
        "requests_per_s": summarize([run.requests_per_s for run in runs]).to_dict(),
        "p50_s": summarize([run.p50_s for run in runs]).to_dict(),
        "p99_s": summarize([run.p99_s for run in runs]).to_dict(),
        "non_2xx": sum(run.non_2xx for run in runs),
        "socket_errors": sum(run.socket_errors for run in runs),
        "runs": [run.to_dict() for run in runs],
    }


def throughput_ratio(runs: Mapping[str, Sequence[WrkResult]], a: str, b: str) -> float:
    """The median per-round ratio of ``a``'s requests per second to ``b``'s."""
    return median_ratio(
        [run.requests_per_s for run in runs[a]], [run.requests_per_s for run in runs[b]]
    )


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]
