"""Alerts: rules over windowed metrics, evaluated continuously, with notifications.

An *alert rule* names a condition in the language gates use (``null_rate > 0.01 for 5m``,
``missing_rate{feature="age"} > 0.2``), the endpoint it watches (optionally one version
and one role), the window the metric is computed over (default 5 minutes ending at each
evaluation), a severity and where to send notifications. ``stable`` has no meaning
outside a rollout, so alert conditions may not use it.

The :class:`AlertEngine` evaluates every rule on a schedule with Prometheus's semantics:

- ``inactive`` → ``pending`` when the condition first holds;
- ``pending`` → ``firing`` once it has held for the rule's ``for`` duration (at once
  without one), which sends a *firing* notification;
- ``firing`` → ``resolved`` when it no longer holds (or the window has no data), which
  sends a *resolved* notification; ``pending`` → ``inactive`` likewise, silently.

Each rule's state lives in its row of the metadata store and every transition is made
under that row's lock: with several server processes, only the one that makes a
transition notifies, and a restarted server does not notify again for a rule that was
already firing. Transitions are kept as history. Notifications go to the
``ferryman.alerts`` logger always, and to the rule's webhooks (a JSON payload, or a
Slack-compatible ``{"text": …}``) from a worker thread with a timeout and bounded
retries; a webhook that fails is counted and logged and never stops evaluation.
Delivery is at most once: a process killed between a transition and its delivery loses
that notification.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ferryman._background import lower_this_thread
from ferryman.errors import FerrymanError, InvalidInputError
from ferryman.monitoring._alert_rules import (
    DEFAULT_WINDOW,
    SEVERITIES,
    STATES,
    WEBHOOK_FORMATS,
    AlertRule,
    AlertState,
    Severity,
    Webhook,
    WebhookFormat,
)
from ferryman.monitoring._alert_store import (
    AlertEvent,
    AlertRuleInfo,
    AlertService,
    RuleSource,
    find_rule_row,
    rule_from_row,
)
from ferryman.monitoring._expressions import OPERATOR_WORDS, format_duration
from ferryman.monitoring._webhooks import AlertNotification, DeliveryStats, WebhookNotifier
from ferryman.monitoring.base import MetricSource, WindowSelector
from ferryman.store import Database
from ferryman.store._tables import AlertEventRow, AlertRuleRow

logger = logging.getLogger("ferryman.alerts")


@dataclass(frozen=True)
class AlertEvaluation:
    """What one evaluation of one rule found.

    Attributes:
        rule: The rule's name.
        state: Its state after the evaluation.
        changed: Whether the evaluation moved it to that state.
        value: The metric's value (``None``: no data in the window).
        threshold: The threshold.
        samples: What the value rests on.
        error: Why the rule could not be evaluated, or ``None``.
    """

    rule: str
    state: AlertState
    changed: bool
    value: float | None = None
    threshold: float | None = None
    samples: int = 0
    error: str | None = None


def next_state(
    state: AlertState,
    *,
    holds: bool,
    active_since: datetime | None,
    now: datetime,
    for_duration: timedelta,
) -> tuple[AlertState, datetime | None]:
    """Prometheus's alert state machine, one evaluation at a time.

    Args:
        state: The current state.
        holds: Whether the condition holds now (no data counts as not holding).
        active_since: When the condition started holding, for ``pending``/``firing``.
        now: The evaluation time.
        for_duration: How long it must hold before firing.

    Returns:
        The new state and the new ``active_since``.
    """
    if not holds:
        if state == "firing":
            return "resolved", None
        if state == "pending":
            return "inactive", None
        return state, None
    if state in ("inactive", "resolved"):
        return ("firing" if for_duration <= timedelta(0) else "pending"), now
    started = active_since or now
    if state == "pending" and now - started >= for_duration:
        return "firing", started
    return state, started


class AlertEngine:
    """Evaluates every stored alert rule on a schedule and sends notifications.

    Args:
        database: The metadata store holding rules, their state and history.
        source: Where windowed metrics come from.
        rules: Rules from configuration; stored (and kept in sync) on first evaluation.
        user: Who the configuration's changes are audited as.
        interval: Seconds between evaluation rounds in the background thread.
        clock: Returns the current time (timezone-aware UTC); injected by tests.
        notifier: Delivers webhook notifications; default: a :class:`WebhookNotifier`.
    """

    def __init__(
        self,
        *,
        database: Database,
        source: MetricSource,
        rules: Sequence[AlertRule] = (),
        user: str = "ferryman",
        interval: float = 15.0,
        clock: Callable[[], datetime] | None = None,
        notifier: WebhookNotifier | None = None,
    ) -> None:
        if not interval > 0:
            raise InvalidInputError(f"Invalid interval {interval!r}: expected seconds > 0.")
        self.database = database
        self.source = source
        self.rules = tuple(rules)
        self.user = user
        self.interval = interval
        self.clock = clock if clock is not None else _utcnow
        self.notifier = notifier if notifier is not None else WebhookNotifier()
        self._configured = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors = 0

    def __repr__(self) -> str:
        return (
            f"AlertEngine(database={self.database!r}, source={self.source!r}, "
            f"rules=<{len(self.rules)} rules>, interval={self.interval!r})"
        )

    @property
    def errors(self) -> int:
        """Rule evaluations that failed (logged) since the engine was built."""
        return self._errors

    def start(self) -> None:
        """Store the configured rules, start the notifier and the evaluation thread.

        Raises:
            InvalidInputError, AlreadyExistsError: As :meth:`AlertService.configure`.
        """
        self._configure()
        self.notifier.start()
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ferryman-alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop evaluating, deliver what is queued (within ``timeout``) and stop the notifier."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.notifier.stop(timeout)

    def _run(self) -> None:
        lower_this_thread()
        while not self._stop.is_set():
            try:
                self.evaluate_once(self.clock())
            except Exception:  # the store may be down for a while; keep the thread alive
                logger.exception("alert evaluation round failed")
            self._stop.wait(self.interval)

    def _configure(self) -> None:
        if not self._configured:
            AlertService(database=self.database, user=self.user).configure(self.rules)
            self._configured = True

    def evaluate_once(self, now: datetime | None = None) -> builtins.list[AlertEvaluation]:
        """Evaluate every stored rule once, at ``now`` (default: the clock's time).

        A rule that cannot be evaluated (its metric unknown to the source, the store
        briefly unavailable) is logged and reported with ``error``; the others go on.

        Raises:
            InvalidInputError: ``now`` is naive.
        """
        at = self.clock() if now is None else now
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidInputError(
                f"Evaluation time {at.isoformat()} is naive; give a timezone-aware UTC time."
            )
        self._configure()
        # Rules are parsed inside the read session (rows expire when it ends); a stored
        # rule this version cannot read is reported like any other failing rule.
        loaded: builtins.list[tuple[str, AlertState, AlertRule | Exception]] = []
        with self.database.read() as session:
            for row in session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.name)):
                try:
                    loaded.append((row.name, STATES.get(row.state, "inactive"), rule_from_row(row)))
                except (FerrymanError, ValueError) as exc:
                    loaded.append((row.name, STATES.get(row.state, "inactive"), exc))
        results = []
        for name, state, rule in loaded:
            try:
                if isinstance(rule, Exception):
                    raise rule
                results.append(self._evaluate(rule, at))
            except Exception as exc:  # one broken rule or source must not silence the rest
                self._errors += 1
                if isinstance(exc, FerrymanError | ValueError | OSError):
                    logger.error("alert rule %r could not be evaluated: %s", name, exc)
                else:
                    logger.exception("alert rule %r could not be evaluated", name)
                results.append(
                    AlertEvaluation(rule=name, state=state, changed=False, error=str(exc))
                )
        return results

    def _evaluate(self, rule: AlertRule, now: datetime) -> AlertEvaluation:
        condition = rule.condition
        selector = WindowSelector.last(
            rule.endpoint, rule.window, now=now, version=rule.version, role=rule.role
        )
        measured = self.source.measure(condition.metric, condition.label_map, selector)
        threshold = condition.threshold()
        holds = measured.value is not None and condition.holds(measured.value, threshold)
        with self.database.write() as session:
            row = find_rule_row(session, rule.name, lock=True)
            if row is None or (row.evaluated_at is not None and row.evaluated_at > now):
                # Removed meanwhile, or another process already evaluated a later time.
                state = STATES.get(row.state, "inactive") if row is not None else "inactive"
                return AlertEvaluation(rule=rule.name, state=state, changed=False)
            before = STATES.get(row.state, "inactive")
            state, active_since = next_state(
                before,
                holds=holds,
                active_since=row.active_since,
                now=now,
                for_duration=rule.for_duration,
            )
            started_at = active_since if active_since is not None else row.active_since
            row.last_value, row.last_threshold, row.evaluated_at = (
                measured.value,
                threshold,
                now,
            )
            changed = state != before
            message = ""
            if changed:
                message = _message(rule, state, measured.value, threshold)
                row.state, row.state_since, row.active_since = state, now, active_since
                session.add(
                    AlertEventRow(
                        rule=rule.name,
                        endpoint=rule.endpoint,
                        version=rule.version,
                        state=state,
                        severity=rule.severity,
                        condition=rule.when,
                        value=measured.value,
                        threshold=threshold,
                        started_at=started_at,
                        at=now,
                        message=message,
                    )
                )
        # Committed: this process made the transition, so it alone announces it.
        if changed:
            level = logging.WARNING if state == "firing" else logging.INFO
            logger.log(level, "alert %s: %s", state, message)
            if state in ("firing", "resolved"):
                self.notifier.notify(
                    AlertNotification(
                        rule=rule,
                        state="firing" if state == "firing" else "resolved",
                        value=measured.value,
                        threshold=threshold,
                        started_at=started_at,
                        at=now,
                        message=message,
                    )
                )
        return AlertEvaluation(
            rule=rule.name,
            state=state,
            changed=changed,
            value=measured.value,
            threshold=threshold,
            samples=measured.samples,
        )


def _message(rule: AlertRule, state: AlertState, value: float | None, threshold: float) -> str:
    condition = rule.condition
    scope = f"endpoint {rule.endpoint}" + (f" version {rule.version}" if rule.version else "")
    words = OPERATOR_WORDS[condition.op]
    window = format_duration(rule.window)
    if value is None:
        observed = f"no data for {condition.metric_text} in the last {window}"
    else:
        observed = f"{condition.metric_text} = {value:.6g} over the last {window}"
    if state == "firing":
        held = f" for {format_duration(rule.for_duration)}" if rule.for_duration else ""
        return f"{rule.name} is firing on {scope}: {observed}, {words} {threshold:.6g}{held}"
    if state == "pending":
        return (
            f"{rule.name} is pending on {scope}: {observed}, {words} {threshold:.6g}; fires "
            f"if it stays so for {format_duration(rule.for_duration)}"
        )
    if state == "resolved":
        tail = "" if value is None else f", no longer {words} {threshold:.6g}"
        return f"{rule.name} resolved on {scope}: {observed}{tail}"
    tail = "" if value is None else f", no longer {words} {threshold:.6g}"
    return f"{rule.name} is inactive again on {scope} before firing: {observed}{tail}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "DEFAULT_WINDOW",
    "SEVERITIES",
    "WEBHOOK_FORMATS",
    "AlertEngine",
    "AlertEvaluation",
    "AlertEvent",
    "AlertNotification",
    "AlertRule",
    "AlertRuleInfo",
    "AlertService",
    "AlertState",
    "DeliveryStats",
    "RuleSource",
    "Severity",
    "Webhook",
    "WebhookFormat",
    "WebhookNotifier",
    "next_state",
]
