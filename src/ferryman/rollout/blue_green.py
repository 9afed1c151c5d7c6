"""Blue-green: green (the candidate) loads beside blue, passes checks, then takes all traffic.

Stages: ``preview`` — every process loads and warms green while blue serves everything;
the controller runs the pre-promotion checks on green (it is loaded and ready; smoke
requests, from a sample file or recent captured requests, give the same outputs on green
as on blue, up to ``smoke_tolerance``). Then the switch: one change of weights sends
100 % of traffic to green (each process switches only once green is warm in it, so no
request fails), and the endpoint's alias moves. ``keeping`` — blue stays loaded for
``keep_previous_seconds`` so that a rollback is instant; gates, if any, watch green;
then blue is unloaded and the rollout succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ferryman.rollout._evidence import baked, gate_failure
from ferryman.rollout.base import Decision, Phase, Rollout
from ferryman.rollout.gates import GateSetResult


@dataclass(frozen=True)
class SmokeResult:
    """Green's outputs compared with blue's on the smoke requests.

    Attributes:
        rows: Rows compared.
        mismatches: Rows whose outputs differ.
        errors: Rows green failed on (with the first error message in ``detail``).
        source: Where the rows came from: ``sample-file``, ``captured`` or ``profile``.
        detail: The first differing rows, for the history.
    """

    rows: int
    mismatches: int
    errors: int
    source: str
    detail: dict[str, Any] = field(default_factory=dict)

    def passed(self, tolerance: float) -> bool:
        """Whether green errs on no row and differs on at most ``tolerance`` of them."""
        return self.rows > 0 and self.errors == 0 and self.mismatches <= tolerance * self.rows

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "rows": self.rows,
            "mismatches": self.mismatches,
            "errors": self.errors,
            "source": self.source,
            **self.detail,
        }


def decide(
    rollout: Rollout,
    gates: GateSetResult | None,
    now: datetime,
    *,
    green_ready: bool,
    smoke: SmokeResult | None,
) -> Decision | None:
    """What a running blue-green rollout should do now.

    Args:
        rollout: The rollout.
        gates: Gates over green's window after the switch, or ``None``.
        now: The current time (UTC).
        green_ready: Whether green is loaded and warmed up (in the controller's process).
        smoke: The smoke checks' outcome once run (preview stage), else ``None``.
    """
    if rollout.phase is not Phase.RUNNING:
        return None
    if rollout.stage == "preview":
        if not green_ready or smoke is None:
            return None
        evidence = {"smoke": smoke.to_dict()}
        if not smoke.passed(rollout.options.smoke_tolerance):
            return Decision(
                "rollback",
                f"pre-promotion checks failed on green {rollout.candidate}: "
                f"{smoke.mismatches} of {smoke.rows} smoke rows differ from blue, "
                f"{smoke.errors} failed",
                detail=evidence,
            )
        return Decision(
            "switch",
            f"green {rollout.candidate} is ready and passed {smoke.rows} smoke rows; "
            "switched 100 % of traffic to it",
            detail=evidence,
        )
    failure = gate_failure(rollout, gates)
    if failure is not None:
        return failure
    if baked(rollout, now, rollout.options.keep_previous_seconds):
        return Decision(
            "succeed",
            f"kept blue {rollout.stable} for {rollout.options.keep_previous_seconds:g} s; "
            "unloading it",
            changes={"phase": Phase.SUCCEEDED},
            detail={"gates": gates.to_dict()} if gates else {},
        )
    return None
