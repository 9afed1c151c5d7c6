"""The input and output metrics of the serving path: what the models receive and return.

:class:`ModelDataMetrics` is registered by :meth:`~ferryman.monitoring.ServingMetrics.create`
(as its ``data``) and recorded by :class:`~ferryman.monitoring.MonitoringRecorder`;
:class:`BulkHistogram` lets the recorder add a whole batch's scores in one call per bucket.
Import them from :mod:`ferryman.monitoring.metrics`, which re-exports them
(``ModelDataMetrics`` also from :mod:`ferryman.monitoring`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Score buckets (upper bounds) of ``ferryman_prediction_score``: 0.05 to 1 by 0.05.
SCORE_BUCKETS = tuple(round(0.05 * k, 2) for k in range(1, 21))


class BulkHistogram(Histogram):
    """A Prometheus histogram that also takes many observations already bucketed.

    :meth:`observe_counts` adds the counts of a whole batch in one call per non-empty
    bucket, where :meth:`observe` would cost one call per row. prometheus-client has no
    public method for it, so this subclass adds to the bucket and sum values the parent
    class keeps; ``tests/monitoring`` checks that it exposes exactly what as many
    :meth:`observe` calls would, in single-process and multiprocess mode alike.
    """

    def observe_counts(self, counts: Sequence[int], total: float) -> None:
        """Add observations counted per bucket.

        Args:
            counts: Observations per bucket, one per upper bound of the histogram in
                order, the implicit ``+Inf`` bucket last (not cumulative).
            total: The sum of the observed values.

        Raises:
            ValueError: ``counts`` does not have one entry per bucket.
        """
        self._raise_if_not_observable()  # type: ignore[no-untyped-call]
        buckets = self._buckets
        if len(counts) != len(buckets):
            raise ValueError(f"Expected {len(buckets)} bucket counts, got {len(counts)}.")
        for bucket, count in zip(buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self._sum.inc(total)


@dataclass(frozen=True, eq=False)
class ModelDataMetrics:
    """What the models receive and return, as Prometheus metrics.

    Built by :meth:`ServingMetrics.create` (as its ``data``) and recorded by
    :class:`~ferryman.monitoring.MonitoringRecorder`, which keeps labels bounded:
    ``feature`` values come from the signature, ``class`` values from the model's
    classes, with a cap past which they are pooled as ``"(other)"``. Metrics (all
    prefixed ``ferryman_``):

    Input, per endpoint, over the rows of primary and batch requests (a shadow copy of
    a request is not counted again):

    - ``input_rows_total{endpoint}``: rows checked against the signature;
    - ``feature_missing_total{endpoint,feature}``: rows missing the value (absent,
      null or NaN); the missing rate is its rate over ``input_rows_total``'s;
    - ``feature_out_of_range_total{endpoint,feature}``: values outside the training
      range the signature records;
    - ``feature_unseen_categories_total{endpoint,feature}``: categories the signature
      does not list;
    - ``schema_violations_total{endpoint,feature}``: requests the signature rejected,
      by the offending column (``""`` when the whole batch was wrong).

    Output, per endpoint, version and role:

    - ``prediction_rows_total``: rows predicted;
    - ``null_predictions_total``: rows whose prediction is null or NaN;
    - ``predicted_classes_total{...,class}``: rows per predicted class;
    - ``prediction_score`` histogram (:data:`SCORE_BUCKETS`): the positive-class
      probability of binary classifiers, the top-class probability of others;
    - ``prediction_values_total`` and ``prediction_values_summed`` (a gauge, as the sum
      may fall): how many numeric predictions (regressors) or positive-class scores
      (binary classifiers) were added up, and their sum, so that
      ``delta(…_summed[5m]) / increase(…_total[5m])`` is the mean prediction.
    """

    input_rows: Counter
    missing: Counter
    out_of_range: Counter
    unseen_categories: Counter
    schema_violations: Counter
    prediction_rows: Counter
    null_predictions: Counter
    predicted_classes: Counter
    score: BulkHistogram
    values: Counter
    values_summed: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ModelDataMetrics:
        """Register the input and output metrics on ``registry`` and return them."""
        ns = "ferryman"
        feature = ("endpoint", "feature")
        output = ("endpoint", "version", "role")
        return cls(
            input_rows=Counter(
                "input_rows",
                "Input rows checked against the signature (primary and batch requests).",
                ("endpoint",),
                namespace=ns,
                registry=registry,
            ),
            missing=Counter(
                "feature_missing",
                "Input rows missing the feature's value (absent, null or NaN).",
                feature,
                namespace=ns,
                registry=registry,
            ),
            out_of_range=Counter(
                "feature_out_of_range",
                "Input values outside the feature's training range in the signature.",
                feature,
                namespace=ns,
                registry=registry,
            ),
            unseen_categories=Counter(
                "feature_unseen_categories",
                "Input values that are not one of the feature's categories in the signature.",
                feature,
                namespace=ns,
                registry=registry,
            ),
            schema_violations=Counter(
                "schema_violations",
                "Requests rejected by signature validation, by offending feature "
                '("" when the whole batch was wrong).',
                feature,
                namespace=ns,
                registry=registry,
            ),
            prediction_rows=Counter(
                "prediction_rows", "Rows predicted.", output, namespace=ns, registry=registry
            ),
            null_predictions=Counter(
                "null_predictions",
                "Rows whose prediction is null or NaN.",
                output,
                namespace=ns,
                registry=registry,
            ),
            predicted_classes=Counter(
                "predicted_classes",
                'Rows predicted per class (rare classes past the cap pooled as "(other)").',
                (*output, "class"),
                namespace=ns,
                registry=registry,
            ),
            score=BulkHistogram(
                "prediction_score",
                "Positive-class probability (binary classifiers) or top-class probability.",
                output,
                namespace=ns,
                registry=registry,
                buckets=SCORE_BUCKETS,
            ),
            values=Counter(
                "prediction_values",
                "Numeric predictions or positive-class scores added to "
                "ferryman_prediction_values_summed.",
                output,
                namespace=ns,
                registry=registry,
            ),
            values_summed=Gauge(
                "prediction_values_summed",
                "Sum of the numeric predictions or positive-class scores "
                "(mean = its delta over the increase of ferryman_prediction_values_total).",
                output,
                namespace=ns,
                registry=registry,
                multiprocess_mode="sum",
            ),
        )


__all__ = ["SCORE_BUCKETS", "BulkHistogram", "ModelDataMetrics"]
