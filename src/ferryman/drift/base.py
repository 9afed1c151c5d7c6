"""The two protocols every drift component follows, and the result of a batch test.

A *batch drift test* compares a reference sample with a current sample, once:
``compare(reference, current) -> DriftResult``. A *streaming detector* watches one value
at a time: ``update(x)``, then reads ``drift_detected``; it resets itself on the update
after a detection. Both are configured by keyword-only constructor arguments only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Literal, Protocol, Self, runtime_checkable

import numpy.typing as npt
import pandas as pd

from ferryman.drift._summaries import CategoricalSummary, NumericSummary
from ferryman.signature import CategoricalProfile, NumericProfile

#: What a column holds, for choosing a test: numbers (ordered) or labels (unordered).
FeatureKind = Literal["numeric", "categorical"]

#: What a test accepts as a sample: values (NaN and None are missing), a summary of
#: values made once with :func:`~ferryman.drift.summarize`, or (as a reference) one
#: column of a stored reference profile.
Sample = (
    npt.ArrayLike
    | pd.Series
    | NumericSummary
    | CategoricalSummary
    | NumericProfile
    | CategoricalProfile
)


class Status(StrEnum):
    """Why a feature got the verdict it got.

    ``ok``, ``constant`` and ``new-categories`` features are tested and decided;
    the others are reported without a test and never count as drifted.
    """

    OK = "ok"
    CONSTANT = "constant"
    NEW_CATEGORIES = "new-categories"
    INSUFFICIENT_DATA = "insufficient-data"
    ALL_MISSING = "all-missing"
    MISSING_COLUMN = "missing-column"
    NEW_COLUMN = "new-column"
    TYPE_MISMATCH = "type-mismatch"

    @property
    def is_tested(self) -> bool:
        """Whether features with this status get a test and a drift decision."""
        return self in (Status.OK, Status.CONSTANT, Status.NEW_CATEGORIES)


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one batch drift test: a significance *and* an effect size.

    The decision is effect-size-first: ``drifted`` is true only when the effect size is
    at least ``threshold`` (the larger of the test's documented minimum effect and the
    upper edge of the effect expected under no drift at these sample sizes) *and* the
    p-value is at most the test's ``alpha``. Across features, :class:`DataDrift`
    re-decides with Benjamini-Hochberg-adjusted p-values.

    Attributes:
        method: The test's registry name, e.g. ``"wasserstein"``.
        statistic: The test statistic (for most tests the effect size itself).
        p_value: The p-value in [0, 1], or ``None`` when the test has none.
        effect_size: How far apart the distributions are, in the test's effect unit.
        threshold: The effect size at or above which a significant result is drift.
        drifted: The decision.
        min_effect: The smallest effect that counts as drift, whatever the sample size.
        null_band: The effect size that no-drift samples of these sizes stay below with
            probability ``1 - alpha``.
        n_reference: Number of reference values compared (missing ones excluded).
        n_current: Number of current values compared.
        approximate: Whether the statistic was approximated from a summary (a
            reference profile) instead of computed from raw values.
    """

    method: str
    statistic: float
    p_value: float | None
    effect_size: float
    threshold: float
    drifted: bool
    min_effect: float
    null_band: float
    n_reference: int
    n_current: int
    approximate: bool = False

    def to_dict(self) -> dict[str, object]:
        """Return the result as JSON-safe values (non-finite floats become ``None``)."""
        return {key: _json_number(value) for key, value in asdict(self).items()}


def _json_number(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@runtime_checkable
class DriftTest(Protocol):
    """A batch two-sample drift test.

    Attributes:
        name: The registry name (``"ks"``, ``"psi"``, ...).
        kinds: The feature kinds the test accepts.
    """

    name: str
    kinds: tuple[FeatureKind, ...]

    def compare(self, reference: Sample, current: Sample) -> DriftResult:
        """Compare a current sample with a reference sample."""
        ...

    def clone(self) -> Self:
        """Return an unfitted copy with the same configuration."""
        ...


@runtime_checkable
class StreamingDetector(Protocol):
    """A change detector fed one value at a time.

    ``drift_detected`` is true right after the update that detected a change; the next
    update resets the detector first (so it never reports the same change twice).
    """

    name: str

    def update(self, x: float) -> None:
        """Feed the next value of the stream."""
        ...

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        ...

    @property
    def detections(self) -> tuple[int, ...]:
        """Zero-based stream indices of every update that detected a change."""
        ...

    def clone(self) -> Self:
        """Return a fresh detector with the same configuration."""
        ...


__all__ = [
    "DriftResult",
    "DriftTest",
    "FeatureKind",
    "Sample",
    "Status",
    "StreamingDetector",
]
