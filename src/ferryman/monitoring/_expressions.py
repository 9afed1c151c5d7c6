"""The condition language shared by rollout gates and alert rules.

A condition compares one windowed metric with an arithmetic expression::

    error_rate < 0.01
    p99_latency_ms < 1.2 * stable
    missing_rate{feature="age"} > 0.2
    p99_latency_ms > 200 for 2m
    mean_prediction <= stable + 0.05

Grammar (whitespace is free between tokens)::

    condition  := metric [labels] comparison expression ["for" duration]
    labels     := "{" name "=" string ("," name "=" string)* [","] "}"
    comparison := "<" | "<=" | ">" | ">=" | "==" | "!="
    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := number | "stable" | "(" expression ")"
    duration   := [N "d"] [N "h"] [N "m"] [N "s"]      (at least one part, e.g. 1h30m)

``stable`` is the same metric, with the same labels, measured on the stable version
(rollout gates only). The parser is hand-written and never evaluates Python. Parsed
conditions are immutable values; ``str(condition)`` is their canonical text and parsing
it gives back an equal condition.

>>> cond = parse_condition("p99_latency_ms<1.2*stable")
>>> str(cond)
'p99_latency_ms < 1.2 * stable'
>>> cond.threshold(stable=150.0), cond.holds(170.0, 180.0)
(180.0, True)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal, get_args

from ferryman.errors import InvalidExpressionError, UnknownMetricError
from ferryman.monitoring.base import METRIC_CATALOGUE

#: The comparison operators, as written.
Comparison = Literal["<", "<=", ">", ">=", "==", "!="]
#: The arithmetic operators, as written.
ArithmeticOp = Literal["+", "-", "*", "/"]

COMPARISONS: Final[tuple[str, ...]] = get_args(Comparison)
#: Each comparison in words, for messages: "p99_latency_ms = 240 is above 200".
OPERATOR_WORDS: Final[Mapping[str, str]] = {
    "<": "below",
    "<=": "at most",
    ">": "above",
    ">=": "at least",
    "==": "equal to",
    "!=": "different from",
}

_OPERATOR_LIST = "(<, <=, >, >=, ==, !=)"
_COMPARE: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: Final[Mapping[str, Callable[[float, float], float]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_ADDITIVE: Final[dict[str, ArithmeticOp]] = {"+": "+", "-": "-"}
_MULTIPLICATIVE: Final[dict[str, ArithmeticOp]] = {"*": "*", "/": "/"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD_RE = re.compile(r"[A-Za-z0-9_.]+")
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_UNITS: Final[tuple[tuple[str, int], ...]] = (
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
)
_DURATION_HINT = "a duration such as 30s, 5m, 1h or 1h30m"
# Integral thresholds below this print without a decimal point ("200", not "200.0").
_PLAIN_INTEGER_LIMIT = 1e15
#: Longest condition text accepted, in characters; real conditions are far shorter, and
#: the bound keeps parsing, printing and evaluating (all recursive) within Python's stack.
MAX_CONDITION_LENGTH: Final = 500
_MAX_NESTING = 32


@dataclass(frozen=True)
class Number:
    """A non-negative numeric literal (a minus sign is a :class:`Negate`)."""

    value: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"Number literals are finite and >= 0, got {self.value!r}")

    def __str__(self) -> str:
        if self.value.is_integer() and self.value < _PLAIN_INTEGER_LIMIT:
            return str(int(self.value))
        return repr(self.value)


@dataclass(frozen=True)
class Stable:
    """The condition's metric measured on the stable version."""

    def __str__(self) -> str:
        return "stable"


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Expression

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"-({inner})" if isinstance(self.operand, BinaryOp) else f"-{inner}"


@dataclass(frozen=True)
class BinaryOp:
    """``left op right`` for one of ``+ - * /``."""

    op: ArithmeticOp
    left: Expression
    right: Expression

    def __str__(self) -> str:
        rank = _rank(self.op)
        left = str(self.left)
        if isinstance(self.left, BinaryOp) and _rank(self.left.op) < rank:
            left = f"({left})"
        right = str(self.right)
        # Operators associate to the left, so a right operand of the same rank keeps its
        # parentheses: "a - (b - c)" is not "a - b - c".
        if isinstance(self.right, BinaryOp) and _rank(self.right.op) <= rank:
            right = f"({right})"
        return f"{left} {self.op} {right}"


Expression = Number | Stable | Negate | BinaryOp


def _rank(op: str) -> int:
    return 1 if op in ("+", "-") else 2


def uses_stable(expression: Expression) -> bool:
    """Whether ``expression`` refers to ``stable`` anywhere."""
    if isinstance(expression, Stable):
        return True
    if isinstance(expression, Negate):
        return uses_stable(expression.operand)
    if isinstance(expression, BinaryOp):
        return uses_stable(expression.left) or uses_stable(expression.right)
    return False


def evaluate(expression: Expression, *, stable: float | None = None) -> float:
    """Compute ``expression``'s value.

    Args:
        expression: A parsed right-hand side.
        stable: The value ``stable`` stands for; needed only when the expression uses it.

    Returns:
        The value, a finite float.

    Raises:
        ValueError: ``stable`` is needed but ``None``, a division by zero, or a result
            that is not finite.
    """
    if isinstance(expression, Number):
        return expression.value
    if isinstance(expression, Stable):
        if stable is None:
            raise ValueError("the expression uses 'stable' but no stable value was given")
        return stable
    if isinstance(expression, Negate):
        return -evaluate(expression.operand, stable=stable)
    left = evaluate(expression.left, stable=stable)
    right = evaluate(expression.right, stable=stable)
    if expression.op == "/" and right == 0:
        raise ValueError(f"division by zero in {expression}")
    result = _ARITHMETIC[expression.op](left, right)
    if not math.isfinite(result):
        raise ValueError(f"{expression} does not have a finite value")
    return result


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``metric{labels} op threshold [for duration]``.

    Attributes:
        metric: A name from the metric catalogue.
        labels: The metric's labels as sorted ``(name, value)`` pairs.
        op: The comparison operator.
        right: The right-hand side (the threshold before evaluation).
        duration: How long the comparison must hold (``for 2m``), or ``None``.
    """

    metric: str
    labels: tuple[tuple[str, str], ...]
    op: Comparison
    right: Expression
    duration: timedelta | None = None

    def __str__(self) -> str:
        out = f"{self.metric_text} {self.op} {self.right}"
        if self.duration is not None:
            out += f" for {format_duration(self.duration)}"
        return out

    @property
    def metric_text(self) -> str:
        """The metric with its labels, e.g. ``missing_rate{feature="age"}``."""
        if not self.labels:
            return self.metric
        inner = ", ".join(f"{name}={_quote(value)}" for name, value in self.labels)
        return f"{self.metric}{{{inner}}}"

    @property
    def label_map(self) -> dict[str, str]:
        """The labels as a dict, as :meth:`MetricSource.measure` takes them."""
        return dict(self.labels)

    @property
    def uses_stable(self) -> bool:
        """Whether the threshold refers to ``stable``."""
        return uses_stable(self.right)

    def threshold(self, *, stable: float | None = None) -> float:
        """Evaluate the right-hand side.

        Args:
            stable: The metric's value on the stable version, when the condition uses it.

        Raises:
            ValueError: As :func:`evaluate`.
        """
        return evaluate(self.right, stable=stable)

    def holds(self, observed: float, threshold: float) -> bool:
        """Whether ``observed op threshold`` is true."""
        return _COMPARE[self.op](observed, threshold)


def format_duration(duration: timedelta) -> str:
    """Write a whole number of seconds the way conditions do: ``1h30m``, ``45s``, ``2d``.

    Raises:
        ValueError: ``duration`` is not positive or not a whole number of seconds.
    """
    seconds = duration.total_seconds()
    if seconds <= 0 or not seconds.is_integer():
        raise ValueError(f"durations are whole positive seconds, got {duration}")
    rest = int(seconds)
    parts = []
    for unit, size in _DURATION_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


#: The longest window or ``for`` duration a rule or gate may name (a year).
MAX_DURATION_SECONDS = 365 * 86_400


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h``, ``1h30m`` or ``2d`` into a :class:`timedelta`.

    Raises:
        InvalidExpressionError: Not a duration, or zero.
    """
    seconds = _duration_seconds(text.strip())
    if seconds is None:
        raise InvalidExpressionError(
            f"Invalid duration {text!r}: expected {_DURATION_HINT} "
            "(whole numbers of d, h, m and s, largest unit first).",
            expression=text,
            column=1,
        )
    if seconds == 0:
        raise InvalidExpressionError(
            f"Invalid duration {text!r}: a duration must be longer than zero.",
            expression=text,
            column=1,
        )
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidExpressionError(
            f"Invalid duration {text!r}: expected at most 365d (a year).",
            expression=text,
            column=1,
        )
    return timedelta(seconds=seconds)


def _duration_seconds(text: str) -> int | None:
    """The seconds ``text`` spells, or ``None`` when it is not a duration."""
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        return None
    return sum(
        int(count) * size
        for count, (_, size) in zip(match.groups(), _DURATION_UNITS, strict=True)
        if count is not None
    )


def parse_condition(
    text: str, *, catalogue: Mapping[str, tuple[str, ...]] | None = None
) -> Condition:
    """Parse one condition.

    Args:
        text: The condition, e.g. ``error_rate < 0.01`` or ``null_rate > 0.01 for 5m``.
        catalogue: Metric names and the labels each requires; default: the monitoring
            catalogue (:data:`ferryman.monitoring.base.METRIC_CATALOGUE`).

    Returns:
        The parsed condition.

    Raises:
        InvalidExpressionError: The text is not a condition; the message names the
            column and what was expected there.
        UnknownMetricError: The metric is not in the catalogue (the message lists it),
            or its labels are not the ones it takes.
    """
    known = (
        catalogue
        if catalogue is not None
        else {name: spec.labels for name, spec in METRIC_CATALOGUE.items()}
    )
    if not isinstance(text, str):
        raise InvalidExpressionError(
            f"Invalid condition {text!r}: expected text such as 'error_rate < 0.01'.",
            expression=repr(text),
            column=1,
        )
    if len(text) > MAX_CONDITION_LENGTH:
        raise InvalidExpressionError(
            f"Invalid condition {text[:40]!r}…: it is {len(text)} characters long; "
            f"conditions are at most {MAX_CONDITION_LENGTH}.",
            expression=text,
            column=MAX_CONDITION_LENGTH + 1,
        )
    return _Parser(text, known).condition()


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class _Parser:
    """Recursive descent over the raw text; ``pos`` is a 0-based index into it."""

    def __init__(self, text: str, catalogue: Mapping[str, tuple[str, ...]]) -> None:
        self.text = text
        self.catalogue = catalogue
        self.pos = 0
        self.depth = 0

    # -- errors ---------------------------------------------------------------------------

    def _found(self, at: int) -> str:
        if at >= len(self.text):
            return "the end of the condition"
        word = _WORD_RE.match(self.text, at)
        if word is not None:
            return repr(word.group())
        if self.text.startswith(("<=", ">=", "==", "!="), at):
            return repr(self.text[at : at + 2])
        return repr(self.text[at])

    def _error(self, expected: str, *, at: int | None = None) -> InvalidExpressionError:
        where = self.pos if at is None else at
        return InvalidExpressionError(
            f"Invalid condition {self.text!r}: expected {expected} at column {where + 1}, "
            f"found {self._found(where)}.",
            expression=self.text,
            column=where + 1,
        )

    # -- scanning -------------------------------------------------------------------------

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self, token: str) -> bool:
        self._skip_space()
        return self.text.startswith(token, self.pos)

    def _take(self, token: str) -> bool:
        if self._peek(token):
            self.pos += len(token)
            return True
        return False

    def _name(self) -> str | None:
        self._skip_space()
        match = _NAME_RE.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    # -- grammar --------------------------------------------------------------------------

    def condition(self) -> Condition:
        self._skip_space()
        start = self.pos
        metric = self._name()
        if metric is None:
            raise self._error("a metric name such as error_rate")
        labels = self._labels() if self._peek("{") else ()
        self._check_metric(metric, dict(labels), start)
        after = self.text[start : self.pos].strip()
        op = self._comparison(after)
        right = self._expression()
        duration = self._duration() if self._keyword("for") else None
        self._skip_space()
        if self.pos < len(self.text):
            expected = (
                "the end of the condition"
                if duration is not None
                else "an operator (+, -, *, /), 'for DURATION' or the end of the condition"
            )
            raise self._error(expected)
        return Condition(
            metric=metric,
            labels=labels,
            op=op,
            right=right,
            duration=duration,
        )

    def _keyword(self, word: str) -> bool:
        self._skip_space()
        match = _NAME_RE.match(self.text, self.pos)
        if match is not None and match.group() == word:
            self.pos = match.end()
            return True
        return False

    def _labels(self) -> tuple[tuple[str, str], ...]:
        self._take("{")
        labels: dict[str, str] = {}
        while not self._take("}"):
            self._skip_space()
            at = self.pos
            name = self._name()
            if name is None:
                raise self._error("a label name such as feature, or '}'")
            if name in labels:
                raise InvalidExpressionError(
                    f"Invalid condition {self.text!r}: label {name!r} is given twice "
                    f"(second time at column {at + 1}).",
                    expression=self.text,
                    column=at + 1,
                )
            if not self._take("="):
                raise self._error(f"'=' after the label name {name!r}")
            labels[name] = self._string(name)
            if not self._take(","):
                self._skip_space()
                if not self._peek("}"):
                    raise self._error("',' or '}' after a label")
        return tuple(sorted(labels.items()))

    def _string(self, label: str) -> str:
        self._skip_space()
        start = self.pos
        if not self._take('"'):
            raise self._error(f'a quoted value after {label}=, e.g. {label}="age"')
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                if not chars:
                    raise InvalidExpressionError(
                        f"Invalid condition {self.text!r}: label {label!r} has an empty "
                        f'value at column {start + 1}; give e.g. {label}="age".',
                        expression=self.text,
                        column=start + 1,
                    )
                return "".join(chars)
            if char == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
                char = self.text[self.pos]
            chars.append(char)
            self.pos += 1
        raise InvalidExpressionError(
            f"Invalid condition {self.text!r}: the value of label {label!r} starting at "
            f"column {start + 1} has no closing '\"'.",
            expression=self.text,
            column=start + 1,
        )

    def _check_metric(self, metric: str, labels: dict[str, str], start: int) -> None:
        required = self.catalogue.get(metric)
        if required is None:
            raise UnknownMetricError(
                f"Invalid condition {self.text!r}: unknown metric {metric!r} at column "
                f"{start + 1}. Available: {', '.join(sorted(self.catalogue))}."
            )
        missing = [name for name in required if name not in labels]
        if missing:
            example = ", ".join(f'{name}="..."' for name in required)
            raise UnknownMetricError(
                f"Invalid condition {self.text!r}: metric {metric!r} needs the label(s) "
                f"{', '.join(missing)}, e.g. {metric}{{{example}}}."
            )
        extra = sorted(set(labels) - set(required))
        if extra:
            allowed = ", ".join(required) if required else "no labels"
            raise UnknownMetricError(
                f"Invalid condition {self.text!r}: metric {metric!r} does not take the "
                f"label(s) {', '.join(extra)}; it takes {allowed}."
            )

    def _comparison(self, after: str) -> Comparison:
        self._skip_space()
        for op in ("<=", ">=", "==", "!=", "<", ">"):
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        raise self._error(f"a comparison operator {_OPERATOR_LIST} after {after!r}")

    def _expression(self) -> Expression:
        node = self._term()
        while True:
            self._skip_space()
            op = _ADDITIVE.get(self.text[self.pos : self.pos + 1])
            if op is None:
                return node
            self.pos += 1
            node = BinaryOp(op, node, self._term())

    def _term(self) -> Expression:
        node = self._unary()
        while True:
            self._skip_space()
            op = _MULTIPLICATIVE.get(self.text[self.pos : self.pos + 1])
            if op is None:
                return node
            self.pos += 1
            node = BinaryOp(op, node, self._unary())

    def _unary(self) -> Expression:
        self.depth += 1
        try:
            if self.depth > _MAX_NESTING:
                raise InvalidExpressionError(
                    f"Invalid condition {self.text!r}: parentheses or minus signs are "
                    f"nested more than {_MAX_NESTING} deep at column {self.pos + 1}.",
                    expression=self.text,
                    column=self.pos + 1,
                )
            if self._take("-"):
                return Negate(self._unary())
            return self._atom()
        finally:
            self.depth -= 1

    def _atom(self) -> Expression:
        self._skip_space()
        start = self.pos
        if self._take("("):
            inner = self._expression()
            if not self._take(")"):
                raise self._error(f"')' (to close the '(' at column {start + 1})")
            return inner
        if self._keyword("stable"):
            return Stable()
        number = _NUMBER_RE.match(self.text, self.pos)
        if number is not None:
            word = _WORD_RE.match(self.text, self.pos)
            if word is not None and word.end() > number.end():  # "5m", "1.2.3", "200x"
                raise InvalidExpressionError(
                    f"Invalid condition {self.text!r}: {word.group()!r} at column "
                    f"{start + 1} is not a number; expected e.g. 0.01, 200 or 1e-3.",
                    expression=self.text,
                    column=start + 1,
                )
            value = float(number.group())
            if not math.isfinite(value):
                raise InvalidExpressionError(
                    f"Invalid condition {self.text!r}: the number {number.group()!r} at "
                    f"column {start + 1} is too large.",
                    expression=self.text,
                    column=start + 1,
                )
            self.pos = number.end()
            return Number(value)
        raise self._error("a number, 'stable' or '('")

    def _duration(self) -> timedelta:
        self._skip_space()
        start = self.pos
        word = _WORD_RE.match(self.text, self.pos)
        if word is None:
            raise self._error(f"{_DURATION_HINT} after 'for'")
        self.pos = word.end()
        seconds = _duration_seconds(word.group())
        if seconds is None or seconds == 0:
            reason = (
                "is not a duration; expected "
                f"{_DURATION_HINT} (whole numbers of d, h, m and s, largest unit first)"
                if seconds is None
                else "is zero; a duration must be longer than zero"
            )
            raise InvalidExpressionError(
                f"Invalid condition {self.text!r}: {word.group()!r} at column {start + 1} "
                f"{reason}.",
                expression=self.text,
                column=start + 1,
            )
        return timedelta(seconds=seconds)


__all__ = [
    "COMPARISONS",
    "MAX_CONDITION_LENGTH",
    "OPERATOR_WORDS",
    "ArithmeticOp",
    "BinaryOp",
    "Comparison",
    "Condition",
    "Expression",
    "Negate",
    "Number",
    "Stable",
    "evaluate",
    "format_duration",
    "parse_condition",
    "parse_duration",
    "uses_stable",
]
