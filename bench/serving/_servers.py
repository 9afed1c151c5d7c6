"""Server processes for the serving benchmark: start, wait until ready, stop.

Every server runs in its own process session on a loopback port, pinned to one core with
``taskset``, its output captured in a log file. :class:`Servers` stops every process it
started (SIGTERM, then SIGKILL after a bounded wait), which callers do in ``finally``.
:func:`server_cpus` picks the server's core and wrk's; :func:`missing_tool` says which
command the serving benchmarks need is not installed; :func:`cpu_seconds` reads a
process's CPU time from ``/proc``, and :class:`ServerCPU` charges it to wrk runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from _wrk import WrkMissingError, WrkResult, wrk_path

#: Seconds a server may take to become ready (imports, model loading, warm-up).
READY_TIMEOUT_S = 180.0
#: Seconds a server may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process.

    Attributes:
        name: What it serves, for messages.
        process: The process (the leader of its own session).
        url: Its base URL, ``http://127.0.0.1:PORT``.
        log: The file its stdout and stderr go to.
    """

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self, limit: int = 4000) -> str:
        """Return the end of the server's log."""
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process and any children it started; wait for it to exit."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            try:
                os.killpg(self.process.pid, sig)  # its own session: only what it started
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Servers:
    """The servers of one benchmark run; :meth:`stop_all` stops every one started."""

    def __init__(self, *, log_dir: Path, cpu: int | None) -> None:
        self.log_dir = log_dir
        self.cpu = cpu
        self.started: list[Server] = []

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        ready_path: str,
        env: Mapping[str, str],
        cwd: Path,
    ) -> Server:
        """Start a server pinned to the benchmark's server core; wait until it is ready.

        Args:
            name: What it serves, for messages and the log file's name.
            command: The command line, without the ``taskset`` prefix.
            port: The port it listens on, on 127.0.0.1.
            ready_path: The path that answers 200 once the server can predict.
            env: Its environment.
            cwd: Its working directory.

        Raises:
            RuntimeError: It exited, or was not ready within :data:`READY_TIMEOUT_S`; the
                message ends with its log.
        """
        pinned = list(command)
        if self.cpu is not None:
            pinned = ["taskset", "--cpu-list", str(self.cpu), *pinned]
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                pinned,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        server = Server(name, process, f"http://127.0.0.1:{port}", log)
        self.started.append(server)
        _wait_ready(server, ready_path)
        return server

    def stop_all(self) -> None:
        """Stop every server started, in reverse order."""
        for server in reversed(self.started):
            server.stop()
        self.started.clear()


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without Ferryman's or MLServer's settings, plus ``values``.

    A developer's ``FERRYMAN_*`` or ``MLSERVER_*`` variables must not reach a benchmarked
    server and change what it does.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FERRYMAN_", "MLSERVER_"))
    }
    environment.update(values)
    return environment


def cpu_seconds(stat: Path) -> float:
    """User plus system CPU seconds in a ``/proc`` ``stat`` file (a process's or a thread's).

    E.g. ``cpu_seconds(Path(f"/proc/{server.process.pid}/stat"))``: every thread of the
    server, whatever share of its core it got from the machine's other work.
    """
    # The fields after the command name (which may hold spaces) start at the 3rd, state;
    # utime and stime are the 14th and 15th, in clock ticks.
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerCPU:
    """The server's CPU time over each measured run, its pause included.

    Called after every run (see :func:`_wrk.measure`), it charges the CPU seconds since
    the previous call to the run just finished. The pause lets the server finish what
    the run left queued (shadow copies), so that work is charged to the run that caused
    it. CPU time, unlike throughput, does not depend on how much of its core the server
    got, so it is the steadier figure on a shared machine.

    Args:
        pid: The server's process id.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seconds: dict[str, list[float]] = {}
        self._stat = Path(f"/proc/{pid}/stat")
        self._last = cpu_seconds(self._stat)

    def __call__(self, name: str, result: WrkResult | None) -> None:
        now = cpu_seconds(self._stat)
        spent, self._last = now - self._last, now
        if result is not None:
            self.seconds.setdefault(name, []).append(spent)

    def per_request(self, name: str, runs: Sequence[WrkResult]) -> list[float]:
        """CPU seconds per request answered, for each measured run of ``name``."""
        return [spent / run.requests for spent, run in zip(self.seconds[name], runs, strict=True)]


def usable_cores() -> set[int]:
    """The cores this process may run on."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def server_cpus() -> tuple[int | None, int | None]:
    """The server's core and wrk's: the first two this process may use.

    With one usable core both share it (a warning says so on stderr); with none known,
    nothing is pinned.
    """
    usable = sorted(usable_cores())
    if len(usable) >= 2:
        return usable[0], usable[1]
    print(
        "warning: only one usable core; the server and wrk share it, so the figures "
        "understate every server",
        file=sys.stderr,
    )
    return (usable[0], usable[0]) if usable else (None, None)


def missing_tool() -> str | None:
    """Say which command the serving benchmarks need is missing, and how to install it.

    Returns:
        The message for ``wrk`` or ``taskset``, whichever is missing first; ``None``
        when both are on PATH.
    """
    try:
        wrk_path()
    except WrkMissingError as exc:
        return str(exc)
    if shutil.which("taskset") is None:
        return (
            "taskset is not on PATH; the benchmark pins the server and wrk to "
            "separate cores with it. Install it with: apt-get install -y util-linux"
        )
    return None


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with status {server.process.returncode} before it was "
                f"ready; its log ends with:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.url}{path}", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    raise RuntimeError(
        f"{server.name} was not ready at {server.url}{path} within {READY_TIMEOUT_S:.0f} s; "
        f"its log ends with:\n{server.output()}"
    )
