"""The codec and capture-writer micro-benchmarks' smoke runs finish and report their figures.

Each runs once in a subprocess with tiny sizes. Timings are only checked to be positive
and finite: the machines are shared and noisy, so no test asserts how long anything takes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.bench._smoke import BENCH, run_smoke

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench-smoke")]


def test_codec_micro_smoke_checks_and_times_every_case(tmp_path: Path) -> None:
    done = run_smoke(BENCH / "serving" / "codec_micro.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # Each case is checked first (the fast and general routes agree), then timed.
    cases = [line for line in done.stdout.splitlines() if line.startswith(("| v2", "| native"))]
    assert any(line.startswith("| v2 1 row, 30 tensors") for line in cases), done.stdout
    assert any("32" in line for line in cases), done.stdout


def test_writer_micro_smoke_reports_costs_and_floor(tmp_path: Path) -> None:
    output = tmp_path / "out"
    done = run_smoke(BENCH / "capture" / "writer_micro.py", cwd=tmp_path, output_dir=output)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((output / "capture_writer.json").read_text())
    assert document["benchmark"] == "capture_writer"
    assert document["results"], "no traffic shape was measured"
    for result in document["results"]:
        for key in ("submit_us", "floor_us", "flush_us"):
            value = result[key]
            assert math.isfinite(value) and value > 0, (result["shape"], key, value)
