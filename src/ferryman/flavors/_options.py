"""Checking the flavor-specific ``options`` mapping passed to :meth:`Flavor.save`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ferryman.errors import InvalidInputError


def check_options(flavor: str, options: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse option names the flavor does not know, so typos do not pass silently.

    Args:
        flavor: The flavor's name, for the message.
        options: The options given to ``save``.
        allowed: The option names the flavor understands.

    Raises:
        InvalidInputError: An option name is not in ``allowed``.
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(sorted(allowed)) or "none"
        raise InvalidInputError(
            f"Unknown option {unknown[0]!r} for the {flavor!r} flavor. Available: {valid}."
        )


def string_list(value: object, *, option: str) -> list[str]:
    """Return ``value`` as a list of strings, refusing a bare string.

    Args:
        value: The option value, expected to be a sequence of strings.
        option: The option name, for the message.

    Raises:
        InvalidInputError: ``value`` is a string or not a sequence of strings.
    """
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError(
            f"Option {option!r} must be a list of strings, got {type(value).__name__}: {value!r}."
        )
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise InvalidInputError(
                f"Option {option!r} must be a list of strings; it contains {item!r}."
            )
    return items
