"""Dataset drift: every feature tested, false discoveries controlled, one verdict.

:class:`DataDrift` summarises the reference once (:meth:`DataDrift.fit`; a stored
profile is already a summary) and compares any number of current samples with it
(:meth:`DataDrift.compare`). Per feature it picks a test (:func:`choose_test`, unless
configured), reports a status, the statistic, p-value, effect size and threshold;
across features it adjusts the p-values (Benjamini-Hochberg) and calls a feature
drifted when its effect reaches its threshold and its q-value is at most ``fdr``. The
dataset drifts when the share of drifted features among the tested ones reaches
``drift_share``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal, Self, TypeVar, cast

import numpy as np
import pandas as pd

from ferryman.drift._binning import is_constant
from ferryman.drift._parameters import Configured, check_choice, check_integer, check_number
from ferryman.drift._sources import CurrentSource, ReferenceSource, load_current, load_reference
from ferryman.drift._summaries import (
    DEFAULT_LEVELS,
    CategoricalSummary,
    NumericSummary,
    kind_of,
    numeric_values,
    summarize_categorical,
    summarize_numeric,
    summary_from_profile,
)
from ferryman.drift.base import FeatureKind, Status
from ferryman.drift.fdr import benjamini_hochberg
from ferryman.drift.methods import TESTS, get_test
from ferryman.drift.selection import choose_test
from ferryman.errors import InvalidInputError, NotFittedError
from ferryman.signature import ReferenceProfile

Summary = NumericSummary | CategoricalSummary
_T = TypeVar("_T")
#: Categories shown per feature in reports; the rest are summed as "(other)".
PLOT_CATEGORIES = 20
#: Numeric bins shown per feature in reports (every other reference percentile).
PLOT_BIN_STEP = 2


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares per bin or category, for plotting.

    Attributes:
        labels: Bin or category names.
        edges: For numeric features, the ``len(labels) + 1`` bin edges; else ``None``.
        reference: Share of reference values per bin, in [0, 1].
        current: Share of current values per bin, in [0, 1].
    """

    labels: tuple[str, ...]
    edges: tuple[float, ...] | None
    reference: tuple[float, ...]
    current: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values."""
        return {
            "labels": list(self.labels),
            "edges": None if self.edges is None else list(self.edges),
            "reference": list(self.reference),
            "current": list(self.current),
        }


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature.

    Attributes:
        name: The column name.
        kind: ``"numeric"`` or ``"categorical"``; ``None`` when unknown.
        status: Why it got this verdict (see :class:`Status`).
        drifted: Whether the feature drifted (false unless the status is tested).
        test: The test's registry name, or ``None`` when no test ran.
        statistic: The test statistic.
        p_value: The test's p-value.
        q_value: The Benjamini-Hochberg adjusted p-value across the report's features.
        effect_size: The test's effect size.
        threshold: The effect size at or above which a significant result is drift.
        min_effect: The test's minimum effect.
        null_band: The effect size expected by chance at these sample sizes.
        n_reference: Usable reference values (missing and infinite ones excluded).
        n_current: Usable current values.
        reference_missing: Share of missing (or infinite) reference values, in [0, 1].
        current_missing: Share of missing (or infinite) current values, in [0, 1].
        new_categories: Current categories absent from the reference (at most 20).
        approximate: Whether the statistic was approximated from a stored profile.
        message: A sentence explaining a status other than ``ok``.
        distribution: Shares per bin or category, for plots.
    """

    name: str
    kind: FeatureKind | None
    status: Status
    drifted: bool = False
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    effect_size: float | None = None
    threshold: float | None = None
    min_effect: float | None = None
    null_band: float | None = None
    n_reference: int = 0
    n_current: int = 0
    reference_missing: float | None = None
    current_missing: float | None = None
    new_categories: tuple[str, ...] = ()
    approximate: bool = False
    message: str = ""
    distribution: Distribution | None = field(default=None, repr=False)

    def to_dict(self, *, distribution: bool = True) -> dict[str, object]:
        """Return JSON-safe values (non-finite floats as ``None``)."""
        data: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "q_value": _finite(self.q_value),
            "effect_size": _finite(self.effect_size),
            "threshold": _finite(self.threshold),
            "min_effect": _finite(self.min_effect),
            "null_band": _finite(self.null_band),
            "drifted": self.drifted,
            "status": self.status.value,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "reference_missing": _finite(self.reference_missing),
            "current_missing": _finite(self.current_missing),
            "new_categories": list(self.new_categories),
            "approximate": self.approximate,
            "message": self.message,
        }
        if distribution:
            data["distribution"] = (
                None if self.distribution is None else self.distribution.to_dict()
            )
        return data


@dataclass(frozen=True)
class DataDriftResult:
    """Per-feature verdicts and the dataset-level decision.

    Attributes:
        dataset_drift: Whether ``drifted_share >= drift_share`` (false with no tested
            feature).
        drifted_share: Share of drifted features among the tested ones, in [0, 1].
        drift_share: The configured share, in (0, 1].
        fdr: The false discovery rate the q-values are compared with.
        n_drifted: Number of drifted features.
        n_tested: Number of features that got a test.
        n_reference: Reference rows.
        n_current: Current rows.
        features: One verdict per feature, reference columns first, in order.
    """

    dataset_drift: bool
    drifted_share: float
    drift_share: float
    fdr: float
    n_drifted: int
    n_tested: int
    n_reference: int
    n_current: int
    features: tuple[FeatureDrift, ...]

    def get_feature(self, name: str) -> FeatureDrift:
        """Return the verdict on ``name``.

        Raises:
            NotFoundError: No feature has that name.
        """
        from ferryman.errors import NotFoundError

        for feature in self.features:
            if feature.name == name:
                return feature
        names = ", ".join(feature.name for feature in self.features)
        raise NotFoundError(f"No feature {name!r} in this result. Features: {names}.")

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the drifted features."""
        return tuple(feature.name for feature in self.features if feature.drifted)

    def to_dict(self, *, distribution: bool = True) -> dict[str, object]:
        """Return JSON-safe values."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "drift_share": self.drift_share,
            "fdr": self.fdr,
            "n_drifted": self.n_drifted,
            "n_tested": self.n_tested,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "features": [f.to_dict(distribution=distribution) for f in self.features],
        }


class DataDrift(Configured):
    """Test every feature of a current sample against a reference.

    Args:
        methods: Test per column name (registry names, e.g. ``{"age": "ks"}``); other
            columns get the automatic rule (:func:`choose_test`).
        kinds: Kind per column name, overriding the one read from the dtype (for
            example ``{"zip_code": "categorical"}`` for an integer-coded category).
        min_rows: Fewest usable values, in each sample, for a verdict; fewer gives
            ``insufficient-data``.
        fdr: False discovery rate across features, in (0, 1).
        drift_share: Share of drifted features, in (0, 1], from which the dataset
            drifts (0.5, as Evidently).
        section: Which columns of a stored profile to compare: ``"features"`` (data
            drift) or ``"predictions"`` (prediction drift).
        columns: Only these columns; by default every reference column.
        n_jobs: Threads for summarising and testing columns; ``None`` uses every usable
            core. NumPy sorts and searches run outside the GIL.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> labels = list("abc")
        >>> reference = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(labels, 5000)})
        >>> current = pd.DataFrame({"x": rng.normal(0.5, 1, 5000), "c": rng.choice(labels, 5000)})
        >>> result = DataDrift().fit(reference).compare(current)
        >>> result.drifted_features, result.dataset_drift
        (('x',), True)
    """

    def __init__(
        self,
        *,
        methods: Mapping[str, str] | None = None,
        kinds: Mapping[str, FeatureKind] | None = None,
        min_rows: int = 100,
        fdr: float = 0.05,
        drift_share: float = 0.5,
        section: Literal["features", "predictions"] = "features",
        columns: Sequence[str] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        for method in (methods or {}).values():
            if method not in TESTS:
                get_test(method)  # raises, listing the valid names
        for column, kind in (kinds or {}).items():
            check_choice("DataDrift", f"kinds[{column!r}]", kind, ("numeric", "categorical"))
        self.methods = None if methods is None else dict(methods)
        self.kinds = None if kinds is None else dict(kinds)
        self.min_rows = check_integer("DataDrift", "min_rows", min_rows, low=1)
        self.fdr = check_number(
            "DataDrift", "fdr", fdr, low=0, high=1, low_open=True, high_open=True
        )
        self.drift_share = check_number(
            "DataDrift", "drift_share", drift_share, low=0, high=1, low_open=True
        )
        check_choice("DataDrift", "section", section, ("features", "predictions"))
        self.section = section
        self.columns = None if columns is None else list(columns)
        self.n_jobs = (
            None if n_jobs is None else check_integer("DataDrift", "n_jobs", n_jobs, low=1)
        )

    def fit(self, reference: ReferenceSource) -> Self:
        """Summarise the reference (a profile is used as it is).

        Args:
            reference: A :class:`~ferryman.signature.ReferenceProfile` (or its dict, as
                stored with a registered version), a DataFrame, or a Parquet/CSV file.

        Returns:
            This object, fitted.

        Raises:
            InvalidInputError: The reference cannot be read, has none of ``columns``,
                or (for ``section="predictions"``) a profile has no predictions.
        """
        loaded = load_reference(reference)
        summaries: dict[str, Summary] = {}
        ignored: set[str] = set()
        if isinstance(loaded, ReferenceProfile):
            profiles = loaded.features if self.section == "features" else loaded.predictions
            if not profiles:
                raise InvalidInputError(
                    f"The reference profile has no {self.section}: register the version "
                    "with training data X so they are profiled, or pass a baseline DataFrame."
                )
            other = loaded.predictions if self.section == "features" else loaded.features
            ignored = {p.name for p in (*other, *loaded.target)}
            for profile in profiles:
                if self.columns is None or profile.name in self.columns:
                    summaries[profile.name] = summary_from_profile(profile, loaded.quantile_levels)
            rows = loaded.row_count
        else:
            names = [str(c) for c in loaded.columns if self.columns is None or c in self.columns]
            summaries = dict(
                zip(names, self._map(lambda c: self._summarize(loaded[c], c), names), strict=True)
            )
            rows = len(loaded)
        if not summaries:
            raise InvalidInputError(
                f"The reference has none of the columns {self.columns!r}."
                if self.columns is not None
                else "The reference has no columns."
            )
        self.reference_: dict[str, Summary] = summaries
        self.ignored_: frozenset[str] = frozenset(ignored)
        self.n_reference_: int = rows
        return self

    def compare(self, current: CurrentSource) -> DataDriftResult:
        """Compare a current sample (a DataFrame or a Parquet/CSV file) with the reference.

        Data problems (missing columns, all-missing or constant columns, new
        categories, too few rows, wrong types) are reported as statuses, never raised.

        Raises:
            NotFittedError: :meth:`fit` was not called first.
            InvalidInputError: ``current`` cannot be read.
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError("This DataDrift is not fitted yet; call fit(reference) first.")
        frame = load_current(current)
        present = {str(c): c for c in frame.columns}
        names = list(self.reference_)
        verdicts = self._map(lambda name: self._feature(name, frame, present), names)
        extra = [
            FeatureDrift(
                name=name,
                kind=None,
                status=Status.NEW_COLUMN,
                n_current=len(frame),
                message="The column is in the current sample but not in the reference.",
            )
            for name in present
            if name not in self.reference_
            and name not in self.ignored_
            and (self.columns is None or name in self.columns)
        ]
        return self._decide([*verdicts, *extra], len(frame))

    # -- internals -------------------------------------------------------------------

    def _map(self, function: Callable[[str], _T], items: Sequence[str]) -> list[_T]:
        jobs = self.n_jobs or _usable_cores()
        if jobs == 1 or len(items) < 2:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(function, items))

    def _kind(self, name: str, series: pd.Series) -> FeatureKind:
        forced = (self.kinds or {}).get(name)
        return forced or ("numeric" if kind_of(series) == "numeric" else "categorical")

    def _summarize(self, series: pd.Series, name: str) -> Summary:
        if self._kind(name, series) == "numeric":
            return summarize_numeric(numeric_values(series), levels=DEFAULT_LEVELS)
        return summarize_categorical(series)

    def _feature(
        self, name: str, frame: pd.DataFrame, present: Mapping[str, object]
    ) -> FeatureDrift:
        reference = self.reference_[name]
        kind: FeatureKind = "numeric" if isinstance(reference, NumericSummary) else "categorical"
        if name not in present:
            return FeatureDrift(
                name=name,
                kind=kind,
                status=Status.MISSING_COLUMN,
                n_reference=reference.n,
                message="The column is in the reference but not in the current sample.",
            )
        series = frame[present[name]]
        try:
            current: Summary = (
                summarize_numeric(numeric_values(series))
                if kind == "numeric"
                else summarize_categorical(series)
            )
        except InvalidInputError:
            return FeatureDrift(
                name=name,
                kind=kind,
                status=Status.TYPE_MISMATCH,
                n_reference=reference.n,
                n_current=len(series),
                message=f"The reference is numeric but the current column holds "
                f"{series.dtype} values that are not numbers.",
            )
        base = FeatureDrift(
            name=name,
            kind=kind,
            status=Status.OK,
            n_reference=reference.n,
            n_current=current.n,
            reference_missing=_missing_share(reference),
            current_missing=_missing_share(current),
        )
        if reference.n == 0 or current.n == 0:
            side = "reference" if reference.n == 0 else "current sample"
            return replace(
                base, status=Status.ALL_MISSING, message=f"Every value in the {side} is missing."
            )
        if min(reference.n, current.n) < self.min_rows:
            return replace(
                base,
                status=Status.INSUFFICIENT_DATA,
                message=f"{min(reference.n, current.n)} usable values; at least "
                f"{self.min_rows} per sample are needed for a verdict.",
            )
        status, message, new = _status(reference, current)
        method = (self.methods or {}).get(name) or choose_test(reference, current)
        if status is Status.CONSTANT and method in ("wasserstein", "z"):
            method = "jensen_shannon"
        test = get_test(method)
        if kind not in test.kinds:
            raise InvalidInputError(
                f"Column {name!r} is {kind} but the configured test {method!r} accepts "
                f"{' and '.join(test.kinds)} columns."
            )
        if method == "z" and _category_count(reference, current) != 2:
            test = get_test("jensen_shannon")
        result = test.compare(reference, current)
        return replace(
            base,
            status=status,
            message=message,
            new_categories=new,
            distribution=_distribution(reference, current),
            test=result.method,
            statistic=result.statistic,
            p_value=result.p_value,
            effect_size=result.effect_size,
            threshold=result.threshold,
            min_effect=result.min_effect,
            null_band=result.null_band,
            drifted=result.drifted,
            approximate=result.approximate,
        )

    def _decide(self, verdicts: list[FeatureDrift], rows: int) -> DataDriftResult:
        tested = [i for i, v in enumerate(verdicts) if v.status.is_tested and v.p_value is not None]
        q_values = benjamini_hochberg([verdicts[i].p_value for i in tested])  # type: ignore[misc]
        for i, q in zip(tested, q_values, strict=True):
            v = verdicts[i]
            drifted = (
                v.effect_size is not None
                and v.threshold is not None
                and v.effect_size >= v.threshold
                and q <= self.fdr
            )
            verdicts[i] = replace(v, q_value=q, drifted=bool(drifted))
        n_tested = len(tested)
        n_drifted = sum(1 for v in verdicts if v.drifted)
        share = n_drifted / n_tested if n_tested else 0.0
        return DataDriftResult(
            dataset_drift=bool(n_tested and share >= self.drift_share),
            drifted_share=share,
            drift_share=self.drift_share,
            fdr=self.fdr,
            n_drifted=n_drifted,
            n_tested=n_tested,
            n_reference=self.n_reference_,
            n_current=rows,
            features=tuple(verdicts),
        )


def _status(reference: Summary, current: Summary) -> tuple[Status, str, tuple[str, ...]]:
    if isinstance(reference, NumericSummary):
        if is_constant(reference):
            value = float(reference.quantiles[0])
            return Status.CONSTANT, f"The reference is constant ({value:g}).", ()
        return Status.OK, "", ()
    current = cast(CategoricalSummary, current)  # the same kind by construction
    if len(reference.categories) == 1 and reference.complete:
        return Status.CONSTANT, f"The reference has one category ({reference.categories[0]!r}).", ()
    if not reference.complete:
        return Status.OK, "", ()
    known = set(reference.categories)
    new = [c for c in current.categories if c not in known]
    if not new:
        return Status.OK, "", ()
    counts = dict(zip(current.categories, current.counts.tolist(), strict=True))
    share = sum(counts[c] for c in new) / current.n
    shown = tuple(str(c) for c in new[:PLOT_CATEGORIES])
    return (
        Status.NEW_CATEGORIES,
        f"{len(new)} categories absent from the reference hold {share:.1%} of the current values.",
        shown,
    )


def _category_count(reference: Summary, current: Summary) -> int:
    if isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalSummary):
        return len(set(reference.categories) | set(current.categories))
    return 0


def _missing_share(summary: Summary) -> float:
    if summary.count == 0:
        return 0.0
    unusable = summary.missing + (summary.infinite if isinstance(summary, NumericSummary) else 0)
    return unusable / summary.count


def _distribution(reference: Summary, current: Summary) -> Distribution:
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        return _numeric_distribution(reference, current)
    reference = cast(CategoricalSummary, reference)
    current = cast(CategoricalSummary, current)
    shares: dict[str, list[float]] = {}
    n, m = reference.n, current.n
    for category, count in zip(reference.categories, reference.counts.tolist(), strict=True):
        shares.setdefault(str(category), [0.0, 0.0])[0] += count / n
    for category, count in zip(current.categories, current.counts.tolist(), strict=True):
        shares.setdefault(str(category), [0.0, 0.0])[1] += count / m
    ranked = sorted(shares.items(), key=lambda item: -max(item[1]))
    top = ranked[:PLOT_CATEGORIES]
    rest = ranked[PLOT_CATEGORIES:]
    labels = [label for label, _ in top]
    ref_shares = [pair[0] for _, pair in top]
    cur_shares = [pair[1] for _, pair in top]
    if rest or reference.other:
        labels.append("(other)")
        ref_shares.append(max(0.0, 1.0 - sum(ref_shares)))
        cur_shares.append(max(0.0, 1.0 - sum(cur_shares)))
    return Distribution(
        labels=tuple(labels), edges=None, reference=tuple(ref_shares), current=tuple(cur_shares)
    )


def _numeric_distribution(reference: NumericSummary, current: NumericSummary) -> Distribution:
    cuts = reference.cut_points[PLOT_BIN_STEP - 1 :: PLOT_BIN_STEP]
    if is_constant(reference) or len(cuts) == 0:
        cuts = reference.cut_points
    values = current.values if current.values is not None else current.quantiles
    low = min(float(reference.quantiles[0]), float(values[0]))
    high = max(float(reference.quantiles[-1]), float(values[-1]))
    ref_cumulative = (
        np.concatenate(([0.0], reference.cdf(cuts), [1.0])) if len(cuts) else np.array([0.0, 1.0])
    )
    cur_cumulative = (
        np.concatenate(([0.0], current.cdf(cuts), [1.0])) if len(cuts) else np.array([0.0, 1.0])
    )
    edges = [low, *(float(c) for c in cuts), high]
    labels = [f"{a:.4g}..{b:.4g}" for a, b in pairwise(edges)]
    return Distribution(
        labels=tuple(labels),
        edges=tuple(edges),
        reference=tuple(float(x) for x in np.diff(ref_cumulative)),
        current=tuple(float(x) for x in np.diff(cur_cumulative)),
    )


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
