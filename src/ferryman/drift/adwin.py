"""ADWIN: an adaptive window that drops its older part when the two parts' means differ.

Bifet and Gavaldà, "Learning from time-changing data with adaptive windowing" (SDM
2007). The window is stored as an exponential histogram (at most ``max_buckets``
buckets of each size 1, 2, 4, ...), so memory and time per update grow with the
logarithm of the window. Every ``clock`` updates, each split of the window into an
older and a newer part is checked; when their means differ by more than

``eps = sqrt(2 m var ln(2 ln(W) / delta)) + 2/3 m ln(2 ln(W) / delta)``,
``m = 1/(n0 - L + 1) + 1/(n1 - L + 1)`` (``L`` the minimum part length),

the older part is dropped and a change is reported. ``delta`` bounds the probability
of a false alarm at each check: it is a confidence, not a calibrated run length (see
:class:`~ferryman.drift.PageHinkley` for that).

The bound is loose, so the default is ``delta = 0.05`` rather than the 0.002 of MOA and
river: at 0.002 ADWIN raised about one false alarm per million values in
``bench/drift/concept.py`` and was slower than a moving average held to that rate on a
0.5 sd shift; at 0.05 it raises 0.1 to 0.3 per 10,000 values (under Page-Hinkley's
default budget of one) and detects every change stream there sooner than the moving
average held to its rate.
"""

from __future__ import annotations

import math
from collections import deque

from ferryman.drift._parameters import Configured, check_integer, check_number
from ferryman.errors import InvalidInputError


class ADWIN(Configured):
    """Adaptive windowing change detector, for any bounded stream (errors, scores).

    Args:
        delta: Confidence in (0, 1): the smaller, the fewer false alarms and the later
            the detections.
        clock: Check for a change every this many updates.
        max_buckets: Buckets kept per size before two are merged.
        min_window_length: Fewest values in each part of a split.
        grace_period: Updates, after creation or a detection, before checks start.

    Example:
        >>> detector = ADWIN()
        >>> for i in range(2000):
        ...     detector.update(0.0 if i < 1000 else 1.0)
        >>> detector.detections[0]  # the first check after the change; more follow
        1023
    """

    name = "adwin"

    def __init__(
        self,
        *,
        delta: float = 0.05,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = check_number(
            "ADWIN", "delta", delta, low=0, high=1, low_open=True, high_open=True
        )
        self.clock = check_integer("ADWIN", "clock", clock, low=1)
        self.max_buckets = check_integer("ADWIN", "max_buckets", max_buckets, low=2)
        self.min_window_length = check_integer(
            "ADWIN", "min_window_length", min_window_length, low=1
        )
        self.grace_period = check_integer("ADWIN", "grace_period", grace_period, low=1)
        self._rows: list[deque[tuple[float, float]]] = []
        self._width = 0
        self._total = 0.0
        self._variance = 0.0  # sum of squared deviations from the window's mean
        self._updates = 0
        self._since_reset = 0
        self._drift = False
        self._detections: list[int] = []

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        return self._drift

    @property
    def detections(self) -> tuple[int, ...]:
        """Zero-based stream indices of every update that detected a change."""
        return tuple(self._detections)

    @property
    def width(self) -> int:
        """Number of values in the current window."""
        return self._width

    @property
    def estimation(self) -> float:
        """Mean of the current window (0.0 when empty)."""
        return self._total / self._width if self._width else 0.0

    def update(self, x: float) -> None:
        """Feed the next value.

        Raises:
            InvalidInputError: ``x`` is not a finite number.
        """
        value = float(x)
        if not math.isfinite(value):
            raise InvalidInputError(f"ADWIN.update needs a finite number, got {x!r}.")
        if self._drift:
            self._drift = False
            self._since_reset = 0
        index = self._updates
        self._updates += 1
        self._since_reset += 1
        self._insert(value)
        checking = self._since_reset >= self.grace_period and self._updates % self.clock == 0
        if checking and self._shrink():
            self._drift = True
            self._detections.append(index)

    def _insert(self, value: float) -> None:
        if self._width:
            mean = self._total / self._width
            self._variance += self._width * (value - mean) ** 2 / (self._width + 1)
        self._width += 1
        self._total += value
        if not self._rows:
            self._rows.append(deque())
        self._rows[0].append((value, 0.0))
        for row in range(len(self._rows)):
            buckets = self._rows[row]
            if len(buckets) <= self.max_buckets:
                break
            (t1, v1), (t2, v2) = buckets.popleft(), buckets.popleft()
            size = 2**row
            merged = (t1 + t2, v1 + v2 + size * size * (t1 / size - t2 / size) ** 2 / (2 * size))
            if row + 1 == len(self._rows):
                self._rows.append(deque())
            self._rows[row + 1].append(merged)

    def _drop_oldest(self) -> None:
        row = len(self._rows) - 1
        total, variance = self._rows[row].popleft()
        size = 2**row
        self._width -= size
        self._total -= total
        if self._width:
            mean = self._total / self._width
            self._variance -= (
                variance + size * self._width / (size + self._width) * (total / size - mean) ** 2
            )
            self._variance = max(self._variance, 0.0)
        else:
            self._total = self._variance = 0.0
        while self._rows and not self._rows[-1]:
            self._rows.pop()

    def _shrink(self) -> bool:
        changed = False
        low = self.min_window_length
        while self._width > 2 * low:
            width = self._width
            variance = self._variance / width
            bound = math.log(2 * math.log(width) / self.delta)
            n0, u0 = 0, 0.0
            cut = False
            for row in range(len(self._rows) - 1, -1, -1):
                size = 2**row
                for total, _ in self._rows[row]:
                    n0 += size
                    u0 += total
                    n1 = width - n0
                    if n1 < low:
                        break
                    if n0 < low:
                        continue
                    m = 1 / (n0 - low + 1) + 1 / (n1 - low + 1)
                    epsilon = math.sqrt(2 * m * variance * bound) + 2 / 3 * bound * m
                    if abs(u0 / n0 - (self._total - u0) / n1) > epsilon:
                        cut = True
                        break
                if cut:
                    break
            if not cut:
                break
            self._drop_oldest()
            changed = True
        return changed
