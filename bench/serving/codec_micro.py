"""Micro-benchmark of the serving hot path: decoding a request body and validating it.

Times, in process and without HTTP, what ``ferryman serve`` does to a request before the
model sees it: the protocol codec's decode, then :meth:`InputSchema.validate`. The
signatures are the ones the serving benchmark registers: scikit-learn's breast-cancer
data (30 float64 columns) as a table signature, and the same data as a float64 tensor
signature for the one-tensor V2 request. The rows are the first rows of that data.

Cases:

- ``v2 1 row, 30 tensors``: Open Inference Protocol V2 with one ``[1]`` FP64 input per
  column, the way MLServer and tritonclient send columns;
- ``v2 1 row, [1, 30] tensor``: one FP64 input ``[1, 30]`` named ``input-0``, for a tensor
  signature;
- ``native 1 row, records``, ``native 32 rows, records``: ``{"instances": [{...}]}``;
- ``native 32 rows, columns/data``: ``{"columns": [...], "data": [[...], ...]}``.

Each case is checked once (the validated batch must equal the rows sent), then timed
with :mod:`timeit` on the process's CPU time (steadier than wall time on a shared
machine; ``--clock wall`` for wall time): ``--repeat`` runs of enough calls to take about
``--target-ms`` each. The table shows the median run per call, in microseconds, for
decode alone, validate alone (of an already-decoded batch) and both, and the best run of
both.

Usage::

    python bench/serving/codec_micro.py           # about a minute
    python bench/serving/codec_micro.py --smoke   # under 10 s, checks every case
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from ferryman.flavors.base import ModelInput
from ferryman.serving.codecs import DecodedBatch, InputSchema, OutputLayout, native, oip_v2
from ferryman.signature import infer_signature

#: The layout of the cancer classifier's outputs: labels 0/1 and two probabilities.
LAYOUT = OutputLayout(
    prediction_dtype=np.dtype(np.int64), prediction_width=None, n_classes=2, classes=(0, 1)
)


@dataclass(frozen=True)
class Case:
    """One request body and how the server decodes it.

    Attributes:
        name: What the table calls it.
        schema: What the endpoint accepts.
        body: The raw request body.
        decode: The codec's decode, from body to batch.
        expected: The rows the body carries, as the model should see them.
    """

    name: str
    schema: InputSchema
    body: bytes
    decode: Callable[[bytes, InputSchema], DecodedBatch]
    expected: np.ndarray


@dataclass(frozen=True)
class Timing:
    """Per-call times of one case, in seconds: median and best over the runs."""

    median: float
    best: float


def decode_v2(body: bytes, schema: InputSchema) -> DecodedBatch:
    """Decode a V2 ``infer`` body and keep its batch."""
    return oip_v2.decode_infer(body, schema, LAYOUT).batch


def build_cases(frame: pd.DataFrame) -> list[Case]:
    """Build the request bodies over the first rows of ``frame``."""
    table = InputSchema(infer_signature(frame))
    tensor = InputSchema(infer_signature(frame.to_numpy()))
    one, many = frame.iloc[:1], frame.iloc[:32]
    columns_v2 = {
        "inputs": [
            {"name": str(name), "shape": [1], "datatype": "FP64", "data": values.tolist()}
            for name, values in one.items()
        ]
    }
    tensor_v2 = {
        "inputs": [
            {"name": oip_v2.TENSOR_INPUT, "shape": [1, one.shape[1]], "datatype": "FP64"}
            | {"data": one.to_numpy().tolist()}
        ]
    }
    split = {"columns": [str(name) for name in many.columns], "data": many.to_numpy().tolist()}
    return [
        Case("v2 1 row, 30 tensors", table, orjson.dumps(columns_v2), decode_v2, one.to_numpy()),
        Case(
            "v2 1 row, [1, 30] tensor", tensor, orjson.dumps(tensor_v2), decode_v2, one.to_numpy()
        ),
        Case(
            "native 1 row, records",
            table,
            orjson.dumps({"instances": one.to_dict(orient="records")}),
            native.decode,
            one.to_numpy(),
        ),
        Case(
            "native 32 rows, records",
            table,
            orjson.dumps({"instances": many.to_dict(orient="records")}),
            native.decode,
            many.to_numpy(),
        ),
        Case(
            "native 32 rows, columns/data",
            table,
            orjson.dumps(split),
            native.decode,
            many.to_numpy(),
        ),
    ]


def as_matrix(data: ModelInput) -> np.ndarray:
    """The validated batch as a float64 matrix, to compare with the rows sent."""
    if isinstance(data, pd.DataFrame):
        return data.to_numpy(dtype=np.float64)
    return np.asarray(data, dtype=np.float64)


def check(case: Case) -> None:
    """Decode and validate ``case`` once; raise if the model would see other rows.

    Raises:
        RuntimeError: The validated batch differs from the rows in the body.
    """
    validated = case.schema.validate(case.decode(case.body, case.schema).data)
    got = as_matrix(validated)
    if got.shape != case.expected.shape or not np.array_equal(got, case.expected):
        raise RuntimeError(f"{case.name}: the validated batch differs from the rows sent")


#: The clocks ``--clock`` chooses from: CPU time of this process (steadier on a shared
#: machine, and what a request costs the server), or wall time.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def measure(
    call: Callable[[], object], *, repeat: int, target_seconds: float, clock: Callable[[], float]
) -> Timing:
    """Time ``call``: ``repeat`` runs of as many calls as fill ``target_seconds`` each."""
    timer = timeit.Timer(call, timer=clock)
    number, elapsed = 1, timer.timeit(1)
    while elapsed < target_seconds / 10:  # calibrate on a tenth of a run, 10x at a time
        number *= 10
        elapsed = timer.timeit(number)
    number = max(1, int(number * target_seconds / max(elapsed, 1e-9)))
    gc.collect()
    runs = [total / number for total in timer.repeat(repeat=repeat, number=number)]
    return Timing(median=statistics.median(runs), best=min(runs))


def time_case(
    case: Case, *, repeat: int, target_seconds: float, clock: Callable[[], float]
) -> dict[str, Timing]:
    """Time decode alone, validate alone and both, for one case."""
    body, schema, decode = case.body, case.schema, case.decode
    batch = decode(body, schema)
    calls: dict[str, Callable[[], object]] = {
        "decode": lambda: decode(body, schema),
        "validate": lambda: schema.validate(batch.data),
        "total": lambda: schema.validate(decode(body, schema).data),
    }
    return {
        name: measure(call, repeat=repeat, target_seconds=target_seconds, clock=clock)
        for name, call in calls.items()
    }


def report(results: Sequence[tuple[Case, dict[str, Timing]]]) -> list[str]:
    """Format the results as a Markdown table, times in microseconds per request."""
    lines = [
        "| case | bytes | decode µs | validate µs | decode+validate µs (median) | best µs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case, timing in results:
        lines.append(
            f"| {case.name} | {len(case.body)} | {timing['decode'].median * 1e6:.1f} | "
            f"{timing['validate'].median * 1e6:.1f} | {timing['total'].median * 1e6:.1f} | "
            f"{timing['total'].best * 1e6:.1f} |"
        )
    return lines


def positive_int(text: str) -> int:
    """Parse a positive integer option, or tell argparse what was expected."""
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a quick run of every case")
    parser.add_argument("--repeat", type=positive_int, default=None, help="timed runs per case")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="what to time (default: cpu)"
    )
    parser.add_argument(
        "--target-ms", type=positive_int, default=None, help="length of one timed run (ms)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the micro-benchmark and print its table; return the exit status."""
    args = _parser().parse_args(argv)
    repeat = args.repeat or (3 if args.smoke else 15)
    target_seconds = (args.target_ms or (20 if args.smoke else 200)) / 1000.0
    from sklearn.datasets import load_breast_cancer

    frame: pd.DataFrame = load_breast_cancer(as_frame=True).data
    cases = build_cases(frame)
    results: list[tuple[Case, dict[str, Timing]]] = []
    for case in cases:
        check(case)
        timing = time_case(
            case, repeat=repeat, target_seconds=target_seconds, clock=CLOCKS[args.clock]
        )
        results.append((case, timing))
    print(
        f"decode + validate, {args.clock} time, {repeat} runs of ~{target_seconds * 1000:.0f} ms "
        "per figure\n"
    )
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
