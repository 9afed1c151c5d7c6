"""Model references: ``name`` (latest), ``name/3`` (a version) and ``name@alias``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferryman.errors import InvalidInputError, InvalidReferenceError

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"
_ALIAS = r"[A-Za-z][A-Za-z0-9_-]{0,99}"
NAME_RE = re.compile(rf"^{_NAME}$")
ALIAS_RE = re.compile(rf"^{_ALIAS}$")
_REF_RE = re.compile(rf"^(?P<name>{_NAME})(?:/(?P<version>[0-9]+)|@(?P<alias>{_ALIAS}))?$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference.

    Exactly one of ``version`` and ``alias`` is set, or neither for "the latest version".

    >>> ModelRef.parse("churn@production")
    ModelRef(name='churn', version=None, alias='production')
    >>> str(ModelRef.parse("churn/3"))
    'churn/3'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``name``, ``name/N`` or ``name@alias``.

        Raises:
            InvalidReferenceError: The text has none of these forms.
        """
        match = _REF_RE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidReferenceError(
                f"Invalid model reference {text!r}: expected 'name' (latest version), "
                "'name/3' (a version number) or 'name@alias' (e.g. churn@production)"
            )
        version = match["version"]
        if version is not None and int(version) < 1:
            raise InvalidReferenceError(
                f"Invalid model reference {text!r}: version numbers start at 1"
            )
        return cls(match["name"], int(version) if version else None, match["alias"])

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise InvalidInputError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInputError(
            f"Invalid model name {name!r}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias name, else raise InvalidInputError."""
    if not isinstance(alias, str) or not ALIAS_RE.match(alias) or alias.isdigit():
        raise InvalidInputError(
            f"Invalid alias {alias!r}: use 1-100 letters, digits, '_' or '-', starting with "
            "a letter (e.g. production, staging)"
        )
    return alias
