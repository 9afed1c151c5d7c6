"""Alert rules: a condition watched over a window of one endpoint's traffic.

Public names are re-exported by :mod:`ferryman.monitoring.alerts`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal, get_args

from ferryman.errors import InvalidInputError
from ferryman.monitoring._expressions import (
    Condition,
    format_duration,
    parse_condition,
    parse_duration,
)
from ferryman.monitoring.base import ROLES
from ferryman.registry import ModelRef
from ferryman.registry._refs import NAME_RE

#: How bad an alert is.
Severity = Literal["info", "warning", "critical"]
#: Where a rule stands.
AlertState = Literal["inactive", "pending", "firing", "resolved"]
#: What a webhook receives: Ferryman's JSON payload or Slack's ``{"text": …}``.
WebhookFormat = Literal["json", "slack"]

DEFAULT_WINDOW: Final = timedelta(minutes=5)
SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
WEBHOOK_FORMATS: Final[tuple[str, ...]] = get_args(WebhookFormat)

_RULE_KEYS: Final = (
    "name",
    "endpoint",
    "when",
    "window",
    "severity",
    "version",
    "role",
    "webhooks",
)
#: Stored state text -> the typed state (unknown text reads as inactive).
STATES: Final[Mapping[str, AlertState]] = {
    "inactive": "inactive",
    "pending": "pending",
    "firing": "firing",
    "resolved": "resolved",
}


@dataclass(frozen=True)
class Webhook:
    """Where a rule's notifications are POSTed.

    Attributes:
        url: An ``http://`` or ``https://`` URL.
        format: ``"json"`` (Ferryman's payload) or ``"slack"`` (``{"text": …}``).

    Raises:
        InvalidInputError: The URL is not an absolute http(s) URL, or the format unknown.
    """

    url: str
    format: WebhookFormat = "json"

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(
                f"Invalid webhook URL {self.url!r}: expected an absolute http:// or https:// "
                "URL, e.g. https://hooks.example.com/alerts"
            )
        if self.format not in WEBHOOK_FORMATS:
            raise InvalidInputError(
                f"Invalid webhook format {self.format!r}. Available: {', '.join(WEBHOOK_FORMATS)}."
            )

    @property
    def redacted(self) -> str:
        """The URL without path or query, for logs and the audit log (they may hold secrets)."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"

    def to_dict(self) -> dict[str, str]:
        """Return ``{"url": …, "format": …}``."""
        return {"url": self.url, "format": self.format}


@dataclass(frozen=True)
class AlertRule:
    """An alert rule: a condition watched over a window of an endpoint's traffic.

    Attributes:
        name: Unique name: 1-200 letters, digits, ``.``, ``_`` or ``-``.
        endpoint: The endpoint watched.
        when: The condition, e.g. ``null_rate > 0.01 for 5m``; stored canonically.
        window: The span each evaluation measures, ending at the evaluation time.
        severity: ``"info"``, ``"warning"`` or ``"critical"``.
        version: Only this model version (``"churn/3"``), or ``None`` for all.
        role: Only this role (``"primary"``, ``"shadow"``, ``"batch"``), or ``None``.
        webhooks: Where notifications go, besides the log.

    Raises:
        InvalidExpressionError, UnknownMetricError: ``when`` is not a valid condition.
        InvalidInputError: Any other field is invalid, or ``when`` uses ``stable``.
    """

    name: str
    endpoint: str
    when: str
    window: timedelta = DEFAULT_WINDOW
    severity: Severity = "warning"
    version: str | None = None
    role: str | None = None
    webhooks: tuple[Webhook, ...] = ()
    condition: Condition = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("alert rule name", self.name)
        _check_name("endpoint name", self.endpoint)
        condition = parse_condition(self.when)
        if condition.uses_stable:
            raise InvalidInputError(
                f"Alert rule {self.name!r}: the condition {self.when!r} uses 'stable', which "
                "only rollout gates can compare with; give a number, e.g. "
                f"{condition.metric_text} {condition.op} 0.05."
            )
        try:
            condition.threshold()
        except ValueError as exc:
            raise InvalidInputError(
                f"Alert rule {self.name!r}: the threshold of {self.when!r} has no value ({exc})."
            ) from None
        object.__setattr__(self, "condition", condition)
        object.__setattr__(self, "when", str(condition))
        seconds = self.window.total_seconds() if isinstance(self.window, timedelta) else -1
        if seconds <= 0 or not seconds.is_integer():
            raise InvalidInputError(
                f"Alert rule {self.name!r}: invalid window {self.window!r}; expected a whole "
                "positive number of seconds, e.g. 5m."
            )
        if self.severity not in SEVERITIES:
            raise InvalidInputError(
                f"Alert rule {self.name!r}: unknown severity {self.severity!r}. Available: "
                f"{', '.join(SEVERITIES)}."
            )
        if self.version is not None:
            ref = ModelRef.parse(self.version)
            if ref.version is None:
                raise InvalidInputError(
                    f"Alert rule {self.name!r}: version {self.version!r} must name one "
                    "version, e.g. churn/3."
                )
        if self.role is not None and self.role not in ROLES:
            raise InvalidInputError(
                f"Alert rule {self.name!r}: unknown role {self.role!r}. Available: "
                f"{', '.join(ROLES)}."
            )
        webhooks = tuple(self.webhooks)
        if not all(isinstance(hook, Webhook) for hook in webhooks):
            raise InvalidInputError(
                f"Alert rule {self.name!r}: webhooks must be Webhook objects; build rules "
                "from plain data with AlertRule.from_dict."
            )
        object.__setattr__(self, "webhooks", webhooks)

    @property
    def for_duration(self) -> timedelta:
        """How long the condition must hold before the rule fires (zero: at once)."""
        return self.condition.duration or timedelta(0)

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as :meth:`from_dict` reads it (JSON-safe)."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "when": self.when,
            "window": format_duration(self.window),
            "severity": self.severity,
            "version": self.version,
            "role": self.role,
            "webhooks": [hook.to_dict() for hook in self.webhooks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRule:
        """Build a rule from plain data, as configuration files and the CLI give it.

        ``{"name": "churn-nulls", "endpoint": "churn", "when": "null_rate > 0.01 for 5m",
        "window": "10m", "severity": "critical", "webhooks": [{"url": "https://…",
        "format": "slack"}]}``; ``window`` (default ``5m``), ``severity`` (default
        ``warning``), ``version``, ``role`` and ``webhooks`` are optional, and a webhook's
        ``format`` defaults to ``json``.

        Raises:
            InvalidInputError: A key is unknown or missing, or a value is invalid; the
                message names the rule and the key.
            InvalidExpressionError, UnknownMetricError: ``when`` is not a valid condition.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"Invalid alert rule {data!r}: expected a mapping with the keys "
                f"{', '.join(_RULE_KEYS)}."
            )
        label = repr(data.get("name", "<unnamed>"))
        unknown = sorted(set(data) - set(_RULE_KEYS))
        if unknown:
            raise InvalidInputError(
                f"Alert rule {label}: unknown key(s) {', '.join(map(str, unknown))}. "
                f"Available: {', '.join(_RULE_KEYS)}."
            )
        missing = [key for key in ("name", "endpoint", "when") if not data.get(key)]
        if missing:
            raise InvalidInputError(
                f"Alert rule {label}: missing {', '.join(missing)} (e.g. name = "
                '"churn-nulls", endpoint = "churn", when = "null_rate > 0.01 for 5m").'
            )
        for key in ("name", "endpoint", "when", "window", "severity", "version", "role"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise InvalidInputError(
                    f"Alert rule {label}: {key} must be text, got {data[key]!r}."
                )
        window = data.get("window")
        hooks = data.get("webhooks") or []
        if not isinstance(hooks, Sequence) or isinstance(hooks, str):
            raise InvalidInputError(
                f"Alert rule {label}: webhooks must be a list of "
                '{"url": ..., "format": "json" | "slack"} entries.'
            )
        return cls(
            name=data["name"],
            endpoint=data["endpoint"],
            when=data["when"],
            window=parse_duration(window) if window is not None else DEFAULT_WINDOW,
            severity=data.get("severity") or "warning",
            version=data.get("version"),
            role=data.get("role"),
            webhooks=tuple(_webhook_from_dict(label, hook) for hook in hooks),
        )


def _webhook_from_dict(label: str, data: Any) -> Webhook:
    if not isinstance(data, Mapping) or not data.get("url") or set(data) - {"url", "format"}:
        raise InvalidInputError(
            f"Alert rule {label}: invalid webhook {data!r}; expected "
            '{"url": "https://...", "format": "json" | "slack"} (format optional).'
        )
    return Webhook(url=data["url"], format=data.get("format", "json"))


def _check_name(what: str, name: object) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInputError(
            f"Invalid {what} {name!r}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )


__all__ = [
    "DEFAULT_WINDOW",
    "SEVERITIES",
    "STATES",
    "WEBHOOK_FORMATS",
    "AlertRule",
    "AlertState",
    "Severity",
    "Webhook",
    "WebhookFormat",
]
