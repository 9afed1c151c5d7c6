"""Run a load generator (wrk, the open-loop generator) pinned to one core, and read its output."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


def run_pinned(command: Sequence[str], *, cpu: int | None, timeout: float, what: str) -> str:
    """Run ``command`` (pinned to ``cpu`` with ``taskset`` unless ``None``); return its stdout.

    Args:
        command: The program and its arguments.
        cpu: The core to pin it to, or ``None`` for no pinning.
        timeout: Seconds after which it is killed: a hang guard, not a measurement.
        what: The program's name in the error message.

    Raises:
        RuntimeError: It exited with a non-zero status; the message ends with its output.
    """
    if cpu is not None:
        command = ["taskset", "--cpu-list", str(cpu), *command]
    completed = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{what} exited with status {completed.returncode}: "
            f"{(completed.stderr or completed.stdout).strip()[-2000:]}"
        )
    return completed.stdout
