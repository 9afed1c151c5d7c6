"""Concept-drift harness: streaming detectors on seeded streams with known change points.

Each detector (ADWIN, Page-Hinkley, DDM) and a trivial baseline read seeded streams:

- change streams, ``--length`` values with a change at the middle: error rates
  10 % -> 20 % and 10 % -> 15 % (0/1 error streams) and a normal mean shift of 0.5 sd;
- stationary streams of ``--stationary`` values: errors at 10 %, and standard normal.

Reported per detector and stream: the median and mean detection delay (first detection
at or after the change; a missed change counts as the rest of the stream, so the mean
is never flattered by leaving misses out), missed changes (no detection after it), and
false alarms per 10,000 values (detections before the change, and on stationary
streams), with the Poisson 95 % interval of the false-alarm rate.

The baseline is what one writes in five minutes: the mean of the last 100 values
against the mean of the first 1,000 (re-learned after each alarm), alarm beyond ``z``
standard errors, checked at every value. It runs twice:

- at ``z = 3``, the value one would pick;
- *matched* to each detector: ``z`` is raised until the baseline raises no more false
  alarms than the detector's upper 95 % bound on separate calibration streams. A
  detector beats the baseline when, at that matched rate, it misses no more changes
  and its mean delay is shorter, on every change stream it reads. Comparing delays at
  different false-alarm rates says nothing: any detector is faster when it cries wolf
  more often.

Each detector is also checked against its configured false-alarm rate: Page-Hinkley
is configured for an average run length of 10,000 (one false alarm per 10,000
monitored values; its warm-up of 500 values after each alarm is not monitored, so 0.95
per 10,000 values overall); ADWIN's ``delta`` bounds the false-alarm probability of
each check, so at most ``delta * 10,000 / clock`` per 10,000 values; DDM's
``drift_level`` is a bound in standard deviations with no stated rate, so the one it
is held to is the rate of a one-sided test at ``drift_level`` checked at every value,
``10,000 * (1 - Phi(drift_level))``. "Meets" means the lower end of the measured
rate's 95 % interval is at or below the configured rate. DDM reads only the error
streams; it runs as published (drift at 3 sd) and, as ``ddm_2sd``, at 2 sd.

Assert-free: it measures and reports. Results go to ``bench/results/drift_concept.json``.

Usage::

    python bench/drift/concept.py            # 30 seeds, ~3 minutes on 2 cores
    python bench/drift/concept.py --smoke    # 2 seeds, short streams, seconds
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import chi2, norm

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _report import machine_info, machine_lines, markdown_table, write_json  # noqa: E402

from ferryman.drift import ADWIN, DDM, PageHinkley  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
RESULT_FILE = "drift_concept.json"
TARGET_ARL = 10_000
WARMUP = 500
BASELINE_REFERENCE = 1000
BASELINE_WINDOW = 100
BASELINE_Z = 3.0
CALIBRATION_SEED = 20_000
STATIONARY_SEED = 10_000


def window_means(stream: np.ndarray, window: int = BASELINE_WINDOW) -> np.ndarray:
    """Mean of the ``window`` values ending at each index (NaN before the first full one)."""
    sums = np.concatenate([[0.0], np.cumsum(stream, dtype=np.float64)])
    means = np.full(len(stream), np.nan)
    means[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return means


def baseline_detections(
    stream: np.ndarray,
    z: float = BASELINE_Z,
    *,
    means: np.ndarray | None = None,
    reference: int = BASELINE_REFERENCE,
    window: int = BASELINE_WINDOW,
) -> tuple[int, ...]:
    """Indices where the moving-average baseline alarms, vectorised.

    The first ``reference`` values (after the start or an alarm) give the mean and the
    standard deviation; each later value closes a window of ``window`` values whose
    mean is compared with the reference mean; beyond ``z`` standard errors is an alarm,
    and learning starts again with the next value.
    """
    means = window_means(stream, window) if means is None else means
    found: list[int] = []
    start, size = 0, len(stream)
    while start + reference + window - 1 < size:
        learned = stream[start : start + reference]
        mean = float(learned.mean())
        limit = z * max(float(learned.std()), 1e-12) / math.sqrt(window)
        first = start + reference + window - 1
        hit, chunk = -1, 4096
        while first < size:
            part = means[first : first + chunk]
            above = np.flatnonzero(np.abs(part - mean) > limit)
            if above.size:
                hit = first + int(above[0])
                break
            first += part.size
            chunk *= 2
        if hit < 0:
            break
        found.append(hit)
        start = hit + 1
    return tuple(found)


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


#: Change streams: name -> (generator, kind); a kind names the matching stationary stream.
CHANGE_STREAMS: dict[str, tuple[Stream, str]] = {
    "errors 10% -> 20%": (_errors(0.1, 0.2), "errors"),
    "errors 10% -> 15%": (_errors(0.1, 0.15), "errors"),
    "normal mean +0.5 sd": (_normal_shift(0.5), "normal"),
}
STATIONARY_STREAMS: dict[str, tuple[Stream, str]] = {
    "errors 10% (stationary)": (lambda r, n: (r.random(n) < 0.1).astype(float), "errors"),
    "normal (stationary)": (lambda r, n: r.normal(0, 1, n), "normal"),
}
STATIONARY_BY_KIND = {kind: make for make, kind in STATIONARY_STREAMS.values()}
BOTH, ERRORS_ONLY = ("errors", "normal"), ("errors",)
#: Detector name -> (factory, the stream kinds it reads: DDM reads only 0/1 errors).
DETECTORS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "adwin": (ADWIN, BOTH),
    "page_hinkley": (lambda: PageHinkley(target_arl=TARGET_ARL, warmup=WARMUP), BOTH),
    "ddm": (DDM, ERRORS_ONLY),
    "ddm_2sd": (lambda: DDM(warning_level=1.5, drift_level=2.0), ERRORS_ONLY),
}


def configured_rate(detector: Any) -> dict[str, Any]:
    """The false-alarm rate (per 10,000 values) a detector's configuration promises."""
    if isinstance(detector, PageHinkley):
        return {
            "per_10k": 10_000 / (detector.target_arl + detector.warmup),
            "source": f"target ARL {detector.target_arl}",
        }
    if isinstance(detector, ADWIN):
        return {
            "per_10k": detector.delta * 10_000 / detector.clock,
            "source": f"delta {detector.delta} per check, a check every {detector.clock}",
        }
    return {
        "per_10k": 10_000 * float(norm.sf(detector.drift_level)),
        "source": f"one-sided {detector.drift_level} sd at every value",
    }


def _detections(make: Callable[[], Any], stream: np.ndarray) -> tuple[int, ...]:
    detector = make()
    update = detector.update
    for x in stream.tolist():
        update(x)
    return tuple(detector.detections)


def _rate(count: int, values: int) -> dict[str, float]:
    low = 0.0 if count == 0 else 0.5 * float(chi2.ppf(0.025, 2 * count))
    high = 0.5 * float(chi2.ppf(0.975, 2 * count + 2))
    scale = 10_000 / values
    return {"per_10k": count * scale, "low": low * scale, "high": high * scale, "count": count}


def _change_result(
    detect: Callable[[np.ndarray], tuple[int, ...]], make_stream: Stream, seeds: int, length: int
) -> dict[str, Any]:
    change = length // 2
    delays, missed, early, started = [], 0, 0, time.perf_counter()
    for seed in range(seeds):
        found = detect(make_stream(np.random.default_rng(seed), length))
        early += sum(1 for d in found if d < change)
        after = [d for d in found if d >= change]
        if after:
            delays.append(after[0] - change)
        else:
            missed += 1
            delays.append(length - change)  # censored at the end of the stream
    return {
        "median_delay": statistics.median(delays),
        "mean_delay": statistics.fmean(delays),
        "missed": missed,
        "runs": seeds,
        "false_alarms": _rate(early, seeds * change),
        "seconds": time.perf_counter() - started,
    }


def _stationary_result(
    detect: Callable[[np.ndarray], tuple[int, ...]], make_stream: Stream, seeds: int, length: int
) -> dict[str, Any]:
    count, started = 0, time.perf_counter()
    for seed in range(seeds):
        count += len(detect(make_stream(np.random.default_rng(STATIONARY_SEED + seed), length)))
    return {
        "false_alarms": _rate(count, seeds * length),
        "runs": seeds,
        "seconds": time.perf_counter() - started,
    }


class _Calibration:
    """Stationary streams, apart from the evaluation ones, to match the baseline's rate."""

    def __init__(self, make_stream: Stream, seeds: int, length: int) -> None:
        streams = [
            make_stream(np.random.default_rng(CALIBRATION_SEED + seed), length)
            for seed in range(seeds)
        ]
        self.pairs = [(stream, window_means(stream)) for stream in streams]
        self.values = seeds * length

    def rate(self, z: float) -> float:
        alarms = sum(len(baseline_detections(s, z, means=m)) for s, m in self.pairs)
        return alarms * 10_000 / self.values

    def z_for(self, target_per_10k: float) -> float:
        """The smallest ``z`` (to 0.005) whose false-alarm rate is at most the target."""
        low, high = 1.0, 8.0
        while high - low > 0.005:
            middle = (low + high) / 2
            if self.rate(middle) <= target_per_10k:
                high = middle
            else:
                low = middle
        return high


def run(seeds: int, length: int, stationary: int) -> dict[str, Any]:
    """Measure every detector and the baseline, plain and matched, on every stream."""
    streams: dict[str, Any] = {}
    contenders: dict[str, tuple[Callable[[np.ndarray], tuple[int, ...]], tuple[str, ...]]] = {
        name: (partial(_detections, make), kinds) for name, (make, kinds) in DETECTORS.items()
    }
    contenders["baseline"] = (baseline_detections, BOTH)
    for stream_name, (make_stream, kind) in CHANGE_STREAMS.items():
        for name, (detect, kinds) in contenders.items():
            if kind in kinds:
                streams.setdefault(stream_name, {})[name] = _change_result(
                    detect, make_stream, seeds, length
                )
    for stream_name, (make_stream, kind) in STATIONARY_STREAMS.items():
        for name, (detect, kinds) in contenders.items():
            if kind in kinds:
                streams.setdefault(stream_name, {})[name] = _stationary_result(
                    detect, make_stream, seeds, stationary
                )
    calibrations = {
        kind: _Calibration(make, 3 * seeds, stationary) for kind, make in STATIONARY_BY_KIND.items()
    }
    stationary_name = {kind: name for name, (_, kind) in STATIONARY_STREAMS.items()}
    matched: dict[str, Any] = {}
    for name, (make, kinds) in DETECTORS.items():
        configured = configured_rate(make())
        entry: dict[str, Any] = {"configured": configured, "kinds": {}}
        for kind in kinds:
            own = streams[stationary_name[kind]][name]["false_alarms"]
            z = calibrations[kind].z_for(own["high"])
            detect = partial(baseline_detections, z=z)
            fair = _stationary_result(detect, STATIONARY_BY_KIND[kind], seeds, stationary)[
                "false_alarms"
            ]
            changes = {}
            for stream_name, (make_stream, stream_kind) in CHANGE_STREAMS.items():
                if stream_kind != kind:
                    continue
                base = _change_result(detect, make_stream, seeds, length)
                mine = streams[stream_name][name]
                changes[stream_name] = {
                    "baseline": base,
                    "beats": mine["missed"] <= base["missed"]
                    and mine["mean_delay"] < base["mean_delay"],
                }
            entry["kinds"][kind] = {
                "detector_false_alarms": own,
                "meets_configured": own["low"] <= configured["per_10k"],
                "baseline_z": z,
                "baseline_false_alarms": fair,
                "changes": changes,
            }
        entry["beats_baseline"] = all(
            c["beats"] for k in entry["kinds"].values() for c in k["changes"].values()
        )
        entry["meets_configured"] = all(k["meets_configured"] for k in entry["kinds"].values())
        matched[name] = entry
    return {"streams": streams, "matched": matched}


def _delay(r: dict[str, Any]) -> str:
    return f"{r['median_delay']:.0f} / {r['mean_delay']:.0f}"


def _fa(fa: dict[str, float]) -> str:
    return f"{fa['per_10k']:.2f} [{fa['low']:.2f}, {fa['high']:.2f}]"


def _tables(results: dict[str, Any], machine: dict[str, Any]) -> list[str]:
    lines = ["", "## Concept drift: streaming detectors", "", *machine_lines(machine), ""]
    rows = []
    for stream, by_detector in results["streams"].items():
        for name, r in by_detector.items():
            missed = "-" if "missed" not in r else f"{r['missed']}/{r['runs']}"
            delay = _delay(r) if "median_delay" in r else "-"
            label = f"baseline (z = {BASELINE_Z:g})" if name == "baseline" else name
            rows.append([stream, label, delay, missed, _fa(r["false_alarms"])])
    headers = ["stream", "detector", "delay median / mean", "missed", "false alarms / 10k [95 %]"]
    lines += markdown_table(headers, rows)
    lines += ["", "### At matched false-alarm rates", ""]
    rows = []
    for name, entry in results["matched"].items():
        for kind in entry["kinds"].values():
            for stream, change in kind["changes"].items():
                mine = results["streams"][stream][name]
                base = change["baseline"]
                rows.append(
                    [
                        stream,
                        name,
                        f"{_delay(mine)} ({mine['missed']} missed)",
                        f"{kind['baseline_z']:.2f}",
                        _fa(kind["baseline_false_alarms"]),
                        f"{_delay(base)} ({base['missed']} missed)",
                        "yes" if change["beats"] else "no",
                    ]
                )
    headers = [
        "stream",
        "detector",
        "detector delay",
        "baseline z",
        "baseline false alarms / 10k",
        "baseline delay",
        "beats",
    ]
    lines += markdown_table(headers, rows)
    lines += ["", "### Configured false-alarm rates", ""]
    rows = []
    for name, entry in results["matched"].items():
        for kind_name, kind in entry["kinds"].items():
            rows.append(
                [
                    name,
                    kind_name,
                    f"{entry['configured']['per_10k']:.3f} ({entry['configured']['source']})",
                    _fa(kind["detector_false_alarms"]),
                    "yes" if kind["meets_configured"] else "no",
                ]
            )
    lines += markdown_table(
        ["detector", "stream", "configured / 10k", "measured / 10k [95 %]", "meets"], rows
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness and print its tables; return 0."""
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
            "baseline": {
                "reference": BASELINE_REFERENCE,
                "window": BASELINE_WINDOW,
                "z": BASELINE_Z,
                "calibration_seeds": 3 * args.seeds,
            },
        },
        **results,
    }
    write_json(args.output_dir / RESULT_FILE, document)
    print("\n".join(_tables(results, machine)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
