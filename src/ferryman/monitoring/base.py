"""The contract between windowed metrics and their readers (rollout gates, alert rules).

A *windowed metric* is one number about an endpoint over a span of time, aggregated over
every server process: ``error_rate`` over the current canary step, ``p99_latency_ms`` over
the last two minutes, ``missing_rate{feature="age"}`` or ``feature_psi{feature="age"}``
over the last five. Readers name the metric, give its labels and a
:class:`WindowSelector`, and get back a :class:`Measurement` from a
:class:`MetricSource`. The names a source knows form the :data:`METRIC_CATALOGUE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from ferryman.errors import InvalidInputError, UnknownMetricError

ROLES: Final[tuple[str, ...]] = ("primary", "shadow", "batch")
"""The roles a model version plays for an endpoint's traffic."""


@dataclass(frozen=True)
class WindowSelector:
    """Which observations a windowed metric is computed over.

    Attributes:
        endpoint: The endpoint's name.
        since: Start of the window, timezone-aware UTC, inclusive.
        until: End of the window, timezone-aware UTC, exclusive.
        version: A model version reference ``"name/N"``; ``None`` means all versions.
        role: ``"primary"``, ``"shadow"`` or ``"batch"``; ``None`` means all roles.

    Raises:
        InvalidInputError: If a bound is naive (no timezone), the window is empty or
            reversed, the endpoint is empty, or the role is not one of :data:`ROLES`.
    """

    endpoint: str
    since: datetime
    until: datetime
    version: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if not self.endpoint:
            raise InvalidInputError("WindowSelector.endpoint is empty; give an endpoint name.")
        for name, bound in (("since", self.since), ("until", self.until)):
            if bound.tzinfo is None or bound.utcoffset() is None:
                raise InvalidInputError(
                    f"WindowSelector.{name} is a naive datetime ({bound.isoformat()}); "
                    "give a timezone-aware UTC datetime, e.g. datetime.now(timezone.utc)."
                )
        if self.until <= self.since:
            raise InvalidInputError(
                f"WindowSelector window is empty: until ({self.until.isoformat()}) must be "
                f"later than since ({self.since.isoformat()})."
            )
        if self.role is not None and self.role not in ROLES:
            raise InvalidInputError(
                f"Unknown role {self.role!r}. Available: {', '.join(ROLES)} (or None for all)."
            )

    @classmethod
    def last(
        cls,
        endpoint: str,
        duration: timedelta,
        *,
        now: datetime,
        version: str | None = None,
        role: str | None = None,
    ) -> WindowSelector:
        """Select the ``duration`` ending at ``now``.

        Args:
            endpoint: The endpoint's name.
            duration: Length of the window; must be positive.
            now: The window's exclusive end, timezone-aware UTC.
            version: A model version reference ``"name/N"``, or ``None`` for all.
            role: A role from :data:`ROLES`, or ``None`` for all.

        Returns:
            The selector for ``[now - duration, now)``.

        Raises:
            InvalidInputError: If ``duration`` is not positive or ``now`` is naive.
        """
        if duration <= timedelta(0):
            raise InvalidInputError(f"Window duration must be positive, got {duration}.")
        return cls(endpoint=endpoint, since=now - duration, until=now, version=version, role=role)


@dataclass(frozen=True)
class Measurement:
    """The value of a windowed metric.

    Attributes:
        value: The metric's value; ``None`` when the window holds no data for it (never
            NaN). Rates are fractions in [0, 1], latencies milliseconds.
        samples: How many observations the value rests on (requests for request metrics,
            rows for row metrics, compared rows for shadow comparison).
    """

    value: float | None
    samples: int


@runtime_checkable
class MetricSource(Protocol):
    """Anything that can compute catalogue metrics over a window."""

    def measure(
        self, metric: str, labels: Mapping[str, str], selector: WindowSelector
    ) -> Measurement:
        """Compute ``metric`` with ``labels`` over the window ``selector`` describes.

        Raises:
            UnknownMetricError: If ``metric`` is not in the catalogue, or a label it
                requires is missing or a label it does not take is given.
        """
        ...

    def metric_names(self) -> Sequence[str]:
        """Return the catalogue of metric names this source computes, sorted."""
        ...


@dataclass(frozen=True)
class MetricSpec:
    """One entry of the metric catalogue.

    Attributes:
        name: The name used in gate and alert expressions.
        description: What the value means, with its unit.
        labels: Labels the metric requires (and the only ones it accepts).
        samples: What :attr:`Measurement.samples` counts for this metric.
    """

    name: str
    description: str
    labels: tuple[str, ...] = ()
    samples: str = "requests"


_SPECS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec("request_count", "Requests answered or rejected (value = count)."),
    MetricSpec("error_count", "Model errors: responses with status >= 500 and timeouts (count)."),
    MetricSpec("error_rate", "error_count / request_count, in [0, 1]."),
    MetricSpec(
        "client_error_rate",
        "Requests answered with a 4xx status (schema violations included) / requests.",
    ),
    MetricSpec("p50_latency_ms", "Median latency in milliseconds."),
    MetricSpec("p90_latency_ms", "90th percentile latency in milliseconds."),
    MetricSpec("p95_latency_ms", "95th percentile latency in milliseconds."),
    MetricSpec("p99_latency_ms", "99th percentile latency in milliseconds."),
    MetricSpec("mean_latency_ms", "Mean latency in milliseconds."),
    MetricSpec(
        "null_rate", "Rows whose prediction is null or NaN / rows predicted.", samples="rows"
    ),
    MetricSpec(
        "mean_prediction",
        "Mean numeric prediction, or mean positive-class score for binary classifiers.",
        samples="rows",
    ),
    MetricSpec(
        "prediction_psi",
        "PSI of the window's predictions against the version's training predictions.",
        samples="rows",
    ),
    MetricSpec(
        "feature_psi",
        "PSI of the window's values of the feature against the version's training values.",
        labels=("feature",),
        samples="rows",
    ),
    MetricSpec(
        "max_feature_psi",
        "Largest feature_psi over the window's features.",
        samples="rows",
    ),
    MetricSpec(
        "class_share",
        "Rows predicted as the class / rows with a class prediction.",
        labels=("class",),
        samples="rows",
    ),
    MetricSpec(
        "missing_rate",
        "Input rows missing the feature (absent, null or NaN) / input rows checked.",
        labels=("feature",),
        samples="rows",
    ),
    MetricSpec(
        "out_of_range_rate",
        "Input rows with the feature outside the signature's range / input rows checked.",
        labels=("feature",),
        samples="rows",
    ),
    MetricSpec(
        "unseen_category_rate",
        "Input rows with a category the signature does not list / input rows checked.",
        labels=("feature",),
        samples="rows",
    ),
    MetricSpec("schema_violation_rate", "Requests rejected by signature validation / requests."),
    MetricSpec(
        "agreement",
        "Shadow rows whose prediction equals the primary's / rows compared.",
        samples="compared rows",
    ),
    MetricSpec(
        "mean_abs_diff",
        "Mean absolute difference between shadow and primary predictions.",
        samples="compared rows",
    ),
    MetricSpec(
        "max_abs_diff",
        "Largest absolute difference between shadow and primary predictions.",
        samples="compared rows",
    ),
)

METRIC_CATALOGUE: Final[Mapping[str, MetricSpec]] = {spec.name: spec for spec in _SPECS}
"""Every windowed metric name, with its description and required labels."""


def get_metric_spec(metric: str, labels: Mapping[str, str]) -> MetricSpec:
    """Look up a catalogue metric and check the labels given for it.

    Args:
        metric: A name from :data:`METRIC_CATALOGUE`.
        labels: The labels given with it.

    Returns:
        The metric's catalogue entry.

    Raises:
        UnknownMetricError: If the name is not in the catalogue, a required label is
            missing or empty, or a label the metric does not take is given.
    """
    spec = METRIC_CATALOGUE.get(metric)
    if spec is None:
        raise UnknownMetricError(
            f"Unknown metric {metric!r}. Available: {', '.join(sorted(METRIC_CATALOGUE))}."
        )
    missing = [name for name in spec.labels if not labels.get(name)]
    if missing:
        example = ", ".join(f'{name}="..."' for name in spec.labels)
        raise UnknownMetricError(
            f"Metric {metric!r} needs the label(s) {', '.join(missing)}, "
            f"e.g. {metric}{{{example}}}."
        )
    extra = sorted(set(labels) - set(spec.labels))
    if extra:
        allowed = ", ".join(spec.labels) if spec.labels else "no labels"
        raise UnknownMetricError(
            f"Metric {metric!r} does not take the label(s) {', '.join(extra)}; it takes {allowed}."
        )
    return spec


__all__ = [
    "METRIC_CATALOGUE",
    "ROLES",
    "Measurement",
    "MetricSource",
    "MetricSpec",
    "WindowSelector",
    "get_metric_spec",
]
