"""Micro-benchmark: what MonitoringRecorder costs per request, on the hot path and in total.

The model is the serving benchmark's breast-cancer classifier (``StandardScaler +
LogisticRegression``, 30 float columns, probabilities), registered with a signature and
a reference profile; requests are the validated DataFrames and predictions the server
would pass, of 1 row and of 32 rows. Contenders, each timed over ``--requests``
requests per round, in interleaved rounds (see ``_timing.interleave``):

- ``observe``: ``MonitoringRecorder.observe_prediction`` alone: the cost a request pays
  on the serving path (the queue is large enough that no call drains);
- ``drain``: ``MonitoringRecorder.drain`` of those requests: the deferred, vectorised
  checks (missing, ranges, classes, scores, PSI bins) and the Prometheus updates, paid
  once a second on the flusher's thread;
- ``floor``: appending the same tuple to a ``deque``: the least a hot-path recorder that
  keeps references can cost;
- ``inline``: the straightforward alternative that checks each request on the serving
  path: ``to_numpy``, missing and range counts over the request's rows, one Prometheus
  counter increment and one histogram observation per row.

Figures are microseconds per request (medians over rounds, p90 beside them), with the
Prometheus metrics in single-process mode. Results go to
``bench/results/monitoring_recorder.json``; a Markdown table is printed.

Usage::

    python bench/monitoring/recorder_micro.py            # 2,000 requests x 15 rounds
    python bench/monitoring/recorder_micro.py --smoke    # 50 requests x 1 round
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from _arguments import positive_int  # noqa: E402
from _report import machine_info, machine_lines, markdown_table, write_json  # noqa: E402
from _timing import interleave, summarize  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from ferryman.flavors.base import Prediction  # noqa: E402
from ferryman.monitoring import MonitoringRecorder, ServingMetrics  # noqa: E402
from ferryman.signature import (  # noqa: E402
    ReferenceProfile,
    Signature,
    build_profile,
    infer_signature,
)

RESULTS_DIR = ROOT / "bench" / "results"
RESULT_FILE = "monitoring_recorder.json"
CONTENDERS = ("observe", "drain", "floor", "inline")
ENDPOINT, VERSION = "cancer", "cancer/1"


@dataclass(frozen=True)
class Workload:
    """One request shape: its validated rows and the model's answer to them."""

    name: str
    frame: pd.DataFrame
    prediction: Prediction


@dataclass(frozen=True)
class Model:
    """The served version's signature and profile, and the two request shapes."""

    signature: Signature
    profile: ReferenceProfile
    workloads: tuple[Workload, ...]


def build_model() -> Model:
    """Fit the breast-cancer classifier and prepare 1-row and 32-row requests."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X: pd.DataFrame = data.data
    y: np.ndarray = data.target.to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)

    def predict(frame: pd.DataFrame) -> Prediction:
        classes = [int(c) for c in model.classes_]
        return Prediction(np.asarray(model.predict(frame)), model.predict_proba(frame), classes)

    training = predict(X)
    signature = infer_signature(X, predictions=training)
    workloads = []
    for rows in (1, 32):
        frame = signature.validate(X.iloc[:rows])
        assert isinstance(frame, pd.DataFrame)
        workloads.append(Workload(f"{rows}-row", frame, predict(frame)))
    return Model(signature, build_profile(X, predictions=training), tuple(workloads))


def contenders(model: Model, workload: Workload, requests: int) -> dict[str, Callable[[], object]]:
    """The timed calls for one workload; each handles ``requests`` requests."""
    metrics = ServingMetrics.create(CollectorRegistry())
    recorder = MonitoringRecorder(metrics=metrics.data, max_pending=requests + 1)
    recorder.bind_version(ENDPOINT, VERSION, signature=model.signature, profile=model.profile)
    frame, prediction = workload.frame, workload.prediction
    queue: deque[tuple[Any, ...]] = deque()

    def observe() -> None:
        for _ in range(requests):
            recorder.observe_prediction(ENDPOINT, VERSION, "primary", 200, 3.0, frame, prediction)

    def drain() -> None:
        recorder.drain()

    def floor() -> None:
        for _ in range(requests):
            queue.append((0, 0.0, ENDPOINT, VERSION, "primary", 200, 3.0, frame, prediction))
        queue.clear()

    inline_metrics = ServingMetrics.create(CollectorRegistry()).data
    lows = np.asarray([c.minimum for c in model.signature.columns], dtype=np.float64)
    highs = np.asarray([c.maximum for c in model.signature.columns], dtype=np.float64)
    rows_counter = inline_metrics.input_rows.labels(ENDPOINT)
    score = inline_metrics.score.labels(ENDPOINT, VERSION, "primary")
    assert prediction.probabilities is not None
    positive = prediction.probabilities[:, 1].tolist()

    sink: list[tuple[np.ndarray, np.ndarray]] = []

    def inline() -> None:
        sink.clear()
        for _ in range(requests):
            matrix = frame.to_numpy(dtype=np.float64, na_value=np.nan)
            missing = np.isnan(matrix).sum(axis=0)
            outside = ((matrix < lows) | (matrix > highs)).sum(axis=0)
            sink.append((missing, outside))
            rows_counter.inc(len(matrix))
            for value in positive:
                score.observe(value)

    return {"observe": observe, "drain": drain, "floor": floor, "inline": inline}


def run(model: Model, *, requests: int, rounds: int) -> dict[str, Any]:
    """Time every contender on every workload; microseconds per request."""
    results: dict[str, Any] = {}
    for workload in model.workloads:
        calls = contenders(model, workload, requests)
        # ``drain`` must follow ``observe`` in each round, so they are timed as a pair.
        observe, drain = calls.pop("observe"), calls.pop("drain")
        paired: dict[str, list[float]] = {"observe": [], "drain": []}
        recorder_round = _timed_pair(observe, drain, paired)
        others = interleave({"recorder": recorder_round, **calls}, rounds=rounds)
        durations = {**paired, "floor": others["floor"], "inline": others["inline"]}
        per_request = {
            name: summarize([seconds / requests * 1e6 for seconds in runs]).to_dict()
            for name, runs in durations.items()
        }
        total = [
            (a + b) / requests * 1e6
            for a, b in zip(paired["observe"], paired["drain"], strict=True)
        ]
        per_request["observe+drain"] = summarize(total).to_dict()
        results[workload.name] = {"rows": len(workload.frame), "microseconds": per_request}
    return results


def _timed_pair(
    observe: Callable[[], object], drain: Callable[[], object], durations: dict[str, list[float]]
) -> Callable[[], None]:
    """One round of the recorder: observe, then drain, each timed into ``durations``."""

    def round_() -> None:
        durations["observe"].append(_seconds(observe))
        durations["drain"].append(_seconds(drain))

    return round_


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def report(results: dict[str, Any]) -> list[str]:
    """Render the results as a Markdown table (median and p90, microseconds per request)."""
    names = [*CONTENDERS[:2], "observe+drain", *CONTENDERS[2:]]
    rows = [
        [
            workload,
            *(
                f"{figures['microseconds'][name]['median']:.2f} "
                f"({figures['microseconds'][name]['p90']:.2f})"
                for name in names
            ),
        ]
        for workload, figures in results.items()
    ]
    return markdown_table(["request", *names], rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print Markdown and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny run that exercises every path")
    parser.add_argument("--requests", type=positive_int, default=None, help="requests per round")
    parser.add_argument("--rounds", type=positive_int, default=None, help="measured rounds")
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    requests = args.requests or (50 if args.smoke else 2_000)
    rounds = args.rounds or (1 if args.smoke else 15)
    model = build_model()
    if not args.smoke:  # warm up caches and lazy imports, untimed
        run(model, requests=min(requests, 200), rounds=1)
    results = run(model, requests=requests, rounds=rounds)
    machine = machine_info()
    document = {
        "benchmark": "monitoring_recorder",
        "smoke": args.smoke,
        "requests_per_round": requests,
        "rounds": rounds,
        "machine": machine,
        "results": results,
    }
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-monitoring-") as scratch:
        directory = args.output_dir or (Path(scratch) if args.smoke else RESULTS_DIR)
        write_json(directory / RESULT_FILE, document)
    lines = [
        "# MonitoringRecorder cost per request (microseconds: median (p90))",
        "",
        *machine_lines(machine),
        "",
        *report(results),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
