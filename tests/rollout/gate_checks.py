"""Gate functions the rollout tests name by import path (``python:tests.rollout.gate_checks:…``)."""

from __future__ import annotations

from ferryman.rollout import GateMeasurements, GateOutcome

#: The p99 latency (ms) the candidate may reach.
LATENCY_LIMIT_MS = 200.0

#: Not callable: a reference to it is refused.
NOT_A_FUNCTION = 42


def latency_ok(m: GateMeasurements) -> bool:
    """Pass when the candidate's p99 latency is at most the limit."""
    value = m.candidate("p99_latency_ms").value
    return value is not None and value <= LATENCY_LIMIT_MS


def latency_with_evidence(m: GateMeasurements) -> GateOutcome:
    """As :func:`latency_ok`, returning the value and the limit for the evidence."""
    value = m.candidate("p99_latency_ms").value
    if value is None:
        return GateOutcome("inconclusive", reason="no latency measured yet")
    return GateOutcome(
        value <= LATENCY_LIMIT_MS,
        observed=value,
        threshold=LATENCY_LIMIT_MS,
        reason=f"p99 latency {value:g} ms against a limit of {LATENCY_LIMIT_MS:g} ms",
    )


def broken(m: GateMeasurements) -> bool:
    """Raise, as a buggy gate would."""
    raise RuntimeError("the latency service is down")


class Checks:
    """Gates grouped in a class: ``python:tests.rollout.gate_checks:Checks.errors_ok``."""

    @staticmethod
    def errors_ok(m: GateMeasurements) -> str:
        """Pass below 1 % errors; fail above."""
        value = m.candidate("error_rate").value
        if value is None:
            return "inconclusive"
        return "pass" if value < 0.01 else "fail"
