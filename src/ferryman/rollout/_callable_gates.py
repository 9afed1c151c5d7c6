"""Python gates: what a gate function reads and returns, and gates named by import path.

A gate function receives a :class:`GateMeasurements` and returns a verdict (``"pass"``,
``"fail"``, ``"inconclusive"``, ``True``, ``False``) or a :class:`GateOutcome` (a verdict
with the value and threshold behind it). A stored rollout keeps gates as text, so a
function that drives a server-side rollout is named by its import path,
``python:MODULE:ATTRIBUTE``, and imported where the gate is built or evaluated, but only
from a module under one of the allowed prefixes (the ``gate_modules`` setting,
``FERRYMAN_GATE_MODULES``, empty by default), since whoever starts a rollout chooses
what the server imports.

Public names are re-exported by :mod:`ferryman.rollout.gates`.
"""

from __future__ import annotations

import builtins
import importlib
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast, get_args

from ferryman.errors import InvalidInputError
from ferryman.monitoring.base import Measurement, MetricSource, WindowSelector

#: What a gate says about a window.
GateStatus = Literal["pass", "fail", "inconclusive"]

#: What a callable gate may return: a status, or ``True`` (pass) / ``False`` (fail).
GateVerdict = GateStatus | bool

STATUSES: Final[tuple[str, ...]] = get_args(GateStatus)
STATUS_BY_TEXT: Final[Mapping[str, GateStatus]] = {
    "pass": "pass",
    "fail": "fail",
    "inconclusive": "inconclusive",
}

#: How a gate's text names an importable callable: ``python:MODULE:ATTRIBUTE``.
CALLABLE_PREFIX: Final = "python:"

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_REFERENCE_RE: Final = re.compile(rf"python:(?P<module>{_DOTTED}):(?P<attribute>{_DOTTED})")
_EXAMPLE: Final = "python:my_package.checks:latency_ok"
_PREFIX_RE: Final = re.compile(_DOTTED)

#: The setting that lists the module prefixes python gates may import from.
MODULES_SETTING: Final = "FERRYMAN_GATE_MODULES"


class GateMeasurements:
    """What a callable gate reads: catalogue metrics over the candidate's (and stable's) window.

    Args:
        source: Where metrics come from.
        candidate: The candidate's window.
        stable: The stable version's window, or ``None`` when there is none.
    """

    def __init__(
        self, *, source: MetricSource, candidate: WindowSelector, stable: WindowSelector | None
    ) -> None:
        self.source = source
        self.candidate_window = candidate
        self.stable_window = stable

    @property
    def has_stable(self) -> bool:
        """Whether a stable window was given."""
        return self.stable_window is not None

    def candidate(self, metric: str, labels: Mapping[str, str] | None = None) -> Measurement:
        """Measure ``metric`` over the candidate's window.

        Raises:
            UnknownMetricError: As :meth:`MetricSource.measure`.
        """
        return self.source.measure(metric, dict(labels or {}), self.candidate_window)

    def stable(self, metric: str, labels: Mapping[str, str] | None = None) -> Measurement:
        """Measure ``metric`` over the stable version's window.

        Raises:
            InvalidInputError: There is no stable window (check :attr:`has_stable`).
            UnknownMetricError: As :meth:`MetricSource.measure`.
        """
        if self.stable_window is None:
            raise InvalidInputError(
                "This evaluation has no stable version to compare with; check "
                "GateMeasurements.has_stable before reading stable metrics."
            )
        return self.source.measure(metric, dict(labels or {}), self.stable_window)


@dataclass(frozen=True)
class GateOutcome:
    """A callable gate's verdict with the numbers behind it, recorded in the evidence.

    Attributes:
        verdict: ``"pass"``, ``"fail"``, ``"inconclusive"``, ``True`` (pass) or ``False``.
        observed: The value the gate judged (the result's ``observed``), or ``None``.
        threshold: What it was compared with (the result's ``threshold``), or ``None``.
        reason: A sentence for people; ``None``: "the gate returned <status>".

    Raises:
        InvalidInputError: The verdict is not one of those, a number is not a finite
            real number, or the reason is not text.

    Examples:
        >>> GateOutcome(False, observed=212.0, threshold=200.0).status
        'fail'
    """

    verdict: GateVerdict
    observed: float | None = None
    threshold: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if _status(self.verdict) is None:
            raise InvalidInputError(
                f"Invalid GateOutcome verdict {self.verdict!r}: expected 'pass', 'fail', "
                "'inconclusive', True or False."
            )
        for field in ("observed", "threshold"):
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(
                    f"GateOutcome {field} {value!r} is not a number; expected a float or None."
                )
            if not math.isfinite(value):
                raise InvalidInputError(
                    f"GateOutcome {field} is {value!r}; expected a finite number, or None "
                    "when there is no value."
                )
            object.__setattr__(self, field, float(value))
        if self.reason is not None and not isinstance(self.reason, str):
            raise InvalidInputError(f"GateOutcome reason {self.reason!r} is not text.")

    @property
    def status(self) -> GateStatus:
        """The verdict as a status: ``True`` is ``pass``, ``False`` is ``fail``."""
        status = _status(self.verdict)
        return "inconclusive" if status is None else status  # never None: checked at init


#: A Python gate: reads measurements, returns a verdict or an outcome.
GateCheck = Callable[[GateMeasurements], GateVerdict | GateOutcome]


class RecordingMeasurements(GateMeasurements):
    """Remembers which reads had no data, so a pass built on them is not trusted."""

    def __init__(
        self, *, source: MetricSource, candidate: WindowSelector, stable: WindowSelector | None
    ) -> None:
        super().__init__(source=source, candidate=candidate, stable=stable)
        self.empty: builtins.list[str] = []

    def candidate(self, metric: str, labels: Mapping[str, str] | None = None) -> Measurement:
        return self._note("candidate", metric, super().candidate(metric, labels))

    def stable(self, metric: str, labels: Mapping[str, str] | None = None) -> Measurement:
        return self._note("stable", metric, super().stable(metric, labels))

    def _note(self, window: str, metric: str, measurement: Measurement) -> Measurement:
        if measurement.value is None:
            self.empty.append(f"{metric} ({window})")
        return measurement


def outcome_of(name: str, returned: object) -> GateOutcome:
    """Read what a gate function returned as an outcome.

    Raises:
        InvalidInputError: It is neither a verdict nor a :class:`GateOutcome`.
    """
    if isinstance(returned, GateOutcome):
        return returned
    status = _status(returned)
    if status is None:
        raise InvalidInputError(
            f"Gate {name!r} returned {returned!r}; expected 'pass', 'fail', 'inconclusive', "
            "True, False or a GateOutcome."
        )
    return GateOutcome(status)


def is_reference(text: str) -> bool:
    """Whether a gate's text names a callable (``python:…``) rather than a condition."""
    return text.lstrip().startswith(CALLABLE_PREFIX)


def check_reference(reference: str) -> str:
    """Check the form of ``python:MODULE:ATTRIBUTE`` without importing anything.

    Returns:
        The reference without surrounding whitespace.

    Raises:
        InvalidInputError: The text is malformed, or the module is part of the standard
            library (a gate runs code in the server, and no standard function is a gate).
    """
    text = reference.strip() if isinstance(reference, str) else None
    match = _REFERENCE_RE.fullmatch(text) if text is not None else None
    if text is None or match is None:
        raise InvalidInputError(
            f"Invalid callable gate {reference!r}: expected python:MODULE:ATTRIBUTE with "
            f"dotted Python names, e.g. {_EXAMPLE}."
        )
    module_name = match["module"]
    if module_name.partition(".")[0] in sys.stdlib_module_names:
        raise InvalidInputError(
            f"Callable gate {reference!r}: {module_name!r} is a standard-library module; "
            f"name a function of your own, e.g. {_EXAMPLE}."
        )
    return text


def check_allowed_modules(prefixes: Sequence[str]) -> tuple[str, ...]:
    """Check a list of module prefixes python gates may import from.

    Args:
        prefixes: Dotted module names, e.g. ``["my_package", "team.gates"]``.

    Returns:
        The prefixes as a tuple, without surrounding whitespace.

    Raises:
        InvalidInputError: ``prefixes`` is a single string, or one is not a dotted
            Python name.
    """
    if isinstance(prefixes, str):
        raise InvalidInputError(
            f"Invalid allowed gate modules {prefixes!r}: expected a list of module "
            f"prefixes, e.g. ['my_package'] ({MODULES_SETTING}='[\"my_package\"]')."
        )
    checked = []
    for prefix in prefixes:
        text = prefix.strip() if isinstance(prefix, str) else None
        if text is None or not _PREFIX_RE.fullmatch(text):
            raise InvalidInputError(
                f"Invalid allowed gate module {prefix!r}: expected a dotted Python module "
                "name such as my_package or my_package.checks."
            )
        checked.append(text)
    return tuple(checked)


def check_module_allowed(reference: str, allowed_modules: Sequence[str]) -> None:
    """Refuse a reference whose module is not under one of ``allowed_modules``.

    A module is under a prefix when it is the prefix or inside it: ``my_package`` allows
    ``my_package`` and ``my_package.checks``, not ``my_package_extra``.

    Args:
        reference: A well-formed ``python:MODULE:ATTRIBUTE`` (see :func:`check_reference`).
        allowed_modules: The allowed prefixes (the ``gate_modules`` setting).

    Raises:
        InvalidInputError: The module is under none of them, or a prefix is malformed.
    """
    prefixes = check_allowed_modules(allowed_modules)
    module_name = reference.strip().removeprefix(CALLABLE_PREFIX).partition(":")[0]
    if any(module_name == p or module_name.startswith(f"{p}.") for p in prefixes):
        return
    listed = ", ".join(repr(p) for p in prefixes) if prefixes else "empty"
    raise InvalidInputError(
        f"Callable gate {reference!r}: module {module_name!r} is not allowed; python gates "
        f"may import only modules under the prefixes of the gate_modules setting "
        f"({MODULES_SETTING}, now {listed}). To allow it, set "
        f"{MODULES_SETTING}='[\"{module_name}\"]' (JSON) for the server and the command line."
    )


def resolve_callable(reference: str, *, allowed_modules: Sequence[str] = ()) -> GateCheck:
    """Import the callable ``python:MODULE:ATTRIBUTE`` names, if its module is allowed.

    ``ATTRIBUTE`` may be dotted (``Checks.latency_ok``); the form is checked as by
    :func:`check_reference`, and the module against ``allowed_modules`` as by
    :func:`check_module_allowed`, before anything is imported.

    Args:
        reference: E.g. ``python:my_package.checks:latency_ok``.
        allowed_modules: Module prefixes the function may come from (the
            ``gate_modules`` setting); empty: none, every reference is refused.

    Returns:
        The callable.

    Raises:
        InvalidInputError: The text is malformed, the module is part of the standard
            library, not under an allowed prefix or cannot be imported (the message
            carries the import's error), the attribute does not exist, or it is not
            callable.
    """
    text = check_reference(reference)
    check_module_allowed(text, allowed_modules)
    module_name, _, attribute = text.removeprefix(CALLABLE_PREFIX).partition(":")
    try:
        target: object = importlib.import_module(module_name)
    except Exception as exc:  # any failure while importing user code is the user's to fix
        raise InvalidInputError(
            f"Callable gate {reference!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}); install it, or add its directory to PYTHONPATH "
            "of both the command line and the server."
        ) from exc
    where = module_name
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise InvalidInputError(
                f"Callable gate {reference!r}: {where!r} has no attribute {part!r}."
            )
        target = getattr(target, part)
        where = f"{where}.{part}"
    if not callable(target):
        raise InvalidInputError(
            f"Callable gate {reference!r}: {module_name}:{attribute} is a "
            f"{type(target).__name__}, not a callable; expected a function taking "
            "GateMeasurements and returning a verdict."
        )
    return cast(GateCheck, target)


def _status(verdict: object) -> GateStatus | None:
    """The status a verdict stands for, or ``None`` when it is not a verdict."""
    if verdict is True:
        return "pass"
    if verdict is False:
        return "fail"
    if isinstance(verdict, str):
        return STATUS_BY_TEXT.get(verdict)
    return None


__all__ = [
    "CALLABLE_PREFIX",
    "MODULES_SETTING",
    "STATUSES",
    "STATUS_BY_TEXT",
    "GateCheck",
    "GateMeasurements",
    "GateOutcome",
    "GateStatus",
    "GateVerdict",
    "RecordingMeasurements",
    "check_allowed_modules",
    "check_module_allowed",
    "check_reference",
    "is_reference",
    "outcome_of",
    "resolve_callable",
]
