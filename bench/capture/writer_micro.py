"""Capture writer micro-benchmark: the cost on the event loop and in the background.

Capture must cost at most 5 % of a server's throughput at about 4,000 one-row requests
per second on one core, i.e. about 12 µs per request in total. Two costs add up:

- ``submit``: what the event loop pays per prediction (sampling check, one tuple, one
  append to the bounded buffer), measured over N calls with the writer not started;
  its floor is the least such a call can do, ``deque.append((time.time(), ...))``,
  measured in the same run, interleaved.
- ``flush``: what the background thread pays per record to turn N buffered one-row
  requests into Arrow tables, apply the privacy policy and write the Parquet segment,
  for five shapes of traffic: a numeric DataFrame as the validator builds it (one float
  block), a mixed-dtype DataFrame (float, int and text columns), the same mixed rows as
  a dict of one-element column arrays, a 2-D array (tensor signature, or a numeric
  signature handed over as the validator's matrix), and the numeric frame with a privacy
  policy hashing one passthrough column and redacting another.

The report gives each as µs per request and the resulting share of one core at
4,000 requests per second, and, for DataFrames, what pandas alone charges to hand over a
one-row frame's values (one ``to_numpy``), a floor no writer of DataFrames avoids.
Results go to ``bench/results/capture_writer.json``.

Usage::

    python bench/capture/writer_micro.py             # 20,000 requests, 7 repetitions
    python bench/capture/writer_micro.py --smoke     # 500 requests, 1 repetition
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _arguments import positive_int  # noqa: E402
from _report import machine_info, machine_lines, markdown_table, write_json  # noqa: E402

from ferryman.capture import CaptureWriter, EndpointCapture, PrivacyPolicy  # noqa: E402
from ferryman.flavors.base import Prediction  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
RESULT_FILE = "capture_writer.json"
RATE = 4000.0  # requests per second on one core: the budget's reference load
FEATURES = 10

Request = tuple[Any, Prediction, dict[str, list[Any]], tuple[str, ...] | None]


def numeric_requests(count: int) -> list[Request]:
    """One-row float frames sharing one column index, as the validator's fast path builds."""
    rng = np.random.default_rng(0)
    columns = pd.Index([f"f{i}" for i in range(FEATURES)])
    requests: list[Request] = []
    for _ in range(count):
        frame = pd.DataFrame(rng.normal(size=(1, FEATURES)), columns=columns, copy=False)
        p = float(rng.uniform())
        output = Prediction(np.array([int(p > 0.5)]), np.array([[1 - p, p]]), [0, 1])
        requests.append((frame, output, {}, None))
    return requests


def mixed_requests(count: int) -> list[Request]:
    """One-row frames of eight float, one int and one text column (one block per dtype)."""
    rng = np.random.default_rng(1)
    requests: list[Request] = []
    for index in range(count):
        columns: dict[str, Any] = {f"f{i}": rng.normal(size=1) for i in range(8)}
        columns["visits"] = np.array([index % 17])
        columns["plan"] = np.array(["gold" if index % 3 else "basic"], dtype=object)
        output = Prediction(np.array([index % 2]), np.array([[0.4, 0.6]]), [0, 1])
        requests.append((pd.DataFrame(columns, copy=False), output, {}, None))
    return requests


def column_requests(count: int) -> list[Request]:
    """The mixed-dtype requests as a dict of one-element column arrays (no DataFrame)."""
    return [
        ({str(name): frame[name].to_numpy() for name in frame.columns}, output, {}, None)
        for frame, output, _, _ in mixed_requests(count)
    ]


def array_requests(count: int) -> list[Request]:
    """One-row float arrays of a tensor signature, with their column names."""
    rng = np.random.default_rng(2)
    names = tuple(f"x{i}" for i in range(FEATURES))
    return [
        (rng.normal(size=(1, FEATURES)), Prediction(rng.normal(size=1)), {}, names)
        for _ in range(count)
    ]


def private_requests(count: int) -> list[Request]:
    """Numeric frames plus passthrough columns that the policy hashes and redacts."""
    requests = numeric_requests(count)
    return [
        (
            frame,
            output,
            {
                "email": [f"user{index % 500}@example.com"],
                "note": [f"call +44 20 7946 {index % 10000:04d} about order {index}"],
            },
            names,
        )
        for index, (frame, output, _, names) in enumerate(requests)
    ]


SHAPES: dict[str, Callable[[int], list[Request]]] = {
    "numeric frame": numeric_requests,
    "mixed-dtype frame": mixed_requests,
    "mixed-dtype column arrays": column_requests,
    "2-D array": array_requests,
    "numeric frame + privacy": private_requests,
}
POLICY = PrivacyPolicy.from_mapping({"email": "hash", "note": "redact"})


def submit_all(writer: CaptureWriter, requests: Sequence[Request]) -> float:
    """Submit every request; return the seconds taken on this thread."""
    submit = writer.submit
    start = time.perf_counter()
    for index, (data, output, passthrough, names) in enumerate(requests):
        submit(
            f"req-{index}",
            "bench",
            "bench/1",
            "primary",
            data,
            output,
            1.0,
            200,
            None,
            passthrough,
            names,
        )
    return time.perf_counter() - start


def floor_all(requests: Sequence[Request]) -> float:
    """The least a submit can do: stamp the time and append a tuple to a deque."""
    buffer: deque[tuple[Any, ...]] = deque()
    append, now = buffer.append, time.time
    start = time.perf_counter()
    for index, (data, output, passthrough, names) in enumerate(requests):
        append((now(), f"req-{index}", data, output, passthrough, names))
    return time.perf_counter() - start


def unpack_all(requests: Sequence[Request]) -> float:
    """What pandas alone charges to hand over a frame's values: one ``to_numpy`` each."""
    frames = [data for data, _, _, _ in requests if isinstance(data, pd.DataFrame)]
    start = time.perf_counter()
    for data in frames:
        data.to_numpy()
    return time.perf_counter() - start


def measure(shape: str, count: int, repeats: int, directory: Path) -> dict[str, Any]:
    """Median µs per request of submit, its floor and flush for one shape of traffic."""
    requests = SHAPES[shape](count)
    submits: list[float] = []
    floors: list[float] = []
    flushes: list[float] = []
    unpacks: list[float] = []
    for round_ in range(repeats):
        writer = CaptureWriter(root=directory / f"{shape}-{round_}", secret=b"bench-key")
        writer.configure("bench", EndpointCapture(privacy=POLICY))
        gc.collect()
        if round_ % 2:
            floors.append(floor_all(requests))
            submits.append(submit_all(writer, requests))
        else:
            submits.append(submit_all(writer, requests))
            floors.append(floor_all(requests))
        unpacks.append(unpack_all(requests))
        start = time.perf_counter()
        written = writer.flush()
        flushes.append(time.perf_counter() - start)
        if written != count or writer.records_lost:
            raise RuntimeError(f"{shape}: wrote {written} of {count} records")
    submit_us = statistics.median(submits) / count * 1e6
    floor_us = statistics.median(floors) / count * 1e6
    flush_us = statistics.median(flushes) / count * 1e6
    return {
        "shape": shape,
        "requests": count,
        "repeats": repeats,
        "submit_us": submit_us,
        "floor_us": floor_us,
        "flush_us": flush_us,
        "to_numpy_us": statistics.median(unpacks) / count * 1e6,
        "core_share_at_4000_rps": (submit_us + flush_us) * 1e-6 * RATE,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a Markdown report, write JSON; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="500 requests, one repetition.")
    parser.add_argument("--requests", type=positive_int, default=20_000)
    parser.add_argument("--repeats", type=positive_int, default=7)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    count, repeats = (500, 1) if args.smoke else (args.requests, args.repeats)
    with tempfile.TemporaryDirectory(prefix="ferryman-capture-bench-") as scratch:
        results = [measure(shape, count, repeats, Path(scratch)) for shape in SHAPES]
        output_dir = args.output_dir or (Path(scratch) / "out" if args.smoke else RESULTS_DIR)
        machine = machine_info()
        document = {
            "benchmark": "capture_writer",
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": machine,
            "results": results,
        }
        write_json(output_dir / RESULT_FILE, document)
    lines = [
        "# Capture writer: cost per one-row request",
        "",
        *machine_lines(machine),
        "",
        *markdown_table(
            [
                "traffic",
                "submit (µs)",
                "floor (µs)",
                "flush (µs/record)",
                "of which to_numpy",
                "core at 4,000 req/s",
            ],
            [
                [
                    r["shape"],
                    f"{r['submit_us']:.2f}",
                    f"{r['floor_us']:.2f}",
                    f"{r['flush_us']:.1f}",
                    f"{r['to_numpy_us']:.1f}" if "frame" in r["shape"] else "-",
                    f"{r['core_share_at_4000_rps']:.1%}",
                ]
                for r in results
            ],
        ),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
