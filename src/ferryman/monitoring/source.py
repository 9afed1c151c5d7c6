"""Windowed metrics read from the metadata store, over every server process.

:class:`StoreMetricSource` implements :class:`~ferryman.monitoring.base.MetricSource` on
the ``metric_windows`` table the :class:`~ferryman.monitoring.MetricFlusher` of each
process writes. A window ``[since, until)`` takes the buckets whose **start** lies in
it, from every process (and every version and role unless the selector names one), and
merges them. A bucket straddling ``since`` is left out and one straddling ``until`` is
taken whole, so a window is measured at the bucket resolution (10 s by default); align
windows to bucket boundaries for exact spans. The last bucket of a window ending now is
still filling: it holds what the processes flushed so far (at most a second old).

:func:`measure_window` computes any catalogue metric from merged buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from ferryman.errors import StoreUnavailableError, UnknownMetricError
from ferryman.monitoring.base import (
    METRIC_CATALOGUE,
    Measurement,
    WindowSelector,
    get_metric_spec,
)
from ferryman.monitoring.window import (
    ERROR_KINDS,
    WindowAccumulator,
    latency_quantile,
)
from ferryman.store import Database, safe_url
from ferryman.store._tables import MetricWindowRow

_QUANTILES = {
    "p50_latency_ms": 0.5,
    "p90_latency_ms": 0.9,
    "p95_latency_ms": 0.95,
    "p99_latency_ms": 0.99,
}
_FEATURE_RATES = {"missing_rate": 0, "out_of_range_rate": 1, "unseen_category_rate": 2}
_SERVER = ERROR_KINDS.index("server_error")
_TIMEOUT = ERROR_KINDS.index("timeout")
_CLIENT = ERROR_KINDS.index("client_error")
_SCHEMA = ERROR_KINDS.index("schema_violation")


class StoreMetricSource:
    """Windowed metrics over the buckets every process flushed to the store.

    Args:
        database: The metadata store (opened on first use if it is not yet).

    Example::

        source = StoreMetricSource(database)
        window = WindowSelector.last("churn", timedelta(minutes=5), now=datetime.now(UTC))
        source.measure("missing_rate", {"feature": "age"}, window)
        # Measurement(value=0.002, samples=5012)
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def __repr__(self) -> str:
        return f"StoreMetricSource(database={self.database!r})"

    def metric_names(self) -> list[str]:
        """Return the catalogue of metric names, sorted."""
        return sorted(METRIC_CATALOGUE)

    def measure(
        self, metric: str, labels: Mapping[str, str], selector: WindowSelector
    ) -> Measurement:
        """Compute ``metric`` over the buckets of ``selector``'s window.

        Raises:
            UnknownMetricError: The metric is not in the catalogue, a label is missing
                or unexpected, or the window has data and the named feature (or class)
                is not one of the versions' features (or classes).
            StoreUnavailableError: The store cannot be reached.
        """
        get_metric_spec(metric, labels)
        return measure_window(metric, labels, self.window(selector))

    def window(self, selector: WindowSelector) -> WindowAccumulator:
        """Merge the buckets that start inside ``selector``'s window.

        Raises:
            StoreUnavailableError: The store cannot be reached.
        """
        return _merge(self._buckets(selector))

    def _buckets(self, selector: WindowSelector) -> Sequence[WindowAccumulator]:
        row = MetricWindowRow
        statement = select(row.data).where(
            row.endpoint == selector.endpoint,
            row.bucket_start >= selector.since,
            row.bucket_start < selector.until,
        )
        if selector.version is not None:
            statement = statement.where(row.version == selector.version)
        if selector.role is not None:
            statement = statement.where(row.role == selector.role)
        try:
            with self.database.read() as session:
                documents = session.execute(statement).scalars().all()
        except (OperationalError, DBAPIError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreUnavailableError(
                f"Cannot read metric buckets from {safe_url(self.database.url)}: {reason}"
            ) from exc
        return [WindowAccumulator.from_dict(document) for document in documents]


def _merge(buckets: Sequence[WindowAccumulator]) -> WindowAccumulator:
    total = WindowAccumulator()
    for bucket in buckets:
        total.update(bucket)
    return total


def measure_window(
    metric: str, labels: Mapping[str, str], window: WindowAccumulator
) -> Measurement:
    """Compute a catalogue metric from merged buckets.

    Counts are 0 and rates ``None`` when the window has no data for them. With
    several prediction or feature histograms (several versions, each with its own
    training reference), ``prediction_psi`` and ``feature_psi`` are the largest of
    their PSIs, and their samples the rows binned over all of them. ``max_feature_psi``
    is the largest ``feature_psi`` over the binned features, resting on that
    feature's rows.

    Raises:
        UnknownMetricError: See :meth:`StoreMetricSource.measure`.
    """
    get_metric_spec(metric, labels)
    requests = window.requests
    if metric == "request_count":
        return Measurement(float(requests), requests)
    if metric == "error_count":
        return Measurement(float(_model_errors(window)), requests)
    if metric == "error_rate":
        return _rate(_model_errors(window), requests)
    if metric == "client_error_rate":
        client = int(window.errors[_CLIENT]) + int(window.errors[_SCHEMA])
        return _rate(client, requests)
    if metric == "schema_violation_rate":
        return _rate(int(window.errors[_SCHEMA]), requests)
    if metric in _QUANTILES or metric == "mean_latency_ms":
        return _latency(metric, window)
    if metric == "null_rate":
        return _rate(window.null_rows, window.rows)
    if metric == "mean_prediction":
        return _ratio(window.value_sum, window.value_count)
    if metric == "prediction_psi":
        return _psi(window)
    if metric == "feature_psi":
        return _feature_psi(labels["feature"], window)
    if metric == "max_feature_psi":
        return _max_feature_psi(window)
    if metric == "class_share":
        return _class_share(labels["class"], window)
    if metric in _FEATURE_RATES:
        return _feature_rate(metric, labels["feature"], window)
    if metric == "agreement":
        return _rate(window.agreed, window.compared)
    if metric == "mean_abs_diff":
        return _ratio(window.diff_sum, window.diff_rows)
    if metric == "max_abs_diff":
        value = window.diff_max if window.diff_rows else None
        return Measurement(value, window.diff_rows)
    raise UnknownMetricError(f"Metric {metric!r} has no computation; this is a bug.")


def _model_errors(window: WindowAccumulator) -> int:
    return int(window.errors[_SERVER]) + int(window.errors[_TIMEOUT])


def _rate(count: int, total: int) -> Measurement:
    return Measurement(count / total if total else None, total)


def _ratio(amount: float, total: int) -> Measurement:
    return Measurement(amount / total if total else None, total)


def _latency(metric: str, window: WindowAccumulator) -> Measurement:
    timed = int(window.latency_counts.sum())
    if metric == "mean_latency_ms":
        return _ratio(window.latency_sum_ms, timed)
    value = latency_quantile(
        window.latency_counts, _QUANTILES[metric], window.latency_min_ms, window.latency_max_ms
    )
    return Measurement(value, timed)


def _psi(window: WindowAccumulator) -> Measurement:
    samples = 0
    values: list[float] = []
    for bins, counts in window.prediction_histograms.items():
        samples += int(counts.sum())
        value = bins.psi(counts)
        if value is not None:
            values.append(value)
    return Measurement(max(values) if values else None, samples)


def _feature_psi(feature: str, window: WindowAccumulator) -> Measurement:
    samples = 0
    values: list[float] = []
    binned = False
    for binning, counts in window.feature_histograms.items():
        if binning.find(feature) is None:
            continue
        binned = True
        value, rows = binning.psi(counts, feature)
        samples += rows
        if value is not None:
            values.append(value)
    if not binned and feature not in window.feature_names:
        names = _binned_features(window)
        if window.input_rows or names:
            known = _union_names(window.feature_names, names)
            raise UnknownMetricError(
                f"No feature {feature!r} in the window's signatures for feature_psi. "
                f"Features: {', '.join(known)}."
            )
    return Measurement(max(values) if values else None, samples)


def _max_feature_psi(window: WindowAccumulator) -> Measurement:
    best: Measurement = Measurement(None, 0)
    for feature in _binned_features(window):
        found = _feature_psi(feature, window)
        if found.value is not None and (best.value is None or found.value > best.value):
            best = found
    return best


def _binned_features(window: WindowAccumulator) -> tuple[str, ...]:
    names: tuple[str, ...] = ()
    for binning in window.feature_histograms:
        names = _union_names(names, binning.names)
    return names


def _union_names(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    seen = set(first)
    return first + tuple(name for name in second if name not in seen)


def _class_share(label: str, window: WindowAccumulator) -> Measurement:
    total = sum(window.class_counts.values())
    count = window.class_counts.get(label)
    if count is None and total and window.known_classes and label not in window.known_classes:
        raise UnknownMetricError(
            f"No class {label!r} among the predicted classes. Classes: "
            f"{', '.join(window.known_classes)}."
        )
    return _rate(count or 0, total)


def _feature_rate(metric: str, feature: str, window: WindowAccumulator) -> Measurement:
    try:
        position = window.feature_names.index(feature)
    except ValueError:
        if window.input_rows:
            raise UnknownMetricError(
                f"No feature {feature!r} in the window's signatures for {metric}. "
                f"Features: {', '.join(window.feature_names)}."
            ) from None
        return Measurement(None, 0)
    count = int(window.feature_counts[_FEATURE_RATES[metric], position])
    return _rate(count, window.input_rows)


__all__ = ["StoreMetricSource", "measure_window"]
