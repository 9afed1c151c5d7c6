"""Webhook notifications for alerts: payloads, and a worker thread that POSTs them.

Public names are re-exported by :mod:`ferryman.monitoring.alerts`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ferryman._background import lower_this_thread
from ferryman.errors import InvalidInputError
from ferryman.monitoring._alert_rules import AlertRule, Webhook
from ferryman.monitoring._alert_store import iso
from ferryman.monitoring._expressions import format_duration

logger = logging.getLogger("ferryman.alerts")


@dataclass(frozen=True)
class AlertNotification:
    """What is sent when a rule starts or stops firing.

    Attributes:
        rule: The rule (its webhooks say where the notification goes).
        state: ``"firing"`` or ``"resolved"``.
        value: The metric's value (``None``: no data in the window).
        threshold: The threshold it was compared with.
        started_at: When the condition started holding.
        at: When the transition happened.
        message: A sentence for people.
    """

    rule: AlertRule
    state: Literal["firing", "resolved"]
    value: float | None
    threshold: float
    started_at: datetime | None
    at: datetime
    message: str

    def payload(self) -> dict[str, Any]:
        """The JSON webhook payload."""
        return {
            "rule": self.rule.name,
            "endpoint": self.rule.endpoint,
            "version": self.rule.version,
            "role": self.rule.role,
            "state": self.state,
            "severity": self.rule.severity,
            "condition": self.rule.when,
            "metric": self.rule.condition.metric,
            "labels": self.rule.condition.label_map,
            "value": self.value,
            "threshold": self.threshold,
            "window": format_duration(self.rule.window),
            "started_at": iso(self.started_at),
            "at": self.at.isoformat(),
            "message": self.message,
        }

    def slack_payload(self) -> dict[str, str]:
        """The Slack-compatible payload: ``{"text": "[FIRING] (warning) …"}``."""
        return {"text": f"[{self.state.upper()}] ({self.rule.severity}) {self.message}"}


@dataclass(frozen=True)
class DeliveryStats:
    """Webhook deliveries since the notifier started.

    Attributes:
        delivered: POSTs answered with a 2xx status.
        failed: Deliveries given up after the last attempt (or a 4xx answer).
        retried: Attempts that failed and were tried again.
        dropped: Notifications not queued because the queue was full.
    """

    delivered: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0


class WebhookNotifier:
    """POSTs notifications to webhooks from one worker thread, off the evaluation path.

    Args:
        timeout: Seconds one POST may take.
        attempts: Tries per delivery (integer >= 1); a 4xx answer other than 408 and
            429 is not retried.
        backoff: Seconds before the first retry, doubled before each further one.
        queue_size: Deliveries that may wait; beyond it they are dropped and counted.
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 1.0,
        queue_size: int = 1000,
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidInputError(f"Invalid attempts {attempts!r}: expected an integer >= 1.")
        if not timeout > 0 or not backoff >= 0 or queue_size < 1:
            raise InvalidInputError(
                f"Invalid notifier settings timeout={timeout!r}, backoff={backoff!r}, "
                f"queue_size={queue_size!r}: expected timeout > 0, backoff >= 0, "
                "queue_size >= 1."
            )
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.queue_size = queue_size
        self._queue: queue.Queue[tuple[Webhook, bytes] | None] = queue.Queue(queue_size)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._stats = DeliveryStats()

    def __repr__(self) -> str:
        return (
            f"WebhookNotifier(timeout={self.timeout!r}, attempts={self.attempts!r}, "
            f"backoff={self.backoff!r}, queue_size={self.queue_size!r})"
        )

    @property
    def stats(self) -> DeliveryStats:
        """The delivery counters so far."""
        with self._lock:
            return self._stats

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="ferryman-alert-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within ``timeout`` seconds), then stop the worker."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        self._stopping.set()
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:  # the worker is stuck in a delivery; it is a daemon thread
            logger.warning("alert webhook worker did not drain its queue within %ss", timeout)
        thread.join(timeout)
        self._thread = None

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification is delivered or given up.

        Returns:
            Whether the queue emptied within ``timeout`` seconds.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def notify(self, notification: AlertNotification) -> None:
        """Queue one POST per webhook of the notification's rule; never blocks or raises."""
        for hook in notification.rule.webhooks:
            body = (
                notification.slack_payload() if hook.format == "slack" else notification.payload()
            )
            self._queue_post(hook, body, notification.state, notification.rule.name)

    def send(self, hooks: Sequence[Webhook], payload: Mapping[str, Any], text: str) -> None:
        """Queue an event other than an alert (e.g. a rollout's rollback) to ``hooks``.

        JSON webhooks get ``payload``; Slack-format ones get ``{"text": text}``. Never
        blocks or raises.
        """
        for hook in hooks:
            body = {"text": text} if hook.format == "slack" else dict(payload)
            self._queue_post(hook, body, str(payload.get("event", "event")), text[:80])

    def _queue_post(self, hook: Webhook, body: Mapping[str, Any], state: str, name: str) -> None:
        data = json.dumps(body, separators=(",", ":"), default=str).encode()
        with self._lock:
            self._pending += 1
        try:
            self._queue.put_nowait((hook, data))
        except queue.Full:
            self._done(dropped=1)
            logger.error(
                "alert webhook queue full (%d); dropped the %s notification of %r to %s",
                self.queue_size,
                state,
                name,
                hook.redacted,
            )

    def _run(self) -> None:
        lower_this_thread()
        while True:
            item = self._queue.get()
            if item is None:
                return
            hook, data = item
            try:
                delivered = self._deliver(hook, data)
            except Exception:  # never let one delivery kill the worker
                logger.exception("alert webhook to %s failed unexpectedly", hook.redacted)
                delivered = False
            self._done(delivered=int(delivered), failed=int(not delivered))

    def _deliver(self, hook: Webhook, data: bytes) -> bool:
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(
                hook.url,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "ferryman-alerts"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return True
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                retry = exc.code >= 500 or exc.code in (408, 429)
            except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
                reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                retry = True
            if not retry or attempt == self.attempts:
                logger.warning(
                    "alert webhook to %s failed after %d attempt(s): %s",
                    hook.redacted,
                    attempt,
                    reason,
                )
                return False
            self._done(retried=1, finished=False)
            if self._stopping.wait(self.backoff * 2 ** (attempt - 1)):
                return False
        return False  # pragma: no cover - the loop always returns

    def _done(
        self,
        *,
        delivered: int = 0,
        failed: int = 0,
        retried: int = 0,
        dropped: int = 0,
        finished: bool = True,
    ) -> None:
        with self._idle:
            s = self._stats
            self._stats = DeliveryStats(
                delivered=s.delivered + delivered,
                failed=s.failed + failed,
                retried=s.retried + retried,
                dropped=s.dropped + dropped,
            )
            if finished:
                self._pending -= 1
                self._idle.notify_all()


__all__ = ["AlertNotification", "DeliveryStats", "WebhookNotifier"]
