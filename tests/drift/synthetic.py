"""Synthetic reference/current datasets with drift injected into known columns.

Shared by the drift tests (10k and 100k rows) and the benchmark (up to 1M rows):
25 columns, 20 numeric and 5 categorical (up to 1,000 categories). Ten columns get a
practically relevant drift (mean shift, variance change, shape change, category
frequency change, new category); fifteen are stationary, one of which (``n07``) gets a
practically irrelevant +0.01 sd shift that must not be called drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Columns with an injected drift, and what was injected.
INJECTED: dict[str, str] = {
    "n00": "mean shift +0.25 sd (normal)",
    "n01": "standard deviation x1.5 (normal)",
    "n02": "scale x1.15 (lognormal)",
    "n03": "shift +0.2 sd (uniform)",
    "n04": "mean x1.25 (exponential)",
    "n05": "mixture weights 50/50 -> 70/30 (bimodal)",
    "n06": "rate 3 -> 3.6 (Poisson counts)",
    "c0": "top-5 category shares doubled (Zipf, 1,000 categories)",
    "c1": "new category at 8 % (20 categories)",
    "c2": "share of 'yes' 0.30 -> 0.42 (binary)",
}
#: Stationary columns (``n07`` has a +0.01 sd shift: practically irrelevant).
STATIONARY: tuple[str, ...] = (*(f"n{i:02d}" for i in range(7, 20)), "c3", "c4")

Generator = Callable[[np.random.Generator, int, bool], np.ndarray]


@dataclass(frozen=True)
class DriftDataset:
    """A reference and a current sample of the same 25 columns."""

    reference: pd.DataFrame
    current: pd.DataFrame


def _zipf_names(count: int) -> np.ndarray:
    return np.array([f"cat{i:04d}" for i in range(count)], dtype=object)


def _zipf_shares(count: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _choice(
    rng: np.random.Generator, names: np.ndarray, shares: np.ndarray, rows: int
) -> np.ndarray:
    return np.asarray(names[rng.choice(len(names), size=rows, p=shares)])


def _zipf_top_doubled(count: int) -> np.ndarray:
    shares = _zipf_shares(count, 1.1)
    shares[:5] *= 2
    return np.asarray(shares / shares.sum(), dtype=np.float64)


def _mixture(rng: np.random.Generator, rows: int, weight: float) -> np.ndarray:
    left = rng.random(rows) < weight
    return np.asarray(np.where(left, rng.normal(-2, 0.7, rows), rng.normal(2, 0.7, rows)))


_NAMES_1000 = _zipf_names(1000)
_NAMES_20 = np.array([f"k{i:02d}" for i in range(20)], dtype=object)
_NAMES_5 = np.array(["red", "green", "blue", "black", "white"], dtype=object)
_SHARES_5 = np.array([0.4, 0.25, 0.15, 0.12, 0.08])

_NUMERIC: dict[str, Generator] = {
    "n00": lambda r, n, d: r.normal(0.25 if d else 0.0, 1.0, n),
    "n01": lambda r, n, d: r.normal(5.0, 3.0 if d else 2.0, n),
    "n02": lambda r, n, d: r.lognormal(0.0, 0.5, n) * (1.15 if d else 1.0),
    "n03": lambda r, n, d: r.uniform(0, 10, n) + (0.2 * 10 / np.sqrt(12) if d else 0.0),
    "n04": lambda r, n, d: r.exponential(1.25 if d else 1.0, n),
    "n05": lambda r, n, d: _mixture(r, n, 0.7 if d else 0.5),
    "n06": lambda r, n, d: r.poisson(3.6 if d else 3.0, n).astype(np.float64),
    "n07": lambda r, n, d: r.normal(0.01 if d else 0.0, 1.0, n),
    "n08": lambda r, n, d: r.normal(100.0, 15.0, n),
    "n09": lambda r, n, d: r.standard_t(5, n),
    "n10": lambda r, n, d: r.gamma(2.0, 2.0, n),
    "n11": lambda r, n, d: r.beta(2.0, 5.0, n),
    "n12": lambda r, n, d: r.integers(0, 100, n).astype(np.float64),
    "n13": lambda r, n, d: r.lognormal(2.0, 1.0, n),
    "n14": lambda r, n, d: r.uniform(-1, 1, n),
    "n15": lambda r, n, d: r.normal(0.0, 1.0, n) * r.normal(0.0, 1.0, n),
    "n16": lambda r, n, d: r.laplace(0.0, 1.0, n),
    "n17": lambda r, n, d: r.weibull(1.5, n),
    "n18": lambda r, n, d: r.binomial(20, 0.3, n).astype(np.float64),
    "n19": lambda r, n, d: r.chisquare(3, n),
}
_CATEGORICAL: dict[str, Generator] = {
    "c0": lambda r, n, d: _choice(
        r, _NAMES_1000, _zipf_top_doubled(1000) if d else _zipf_shares(1000, 1.1), n
    ),
    "c1": lambda r, n, d: np.where(
        r.random(n) < (0.08 if d else 0.0), "new", _choice(r, _NAMES_20, np.full(20, 0.05), n)
    ).astype(object),
    "c2": lambda r, n, d: np.where(r.random(n) < (0.42 if d else 0.30), "yes", "no").astype(object),
    "c3": lambda r, n, d: _choice(r, _NAMES_1000, _zipf_shares(1000, 1.1), n),
    "c4": lambda r, n, d: _choice(r, _NAMES_5, _SHARES_5, n),
}


def make_drift_dataset(rows: int, *, seed: int = 0) -> DriftDataset:
    """Return a seeded reference and current sample of ``rows`` rows each.

    Example:
        >>> data = make_drift_dataset(1000)
        >>> data.reference.shape, data.current.shape
        ((1000, 25), (1000, 25))
    """
    rng = np.random.default_rng(seed)
    frames = []
    for drifted in (False, True):
        columns: dict[str, np.ndarray] = {}
        for name, make in (*_NUMERIC.items(), *_CATEGORICAL.items()):
            inject = drifted and (name in INJECTED or name == "n07")
            columns[name] = make(rng, rows, inject)
        frames.append(pd.DataFrame(columns))
    return DriftDataset(reference=frames[0], current=frames[1])
