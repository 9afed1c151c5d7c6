"""The fixtures every benchmark smoke test module shares.

A module runs its benchmark once, in a subprocess with ``--smoke``, from an empty
working directory and without the developer's ``FERRYMAN_*`` settings, then reads the
JSON it wrote. Timings are only checked to be positive: the machines are shared and
noisy, so no test asserts how long anything takes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

#: Skips a module whose benchmark drives servers with wrk when wrk is missing.
NEEDS_WRK = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install -y wrk, or `make tools`); "
    "the serving benchmarks need it",
)
#: Skips a module whose benchmark runs the open-loop generator, which is built with a C
#: compiler, when there is none.
NEEDS_CC = pytest.mark.skipif(
    not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")),
    reason="no C compiler (apt-get install -y gcc, or `make tools`); the serving "
    "benchmark's open-loop generator is built with one",
)


def run_smoke(
    script: Path, *arguments: str, cwd: Path, output_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script --smoke [--output-dir DIR] ARGUMENTS`` and return what it did."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FERRYMAN_")}
    command = [sys.executable, str(script), "--smoke", *arguments]
    if output_dir is not None:
        command += ["--output-dir", str(output_dir)]
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a performance assertion
        check=False,
    )


def smoke_fixtures(script: Path, result_file: str) -> tuple[Any, Any]:
    """Module fixtures ``smoke_run`` (the finished process) and ``results`` (its JSON).

    Use as ``smoke_run, results = smoke_fixtures(BENCH / "x.py", "x.json")`` at module
    level.
    """
    name = script.stem

    @pytest.fixture(scope="module")
    def smoke_run(
        tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
    ) -> subprocess.CompletedProcess[str]:
        """Run the benchmark's smoke mode once for the module."""
        output = tmp_path_factory.mktemp(f"{name}-smoke-results")
        request.node.stash[_OUTPUT] = output
        return run_smoke(
            script, cwd=tmp_path_factory.mktemp(f"{name}-smoke-cwd"), output_dir=output
        )

    @pytest.fixture(scope="module")
    def results(
        smoke_run: subprocess.CompletedProcess[str], request: pytest.FixtureRequest
    ) -> dict[str, Any]:
        """The JSON document the smoke run wrote."""
        path = request.node.stash[_OUTPUT] / result_file
        if not path.is_file():
            pytest.fail(
                f"The smoke run wrote no {path}; its stderr ends with:\n{smoke_run.stderr[-3000:]}"
            )
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    return smoke_run, results


_OUTPUT = pytest.StashKey[Path]()
