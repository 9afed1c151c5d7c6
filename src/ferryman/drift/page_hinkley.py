"""Page-Hinkley test with a threshold calibrated to a target false-alarm rate.

After a warm-up of ``warmup`` values, which fixes the reference mean ``mu`` and standard
deviation ``sigma``, each value is standardised, ``z = (x - mu) / sigma``, and the
Page-Hinkley statistics

``g+ = max(0, g+ + z - k)`` and ``g- = max(0, g- - z - k)``, ``k = min_shift / 2``,

are compared with thresholds ``h+`` and ``h-``. (With a fixed reference mean,
Page-Hinkley's cumulative sum minus its running minimum is exactly this recursion.)

Instead of a hand-picked threshold, ``h`` is solved so that the false-alarm rate is
``1 / target_arl``: the average run length (ARL) between false alarms is
``target_arl`` values, so 10,000 means about one false alarm per 10,000 values. For
two-sided detection each side gets half the rate. The ARL of a threshold comes from a
Markov chain for the standardised distribution of the warm-up: when every warm-up
value is 0 or 1 (an error stream, its rate estimated as ``(errors + 0.5) / (warmup +
1)``) the two increments are rounded to an integer lattice and the chain is exact (see
:func:`bernoulli_lattice`); otherwise values are taken as normal and Brook and Evans'
chain (150 states) is used (see :func:`normal_threshold`).

The warm-up's estimates are off by sampling error, which raises the false-alarm rate
of some deployments and lowers it for others; the threshold is solved for the rate
*averaged over that error*, which is what a deployment can expect before its warm-up.
With a new warm-up after every alarm, the realised rate comes out at or somewhat below
the target (0.5 to 0.75 of it in ``bench/drift/concept.py``); a longer warm-up narrows
the spread between deployments.

``min_shift`` defaults to 0.3 warm-up standard deviations, so ``k = 0.15``: the
statistic drifts upwards for any increase above 0.15 sd. An error rate rising by half,
10 % to 15 %, is 0.17 sd; with the textbook 0.5 sd (``k = 0.25``) the statistic drifts
*down* on such a change and only noise ever reaches the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ferryman.drift._parameters import Configured, check_choice, check_integer, check_number
from ferryman.errors import InvalidInputError

#: States of the Markov chain approximating the statistic between 0 and the threshold.
CHAIN_STATES = 150


class PageHinkley(Configured):
    """Page-Hinkley (CUSUM) change detector calibrated to a false-alarm rate.

    Args:
        target_arl: Mean number of values between false alarms when nothing changes.
        min_shift: Smallest mean shift to detect quickly, in warm-up standard deviations.
        warmup: Values used, after creation or a detection, to learn the mean and spread.
        direction: Detect increases, decreases, or ``"both"``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(2)
        >>> stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(1, 1, 1000)])
        >>> detector = PageHinkley()
        >>> for value in stream:
        ...     detector.update(value)
        >>> detector.detections  # the mean rose by 1 sd at index 3000
        (3023,)
    """

    name = "page_hinkley"
    _seen: list[float]
    _mean: float | None
    _sigma: float
    _g_up: float
    _g_down: float
    _h_up: float
    _h_down: float
    _lattice: tuple[tuple[float, float], tuple[float, float]] | None
    _units: tuple[float, float]

    def __init__(
        self,
        *,
        target_arl: int = 10_000,
        min_shift: float = 0.3,
        warmup: int = 500,
        direction: str = "both",
    ) -> None:
        self.target_arl = check_integer("PageHinkley", "target_arl", target_arl, low=10)
        self.min_shift = check_number(
            "PageHinkley", "min_shift", min_shift, low=0, high=10, low_open=True
        )
        self.warmup = check_integer("PageHinkley", "warmup", warmup, low=10)
        self.direction = check_choice(
            "PageHinkley", "direction", direction, ("both", "increase", "decrease")
        )
        self._updates = 0
        self._detections: list[int] = []
        self._drift = False
        self._reset()

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        return self._drift

    @property
    def detections(self) -> tuple[int, ...]:
        """Zero-based stream indices of every update that detected a change."""
        return tuple(self._detections)

    @property
    def thresholds(self) -> tuple[float, float] | None:
        """The calibrated ``(h+, h-)`` in standard deviations; ``None`` during warm-up."""
        if self._mean is None:
            return None
        return (self._h_up * self._units[0], self._h_down * self._units[1])

    def update(self, x: float) -> None:
        """Feed the next value.

        Raises:
            InvalidInputError: ``x`` is not a finite number.
        """
        value = float(x)
        if not math.isfinite(value):
            raise InvalidInputError(f"PageHinkley.update needs a finite number, got {x!r}.")
        if self._drift:
            self._reset()
            self._drift = False
        index = self._updates
        self._updates += 1
        if self._mean is None:
            self._learn(value)
            return
        if self._lattice is not None:
            if value not in (0.0, 1.0):
                raise InvalidInputError(
                    f"PageHinkley learned a 0/1 stream during its warm-up; got {x!r}."
                )
            up, down = self._lattice
            self._g_up = max(0.0, self._g_up + (up[0] if value else up[1]))
            self._g_down = max(0.0, self._g_down + (down[0] if value else down[1]))
        else:
            z = (value - self._mean) / self._sigma
            k = self.min_shift / 2
            self._g_up = max(0.0, self._g_up + z - k)
            self._g_down = max(0.0, self._g_down - z - k)
        if self._g_up > self._h_up or self._g_down > self._h_down:
            self._drift = True
            self._detections.append(index)

    def _reset(self) -> None:
        self._seen = []
        self._mean = None
        self._sigma = 1.0
        self._g_up = 0.0
        self._g_down = 0.0
        self._h_up = math.inf
        self._h_down = math.inf
        self._lattice = None
        self._units = (1.0, 1.0)

    def _learn(self, value: float) -> None:
        self._seen.append(value)
        if len(self._seen) < self.warmup:
            return
        values = np.asarray(self._seen)
        self._seen = []
        k = self.min_shift / 2
        sides = 2 if self.direction == "both" else 1
        arl = float(self.target_arl * sides)
        if np.isin(values, (0.0, 1.0)).all():
            rate = (float(values.sum()) + 0.5) / (len(values) + 1)
            self._mean = rate
            self._sigma = math.sqrt(rate * (1 - rate))
            high, low = (1 - rate) / self._sigma, -rate / self._sigma
            up = bernoulli_lattice(high - k, low - k, rate, arl, len(values))
            down = bernoulli_lattice(-high - k, -low - k, rate, arl, len(values))
            self._lattice = ((up[0], up[1]), (down[0], down[1]))
            self._units = (up[3], down[3])
            h_up, h_down = up[2], down[2]
        else:
            self._mean = float(values.mean())
            self._sigma = float(values.std()) or 1e-12 * max(1.0, abs(self._mean))
            h_up = h_down = normal_threshold(k, float(self.target_arl), len(values), sides)
        self._h_up = h_up if self.direction != "decrease" else math.inf
        self._h_down = h_down if self.direction != "increase" else math.inf


@lru_cache(maxsize=256)
def normal_threshold(k: float, arl: float, warmup: int, sides: int) -> float:
    """Threshold for normal values such that the false-alarm rate is ``1 / arl``.

    The mean and deviation learned from ``warmup`` values are off by about
    ``1/sqrt(warmup)`` and ``1/sqrt(2 warmup)`` standard deviations, and any such error
    raises the false-alarm rate of a two-sided detector (and of one side). The threshold
    is solved for the false-alarm rate *averaged over those errors* (Gauss-Hermite
    quadrature, 5 x 3 nodes): the rate a deployment can expect before its warm-up.
    """
    from scipy.special import ndtr

    mean_nodes, mean_weights = np.polynomial.hermite_e.hermegauss(5)
    scale_nodes, scale_weights = np.polynomial.hermite_e.hermegauss(3)
    errors = mean_nodes / math.sqrt(warmup)
    scales = 1 / (1 + scale_nodes / math.sqrt(2 * warmup))
    weights = np.outer(mean_weights, scale_weights)
    weights /= weights.sum()

    def run_length(h: float) -> float:
        # up[i, j]: the upper side's run length with mean error i and scale j; the lower
        # side with error i is the upper side with error -i (the nodes are symmetric).
        up = np.array(
            [
                [
                    average_run_length(lambda y, e=e, s=s: np.asarray(ndtr((y + k) / s + e)), h)
                    for s in scales
                ]
                for e in errors
            ]
        )
        rates = 1 / up if sides == 1 else 1 / up + 1 / up[::-1]
        return float(1 / np.sum(weights * rates))

    return _solve_threshold(run_length, arl)


@lru_cache(maxsize=4096)
def bernoulli_lattice(
    error_step: float, correct_step: float, rate: float, arl: float, warmup: int
) -> tuple[float, float, float, float]:
    """Integer steps and threshold of one side of the statistic on a 0/1 stream.

    The two possible increments (after an error, after a right prediction, in standard
    deviations) are rounded to a lattice whose unit is a quarter of the smaller one, so
    the statistic takes integer values and its Markov chain is exact (the Bernoulli
    CUSUM of Reynolds and Stoumbos). The threshold is the smallest integer whose
    false-alarm rate, averaged over the error of the warm-up's rate (Gauss-Hermite,
    5 nodes), is at most ``1 / arl``.

    Returns:
        ``(error step, correct step, threshold, unit)``; the threshold is infinite when
        neither step is positive (this side can never alarm).
    """
    unit = min(abs(error_step), abs(correct_step)) / 4
    up, down = round(error_step / unit), round(correct_step / unit)
    if max(up, down) <= 0:
        return float(up), float(down), math.inf, unit
    nodes, weights = np.polynomial.hermite_e.hermegauss(5)
    spread = math.sqrt(rate * (1 - rate) / warmup)
    rates = np.clip(rate + nodes * spread, 1e-9, 1 - 1e-9)
    probabilities = weights / weights.sum()

    def run_length(threshold: float) -> float:
        states = int(threshold)
        expected_rate = sum(
            w / _lattice_run_length(states, up, down, float(p))
            for p, w in zip(rates, probabilities, strict=True)
        )
        return float(1 / expected_rate)

    low, high = 0, 4
    while run_length(high) < arl:
        low, high = high, high * 2
        if high > 1_000_000:
            raise InvalidInputError(f"Cannot reach an average run length of {arl:g}.")
    while high - low > 1:
        middle = (low + high) // 2
        if run_length(middle) < arl:
            low = middle
        else:
            high = middle
    return float(up), float(down), float(high), unit


def _lattice_run_length(threshold: int, error_step: int, correct_step: int, rate: float) -> float:
    """Exact ARL of ``g = max(0, g + step)`` on integers, alarm above ``threshold``."""
    from scipy.sparse import csr_matrix, identity
    from scipy.sparse.linalg import spsolve

    states = threshold + 1
    rows, columns, values = [], [], []
    for step, probability in ((error_step, rate), (correct_step, 1 - rate)):
        target = np.maximum(np.arange(states) + step, 0)
        inside = target <= threshold
        rows.append(np.arange(states)[inside])
        columns.append(target[inside])
        values.append(np.full(int(inside.sum()), probability))
    transition = csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(states, states),
    )
    lengths = spsolve((identity(states, format="csr") - transition).tocsc(), np.ones(states))
    return float(np.atleast_1d(lengths)[0])


def average_run_length(cdf: object, h: float, states: int = CHAIN_STATES) -> float:
    """ARL of ``g = max(0, g + Y)`` to exceed ``h``, by Brook and Evans' Markov chain.

    ``cdf(y)`` is the distribution function of the increment ``Y``, vectorised.
    """
    width = 2 * h / (2 * states - 1)
    middles = np.arange(states) * width
    upper = middles + width / 2
    steps = upper[None, :] - middles[:, None]
    cumulative = cdf(steps)  # type: ignore[operator]
    transition = np.diff(np.concatenate((np.zeros((states, 1)), cumulative), axis=1), axis=1)
    # Transitions below 1e-15 change the ARL by less than 1e-10 of itself, and tiny
    # (near-subnormal) entries make the LU factorisation a hundred times slower.
    transition[transition < 1e-15] = 0.0
    lengths = np.linalg.solve(np.eye(states) - transition, np.ones(states))
    return float(lengths[0])


def _solve_threshold(run_length: Callable[[float], float], arl: float) -> float:
    """Smallest threshold (to 0.1 %) whose run length reaches ``arl``."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # Hundreds of small solves: BLAS threads only add contention.
    with threadpool_limits(limits=1, user_api="blas"):
        return _bisect(run_length, arl)


def _bisect(run_length: Callable[[float], float], arl: float) -> float:
    low, high = 0.0, 1.0
    while run_length(high) < arl:
        low, high = high, high * 2
        if high > 1e4:
            raise InvalidInputError(f"Cannot reach an average run length of {arl:g}.")
    for _ in range(50):
        middle = (low + high) / 2
        if run_length(middle) < arl:
            low = middle
        else:
            high = middle
        if high - low < 1e-3 * high:
            break
    return high
