"""The privacy policy of captured records: keep, hash, drop or redact each column.

A policy maps column names (model features and passthrough columns alike) to an action;
columns it does not name are kept. Actions:

- ``keep``: stored as received.
- ``hash``: replaced by the hex HMAC-SHA256 of the value's text, keyed with the secret from
  the configuration (``FERRYMAN_SECRET_KEY``), so the same value always hashes the same
  and joins still work, while nobody without the key can test guesses. Without a secret,
  hashed columns are dropped rather than stored with a guessable plain hash.
- ``drop``: not stored at all.
- ``redact``: free text in which emails, phone numbers, card numbers and IP addresses are
  replaced by ``[EMAIL]``, ``[PHONE]``, ``[CARD]`` and ``[IP]`` (see :func:`redact_text`).

The value's text is what Arrow writes for it: ``123`` for the integer 123, ``1.5`` for
1.5, ``true`` for a boolean. :func:`keyed_hash` is the one hash function; DuckDB queries
over the log call the same one as ``pii_hash('...')``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import pyarrow as pa
import pyarrow.compute as pc

from ferryman.capture._redaction import redact_array, redact_text
from ferryman.errors import InvalidInputError


class PrivacyAction(StrEnum):
    """What happens to one column's values before they are stored."""

    KEEP = "keep"
    HASH = "hash"
    DROP = "drop"
    REDACT = "redact"


_ACTIONS = ", ".join(sorted(action.value for action in PrivacyAction))


def parse_action(value: object, *, column: str) -> PrivacyAction:
    """Return the action named ``value`` for ``column``.

    Raises:
        InvalidInputError: ``value`` names no action; the message lists them.
    """
    if isinstance(value, PrivacyAction):
        return value
    if isinstance(value, str):
        try:
            return PrivacyAction(value.strip().lower())
        except ValueError:
            pass
    raise InvalidInputError(
        f"Unknown privacy action {value!r} for column {column!r}. Available: {_ACTIONS}."
    )


@dataclass(frozen=True)
class PrivacyPolicy:
    """Per-column privacy actions; columns without one are kept.

    Build it with :meth:`from_mapping`, :meth:`from_options` or :meth:`from_json`.

    Attributes:
        columns: Column name -> action, for the columns that have one (read-only).

    >>> policy = PrivacyPolicy.from_mapping({"email": "hash", "note": "redact"})
    >>> policy.action("email"), policy.action("age")
    (<PrivacyAction.HASH: 'hash'>, <PrivacyAction.KEEP: 'keep'>)
    >>> policy.to_json()
    '{"email":"hash","note":"redact"}'
    """

    columns: Mapping[str, PrivacyAction] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        checked = {
            _column_name(name): parse_action(action, column=str(name))
            for name, action in self.columns.items()
        }
        object.__setattr__(self, "columns", MappingProxyType(dict(sorted(checked.items()))))

    def __reduce__(self) -> tuple[type[PrivacyPolicy], tuple[dict[str, PrivacyAction]]]:
        # A read-only mapping does not pickle; the drift monitor's child process needs it.
        return (PrivacyPolicy, (dict(self.columns),))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> PrivacyPolicy:
        """Build a policy from ``{"column": "keep|hash|drop|redact", ...}`` (e.g. parsed JSON).

        Raises:
            InvalidInputError: A column name is empty or not a string, or an action is
                unknown (the message names the column and lists the actions).
        """
        if not isinstance(mapping, Mapping):
            raise InvalidInputError(
                f"A privacy policy must be an object of column -> action, got "
                f"{type(mapping).__name__}."
            )
        columns = {
            _column_name(name): parse_action(action, column=str(name))
            for name, action in mapping.items()
        }
        return cls(columns=columns)

    @staticmethod
    def parse_option(text: str) -> tuple[str, PrivacyAction]:
        """Parse one ``COLUMN=ACTION`` command-line option.

        >>> PrivacyPolicy.parse_option("email=hash")
        ('email', <PrivacyAction.HASH: 'hash'>)

        Raises:
            InvalidInputError: The text is not ``COLUMN=ACTION`` or the action is unknown.
        """
        column, sep, action = text.partition("=")
        if not sep or not column.strip():
            raise InvalidInputError(
                f"Invalid privacy option {text!r}: expected COLUMN=ACTION with ACTION one of "
                f"{_ACTIONS}, e.g. email=hash."
            )
        name = column.strip()
        return name, parse_action(action, column=name)

    @classmethod
    def from_options(cls, options: Iterable[str]) -> PrivacyPolicy:
        """Build a policy from ``COLUMN=ACTION`` options (the CLI's repeated ``--privacy``).

        Raises:
            InvalidInputError: An option is malformed, or names a column twice.
        """
        columns: dict[str, PrivacyAction] = {}
        for option in options:
            name, action = cls.parse_option(option)
            if name in columns:
                raise InvalidInputError(
                    f"Column {name!r} has two privacy options; give one action per column."
                )
            columns[name] = action
        return cls(columns=columns)

    @classmethod
    def from_json(cls, text: str) -> PrivacyPolicy:
        """Read a policy written by :meth:`to_json`.

        Raises:
            InvalidInputError: The text is not a JSON object of column -> action.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"A privacy policy must be a JSON object: {exc}.") from None
        return cls.from_mapping(data)

    def to_dict(self) -> dict[str, str]:
        """Return ``{column: action}`` for the columns with an action, sorted by column."""
        return {name: action.value for name, action in self.columns.items()}

    def to_json(self) -> str:
        """Return the policy as compact JSON with sorted keys."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def action(self, column: str) -> PrivacyAction:
        """Return the action for ``column`` (``keep`` when the policy does not name it)."""
        return self.columns.get(column, PrivacyAction.KEEP)

    @property
    def requires_secret(self) -> bool:
        """Whether some column is hashed, which needs ``FERRYMAN_SECRET_KEY``."""
        return PrivacyAction.HASH in self.columns.values()

    @property
    def protected(self) -> frozenset[str]:
        """The columns whose raw values are never stored (every action but ``keep``)."""
        return frozenset(n for n, a in self.columns.items() if a is not PrivacyAction.KEEP)


def keyed_hash(value: str, secret: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``value`` (UTF-8) keyed with ``secret``.

    >>> keyed_hash("123", b"key")[:16]
    'a7f7739b1dc5b4e9'
    """
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def hash_array(values: pa.Array, secret: bytes) -> pa.Array:
    """Hash every value of an Arrow array with :func:`keyed_hash`, once per distinct value.

    Returns:
        A string array of hex digests, nulls kept.
    """
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    distinct = pc.unique(text)
    digests = pa.array(
        [None if value is None else keyed_hash(value, secret) for value in distinct.to_pylist()],
        pa.string(),
    )
    return digests.take(pc.index_in(text, value_set=distinct))


def apply_action(values: pa.Array, action: PrivacyAction, secret: bytes | None) -> pa.Array | None:
    """Apply one action to one column; ``None`` means the column is not stored.

    Args:
        values: The column (a plain Arrow array).
        action: What to do.
        secret: The hashing key; without it a hashed column is dropped.
    """
    if action is PrivacyAction.KEEP:
        return values
    if action is PrivacyAction.DROP:
        return None
    if action is PrivacyAction.HASH:
        return None if secret is None else hash_array(values, secret)
    if pa.types.is_nested(values.type):
        return None  # free-text redaction has no meaning for lists and structs
    return redact_array(values)


def _column_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(
            f"Invalid column name {name!r} in a privacy policy: expected a non-empty string."
        )
    return name.strip()


__all__ = [
    "PrivacyAction",
    "PrivacyPolicy",
    "apply_action",
    "hash_array",
    "keyed_hash",
    "parse_action",
    "redact_text",
]
