"""Rollout gates: pass, fail or inconclusive over known windows; sets; callables; evidence."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from ferryman.errors import InvalidExpressionError, InvalidInputError, UnknownMetricError
from ferryman.monitoring.base import METRIC_CATALOGUE, Measurement, WindowSelector
from ferryman.rollout.gates import (
    DEFAULT_MIN_SAMPLES,
    Gate,
    GateMeasurements,
    GateResult,
    GateSet,
    GateSetResult,
    GateStatus,
    GateVerdict,
    combine_statuses,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CANDIDATE = WindowSelector.last("churn", timedelta(minutes=5), now=NOW, version="churn/4")
STABLE = WindowSelector.last("churn", timedelta(minutes=5), now=NOW, version="churn/3")


class KnownSource:
    """A MetricSource answering from a table: (metric, labels, version) -> measurement."""

    def __init__(
        self, values: Mapping[tuple[str, tuple[tuple[str, str], ...], str], Measurement]
    ) -> None:
        self.values = dict(values)
        self.calls: list[tuple[str, dict[str, str], str | None]] = []

    def measure(
        self, metric: str, labels: Mapping[str, str], selector: WindowSelector
    ) -> Measurement:
        if metric not in METRIC_CATALOGUE:
            raise UnknownMetricError(f"Unknown metric {metric!r}.")
        self.calls.append((metric, dict(labels), selector.version))
        key = (metric, tuple(sorted(labels.items())), selector.version or "")
        return self.values.get(key, Measurement(value=None, samples=0))

    def metric_names(self) -> Sequence[str]:
        return sorted(METRIC_CATALOGUE)


def source(**metrics: tuple[float | None, int]) -> KnownSource:
    """Candidate (churn/4) values by metric name; ``stable_<metric>`` for churn/3's."""
    table: dict[tuple[str, tuple[tuple[str, str], ...], str], Measurement] = {}
    for key, (value, samples) in metrics.items():
        version = "churn/3" if key.startswith("stable_") else "churn/4"
        table[(key.removeprefix("stable_"), (), version)] = Measurement(value, samples)
    return KnownSource(table)


def test_gate_passes_when_the_condition_holds_over_enough_requests() -> None:
    result = Gate("error_rate < 0.01").evaluate(source(error_rate=(0.004, 500)), CANDIDATE)

    assert result == GateResult(
        gate="error_rate < 0.01",
        status="pass",
        observed=0.004,
        threshold=0.01,
        samples=500,
        min_samples=DEFAULT_MIN_SAMPLES,
        reason="error_rate = 0.004 is below 0.01 over 500 requests",
        expression="error_rate < 0.01",
    )


def test_gate_fails_when_the_condition_does_not_hold() -> None:
    result = Gate("error_rate < 0.01").evaluate(source(error_rate=(0.03, 500)), CANDIDATE)

    assert (result.status, result.observed, result.threshold) == ("fail", 0.03, 0.01)
    assert result.reason == "error_rate = 0.03 is not below 0.01 over 500 requests"


def test_gate_is_inconclusive_below_min_samples_even_when_clearly_failing() -> None:
    result = Gate("error_rate < 0.01").evaluate(source(error_rate=(1.0, 99)), CANDIDATE)

    assert (result.status, result.samples, result.min_samples) == ("inconclusive", 99, 100)
    assert result.reason == "99 requests in the candidate window; error_rate decides from 100 on"


def test_gate_decides_at_exactly_min_samples() -> None:
    result = Gate("error_rate < 0.01").evaluate(source(error_rate=(0.0, 100)), CANDIDATE)

    assert result.status == "pass"


def test_min_samples_is_configurable_per_gate_and_per_evaluation() -> None:
    metrics = source(error_rate=(0.0, 20))

    assert Gate("error_rate < 0.01", min_samples=10).evaluate(metrics, CANDIDATE).passed
    assert (
        Gate("error_rate < 0.01").evaluate(metrics, CANDIDATE, default_min_samples=20).status
        == "pass"
    )
    assert (
        Gate("error_rate < 0.01", min_samples=50)
        .evaluate(metrics, CANDIDATE, default_min_samples=10)
        .status
        == "inconclusive"
    )


def test_samples_count_what_the_metric_rests_on() -> None:
    result = Gate("null_rate < 0.001").evaluate(source(null_rate=(0.01, 50)), CANDIDATE)

    assert result.reason == "50 rows in the candidate window; null_rate decides from 100 on"


def test_a_none_value_is_inconclusive_never_pass() -> None:
    result = Gate("error_rate < 0.01").evaluate(source(error_rate=(None, 1000)), CANDIDATE)

    assert (result.status, result.observed) == ("inconclusive", None)
    assert result.reason == "no data for error_rate in the candidate window"


def test_stable_comparison_uses_the_same_metric_on_the_stable_window() -> None:
    metrics = source(p99_latency_ms=(130.0, 400), stable_p99_latency_ms=(100.0, 5000))

    result = Gate("p99_latency_ms < 1.2 * stable").evaluate(metrics, CANDIDATE, STABLE)

    assert (result.status, result.threshold, result.stable) == ("fail", 120.0, 100.0)
    assert result.reason == (
        "p99_latency_ms = 130 is not below 120 (1.2 * stable, stable = 100) over 400 requests"
    )
    assert metrics.calls == [
        ("p99_latency_ms", {}, "churn/4"),
        ("p99_latency_ms", {}, "churn/3"),
    ]


def test_stable_comparison_passes_within_the_allowed_margin() -> None:
    metrics = source(mean_prediction=(0.52, 400), stable_mean_prediction=(0.5, 400))

    result = Gate("mean_prediction <= stable + 0.05").evaluate(metrics, CANDIDATE, STABLE)

    assert result.status == "pass"
    assert result.threshold == pytest.approx(0.55)


def test_stable_comparison_is_inconclusive_without_a_stable_window() -> None:
    metrics = source(p99_latency_ms=(130.0, 400))

    result = Gate("p99_latency_ms < 1.2 * stable").evaluate(metrics, CANDIDATE, None)

    assert result.status == "inconclusive"
    assert result.reason == "1.2 * stable compares with the stable version, and there is none"


@pytest.mark.parametrize(
    "stable_value", [(None, 0), (None, 40), (100.0, 0)], ids=["empty", "none", "no-samples"]
)
def test_stable_comparison_is_inconclusive_without_stable_data(
    stable_value: tuple[float | None, int],
) -> None:
    metrics = source(p99_latency_ms=(130.0, 400), stable_p99_latency_ms=stable_value)

    result = Gate("p99_latency_ms < 1.2 * stable").evaluate(metrics, CANDIDATE, STABLE)

    assert result.status == "inconclusive"
    assert result.reason == "no data for p99_latency_ms on the stable version"


def test_a_threshold_dividing_by_zero_is_inconclusive() -> None:
    metrics = source(p99_latency_ms=(130.0, 400), stable_p99_latency_ms=(0.0, 400))

    result = Gate("p99_latency_ms < 1000 / stable").evaluate(metrics, CANDIDATE, STABLE)

    assert (result.status, result.threshold, result.stable) == ("inconclusive", None, 0.0)
    assert result.reason == "the threshold has no value: division by zero in 1000 / stable"


def test_labels_reach_the_source() -> None:
    metrics = KnownSource(
        {("missing_rate", (("feature", "age"),), "churn/4"): Measurement(0.3, 200)}
    )

    result = Gate('missing_rate{feature="age"} < 0.2').evaluate(metrics, CANDIDATE)

    assert result.status == "fail"
    assert result.reason.startswith('missing_rate{feature="age"} = 0.3 is not below 0.2')


def test_gate_names_default_to_the_canonical_expression() -> None:
    assert Gate("p99_latency_ms<1.2*stable").name == "p99_latency_ms < 1.2 * stable"
    assert Gate("error_rate < 0.01", name="errors").name == "errors"


def test_gate_repr_shows_its_configuration() -> None:
    assert repr(Gate("error_rate<0.01", name="errors", min_samples=5)) == (
        "Gate('error_rate < 0.01', name='errors', min_samples=5)"
    )


def test_gates_reject_a_for_clause() -> None:
    with pytest.raises(InvalidInputError, match=r"has a 'for' clause; a gate is evaluated over"):
        Gate("p99_latency_ms > 200 for 2m")


def test_gate_expression_errors_come_from_the_parser() -> None:
    with pytest.raises(InvalidExpressionError, match="at column 12"):
        Gate("error_rate 0.01")
    with pytest.raises(UnknownMetricError, match="unknown metric 'eror_rate'"):
        Gate("eror_rate < 0.01")


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "100"], ids=repr)
def test_min_samples_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(
        InvalidInputError, match=r"Invalid min_samples .*: expected an integer >= 1"
    ):
        Gate("error_rate < 0.01", min_samples=value)  # type: ignore[arg-type]


# -- callables ----------------------------------------------------------------------------


def test_callable_gate_reads_measurements_and_returns_a_status() -> None:
    metrics = source(
        request_count=(300.0, 300), error_rate=(0.02, 300), stable_error_rate=(0.01, 900)
    )

    def at_most_double_the_errors(m: GateMeasurements) -> GateVerdict:
        candidate, stable = m.candidate("error_rate"), m.stable("error_rate")
        assert candidate.value is not None and stable.value is not None
        return candidate.value <= 2 * stable.value

    gate = Gate.from_callable("errors-vs-stable", at_most_double_the_errors)
    result = gate.evaluate(metrics, CANDIDATE, STABLE)

    assert result == GateResult(
        gate="errors-vs-stable",
        status="pass",
        observed=None,
        threshold=None,
        samples=300,
        min_samples=100,
        reason="the gate returned pass",
    )


@pytest.mark.parametrize(
    ("verdict", "status"),
    [
        (True, "pass"),
        (False, "fail"),
        ("pass", "pass"),
        ("fail", "fail"),
        ("inconclusive", "inconclusive"),
    ],
)
def test_callable_verdicts_map_to_statuses(verdict: GateVerdict, status: GateStatus) -> None:
    metrics = source(request_count=(300.0, 300))

    result = Gate.from_callable("g", lambda _m: verdict).evaluate(metrics, CANDIDATE)

    assert result.status == status


def test_callable_gate_is_not_called_below_min_samples() -> None:
    calls: list[GateMeasurements] = []

    def check(m: GateMeasurements) -> GateVerdict:
        calls.append(m)
        return True

    result = Gate.from_callable("g", check).evaluate(source(request_count=(99.0, 99)), CANDIDATE)

    assert (result.status, calls) == ("inconclusive", [])
    assert result.reason == "99 requests in the candidate window; the gate decides from 100 on"


def test_callable_pass_built_on_missing_data_is_inconclusive() -> None:
    metrics = source(request_count=(300.0, 300))

    def careless(m: GateMeasurements) -> GateVerdict:
        m.candidate("agreement")  # no data, and the value is not even looked at
        return "pass"

    result = Gate.from_callable("g", careless).evaluate(metrics, CANDIDATE)

    assert result.status == "inconclusive"
    assert (
        result.reason == "the gate returned pass but read agreement (candidate), which had no data"
    )


def test_callable_that_raises_is_inconclusive_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(m: GateMeasurements) -> GateVerdict:
        raise ZeroDivisionError("oops")

    result = Gate.from_callable("broken", broken).evaluate(
        source(request_count=(300.0, 300)), CANDIDATE
    )

    assert result.status == "inconclusive"
    assert result.reason == "the gate raised ZeroDivisionError: oops"
    assert "Gate 'broken' raised while evaluating" in caplog.text


def test_callable_reading_stable_without_a_stable_window_is_inconclusive() -> None:
    result = Gate.from_callable("g", lambda m: m.stable("error_rate").value == 0).evaluate(
        source(request_count=(300.0, 300)), CANDIDATE
    )

    assert result.status == "inconclusive"
    assert result.reason.startswith("the gate raised InvalidInputError: This evaluation has no")


def test_callable_returning_something_else_is_an_error() -> None:
    gate = Gate.from_callable("g", lambda _m: "maybe")  # type: ignore[arg-type,return-value]

    with pytest.raises(InvalidInputError, match=r"Gate 'g' returned 'maybe'; expected 'pass'"):
        gate.evaluate(source(request_count=(300.0, 300)), CANDIDATE)


def test_from_callable_rejects_a_non_callable() -> None:
    with pytest.raises(InvalidInputError, match="check must be callable"):
        Gate.from_callable("g", "error_rate < 0.01")  # type: ignore[arg-type]


# -- sets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "combined"),
    [
        ([], "pass"),
        (["pass", "pass"], "pass"),
        (["pass", "inconclusive"], "inconclusive"),
        (["pass", "inconclusive", "fail"], "fail"),
        (["fail", "fail"], "fail"),
    ],
    ids=str,
)
def test_combine_needs_every_pass_and_any_fail_decides(
    statuses: list[GateStatus], combined: GateStatus
) -> None:
    assert combine_statuses(statuses) == combined


def test_gate_set_evaluates_every_gate_with_the_global_min_samples() -> None:
    metrics = source(error_rate=(0.0, 30), null_rate=(0.5, 30))
    gates = GateSet(
        ["error_rate < 0.01", Gate("null_rate < 0.001", min_samples=50)], min_samples=20
    )

    result = gates.evaluate(metrics, CANDIDATE)

    assert [(r.gate, r.status) for r in result.results] == [
        ("error_rate < 0.01", "pass"),
        ("null_rate < 0.001", "inconclusive"),
    ]
    assert result.status == "inconclusive"
    assert result.failed == []


def test_gate_set_fails_when_any_gate_fails() -> None:
    metrics = source(error_rate=(0.5, 300), null_rate=(0.0, 300))

    result = GateSet(["error_rate < 0.01", "null_rate < 0.001"]).evaluate(metrics, CANDIDATE)

    assert result.status == "fail"
    assert [r.gate for r in result.failed] == ["error_rate < 0.01"]


def test_gate_set_rejects_duplicate_names() -> None:
    with pytest.raises(InvalidInputError, match=r"Gate\(s\) 'error_rate < 0.01' given more than"):
        GateSet(["error_rate<0.01", "error_rate < 0.01"])


def test_results_round_trip_through_json() -> None:
    metrics = source(p99_latency_ms=(130.0, 400), stable_p99_latency_ms=(100.0, 400))
    result = GateSet(["p99_latency_ms < 1.2 * stable", "error_rate < 0.01"]).evaluate(
        metrics, CANDIDATE, STABLE
    )

    stored = json.loads(json.dumps(result.to_dict()))

    assert GateSetResult.from_dict(stored) == result
    assert stored["results"][0] == {
        "gate": "p99_latency_ms < 1.2 * stable",
        "status": "fail",
        "observed": 130.0,
        "threshold": 120.0,
        "samples": 400,
        "min_samples": 100,
        "reason": "p99_latency_ms = 130 is not below 120 (1.2 * stable, stable = 100) over "
        "400 requests",
        "expression": "p99_latency_ms < 1.2 * stable",
        "stable": 100.0,
    }


def test_a_stored_result_with_an_unknown_status_is_rejected() -> None:
    data = GateResult("g", "pass", 1.0, 2.0, 100, 100, "ok").to_dict() | {"status": "maybe"}

    with pytest.raises(InvalidInputError, match="Unknown gate status 'maybe'"):
        GateResult.from_dict(data)
