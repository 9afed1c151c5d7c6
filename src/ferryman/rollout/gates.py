"""Gates: conditions over windowed metrics that let a rollout advance or roll it back.

A gate is a condition such as ``error_rate < 0.01`` or ``p99_latency_ms < 1.2 * stable``
(the language of :mod:`ferryman.monitoring._expressions`), or a Python callable, given as
a function (:meth:`Gate.from_callable`) or, where gates are stored as text (a server-side
rollout), by its import path ``python:MODULE:ATTRIBUTE`` (:meth:`Gate.from_reference`). It is
evaluated over the candidate's window, and ``stable`` stands for the same metric over the
stable version's window. The answer is one of three:

- ``pass``: the window has enough samples and the condition holds;
- ``fail``: the window has enough samples and the condition does not hold;
- ``inconclusive``: the gate cannot decide yet. Too few samples in the candidate window
  (``min_samples``, default 100), no data (a ``None`` value), no data for the stable
  version when the condition compares with it, or a threshold with no value (a division
  by zero). An inconclusive gate never lets a rollout advance.

A :class:`GateSet` combines gates: all pass → pass; any fail → fail; otherwise
inconclusive. Results serialise to JSON dicts, stored as evidence in a rollout's history.
"""

from __future__ import annotations

import builtins
import functools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ferryman.errors import InvalidInputError
from ferryman.monitoring._expressions import OPERATOR_WORDS, Condition, parse_condition
from ferryman.monitoring.base import METRIC_CATALOGUE, MetricSource, WindowSelector
from ferryman.rollout._callable_gates import (
    CALLABLE_PREFIX,
    STATUS_BY_TEXT,
    STATUSES,
    GateCheck,
    GateMeasurements,
    GateOutcome,
    GateStatus,
    GateVerdict,
    RecordingMeasurements,
    check_allowed_modules,
    check_reference,
    is_reference,
    outcome_of,
    resolve_callable,
)

#: Samples a candidate window needs before a gate can decide, unless configured.
DEFAULT_MIN_SAMPLES: Final = 100

logger = logging.getLogger("ferryman.rollout")


@dataclass(frozen=True)
class GateResult:
    """One gate's answer for one window.

    Attributes:
        gate: The gate's name (its canonical expression unless named otherwise).
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"``.
        observed: The metric's value in the candidate window; ``None`` when there was no
            data, or for a callable gate that returned no :class:`GateOutcome` value.
        threshold: The right-hand side's value (``1.2 * stable`` evaluated); ``None`` when
            it could not be computed, or for a callable gate that returned none.
        samples: What the candidate's value rests on (requests, rows or compared rows;
            requests for a callable gate).
        min_samples: The samples the gate needed to decide.
        reason: A sentence saying why, for people.
        expression: The canonical condition, or ``None`` for a callable gate.
        stable: The metric's value on the stable version, when the condition uses it.
    """

    gate: str
    status: GateStatus
    observed: float | None
    threshold: float | None
    samples: int
    min_samples: int
    reason: str
    expression: str | None = None
    stable: float | None = None

    @property
    def passed(self) -> bool:
        """Whether the status is ``pass``."""
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (numbers, strings and ``None`` only)."""
        return {
            "gate": self.gate,
            "status": self.status,
            "observed": self.observed,
            "threshold": self.threshold,
            "samples": self.samples,
            "min_samples": self.min_samples,
            "reason": self.reason,
            "expression": self.expression,
            "stable": self.stable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Rebuild a result from :meth:`to_dict`'s output (e.g. read from a history).

        Raises:
            InvalidInputError: A field is missing or the status is unknown.
        """
        try:
            status = STATUS_BY_TEXT.get(data["status"])
            if status is None:
                raise InvalidInputError(
                    f"Unknown gate status {data['status']!r}. Available: {', '.join(STATUSES)}."
                )
            return cls(
                gate=str(data["gate"]),
                status=status,
                observed=_optional_float(data["observed"]),
                threshold=_optional_float(data["threshold"]),
                samples=int(data["samples"]),
                min_samples=int(data["min_samples"]),
                reason=str(data["reason"]),
                expression=data.get("expression"),
                stable=_optional_float(data.get("stable")),
            )
        except KeyError as exc:
            raise InvalidInputError(f"Gate result is missing the field {exc.args[0]!r}.") from None


class Gate:
    """A condition that must hold over a rollout step's window.

    Args:
        expression: The condition, e.g. ``error_rate < 0.01`` or ``p99_latency_ms < 1.2 *
            stable``. A ``for`` clause is not allowed: the window is the rollout step's.
        name: How results name the gate; default: the canonical expression.
        min_samples: Samples (integer >= 1) the candidate window needs before the gate
            decides; ``None`` uses the gate set's (or the evaluation's) default.

    Raises:
        InvalidExpressionError: The expression is malformed (the message names the column).
        UnknownMetricError: The metric is not in the catalogue, or its labels are wrong.
        InvalidInputError: A ``for`` clause, or an invalid ``name`` or ``min_samples``.

    Examples:
        >>> Gate("p99_latency_ms<1.2*stable")
        Gate('p99_latency_ms < 1.2 * stable')
    """

    def __init__(
        self, expression: str, *, name: str | None = None, min_samples: int | None = None
    ) -> None:
        condition = parse_condition(expression)
        if condition.duration is not None:
            raise InvalidInputError(
                f"Gate {expression!r} has a 'for' clause; a gate is evaluated over the "
                "rollout step's window, so remove it ('for' belongs to alert rules)."
            )
        self._setup(
            name=str(condition) if name is None else name,
            condition=condition,
            check=None,
            min_samples=min_samples,
        )

    @classmethod
    def from_callable(cls, name: str, check: GateCheck, *, min_samples: int | None = None) -> Gate:
        """Build a gate from a Python function.

        ``check`` receives a :class:`GateMeasurements` and returns ``"pass"``, ``"fail"``,
        ``"inconclusive"``, ``True`` (pass) or ``False`` (fail), or a :class:`GateOutcome`
        (one of those with the observed value and threshold, recorded in the result's
        ``observed`` and ``threshold``). It runs only once the
        candidate window holds ``min_samples`` requests (``request_count``). A ``pass``
        that read a measurement with no data (``value is None``) counts as inconclusive,
        and an exception raised by ``check`` makes the result inconclusive (logged on
        the ``ferryman.rollout`` logger), never a pass.

        Args:
            name: How results name the gate.
            check: The function.
            min_samples: As for :class:`Gate`.

        Raises:
            InvalidInputError: ``name`` is empty, ``check`` is not callable, or
                ``min_samples`` is not an integer >= 1.
        """
        if not callable(check):
            raise InvalidInputError(
                f"Gate {name!r}: check must be callable (GateMeasurements -> verdict), "
                f"got {type(check).__name__}."
            )
        gate = cls.__new__(cls)
        gate._setup(name=name, condition=None, check=check, min_samples=min_samples)
        return gate

    @classmethod
    def from_reference(
        cls,
        reference: str,
        *,
        min_samples: int | None = None,
        import_now: bool = True,
        allowed_modules: Sequence[str] = (),
    ) -> Gate:
        """Build a gate from the import path of a function: ``python:MODULE:ATTRIBUTE``.

        The function is called as :meth:`from_callable`'s ``check`` is, with the same
        guarantees. The gate's name is the reference, which is how a stored rollout
        keeps it. The rollout controller builds its gates with ``import_now=False``, so
        the function is imported at each evaluation in the process that evaluates (the
        server); one it cannot or may not import is inconclusive (logged), never a pass.

        Args:
            reference: E.g. ``python:my_package.checks:latency_ok``; ``ATTRIBUTE`` may
                be dotted (``Checks.latency_ok``). Standard-library modules are refused.
            min_samples: As for :class:`Gate`.
            import_now: Import the function now, so a mistake is reported here (when a
                rollout is created); ``False`` checks only the form and leaves the
                import to each evaluation.
            allowed_modules: Module prefixes the function may come from (``gate_modules``
                setting; ``my_package`` allows ``my_package.checks``); default: none.

        Raises:
            InvalidInputError: The reference or a prefix is malformed; with
                ``import_now``, also when the module is not allowed or cannot be
                imported, the attribute does not exist or is not callable.

        Examples:
            >>> Gate.from_reference("python:my_package.checks:latency_ok", import_now=False)
            Gate.from_reference('python:my_package.checks:latency_ok')
        """
        text = check_reference(reference)
        modules = check_allowed_modules(allowed_modules)
        check = resolve_callable(text, allowed_modules=modules) if import_now else None
        gate = cls.__new__(cls)
        gate._setup(name=text, condition=None, check=check, min_samples=min_samples)
        gate.reference = text
        gate.allowed_modules = modules
        return gate

    @classmethod
    def parse(
        cls, text: str, *, import_now: bool = True, allowed_modules: Sequence[str] = ()
    ) -> Gate:
        """Build a gate from its stored text: a condition, or ``python:MODULE:ATTRIBUTE``.

        Raises:
            InvalidExpressionError, UnknownMetricError, InvalidInputError: As
                :class:`Gate` or :meth:`from_reference`.
        """
        if isinstance(text, str) and is_reference(text):
            return cls.from_reference(text, import_now=import_now, allowed_modules=allowed_modules)
        return cls(text)

    def _setup(
        self,
        *,
        name: str,
        condition: Condition | None,
        check: GateCheck | None,
        min_samples: int | None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"Invalid gate name {name!r}: expected non-empty text.")
        self.name = name
        self.condition = condition
        self.expression = str(condition) if condition is not None else None
        self.check = check
        #: The ``python:MODULE:ATTRIBUTE`` text of a gate built from a reference.
        self.reference: str | None = None
        #: The module prefixes a referenced function may be imported from.
        self.allowed_modules: tuple[str, ...] = ()
        self.min_samples = None if min_samples is None else _check_min_samples(min_samples)

    def __repr__(self) -> str:
        args = [repr(self.expression)] if self.expression is not None else []
        if self.reference is not None:
            args = [repr(self.reference)]
            if self.min_samples is not None:
                args.append(f"min_samples={self.min_samples}")
            if self.allowed_modules:
                args.append(f"allowed_modules={self.allowed_modules!r}")
            return f"Gate.from_reference({', '.join(args)})"
        if self.check is not None:
            args = [repr(self.name), getattr(self.check, "__qualname__", repr(self.check))]
        elif self.name != self.expression:
            args.append(f"name={self.name!r}")
        if self.min_samples is not None:
            args.append(f"min_samples={self.min_samples}")
        factory = "Gate.from_callable" if self.check is not None else "Gate"
        return f"{factory}({', '.join(args)})"

    @property
    def uses_stable(self) -> bool:
        """Whether the gate compares with the stable version (always ``False`` for callables)."""
        return self.condition is not None and self.condition.uses_stable

    def evaluate(
        self,
        source: MetricSource,
        candidate: WindowSelector,
        stable: WindowSelector | None = None,
        *,
        default_min_samples: int = DEFAULT_MIN_SAMPLES,
    ) -> GateResult:
        """Evaluate the gate over the candidate's window.

        Args:
            source: Where metrics come from.
            candidate: The candidate version's window (e.g. the current canary step).
            stable: The stable version's window over the same span, or ``None`` when
                there is no stable version; a gate using ``stable`` is then inconclusive.
            default_min_samples: ``min_samples`` for a gate configured without one.

        Returns:
            The result: status, observed value, threshold, samples and reason.

        Raises:
            UnknownMetricError: The source does not know the gate's metric.
            InvalidInputError: ``default_min_samples`` is not an integer >= 1, or a
                callable returned something other than a verdict or a GateOutcome.
        """
        needed = (
            self.min_samples
            if self.min_samples is not None
            else _check_min_samples(default_min_samples)
        )
        if self.condition is None:
            return self._evaluate_callable(source, candidate, stable, needed)
        return self._evaluate_condition(self.condition, source, candidate, stable, needed)

    def _evaluate_condition(
        self,
        condition: Condition,
        source: MetricSource,
        candidate: WindowSelector,
        stable: WindowSelector | None,
        needed: int,
    ) -> GateResult:
        metric = condition.metric_text
        unit = _unit(condition.metric)
        seen = source.measure(condition.metric, condition.label_map, candidate)

        def result(status: GateStatus, reason: str, **values: float | None) -> GateResult:
            return GateResult(
                gate=self.name,
                status=status,
                observed=seen.value,
                threshold=values.get("threshold"),
                samples=seen.samples,
                min_samples=needed,
                reason=reason,
                expression=self.expression,
                stable=values.get("stable"),
            )

        if seen.samples < needed:
            return result(
                "inconclusive",
                f"{seen.samples} {unit} in the candidate window; {metric} decides from {needed} on",
            )
        if seen.value is None:
            return result("inconclusive", f"no data for {metric} in the candidate window")
        stable_value: float | None = None
        if condition.uses_stable:
            if stable is None:
                return result(
                    "inconclusive",
                    f"{condition.right} compares with the stable version, and there is none",
                )
            base = source.measure(condition.metric, condition.label_map, stable)
            if base.value is None or base.samples == 0:
                return result("inconclusive", f"no data for {metric} on the stable version")
            stable_value = base.value
        try:
            threshold = condition.threshold(stable=stable_value)
        except ValueError as exc:
            return result("inconclusive", f"the threshold has no value: {exc}", stable=stable_value)
        right = f"{threshold:.6g}"
        if stable_value is not None:
            right += f" ({condition.right}, stable = {stable_value:.6g})"
        over = f"over {seen.samples} {unit}"
        if condition.holds(seen.value, threshold):
            return result(
                "pass",
                f"{metric} = {seen.value:.6g} is {OPERATOR_WORDS[condition.op]} {right} {over}",
                threshold=threshold,
                stable=stable_value,
            )
        return result(
            "fail",
            f"{metric} = {seen.value:.6g} is not {OPERATOR_WORDS[condition.op]} {right} {over}",
            threshold=threshold,
            stable=stable_value,
        )

    def _evaluate_callable(
        self,
        source: MetricSource,
        candidate: WindowSelector,
        stable: WindowSelector | None,
        needed: int,
    ) -> GateResult:
        requests = source.measure("request_count", {}, candidate).samples

        def result(
            status: GateStatus, reason: str, outcome: GateOutcome | None = None
        ) -> GateResult:
            return GateResult(
                gate=self.name,
                status=status,
                observed=outcome.observed if outcome is not None else None,
                threshold=outcome.threshold if outcome is not None else None,
                samples=requests,
                min_samples=needed,
                reason=reason,
            )

        check = self.check
        if check is None and self.reference is not None:  # imported where it is evaluated
            try:
                check = resolve_callable(self.reference, allowed_modules=self.allowed_modules)
            except InvalidInputError as exc:
                logger.error(
                    "Gate %r could not be loaded; counting it inconclusive: %s", self.name, exc
                )
                return result("inconclusive", f"the gate could not be loaded: {exc}")
        if check is None:
            raise InvalidInputError(f"Gate {self.name!r} has neither a condition nor a check.")
        if requests < needed:
            return result(
                "inconclusive",
                f"{requests} requests in the candidate window; the gate decides from {needed} on",
            )
        reads = RecordingMeasurements(source=source, candidate=candidate, stable=stable)
        try:
            returned = check(reads)
        except Exception as exc:
            logger.exception("Gate %r raised while evaluating; counting it inconclusive", self.name)
            return result("inconclusive", f"the gate raised {type(exc).__name__}: {exc}")
        outcome = outcome_of(self.name, returned)
        status = outcome.status
        if status == "pass" and reads.empty:
            return result(
                "inconclusive",
                f"the gate returned pass but read {', '.join(reads.empty)}, which had no data",
                outcome,
            )
        return result(status, outcome.reason or f"the gate returned {status}", outcome)


class GateSet:
    """Several gates evaluated together: all pass → pass; any fail → fail; else inconclusive.

    Args:
        gates: Gates, or texts to build them from (:meth:`Gate.parse`): expressions, or
            ``python:MODULE:ATTRIBUTE`` references. Names must be unique.
        min_samples: Samples (integer >= 1) for gates configured without their own.
        import_now: Import referenced functions now, reporting a mistake here; ``False``
            imports them at each evaluation (see :meth:`Gate.from_reference`).
        allowed_modules: As for :meth:`Gate.from_reference`.

    Raises:
        InvalidInputError: Two gates have the same name, ``min_samples`` is invalid, or
            a reference is (as :meth:`Gate.from_reference`).
        InvalidExpressionError, UnknownMetricError: An expression is invalid.
    """

    def __init__(
        self,
        gates: Iterable[Gate | str] = (),
        *,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        import_now: bool = True,
        allowed_modules: Sequence[str] = (),
    ) -> None:
        modules = check_allowed_modules(allowed_modules)
        parse = functools.partial(Gate.parse, import_now=import_now, allowed_modules=modules)
        built = [gate if isinstance(gate, Gate) else parse(gate) for gate in gates]
        names = [gate.name for gate in built]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidInputError(
                f"Gate(s) {', '.join(repr(n) for n in duplicates)} given more than once; "
                "each gate needs a unique name."
            )
        self.gates: tuple[Gate, ...] = tuple(built)
        self.min_samples = _check_min_samples(min_samples)

    def __repr__(self) -> str:
        return f"GateSet({list(self.gates)!r}, min_samples={self.min_samples})"

    def __iter__(self) -> Iterator[Gate]:
        return iter(self.gates)

    def __len__(self) -> int:
        return len(self.gates)

    def evaluate(
        self,
        source: MetricSource,
        candidate: WindowSelector,
        stable: WindowSelector | None = None,
    ) -> GateSetResult:
        """Evaluate every gate over the same windows and combine the results.

        Raises:
            UnknownMetricError: The source does not know a gate's metric.
        """
        results = tuple(
            gate.evaluate(source, candidate, stable, default_min_samples=self.min_samples)
            for gate in self.gates
        )
        return GateSetResult(status=combine_statuses(r.status for r in results), results=results)


@dataclass(frozen=True)
class GateSetResult:
    """Every gate's result and their combination.

    Attributes:
        status: ``pass`` when every gate passed (or there are none), ``fail`` when any
            failed, else ``inconclusive``.
        results: One result per gate, in the set's order.
    """

    status: GateStatus
    results: tuple[GateResult, ...]

    @property
    def failed(self) -> builtins.list[GateResult]:
        """The results that failed."""
        return [r for r in self.results if r.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {"status": self.status, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateSetResult:
        """Rebuild from :meth:`to_dict`'s output; the status is recomputed from the results.

        Raises:
            InvalidInputError: A result is malformed.
        """
        results = tuple(GateResult.from_dict(item) for item in data.get("results", ()))
        return cls(status=combine_statuses(r.status for r in results), results=results)


def combine_statuses(statuses: Iterable[GateStatus]) -> GateStatus:
    """Combine gate statuses: all pass → pass; any fail → fail; else inconclusive.

    No statuses at all combine to ``pass`` (there is nothing to wait for).

    >>> combine_statuses(["pass", "inconclusive", "fail"])
    'fail'
    >>> combine_statuses(["pass", "inconclusive"])
    'inconclusive'
    """
    seen = set(statuses)
    if "fail" in seen:
        return "fail"
    if "inconclusive" in seen:
        return "inconclusive"
    return "pass"


def _check_min_samples(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"Invalid min_samples {value!r}: expected an integer >= 1.")
    return value


def _unit(metric: str) -> str:
    spec = METRIC_CATALOGUE.get(metric)
    return spec.samples if spec is not None else "samples"


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "CALLABLE_PREFIX",
    "DEFAULT_MIN_SAMPLES",
    "Gate",
    "GateCheck",
    "GateMeasurements",
    "GateOutcome",
    "GateResult",
    "GateSet",
    "GateSetResult",
    "GateStatus",
    "GateVerdict",
    "combine_statuses",
]
