"""Durability: a writer killed with SIGKILL loses at most its last flush interval."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ferryman.capture import LogStore

FLUSH_INTERVAL = 0.3
#: Slack for one flush's own duration on a loaded machine, on top of the interval.
FLUSH_SLACK = 1.5

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np, pandas as pd
    from ferryman.capture import CaptureWriter
    from ferryman.flavors.base import Prediction

    writer = CaptureWriter(root=sys.argv[1], flush_interval=float(sys.argv[2]))
    writer.start()
    columns = pd.Index(["x"])
    for index in range(1_000_000):
        data = pd.DataFrame(np.array([[float(index)]]), columns=columns)
        writer.submit(f"{index:08d}", "churn", "churn/1", "primary", data,
                      Prediction(np.array([index])), 1.0)
        print(index, time.monotonic(), flush=True)  # accepted: the response would go out now
        time.sleep(0.002)
    """
)


@pytest.mark.slow
def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    accepted: dict[int, float] = {}
    deadline = time.monotonic() + 120
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(FLUSH_INTERVAL)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as child:
        assert child.stdout is not None
        try:
            while time.monotonic() < deadline:
                index, at = child.stdout.readline().split()
                accepted[int(index)] = float(at)
                if len(accepted) >= 400 and any(root.rglob("*.parquet")):
                    break
            child.send_signal(signal.SIGKILL)
            for line in child.stdout:  # what it printed before it died was answered too
                index, at = line.split()
                accepted[int(index)] = float(at)
        finally:
            child.kill()

    stored_ids = LogStore(root=root).query("SELECT request_id FROM predictions", limit=10_000).rows
    stored = {int(row[0]) for row in stored_ids}
    lost = set(accepted) - stored
    last = max(accepted.values())

    assert stored, "nothing was flushed before the kill"
    assert stored == set(range(len(stored))), "stored records must be a prefix, without holes"
    assert all(last - accepted[index] <= FLUSH_INTERVAL + FLUSH_SLACK for index in lost)
