"""Timing for benchmarks: one timed call, interleaved A/B runs, and their summaries.

The benchmark machines are shared and noisy, so every figure is a median over several
runs, and every comparison with a peer or a floor is measured in the same process,
alternating the order of the contenders from one round to the next (A B, B A, A B, ...)
so that drift in the machine's load does not favour either side.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """The distribution of one measurement.

    Attributes:
        median: The median run, in seconds.
        p90: The 90th percentile (linear interpolation), in seconds; the single run's
            value when there is only one.
        runs: Every run, in seconds, in the order measured.
    """

    median: float
    p90: float
    runs: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready values."""
        return {"median": self.median, "p90": self.p90, "runs": list(self.runs)}


def summarize(runs: Sequence[float]) -> Summary:
    """Summarize the runs of one measurement.

    Args:
        runs: Durations in seconds; at least one.

    Raises:
        ValueError: ``runs`` is empty.
    """
    if not runs:
        raise ValueError("Cannot summarize zero runs; measure at least once.")
    p90 = statistics.quantiles(runs, n=10, method="inclusive")[8] if len(runs) > 1 else runs[0]
    return Summary(median=statistics.median(runs), p90=p90, runs=tuple(runs))


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Return the median of the paired ratios ``numerators[i] / denominators[i]``.

    Pairs come from the same round, so each ratio compares runs made under the same
    machine load; the median of those is steadier than a ratio of two medians.

    Raises:
        ValueError: The sequences are empty or differ in length.
    """
    if not numerators or len(numerators) != len(denominators):
        raise ValueError(
            f"Expected two equally long, non-empty sequences of runs, got "
            f"{len(numerators)} and {len(denominators)}."
        )
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def timed(call: Callable[[], object]) -> tuple[float, Any]:
    """Run ``call`` once and return the seconds it took and its result.

    Garbage left by earlier work is collected first, so that a collection it would
    trigger is not charged to ``call``.
    """
    gc.collect()
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def interleave(
    calls: Mapping[str, Callable[[], object]], *, rounds: int, first_round: int = 0
) -> dict[str, list[float]]:
    """Time each call once per round, reversing the order every other round.

    Each call's result is released only after its time is taken, so freeing a large
    model is never charged to the next contender.

    Args:
        calls: The contenders by name, in the order used for even rounds.
        rounds: How many times to run each call.
        first_round: The index of the first round, to keep alternating across several
            calls of this function.

    Returns:
        The durations in seconds of each call, by name, in round order.
    """
    names = list(calls)
    durations: dict[str, list[float]] = {name: [] for name in names}
    for index in range(first_round, first_round + rounds):
        for name in names if index % 2 == 0 else reversed(names):
            seconds, result = timed(calls[name])
            del result
            durations[name].append(seconds)
    return durations
