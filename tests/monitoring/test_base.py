"""The windowed-metric contract: selectors, the catalogue and label checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ferryman.errors import InvalidInputError, UnknownMetricError
from ferryman.monitoring import METRIC_CATALOGUE, WindowSelector
from ferryman.monitoring.base import get_metric_spec

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def test_last_selects_the_duration_ending_now() -> None:
    selector = WindowSelector.last("churn", timedelta(minutes=5), now=NOW, role="shadow")

    assert selector == WindowSelector(
        endpoint="churn", since=NOW - timedelta(minutes=5), until=NOW, role="shadow"
    )


def test_bounds_in_other_time_zones_are_accepted() -> None:
    oslo = timezone(timedelta(hours=1))

    selector = WindowSelector("churn", NOW.astimezone(oslo), NOW + timedelta(seconds=1))

    assert selector.since == NOW


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"endpoint": ""}, r"endpoint is empty"),
        ({"since": NOW.replace(tzinfo=None)}, r"since is a naive datetime"),
        ({"until": NOW}, r"window is empty: until .* must be later than since"),
        ({"role": "canary"}, r"Unknown role 'canary'\. Available: primary, shadow, batch"),
    ],
    ids=["empty-endpoint", "naive", "empty-window", "role"],
)
def test_selectors_reject_bad_windows(arguments: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "endpoint": "churn",
        "since": NOW,
        "until": NOW + timedelta(minutes=1),
    }
    values.update(arguments)

    with pytest.raises(InvalidInputError, match=message):
        WindowSelector(**values)  # type: ignore[arg-type]


def test_last_rejects_a_non_positive_duration() -> None:
    with pytest.raises(InvalidInputError, match=r"duration must be positive, got 0:00:00"):
        WindowSelector.last("churn", timedelta(0), now=NOW)


def test_the_catalogue_names_the_metrics_gates_and_alerts_use() -> None:
    assert sorted(METRIC_CATALOGUE) == [
        "agreement",
        "class_share",
        "client_error_rate",
        "error_count",
        "error_rate",
        "feature_psi",
        "max_abs_diff",
        "max_feature_psi",
        "mean_abs_diff",
        "mean_latency_ms",
        "mean_prediction",
        "missing_rate",
        "null_rate",
        "out_of_range_rate",
        "p50_latency_ms",
        "p90_latency_ms",
        "p95_latency_ms",
        "p99_latency_ms",
        "prediction_psi",
        "request_count",
        "schema_violation_rate",
        "unseen_category_rate",
    ]


@pytest.mark.parametrize(
    ("metric", "labels"),
    [
        ("class_share", ("class",)),
        ("missing_rate", ("feature",)),
        ("feature_psi", ("feature",)),
        ("max_feature_psi", ()),
        ("out_of_range_rate", ("feature",)),
        ("unseen_category_rate", ("feature",)),
        ("error_rate", ()),
    ],
)
def test_labelled_metrics_require_their_labels(metric: str, labels: tuple[str, ...]) -> None:
    assert METRIC_CATALOGUE[metric].labels == labels


def test_an_empty_label_value_counts_as_missing() -> None:
    with pytest.raises(UnknownMetricError, match=r"needs the label\(s\) class"):
        get_metric_spec("class_share", {"class": ""})
