"""The one object the serving path tells about every prediction, for every metric.

:class:`MonitoringRecorder` feeds both the windowed metrics (time buckets per endpoint,
version and role; :mod:`ferryman.monitoring.window`) and the Prometheus input and output
metrics (:class:`~ferryman.monitoring.ModelDataMetrics`).

The hot path is one call per request (``observe_prediction``, ``observe_rejected`` or
``observe_comparison``) that stamps the time and appends the references it is given to
a queue: about a microsecond, whatever the batch size. :meth:`MonitoringRecorder.drain`
does the work later, off the request path (the :class:`~ferryman.monitoring.MetricFlusher`
thread calls it every second): it groups the queued requests by endpoint, version, role
and time bucket, and checks all their rows at once with vectorised NumPy — missing
values, ranges, categories, feature histograms, null predictions, classes, scores — then
adds the counts to the buckets and to the Prometheus metrics with one increment per
series. A request's data and prediction are therefore kept (not copied) until the next
drain: callers must not change them afterwards. The queue is bounded: when
``max_pending`` requests wait, the observing call drains them itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from ferryman.monitoring._checks import (
    OTHER_LABEL,
    ClassLabels,
    OutputSummary,
    VersionPlan,
    check_inputs,
    compare_predictions,
    summarise_outputs,
)
from ferryman.monitoring._prediction_bins import IntArray
from ferryman.monitoring.base import ROLES
from ferryman.monitoring.metrics import SCORE_BUCKETS, ModelDataMetrics
from ferryman.monitoring.window import (
    DEFAULT_BUCKET_SECONDS,
    ERROR_KINDS,
    WindowAccumulator,
    bucket_start,
)
from ferryman.signature import ReferenceProfile, Signature

logger = logging.getLogger(__name__)

_PREDICTION, _REJECTED, _COMPARISON = 0, 1, 2
_KIND_INDEX = {kind: i for i, kind in enumerate(ERROR_KINDS)}
_SERVER_ERROR, _TIMEOUT, _CLIENT_ERROR = 0, 1, 2
_SCORE_EDGES = np.asarray(SCORE_BUCKETS)

# (tag, timestamp, endpoint, version, role, a, b, c, d); see the observe_* methods.
_Item = tuple[int, float, str, str, str, Any, Any, Any, Any]
_Key = tuple[str, str, str, int]


@dataclass(frozen=True)
class BucketSnapshot:
    """The cumulative counts of one bucket, as the flusher writes them.

    Attributes:
        endpoint: The endpoint's name.
        version: The model version ``name/N`` (``""`` when no version was known).
        role: ``primary``, ``shadow`` or ``batch``.
        bucket_start: Start of the bucket, UTC.
        bucket_seconds: Length of the bucket.
        data: :meth:`WindowAccumulator.to_dict` of the bucket.
        revision: The bucket's change count when the snapshot was taken.
    """

    endpoint: str
    version: str
    role: str
    bucket_start: datetime
    bucket_seconds: int
    data: dict[str, Any]
    revision: int


class _Bucket:
    __slots__ = ("accumulator", "flushed", "revision")

    def __init__(self) -> None:
        self.accumulator = WindowAccumulator()
        self.revision = 0
        self.flushed = 0


class MonitoringRecorder:
    """Record every prediction once, for the windowed and the Prometheus metrics.

    Call :meth:`bind_version` when a version starts serving (it precomputes what the
    checks need from its signature and profile), then one ``observe_*`` method per
    request. Nothing is computed before :meth:`drain`; see the module docstring.

    Args:
        metrics: The Prometheus input and output metrics to update, or ``None`` to keep
            only the windowed metrics.
        bucket_seconds: Length of the time buckets (seconds); buckets are aligned to
            the wall clock.
        max_pending: Requests queued before an observing call drains them itself.
        max_classes: Distinct ``class`` label values per version in Prometheus (the
            signature's classes first); further classes are counted as ``"(other)"``.
            Buckets keep every class the signature lists and this many others.
        max_features: Features per version with their own ``feature`` label value in
            Prometheus, in signature order; the rest are counted as ``"(other)"``.
        clock: Returns the current time as Unix seconds (injectable for tests).

    Example:
        >>> import numpy as np
        >>> from ferryman.flavors.base import Prediction
        >>> recorder = MonitoringRecorder(clock=lambda: 1_700_000_003.0)
        >>> recorder.observe_prediction(
        ...     "churn", "churn/1", "primary", 200, 4.2, None, Prediction(np.array([0.5]))
        ... )
        >>> recorder.drain()
        1
        >>> [(s.endpoint, s.data["requests"], s.data["rows"]) for s in recorder.collect()]
        [('churn', 1, 1)]
    """

    def __init__(
        self,
        *,
        metrics: ModelDataMetrics | None = None,
        bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
        max_pending: int = 10_000,
        max_classes: int = 100,
        max_features: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("bucket_seconds", bucket_seconds),
            ("max_pending", max_pending),
            ("max_classes", max_classes),
            ("max_features", max_features),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(
                    f"MonitoringRecorder {name} must be a positive integer, got {value!r}."
                )
        self.metrics = metrics
        self.bucket_seconds = bucket_seconds
        self.max_pending = max_pending
        self.max_classes = max_classes
        self.max_features = max_features
        self.clock = clock
        self._pending: deque[_Item] = deque()
        self._lock = threading.RLock()
        self._plans: dict[tuple[str, str], VersionPlan] = {}
        self._features: dict[str, frozenset[str]] = {}
        self._buckets: dict[_Key, _Bucket] = {}
        self._unbound_classes: dict[tuple[str, str], tuple[ClassLabels, ClassLabels]] = {}
        self._watermark = 0
        self._children: dict[Hashable, Any] = {}

    def __repr__(self) -> str:
        return (
            f"MonitoringRecorder(bucket_seconds={self.bucket_seconds}, "
            f"max_pending={self.max_pending}, max_classes={self.max_classes}, "
            f"max_features={self.max_features})"
        )

    @property
    def pending(self) -> int:
        """Requests observed and not yet drained."""
        return len(self._pending)

    # -- versions -----------------------------------------------------------------------

    def bind_version(
        self,
        endpoint: str,
        version: str,
        *,
        signature: Signature | None,
        profile: ReferenceProfile | None = None,
    ) -> None:
        """Tell the recorder what ``version`` accepts and returns, before it serves.

        Without a binding (or a signature), the version's requests, latencies, errors
        and outputs are still counted, but no input feature is checked and the
        prediction histogram for PSI is not kept.

        Args:
            endpoint: The endpoint's name.
            version: The model version ``name/N``.
            signature: The version's signature (features, ranges, categories, classes).
            profile: The version's reference profile (training features and predictions,
                for feature and prediction PSI).
        """
        plan = VersionPlan(
            signature, profile, max_classes=self.max_classes, max_features=self.max_features
        )
        with self._lock:
            self._plans[(endpoint, version)] = plan
            self._features[endpoint] = self._features.get(endpoint, frozenset()) | plan.feature_set

    def unbind_version(self, endpoint: str, version: str) -> None:
        """Forget a version's binding (after it stopped serving and was drained)."""
        with self._lock:
            self.drain()
            self._plans.pop((endpoint, version), None)
            self._unbound_classes.pop((endpoint, version), None)

    # -- the hot path -------------------------------------------------------------------

    def observe_prediction(
        self,
        endpoint: str,
        version: str,
        role: str,
        status: int,
        latency_ms: float,
        data: pd.DataFrame | np.ndarray | None = None,
        prediction: Prediction | None = None,
    ) -> None:
        """Record a request that reached the model.

        Args:
            endpoint: The endpoint's name.
            version: The model version ``name/N`` that served it.
            role: ``primary``, ``shadow`` or ``batch``.
            status: The HTTP status answered: 2xx success; 504 a timeout; other 5xx a
                server error; 4xx a client error.
            latency_ms: Time from receipt to response (milliseconds).
            data: The batch as :meth:`Signature.validate` returned it, or ``None``.
            prediction: The model's output for ``data``, or ``None`` if it failed.

        Raises:
            InvalidInputError: ``role`` is not one of ``primary``, ``shadow``, ``batch``.
        """
        if role not in ROLES:
            raise InvalidInputError(f"Unknown role {role!r}. Available: {', '.join(ROLES)}.")
        pending = self._pending
        pending.append(
            (
                _PREDICTION,
                self.clock(),
                endpoint,
                version,
                role,
                status,
                latency_ms,
                data,
                prediction,
            )
        )
        if len(pending) >= self.max_pending:
            self.drain()

    def observe_rejected(
        self,
        endpoint: str,
        version: str | None,
        kind: str,
        *,
        feature: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Record a request that failed before the model saw it.

        Args:
            endpoint: The endpoint's name.
            version: The version the endpoint serves, or ``None`` if none is known.
            kind: ``schema_violation``, ``client_error``, ``server_error`` or ``timeout``.
            feature: For a schema violation, the offending column
                (:attr:`SchemaValidationError.column`); ``None`` for the whole batch.
            latency_ms: Time from receipt to response, if measured (milliseconds).

        Raises:
            InvalidInputError: ``kind`` is not one of the kinds above.
        """
        index = _KIND_INDEX.get(kind)
        if index is None:
            raise InvalidInputError(
                f"Unknown rejection kind {kind!r}. Available: {', '.join(ERROR_KINDS)}."
            )
        latency = float("nan") if latency_ms is None else latency_ms
        self._pending.append(
            (
                _REJECTED,
                self.clock(),
                endpoint,
                version or "",
                "primary",
                index,
                latency,
                feature,
                None,
            )
        )
        if len(self._pending) >= self.max_pending:
            self.drain()

    def observe_comparison(
        self,
        endpoint: str,
        version: str,
        primary_prediction: Prediction,
        shadow_prediction: Prediction,
    ) -> None:
        """Record a shadow's answer to a request next to the primary's answer.

        Counted for ``version`` (the shadow's) in the role ``shadow``: rows compared,
        rows agreeing (same label; numbers equal within 1e-9 relative), and the absolute
        differences of positive-class scores (binary classifiers) or numeric predictions.

        Raises:
            InvalidInputError: The two predictions have different numbers of rows.
        """
        if len(primary_prediction) != len(shadow_prediction):
            raise InvalidInputError(
                f"Cannot compare {len(primary_prediction)} primary rows with "
                f"{len(shadow_prediction)} shadow rows; they must answer the same request."
            )
        self._pending.append(
            (
                _COMPARISON,
                self.clock(),
                endpoint,
                version,
                "shadow",
                primary_prediction,
                shadow_prediction,
                None,
                None,
            )
        )
        if len(self._pending) >= self.max_pending:
            self.drain()

    # -- off the hot path ---------------------------------------------------------------

    def drain(self) -> int:
        """Apply every queued observation to the buckets and the Prometheus metrics.

        A group of requests whose data or outputs cannot be read is logged and its
        checks skipped; its requests, latencies and errors are still counted.

        Returns:
            How many observations were applied.
        """
        with self._lock:
            pending = self._pending
            items = [pending.popleft() for _ in range(len(pending))]
            if not items:
                return 0
            groups: dict[_Key, list[_Item]] = {}
            seconds = self.bucket_seconds
            watermark = self._watermark
            for item in items:
                start = max(bucket_start(item[1], seconds), watermark)
                key = (item[2], item[3], item[4], start)
                found = groups.get(key)
                if found is None:
                    groups[key] = [item]
                else:
                    found.append(item)
            for key, group in groups.items():
                self._apply(key, group)
            return len(items)

    def collect(self) -> list[BucketSnapshot]:
        """Drain, then snapshot every bucket changed since its last confirmed flush."""
        with self._lock:
            self.drain()
            return [
                BucketSnapshot(
                    endpoint=key[0],
                    version=key[1],
                    role=key[2],
                    bucket_start=datetime.fromtimestamp(key[3], UTC),
                    bucket_seconds=self.bucket_seconds,
                    data=bucket.accumulator.to_dict(),
                    revision=bucket.revision,
                )
                for key, bucket in self._buckets.items()
                if bucket.revision != bucket.flushed
            ]

    def confirm(self, snapshots: Sequence[BucketSnapshot]) -> None:
        """Mark snapshots as stored; forget buckets that ended over a bucket ago.

        A forgotten bucket is complete in the store. An observation stamped inside it
        that arrives later still (a request queued for over a bucket's length) is
        counted in the oldest bucket kept in memory instead.
        """
        with self._lock:
            self.drain()  # observations still queued count as changes of their bucket
            horizon = self.clock() - 2 * self.bucket_seconds
            for snapshot in snapshots:
                start = int(snapshot.bucket_start.timestamp())
                key = (snapshot.endpoint, snapshot.version, snapshot.role, start)
                bucket = self._buckets.get(key)
                if bucket is None:
                    continue
                bucket.flushed = max(bucket.flushed, snapshot.revision)
                if bucket.flushed == bucket.revision and start <= horizon:
                    del self._buckets[key]
                    self._watermark = max(self._watermark, start + self.bucket_seconds)

    def buckets(self) -> dict[tuple[str, str, str, int], WindowAccumulator]:
        """Copies of the buckets in memory, by (endpoint, version, role, start), drained."""
        with self._lock:
            self.drain()
            return {key: bucket.accumulator.copy() for key, bucket in self._buckets.items()}

    # -- applying a group ---------------------------------------------------------------

    def _apply(self, key: _Key, items: list[_Item]) -> None:
        endpoint, version, role, _ = key
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
        bucket.revision += 1
        accumulator = bucket.accumulator
        plan = self._plans.get((endpoint, version))
        predictions = [item for item in items if item[0] == _PREDICTION]
        rejected = [item for item in items if item[0] == _REJECTED]
        compared = [item for item in items if item[0] == _COMPARISON]
        if predictions or rejected:
            self._add_requests(accumulator, predictions, rejected)
        try:
            if predictions:
                self._add_outputs(accumulator, key, plan, [i[8] for i in predictions if i[8]])
                if plan is not None and plan.signature is not None:
                    frames = [i[7] for i in predictions if i[7] is not None]
                    if frames:
                        self._add_inputs(accumulator, endpoint, role, plan, frames)
            if rejected:
                self._count_violations(endpoint, version, rejected)
            if compared:
                rows, agreed, diffs = compare_predictions([(i[5], i[6]) for i in compared])
                accumulator.add_comparisons(rows=rows, agreed=agreed, abs_diffs=diffs)
        except Exception:  # one unreadable batch must not stop monitoring
            logger.exception(
                "Monitoring could not read a batch of %s (%s, %s); its checks are skipped.",
                endpoint,
                version,
                role,
            )

    def _add_requests(
        self, accumulator: WindowAccumulator, predictions: list[_Item], rejected: list[_Item]
    ) -> None:
        statuses = np.fromiter((item[5] for item in predictions), np.int64, len(predictions))
        errors = np.zeros(len(ERROR_KINDS), dtype=np.int64)
        errors[_TIMEOUT] = int(np.count_nonzero(statuses == 504))
        errors[_SERVER_ERROR] = int(np.count_nonzero(statuses >= 500)) - errors[_TIMEOUT]
        errors[_CLIENT_ERROR] = int(np.count_nonzero((statuses >= 400) & (statuses < 500)))
        if rejected:
            errors += np.bincount(
                np.fromiter((item[5] for item in rejected), np.int64, len(rejected)),
                minlength=len(ERROR_KINDS),
            )
        latencies = np.fromiter(
            (item[6] for item in (*predictions, *rejected)),
            np.float64,
            len(predictions) + len(rejected),
        )
        accumulator.add_requests(latencies, errors)

    def _add_outputs(
        self,
        accumulator: WindowAccumulator,
        key: _Key,
        plan: VersionPlan | None,
        outputs: list[Prediction],
    ) -> None:
        if not outputs:
            return
        summary = summarise_outputs(outputs, plan)
        bins = plan.bins if plan is not None else None
        bin_counts: IntArray | None = None
        if bins is not None:
            if bins.kind == "categorical":
                bin_counts = bins.count_labels(summary.class_counts)
            elif summary.values is not None:
                bin_counts = bins.count_values(summary.values)
        known = plan.known_classes if plan is not None else summary.known_classes
        bucket_classes = self._classes(key, plan, summary)[1]
        class_counts: dict[str, int] = {}
        for text, count in summary.class_counts.items():
            label = bucket_classes.label(text)
            class_counts[label] = class_counts.get(label, 0) + count
        accumulator.add_predictions(
            rows=summary.rows,
            null_rows=summary.null_rows,
            values=summary.values,
            class_counts=class_counts,
            bin_counts=bin_counts,
            bins=bins if bin_counts is not None else None,
            known_classes=known,
        )
        if self.metrics is not None:
            self._count_outputs(self.metrics, key, plan, summary)

    def _count_outputs(
        self, metrics: ModelDataMetrics, key: _Key, plan: VersionPlan | None, summary: OutputSummary
    ) -> None:
        labels = key[:3]
        self._child(metrics.prediction_rows, labels).inc(summary.rows)
        if summary.null_rows:
            self._child(metrics.null_predictions, labels).inc(summary.null_rows)
        if summary.class_counts:
            classes = self._classes(key, plan, summary)[0]
            for text, count in summary.class_counts.items():
                self._child(metrics.predicted_classes, (*labels, classes.label(text))).inc(count)
        if summary.scores is not None:
            scores = summary.scores[~np.isnan(summary.scores)]
            if len(scores):
                counts = np.bincount(
                    np.searchsorted(_SCORE_EDGES, scores, side="left"),
                    minlength=len(SCORE_BUCKETS) + 1,
                )
                self._child(metrics.score, labels).observe_counts(
                    counts.tolist(), float(scores.sum())
                )
        if summary.values is not None:
            values = summary.values[~np.isnan(summary.values)]
            if len(values):
                self._child(metrics.values, labels).inc(len(values))
                self._child(metrics.values_summed, labels).inc(float(values.sum()))

    def _add_inputs(
        self,
        accumulator: WindowAccumulator,
        endpoint: str,
        role: str,
        plan: VersionPlan,
        frames: list[pd.DataFrame | np.ndarray],
    ) -> None:
        rows, counts, histogram = check_inputs(plan, frames)
        accumulator.add_features(plan.features, rows, counts)
        if histogram is not None and plan.feature_binner is not None:
            accumulator.add_feature_histogram(plan.feature_binner.binning, histogram)
        metrics = self.metrics
        if metrics is None or role == "shadow":  # a shadow sees the primary's inputs again
            return
        self._child(metrics.input_rows, (endpoint,)).inc(rows)
        for family, row in zip(
            (metrics.missing, metrics.out_of_range, metrics.unseen_categories),
            counts,
            strict=True,
        ):
            for position in np.flatnonzero(row).tolist():
                label = plan.feature_labels[position]
                self._child(family, (endpoint, label)).inc(int(row[position]))

    def _count_violations(self, endpoint: str, version: str, rejected: list[_Item]) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        known = self._features.get(endpoint, frozenset())
        plan = self._plans.get((endpoint, version))
        for item in rejected:
            if item[5] != _KIND_INDEX["schema_violation"]:
                continue
            feature = item[7] if item[7] in known else ""
            if feature and plan is not None and feature in plan.feature_set:
                feature = plan.feature_labels[plan.features.index(feature)]
            self._child(metrics.schema_violations, (endpoint, feature)).inc()

    def _classes(
        self, key: _Key, plan: VersionPlan | None, summary: OutputSummary
    ) -> tuple[ClassLabels, ClassLabels]:
        """The class labels of a version: for Prometheus, and for the buckets."""
        if plan is not None:
            return plan.class_labels, plan.bucket_classes
        found = self._unbound_classes.get((key[0], key[1]))
        if found is None:
            known = summary.known_classes
            found = (
                ClassLabels(known, self.max_classes),
                ClassLabels(known, len(known) + self.max_classes),
            )
            self._unbound_classes[(key[0], key[1])] = found
        return found

    def _child(self, family: Any, labels: tuple[str, ...]) -> Any:
        key = (id(family), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child


__all__ = ["OTHER_LABEL", "BucketSnapshot", "MonitoringRecorder"]
