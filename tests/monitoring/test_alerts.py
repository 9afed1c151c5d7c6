"""Alert rules, their store, the engine's state machine, and webhooks to a real receiver."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ferryman.errors import (
    AlertRuleNotFoundError,
    AlreadyExistsError,
    InvalidExpressionError,
    InvalidInputError,
    UnknownMetricError,
)
from ferryman.monitoring.alerts import (
    AlertEngine,
    AlertRule,
    AlertService,
    AlertState,
    Webhook,
    WebhookNotifier,
    next_state,
)
from ferryman.monitoring.base import METRIC_CATALOGUE, Measurement, WindowSelector
from ferryman.registry import Registry
from ferryman.store import Database
from tests.alerting import Receiver

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def notifier() -> Iterator[WebhookNotifier]:
    worker = WebhookNotifier(timeout=5.0, attempts=3, backoff=0.0)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


class SettableSource:
    """A MetricSource whose values the test sets; records every selector it is asked for."""

    def __init__(self) -> None:
        self.values: dict[str, Measurement] = {}
        self.selectors: list[WindowSelector] = []
        self.measured = threading.Event()

    def set(self, metric: str, value: float | None, samples: int = 500) -> None:
        self.values[metric] = Measurement(value, samples)

    def measure(
        self, metric: str, labels: Mapping[str, str], selector: WindowSelector
    ) -> Measurement:
        if metric not in METRIC_CATALOGUE:
            raise UnknownMetricError(f"Unknown metric {metric!r}.")
        self.selectors.append(selector)
        self.measured.set()
        return self.values.get(metric, Measurement(None, 0))

    def metric_names(self) -> Sequence[str]:
        return sorted(METRIC_CATALOGUE)


@pytest.fixture
def metrics() -> SettableSource:
    return SettableSource()


@pytest.fixture
def service(registry: Registry) -> AlertService:
    return AlertService(database=registry.database, user="alice")


def make_engine(
    registry: Registry, metrics: SettableSource, notifier: WebhookNotifier, **kwargs: Any
) -> AlertEngine:
    return AlertEngine(database=registry.database, source=metrics, notifier=notifier, **kwargs)


def rule(
    when: str = "null_rate > 0.01 for 2m", *, hooks: Sequence[Webhook] = (), **kw: Any
) -> AlertRule:
    values: dict[str, Any] = {"name": "churn-nulls", "endpoint": "churn", "when": when}
    values.update(kw)
    return AlertRule(**values, webhooks=tuple(hooks))


# -- rules ----------------------------------------------------------------------------------


def test_rule_from_dict_reads_configuration_and_round_trips() -> None:
    data = {
        "name": "churn-latency",
        "endpoint": "churn",
        "when": "p99_latency_ms>200 for 120s",
        "window": "10m",
        "severity": "critical",
        "version": "churn/3",
        "role": "primary",
        "webhooks": [{"url": "https://hooks.example.com/T0/B0/x", "format": "slack"}],
    }

    parsed = AlertRule.from_dict(data)

    assert parsed.to_dict() == data | {"when": "p99_latency_ms > 200 for 2m"}
    assert AlertRule.from_dict(parsed.to_dict()) == parsed
    assert (parsed.window, parsed.for_duration) == (timedelta(minutes=10), timedelta(minutes=2))


def test_rule_defaults_are_a_5m_window_warning_severity_and_no_webhooks() -> None:
    parsed = AlertRule.from_dict({"name": "n", "endpoint": "churn", "when": "error_rate > 0.1"})

    assert parsed.to_dict() == {
        "name": "n",
        "endpoint": "churn",
        "when": "error_rate > 0.1",
        "window": "5m",
        "severity": "warning",
        "version": None,
        "role": None,
        "webhooks": [],
    }
    assert parsed.for_duration == timedelta(0)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            {"name": "n", "endpoint": "churn", "when": "p99_latency_ms > 1.2 * stable"},
            InvalidInputError,
            r"Alert rule 'n': the condition 'p99_latency_ms > 1.2 \* stable' uses 'stable', "
            r"which only rollout gates can compare with; give a number, e\.g\. "
            r"p99_latency_ms > 0\.05\.",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "null_rate 0.01"},
            InvalidExpressionError,
            r"after 'null_rate' at column 11",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "nul_rate > 0.01"},
            UnknownMetricError,
            r"unknown metric 'nul_rate' at column 1\. Available: agreement, ",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 1 / 0"},
            InvalidInputError,
            r"the threshold of 'error_rate > 1 / 0' has no value \(division by zero",
        ),
        (
            {"name": "n", "endpoint": "churn"},
            InvalidInputError,
            r"Alert rule 'n': missing when \(e\.g\.",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "for": "5m"},
            InvalidInputError,
            r"Alert rule 'n': unknown key\(s\) for\. Available: name, endpoint, when, window",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "window": "5 min"},
            InvalidExpressionError,
            r"Invalid duration '5 min': expected a duration such as 30s, 5m",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "window": 300},
            InvalidInputError,
            r"Alert rule 'n': window must be text, got 300\.",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "severity": "high"},
            InvalidInputError,
            r"unknown severity 'high'\. Available: info, warning, critical\.",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "version": "churn"},
            InvalidInputError,
            r"version 'churn' must name one version, e\.g\. churn/3\.",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "role": "canary"},
            InvalidInputError,
            r"unknown role 'canary'\. Available: primary, shadow, batch\.",
        ),
        (
            {"name": "bad name", "endpoint": "churn", "when": "error_rate > 0.1"},
            InvalidInputError,
            r"Invalid alert rule name 'bad name': use 1-200 letters",
        ),
        (
            {"name": "n", "endpoint": "churn", "when": "error_rate > 0.1", "webhooks": "x"},
            InvalidInputError,
            r"webhooks must be a list of",
        ),
        (
            {
                "name": "n",
                "endpoint": "churn",
                "when": "error_rate > 0.1",
                "webhooks": [{"uri": "x"}],
            },
            InvalidInputError,
            r"invalid webhook \{'uri': 'x'\}; expected",
        ),
        (
            {
                "name": "n",
                "endpoint": "churn",
                "when": "error_rate > 0.1",
                "webhooks": [{"url": "ftp://example.com/x"}],
            },
            InvalidInputError,
            r"Invalid webhook URL 'ftp://example.com/x': expected an absolute http:// or https://",
        ),
        (
            {
                "name": "n",
                "endpoint": "churn",
                "when": "error_rate > 0.1",
                "webhooks": [{"url": "https://example.com/x", "format": "teams"}],
            },
            InvalidInputError,
            r"Invalid webhook format 'teams'\. Available: json, slack\.",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_invalid_rules_are_rejected_with_a_clear_message(
    data: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        AlertRule.from_dict(data)


def test_webhook_redaction_keeps_only_scheme_and_host() -> None:
    hook = Webhook("https://user:secret@hooks.slack.com/services/T0/B0/XYZ?x=1")

    assert hook.redacted == "https://hooks.slack.com/…"


# -- the state machine ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "holds", "active", "now", "expected"),
    [
        ("inactive", False, None, 0, ("inactive", None)),
        ("inactive", True, None, 0, ("pending", 0)),
        ("pending", True, 0, 1, ("pending", 0)),
        ("pending", True, 0, 2, ("firing", 0)),
        ("pending", False, 0, 1, ("inactive", None)),
        ("firing", True, 0, 5, ("firing", 0)),
        ("firing", False, 0, 5, ("resolved", None)),
        ("resolved", False, None, 6, ("resolved", None)),
        ("resolved", True, None, 7, ("pending", 7)),
    ],
    ids=lambda value: str(value),
)
def test_next_state_follows_prometheus(
    state: AlertState,
    holds: bool,
    active: int | None,
    now: int,
    expected: tuple[AlertState, int | None],
) -> None:
    result = next_state(
        state,
        holds=holds,
        active_since=None if active is None else minutes(active),
        now=minutes(now),
        for_duration=timedelta(minutes=2),
    )

    assert result == (expected[0], None if expected[1] is None else minutes(expected[1]))


def test_next_state_without_for_fires_at_once() -> None:
    assert next_state(
        "inactive", holds=True, active_since=None, now=T0, for_duration=timedelta(0)
    ) == ("firing", T0)


# -- the engine -----------------------------------------------------------------------------


def test_rule_goes_pending_then_fires_after_for_then_resolves(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    service.add(rule(hooks=[Webhook(f"{receiver.url}/hook")]))
    engine = make_engine(registry, metrics, notifier)
    metrics.set("null_rate", 0.05)

    states = []
    for at in (0, 1, 2, 3):
        (evaluation,) = engine.evaluate_once(minutes(at))
        states.append(evaluation.state)
    metrics.set("null_rate", 0.0)
    (evaluation,) = engine.evaluate_once(minutes(4))
    states.append(evaluation.state)
    assert notifier.flush(10)

    assert states == ["pending", "pending", "firing", "firing", "resolved"]
    assert [body["state"] for body in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[0] == {
        "rule": "churn-nulls",
        "endpoint": "churn",
        "version": None,
        "role": None,
        "state": "firing",
        "severity": "warning",
        "condition": "null_rate > 0.01 for 2m",
        "metric": "null_rate",
        "labels": {},
        "value": 0.05,
        "threshold": 0.01,
        "window": "5m",
        "started_at": minutes(0).isoformat(),
        "at": minutes(2).isoformat(),
        "message": "churn-nulls is firing on endpoint churn: null_rate = 0.05 over the last "
        "5m, above 0.01 for 2m",
    }
    assert receiver.bodies[1]["message"] == (
        "churn-nulls resolved on endpoint churn: null_rate = 0 over the last 5m, "
        "no longer above 0.01"
    )
    assert (receiver.bodies[1]["started_at"], receiver.paths) == (
        minutes(0).isoformat(),
        ["/hook", "/hook"],
    )


def test_each_evaluation_measures_the_rule_window_ending_now(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    service.add(
        rule(
            'missing_rate{feature="age"} > 0.2',
            window=timedelta(minutes=10),
            version="churn/3",
            role="primary",
        )
    )

    make_engine(registry, metrics, notifier).evaluate_once(minutes(30))

    assert metrics.selectors == [
        WindowSelector(
            endpoint="churn",
            since=minutes(20),
            until=minutes(30),
            version="churn/3",
            role="primary",
        )
    ]


def test_a_rule_that_stops_holding_while_pending_goes_back_to_inactive_silently(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    service.add(rule(hooks=[Webhook(receiver.url)]))
    engine = make_engine(registry, metrics, notifier)

    metrics.set("null_rate", 0.05)
    engine.evaluate_once(minutes(0))
    metrics.set("null_rate", 0.0)
    (evaluation,) = engine.evaluate_once(minutes(1))
    assert notifier.flush(10)

    assert (evaluation.state, evaluation.changed) == ("inactive", True)
    assert receiver.bodies == []
    assert [event.state for event in service.history()] == ["inactive", "pending"]


def test_a_rule_without_for_fires_on_the_first_evaluation(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    service.add(rule("p99_latency_ms > 200"))
    metrics.set("p99_latency_ms", 250.0)

    (evaluation,) = make_engine(registry, metrics, notifier).evaluate_once(T0)

    assert (evaluation.state, evaluation.value, evaluation.threshold) == ("firing", 250.0, 200.0)


def test_no_data_counts_as_the_condition_not_holding(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    service.add(rule("p99_latency_ms > 200"))
    engine = make_engine(registry, metrics, notifier)
    metrics.set("p99_latency_ms", 250.0)
    engine.evaluate_once(minutes(0))

    metrics.set("p99_latency_ms", None, samples=0)
    (evaluation,) = engine.evaluate_once(minutes(1))

    assert evaluation.state == "resolved"
    assert service.history(limit=1)[0].message == (
        "churn-nulls resolved on endpoint churn: no data for p99_latency_ms in the last 5m"
    )


def test_a_firing_rule_notifies_once_however_often_it_is_evaluated(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    service.add(rule("error_rate > 0.1", hooks=[Webhook(receiver.url)]))
    engine = make_engine(registry, metrics, notifier)
    metrics.set("error_rate", 0.5)

    for at in range(10):
        engine.evaluate_once(minutes(at))
    assert notifier.flush(10)

    assert [body["state"] for body in receiver.bodies] == ["firing"]


def test_a_restarted_engine_does_not_notify_again_for_a_firing_rule(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    service.add(rule(hooks=[Webhook(receiver.url)]))
    metrics.set("null_rate", 0.05)
    first = make_engine(registry, metrics, notifier)
    first.evaluate_once(minutes(0))
    first.evaluate_once(minutes(2))

    reopened = Database(url=registry.database.url).open()
    try:
        second = AlertEngine(database=reopened, source=metrics, notifier=notifier)
        (still,) = second.evaluate_once(minutes(3))
        metrics.set("null_rate", 0.0)
        (resolved,) = second.evaluate_once(minutes(4))
    finally:
        reopened.close()
    assert notifier.flush(10)

    assert (still.state, still.changed, resolved.state) == ("firing", False, "resolved")
    assert [body["state"] for body in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[1]["started_at"] == minutes(0).isoformat()


def test_an_evaluation_older_than_the_last_one_changes_nothing(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    service.add(rule("error_rate > 0.1"))
    engine = make_engine(registry, metrics, notifier)
    metrics.set("error_rate", 0.5)
    engine.evaluate_once(minutes(5))

    metrics.set("error_rate", 0.0)
    (late,) = engine.evaluate_once(minutes(4))

    assert (late.state, late.changed) == ("firing", False)
    assert service.get("churn-nulls").state == "firing"


def test_history_records_every_transition_newest_first(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    service.add(rule())
    service.add(rule("error_rate > 0.1", name="other", endpoint="fraud"))
    engine = make_engine(registry, metrics, notifier)
    metrics.set("null_rate", 0.05)
    metrics.set("error_rate", 0.5)
    engine.evaluate_once(minutes(0))
    engine.evaluate_once(minutes(2))

    events = service.history(endpoint="churn")

    assert [(e.rule, e.state, e.at) for e in events] == [
        ("churn-nulls", "firing", minutes(2)),
        ("churn-nulls", "pending", minutes(0)),
    ]
    assert events[0].to_dict() | {"id": 0} == {
        "id": 0,
        "rule": "churn-nulls",
        "endpoint": "churn",
        "version": None,
        "state": "firing",
        "severity": "warning",
        "condition": "null_rate > 0.01 for 2m",
        "value": 0.05,
        "threshold": 0.01,
        "started_at": minutes(0).isoformat(),
        "at": minutes(2).isoformat(),
        "message": "churn-nulls is firing on endpoint churn: null_rate = 0.05 over the last "
        "5m, above 0.01 for 2m",
    }
    assert [e.rule for e in service.history(rule="other")] == ["other"]
    assert len(service.history(limit=1)) == 1


def test_the_rule_state_is_visible_in_the_store(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    service.add(rule())
    metrics.set("null_rate", 0.05)
    make_engine(registry, metrics, notifier).evaluate_once(minutes(1))

    info = service.get("churn-nulls")

    assert (info.state, info.state_since, info.active_since) == ("pending", minutes(1), minutes(1))
    assert (info.last_value, info.last_threshold, info.evaluated_at) == (0.05, 0.01, minutes(1))


def test_log_lines_announce_every_transition(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ferryman.alerts")
    service.add(rule())
    engine = make_engine(registry, metrics, notifier)
    metrics.set("null_rate", 0.05)
    engine.evaluate_once(minutes(0))
    engine.evaluate_once(minutes(2))

    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "ferryman.alerts"]

    assert records == [
        (
            "INFO",
            "alert pending: churn-nulls is pending on endpoint churn: null_rate = 0.05 over the "
            "last 5m, above 0.01; fires if it stays so for 2m",
        ),
        (
            "WARNING",
            "alert firing: churn-nulls is firing on endpoint churn: null_rate = 0.05 over the "
            "last 5m, above 0.01 for 2m",
        ),
    ]


@pytest.mark.parametrize(
    "error", [UnknownMetricError, RuntimeError], ids=["ferryman-error", "unexpected-error"]
)
def test_a_rule_the_source_cannot_measure_does_not_stop_the_others(
    registry: Registry,
    service: AlertService,
    notifier: WebhookNotifier,
    caplog: pytest.LogCaptureFixture,
    error: type[Exception],
) -> None:
    class PickySource(SettableSource):
        def measure(
            self, metric: str, labels: Mapping[str, str], selector: WindowSelector
        ) -> Measurement:
            if metric == "agreement":
                raise error("agreement needs shadow traffic")
            return super().measure(metric, labels, selector)

    picky = PickySource()
    picky.set("error_rate", 0.5)
    service.add(rule("agreement < 0.9", name="a-agreement"))
    service.add(rule("error_rate > 0.1", name="b-errors"))
    engine = make_engine(registry, picky, notifier)

    evaluations = engine.evaluate_once(T0)

    assert [(e.rule, e.state, e.error) for e in evaluations] == [
        ("a-agreement", "inactive", "agreement needs shadow traffic"),
        ("b-errors", "firing", None),
    ]
    assert engine.errors == 1
    assert "alert rule 'a-agreement' could not be evaluated" in caplog.text


def test_evaluation_time_must_be_timezone_aware(
    registry: Registry, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    with pytest.raises(InvalidInputError, match="is naive; give a timezone-aware UTC time"):
        make_engine(registry, metrics, notifier).evaluate_once(datetime(2026, 1, 1))


def test_the_background_thread_evaluates_with_the_injected_clock(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    service.add(rule("error_rate > 0.1", hooks=[Webhook(receiver.url)]))
    metrics.set("error_rate", 0.5)
    engine = make_engine(registry, metrics, notifier, interval=0.05, clock=lambda: T0)

    engine.start()
    try:
        with receiver.received:
            assert receiver.received.wait_for(lambda: len(receiver.bodies) == 1, timeout=30)
    finally:
        engine.stop()

    assert receiver.bodies[0]["at"] == T0.isoformat()
    assert {s.until for s in metrics.selectors} == {T0}


# -- webhooks -------------------------------------------------------------------------------


def test_slack_webhooks_receive_a_text_payload(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    hooks = [Webhook(f"{receiver.url}/slack", format="slack"), Webhook(f"{receiver.url}/json")]
    service.add(rule("p99_latency_ms > 200", hooks=hooks, severity="critical"))
    metrics.set("p99_latency_ms", 250.0)

    make_engine(registry, metrics, notifier).evaluate_once(T0)
    assert notifier.flush(10)

    bodies = dict(zip(receiver.paths, receiver.bodies, strict=True))
    assert bodies["/slack"] == {
        "text": "[FIRING] (critical) churn-nulls is firing on endpoint churn: p99_latency_ms = "
        "250 over the last 5m, above 200"
    }
    assert bodies["/json"]["severity"] == "critical"
    assert notifier.stats.delivered == 2


def test_a_receiver_answering_500_is_retried_then_counted_and_evaluation_goes_on(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.status = 500
    service.add(rule("error_rate > 0.1", hooks=[Webhook(f"{receiver.url}/secret-path")]))
    engine = make_engine(registry, metrics, notifier)
    metrics.set("error_rate", 0.5)

    (fired,) = engine.evaluate_once(minutes(0))
    assert notifier.flush(30)
    metrics.set("error_rate", 0.0)
    (resolved,) = engine.evaluate_once(minutes(1))
    assert notifier.flush(30)

    assert (fired.state, resolved.state) == ("firing", "resolved")
    assert len(receiver.bodies) == 6  # 3 attempts for each notification
    stats = notifier.stats
    assert (stats.delivered, stats.failed, stats.retried) == (0, 2, 4)
    assert f"alert webhook to {receiver.url}/… failed after 3 attempt(s): HTTP 500" in caplog.text
    assert "secret-path" not in caplog.text


def test_a_receiver_answering_400_is_not_retried(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
) -> None:
    receiver.status = 400
    service.add(rule("error_rate > 0.1", hooks=[Webhook(receiver.url)]))
    metrics.set("error_rate", 0.5)

    make_engine(registry, metrics, notifier).evaluate_once(T0)
    assert notifier.flush(30)

    assert (len(receiver.bodies), notifier.stats.failed, notifier.stats.retried) == (1, 1, 0)


def test_an_unreachable_webhook_does_not_break_evaluation(
    registry: Registry,
    service: AlertService,
    metrics: SettableSource,
    notifier: WebhookNotifier,
    receiver: Receiver,
    closed_port_url: str,
) -> None:
    hooks = [Webhook(closed_port_url), Webhook(receiver.url)]
    service.add(rule("error_rate > 0.1", hooks=hooks))
    metrics.set("error_rate", 0.5)

    (evaluation,) = make_engine(registry, metrics, notifier).evaluate_once(T0)
    assert notifier.flush(30)

    assert evaluation.state == "firing"
    assert [body["state"] for body in receiver.bodies] == ["firing"]
    assert (notifier.stats.delivered, notifier.stats.failed) == (1, 1)


def test_notifications_beyond_the_queue_are_dropped_and_counted(
    registry: Registry, service: AlertService, metrics: SettableSource, closed_port_url: str
) -> None:
    idle = WebhookNotifier(queue_size=1)  # not started: nothing drains the queue
    service.add(rule("error_rate > 0.1", hooks=[Webhook(closed_port_url)] * 3))
    metrics.set("error_rate", 0.5)

    (evaluation,) = make_engine(registry, metrics, idle).evaluate_once(T0)

    assert evaluation.state == "firing"
    assert idle.stats.dropped == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"timeout": 0}, {"backoff": -1}, {"queue_size": 0}],
    ids=str,
)
def test_notifier_settings_are_checked(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="Invalid"):
        WebhookNotifier(**kwargs)


# -- the store --------------------------------------------------------------------------------


def test_add_list_get_and_remove_rules_with_audit(
    registry: Registry, service: AlertService
) -> None:
    hook = Webhook("https://hooks.example.com/T0/secret")
    added = service.add(rule(hooks=[hook]))
    service.add(rule("error_rate > 0.1", name="fraud-errors", endpoint="fraud"))

    listed = service.list()
    only_churn = service.list(endpoint="churn")
    service.remove("churn-nulls")

    assert [i.rule.name for i in listed] == ["churn-nulls", "fraud-errors"]
    assert [i.rule.name for i in only_churn] == ["churn-nulls"]
    assert (added.source, added.created_by, added.state, added.rule.webhooks) == (
        "api",
        "alice",
        "inactive",
        (hook,),
    )
    assert [i.rule.name for i in service.list()] == ["fraud-errors"]
    entries = registry.audit_entries(entity="alert:churn-nulls")
    assert [(e.action, e.actor, e.entity_type) for e in entries] == [
        ("alert.add", "alice", "alert_rule"),
        ("alert.remove", "alice", "alert_rule"),
    ]
    assert entries[0].after["webhooks"] == [
        {"url": "https://hooks.example.com/…", "format": "json"}
    ]
    assert entries[1].before == entries[0].after
    assert registry.verify_audit().ok


def test_adding_a_rule_twice_is_an_error(service: AlertService) -> None:
    service.add(rule())

    with pytest.raises(AlreadyExistsError, match="Alert rule 'churn-nulls' already exists"):
        service.add(rule("error_rate > 0.5"))


def test_removing_or_getting_an_unknown_rule_is_an_error(service: AlertService) -> None:
    with pytest.raises(AlertRuleNotFoundError, match=r"No alert rule named 'nope'\. List rules"):
        service.remove("nope")
    with pytest.raises(AlertRuleNotFoundError, match="No alert rule named 'nope'"):
        service.get("nope")


def test_history_limit_must_be_positive(service: AlertService) -> None:
    with pytest.raises(InvalidInputError, match=r"Invalid limit 0: expected an integer >= 1"):
        service.history(limit=0)


def test_the_rule_view_serialises_to_json(service: AlertService) -> None:
    info = service.add(rule())

    data = json.loads(json.dumps(info.to_dict()))

    assert data | {"created_at": None} == rule().to_dict() | {
        "source": "api",
        "created_by": "alice",
        "created_at": None,
        "state": "inactive",
        "state_since": None,
        "active_since": None,
        "last_value": None,
        "last_threshold": None,
        "evaluated_at": None,
    }


# -- rules from configuration -----------------------------------------------------------------


def test_configured_rules_are_stored_updated_and_removed_with_the_configuration(
    registry: Registry, service: AlertService, metrics: SettableSource, notifier: WebhookNotifier
) -> None:
    first = [rule(), rule("error_rate > 0.1", name="errors")]
    make_engine(registry, metrics, notifier, rules=first, user="server").evaluate_once(T0)
    metrics.set("error_rate", 0.5)
    make_engine(registry, metrics, notifier, rules=first).evaluate_once(minutes(1))

    changed = [rule("error_rate > 0.2", name="errors")]
    make_engine(registry, metrics, notifier, rules=changed).evaluate_once(minutes(2))

    (info,) = service.list()
    assert (info.rule.when, info.source, info.state) == ("error_rate > 0.2", "config", "firing")
    actions = [(e.action, e.entity, e.actor) for e in registry.audit_entries()]
    assert actions == [
        ("alert.add", "alert:churn-nulls", "server"),
        ("alert.add", "alert:errors", "server"),
        ("alert.remove", "alert:churn-nulls", "ferryman"),
        ("alert.update", "alert:errors", "ferryman"),
    ]


def test_configured_rules_cannot_be_removed_through_the_api(
    registry: Registry, service: AlertService
) -> None:
    AlertService(database=registry.database, user="server").configure([rule()])

    with pytest.raises(InvalidInputError, match=r"comes from the server's configuration"):
        service.remove("churn-nulls")


def test_a_configured_rule_may_not_take_the_name_of_an_api_rule(service: AlertService) -> None:
    service.add(rule())

    with pytest.raises(AlreadyExistsError, match=r"has the name of a rule added with"):
        service.configure([rule("error_rate > 0.5")])


def test_configured_rule_names_must_be_unique(service: AlertService) -> None:
    with pytest.raises(InvalidInputError, match=r"churn-nulls appear more than once"):
        service.configure([rule(), rule()])
