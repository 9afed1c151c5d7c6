"""Constructor arguments as the single source of configuration: repr, clone, checks.

Every drift component stores each keyword-only constructor argument under the same
name, so ``repr`` can show them and ``clone`` can rebuild the component from them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Self

from ferryman.errors import InvalidInputError


class Configured:
    """Mixin: ``repr`` shows the constructor arguments, ``clone`` rebuilds from them."""

    def parameters(self) -> dict[str, object]:
        """Return the constructor arguments, by name, as stored on the instance."""
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.parameters().items())
        return f"{type(self).__name__}({arguments})"

    def clone(self) -> Self:
        """Return a new instance with the same configuration and no learned state."""
        return type(self)(**self.parameters())


def check_number(
    owner: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float inside the given bounds, or raise naming the bounds."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    if ok and math.isfinite(number):
        ok = (low is None or (number > low if low_open else number >= low)) and (
            high is None or (number < high if high_open else number <= high)
        )
    else:
        ok = False
    if not ok:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        bounds = " and ".join(part for part in (left, right) if part)
        raise InvalidInputError(
            f"{owner}: {name} must be a finite number{' ' + bounds if bounds else ''}, "
            f"got {value!r}."
        )
    return number


def check_integer(owner: str, name: str, value: object, *, low: int) -> int:
    """Return ``value`` if it is an integer >= ``low``, else raise naming the bound."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(f"{owner}: {name} must be an integer >= {low}, got {value!r}.")
    return value


def check_choice(owner: str, name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(
            f"{owner}: {name} must be one of {', '.join(choices)}; got {value!r}."
        )
    return value
