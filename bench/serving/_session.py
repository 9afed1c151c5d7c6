"""What the wrk-driven serving benchmarks share: command line, run set-up, JSON header.

``throughput.py``, ``rollouts.py`` and ``capture/serving_overhead.py`` each start
Ferryman servers (and peers) on one set of CPUs and load them with ``wrk`` from another.
They take the same options (``--smoke``, ``--output-dir``, ``--rounds``, ``--seconds``),
set up a run the same way, fit their models on the same bundled dataset and head their
JSON documents with the same description of the run; all of that lives here.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _arguments import positive_int
from _report import machine_info, write_json
from _servers import Servers, missing_tool, server_cpus
from _wrk import Config

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def parser(
    description: str, result_file: str, full: Config, smoke: Config, smoke_help: str
) -> argparse.ArgumentParser:
    """The benchmarks' common command line.

    Args:
        description: What the benchmark measures.
        result_file: The JSON file's name, for the help text.
        full: The default configuration.
        smoke: The ``--smoke`` configuration.
        smoke_help: What ``--smoke`` does.
    """
    arguments = argparse.ArgumentParser(description=description)
    arguments.add_argument("--smoke", action="store_true", help=smoke_help)
    arguments.add_argument(
        "--output-dir", type=Path, help=f"directory for {result_file} (default: bench/results)"
    )
    arguments.add_argument(
        "--rounds",
        type=positive_int,
        help=f"measured rounds (default: {full.rounds}; smoke: {smoke.rounds})",
    )
    arguments.add_argument(
        "--seconds",
        type=positive_int,
        help=f"seconds per measured run (default: {full.seconds}; smoke: {smoke.seconds})",
    )
    return arguments


class Run:
    """One benchmark run: its configuration, CPUs, output directory, clock and header.

    Args:
        args: The parsed command line (see :func:`parser`).
        full: The default configuration.
        smoke: The ``--smoke`` configuration.
    """

    def __init__(self, args: argparse.Namespace, full: Config, smoke: Config) -> None:
        base = smoke if args.smoke else full
        self.smoke: bool = args.smoke
        self.config = Config(
            rounds=args.rounds or base.rounds,
            seconds=args.seconds or base.seconds,
            warmup_seconds=base.warmup_seconds,
            pause_seconds=base.pause_seconds,
        )
        self.server_cpu, self.wrk_cpu = server_cpus()
        if args.output_dir is not None:
            self.output_dir: Path = args.output_dir
        elif args.smoke:
            self.output_dir = Path(tempfile.mkdtemp(prefix="ferryman-bench-smoke-"))
        else:
            self.output_dir = RESULTS_DIR
        self.started = datetime.now(UTC)
        self._load_before = os.getloadavg()[0]
        self._start = time.perf_counter()

    @staticmethod
    def missing_tool() -> str | None:
        """Why the benchmark cannot run here (wrk or taskset missing), or ``None``."""
        return missing_tool()

    def progress(self, message: str) -> None:
        """Print a progress line with the seconds since the run started, on stderr."""
        print(
            f"[{time.perf_counter() - self._start:6.1f} s] {message}", file=sys.stderr, flush=True
        )

    @contextmanager
    def servers(self, prefix: str) -> Iterator[tuple[Path, Servers]]:
        """A scratch directory and the servers started in it, all stopped on exit."""
        with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
            workdir = Path(scratch)
            started = Servers(log_dir=workdir, cpu=self.server_cpu)
            try:
                yield workdir, started
            finally:
                started.stop_all()

    def document(self, benchmark: str, results: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        """The JSON document: the run's description, ``extra``, then ``results``."""
        return {
            "benchmark": benchmark,
            "smoke": self.smoke,
            "command": shlex.join(sys.orig_argv),
            "started_at": self.started.replace(microsecond=0).isoformat(),
            "duration_s": time.perf_counter() - self._start,
            "config": asdict(self.config),
            "machine": machine_info(),
            "cpus": {"server": self.server_cpu, "wrk": self.wrk_cpu},
            # Other work on the machine skews everything; the 1-minute load average says how much.
            "load_average": {"start": self._load_before, "end": os.getloadavg()[0]},
            **extra,
            **results,
        }

    def write(self, result_file: str, document: Mapping[str, Any], lines: Sequence[str]) -> None:
        """Write the JSON document and print the Markdown report."""
        path = self.output_dir / result_file
        write_json(path, document)
        print("\n".join(lines))
        print(f"\nResults written to {path}")


def breast_cancer() -> tuple[pd.DataFrame, np.ndarray]:
    """The bundled breast cancer dataset (30 float features, binary target)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data, data.target.to_numpy()


def failed_contenders(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The contenders that got any non-2xx response, by name."""
    return [name for name, result in results.items() if result["non_2xx"]]
