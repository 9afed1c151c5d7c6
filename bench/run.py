"""Run every benchmark, each in its own process; exit non-zero if any fails.

Usage::

    python bench/run.py            # full runs (what `make bench` does)
    python bench/run.py --smoke    # tiny sizes, one repetition each (`make bench-smoke`)

Each benchmark prints its own Markdown report and writes its JSON under
``bench/results/`` (smoke runs write to a temporary directory). A benchmark is added by
appending it to :data:`BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script and how to run it small.

    Attributes:
        script: The script's path, relative to ``bench/``.
        smoke_flags: The arguments that make it a quick check of every code path.
    """

    script: str
    smoke_flags: tuple[str, ...]


#: Every benchmark, in the order they run.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(script="registry.py", smoke_flags=("--smoke",)),
    Benchmark(script="serving/throughput.py", smoke_flags=("--smoke",)),
    Benchmark(script="serving/codec_micro.py", smoke_flags=("--smoke",)),
    Benchmark(script="serving/rollouts.py", smoke_flags=("--smoke",)),
    Benchmark(script="drift/data_drift.py", smoke_flags=("--smoke",)),
    Benchmark(script="drift/concept.py", smoke_flags=("--smoke",)),
    Benchmark(script="capture/serving_overhead.py", smoke_flags=("--smoke",)),
    Benchmark(script="capture/writer_micro.py", smoke_flags=("--smoke",)),
    Benchmark(script="monitoring/recorder_micro.py", smoke_flags=("--smoke",)),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and return the exit status: 0 if all succeeded, else 1."""
    parser = argparse.ArgumentParser(description="Run every Ferryman benchmark.")
    parser.add_argument(
        "--smoke", action="store_true", help="run each benchmark with its smoke flags"
    )
    args = parser.parse_args(argv)
    failed: list[str] = []
    for benchmark in BENCHMARKS:
        command = [sys.executable, str(BENCH_DIR / benchmark.script)]
        if args.smoke:
            command.extend(benchmark.smoke_flags)
        print(f"==> {' '.join(command)}", flush=True)
        start = time.perf_counter()
        status = subprocess.run(command, check=False).returncode
        elapsed = time.perf_counter() - start
        outcome = "ok" if status == 0 else f"FAILED (exit status {status})"
        print(f"==> {benchmark.script}: {outcome} in {elapsed:.0f} s\n", flush=True)
        if status != 0:
            failed.append(benchmark.script)
    if failed:
        print(f"Failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
