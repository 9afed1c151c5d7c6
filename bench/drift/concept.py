"""Concept-drift harness: streaming detectors on seeded streams with known change points.

Each detector (ADWIN, Page-Hinkley, DDM, and a trivial baseline) reads seeded streams:

- change streams, ``--length`` values with a change at the middle: error rates
  10 % -> 20 % and 10 % -> 15 % (0/1 error streams) and a normal mean shift of 0.5 sd;
- stationary streams of ``--stationary`` values: errors at 10 %, and standard normal.

Reported per detector and stream: the median and mean detection delay (first detection
at or after the change), missed changes (no detection after it), and false alarms per
10,000 values (detections before the change, and on stationary streams), with the
Poisson 95 % interval of the false-alarm rate. Page-Hinkley is configured for an
average run length of 10,000 (one false alarm per 10,000 monitored values; its warm-up
of 500 values after each alarm is not monitored, so 0.95 per 10,000 values overall).
DDM reads only the error streams. The baseline is what one writes in five minutes:
the mean of the last 100 values against the mean of the first 1,000 (re-learned after
each alarm), alarm beyond 3 standard errors, checked at every value.

Assert-free: it measures and reports. Results go to ``bench/results/drift_concept.json``.

Usage::

    python bench/drift/concept.py            # 30 seeds, ~2 minutes on 2 cores
    python bench/drift/concept.py --smoke    # 2 seeds, short streams, seconds
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _report import machine_info, machine_lines, markdown_table, write_json  # noqa: E402

from ferryman.drift import ADWIN, DDM, PageHinkley  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
RESULT_FILE = "drift_concept.json"
TARGET_ARL = 10_000
WARMUP = 500


class MovingAverageBaseline:
    """The trivial detector: last-100 mean against the first-1,000 mean, 3 standard errors."""

    name = "baseline"

    def __init__(self, *, reference: int = 1000, window: int = 100, z: float = 3.0) -> None:
        self.reference, self.window, self.z = reference, window, z
        self._updates = 0
        self._detections: list[int] = []
        self._reset()

    def _reset(self) -> None:
        self._learning: list[float] = []
        self._recent: deque[float] = deque(maxlen=self.window)
        self._total = 0.0
        self._mean = self._limit = math.nan

    @property
    def detections(self) -> tuple[int, ...]:
        return tuple(self._detections)

    def update(self, x: float) -> None:
        index = self._updates
        self._updates += 1
        if len(self._learning) < self.reference:
            self._learning.append(x)
            if len(self._learning) == self.reference:
                values = np.asarray(self._learning)
                self._mean = float(values.mean())
                self._limit = self.z * max(float(values.std()), 1e-12) / math.sqrt(self.window)
            return
        if len(self._recent) == self.window:
            self._total -= self._recent[0]
        self._recent.append(x)
        self._total += x
        if (
            len(self._recent) == self.window
            and abs(self._total / self.window - self._mean) > self._limit
        ):
            self._detections.append(index)
            self._reset()


Stream = Callable[[np.random.Generator, int], np.ndarray]


def _errors(before: float, after: float) -> Stream:
    def make(rng: np.random.Generator, length: int) -> np.ndarray:
        half = length // 2
        return np.concatenate(
            [rng.random(half) < before, rng.random(length - half) < after]
        ).astype(float)

    return make


def _normal_shift(shift: float) -> Stream:
    def make(rng: np.random.Generator, length: int) -> np.ndarray:
        half = length // 2
        return np.concatenate([rng.normal(0, 1, half), rng.normal(shift, 1, length - half)])

    return make


CHANGE_STREAMS: dict[str, tuple[Stream, bool]] = {
    "errors 10% -> 20%": (_errors(0.1, 0.2), True),
    "errors 10% -> 15%": (_errors(0.1, 0.15), True),
    "normal mean +0.5 sd": (_normal_shift(0.5), False),
}
STATIONARY_STREAMS: dict[str, tuple[Stream, bool]] = {
    "errors 10% (stationary)": (lambda r, n: (r.random(n) < 0.1).astype(float), True),
    "normal (stationary)": (lambda r, n: r.normal(0, 1, n), False),
}
DETECTORS: dict[str, Callable[[], Any]] = {
    "adwin": ADWIN,
    "page_hinkley": lambda: PageHinkley(target_arl=TARGET_ARL, warmup=WARMUP),
    "ddm": DDM,
    "baseline": MovingAverageBaseline,
}


def _detections(make: Callable[[], Any], stream: np.ndarray) -> tuple[int, ...]:
    detector = make()
    update = detector.update
    for x in stream.tolist():
        update(x)
    return tuple(detector.detections)


def _rate(count: int, values: int) -> dict[str, float]:
    low = 0.0 if count == 0 else 0.5 * _chi2_quantile(0.025, 2 * count)
    high = 0.5 * _chi2_quantile(0.975, 2 * count + 2)
    scale = 10_000 / values
    return {"per_10k": count * scale, "low": low * scale, "high": high * scale, "count": count}


def _chi2_quantile(q: float, df: int) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(q, df))


def run(seeds: int, length: int, stationary: int) -> dict[str, Any]:
    """Measure every detector on every stream."""
    results: dict[str, Any] = {}
    for stream_name, (make_stream, binary) in CHANGE_STREAMS.items():
        for name, make in DETECTORS.items():
            if name == "ddm" and not binary:
                continue
            delays, missed, early, started = [], 0, 0, time.perf_counter()
            change = length // 2
            for seed in range(seeds):
                found = _detections(make, make_stream(np.random.default_rng(seed), length))
                early += sum(1 for d in found if d < change)
                after = [d for d in found if d >= change]
                if after:
                    delays.append(after[0] - change)
                else:
                    missed += 1
            results.setdefault(stream_name, {})[name] = {
                "median_delay": statistics.median(delays) if delays else None,
                "mean_delay": statistics.fmean(delays) if delays else None,
                "missed": missed,
                "runs": seeds,
                "false_alarms": _rate(early, seeds * change),
                "seconds": time.perf_counter() - started,
            }
    for stream_name, (make_stream, binary) in STATIONARY_STREAMS.items():
        for name, make in DETECTORS.items():
            if name == "ddm" and not binary:
                continue
            count, started = 0, time.perf_counter()
            for seed in range(seeds):
                count += len(
                    _detections(make, make_stream(np.random.default_rng(10_000 + seed), stationary))
                )
            results.setdefault(stream_name, {})[name] = {
                "false_alarms": _rate(count, seeds * stationary),
                "runs": seeds,
                "seconds": time.perf_counter() - started,
            }
    return results


def _tables(results: dict[str, Any], machine: dict[str, Any]) -> list[str]:
    lines = ["", "## Concept drift: streaming detectors", "", *machine_lines(machine), ""]
    rows = []
    for stream, by_detector in results.items():
        for name, r in by_detector.items():
            fa = r["false_alarms"]
            delay = (
                "-"
                if r.get("median_delay") is None
                else f"{r['median_delay']:.0f} / {r['mean_delay']:.0f}"
            )
            missed = "-" if "missed" not in r else f"{r['missed']}/{r['runs']}"
            rows.append(
                [
                    stream,
                    name,
                    delay,
                    missed,
                    f"{fa['per_10k']:.2f} [{fa['low']:.2f}, {fa['high']:.2f}]",
                ]
            )
    headers = ["stream", "detector", "delay median / mean", "missed", "false alarms / 10k [95 %]"]
    lines += markdown_table(headers, rows)
    lines += [
        "",
        f"Page-Hinkley target: {10_000 / TARGET_ARL:.2f} false alarms per 10,000 "
        f"monitored values ({10_000 / (TARGET_ARL + WARMUP):.2f} per 10,000 values with "
        f"its {WARMUP}-value warm-up after each alarm).",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness and print its table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 seeds, short streams")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--length", type=int, default=20_000, help="change stream length")
    parser.add_argument("--stationary", type=int, default=200_000, help="stationary length")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.length, args.stationary = 2, 4000, 10_000
    machine = machine_info()
    results = run(args.seeds, args.length, args.stationary)
    document = {
        "machine": machine,
        "date": datetime.now(UTC).isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "seeds": args.seeds,
            "length": args.length,
            "stationary": args.stationary,
            "target_arl": TARGET_ARL,
            "warmup": WARMUP,
        },
        "streams": results,
    }
    write_json(args.output_dir / RESULT_FILE, document)
    print("\n".join(_tables(results, machine)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
