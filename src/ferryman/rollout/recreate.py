"""Recreate: unload the old version, load the new one; requests in between get 503.

The cheapest strategy: never two versions in memory. Each server process unloads the
stable version, loads and warms the candidate, and reports how long it could not answer
(its downtime) to the rollout's history; requests in that gap get 503 with
``Retry-After``. The rollout finishes once the candidate serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ferryman.rollout.base import Decision, Phase, Rollout


def decide(rollout: Rollout, replacements: Sequence[dict[str, Any]]) -> Decision | None:
    """Finish once a server process reported the candidate serving.

    Args:
        rollout: The rollout.
        replacements: The ``replaced`` events' details so far (process, downtime).
    """
    if rollout.phase is not Phase.RUNNING or not replacements:
        return None
    worst = max(float(r.get("downtime_seconds", 0.0)) for r in replacements)
    return Decision(
        "finish",
        f"{rollout.candidate} replaced {rollout.stable}; measured downtime {worst * 1000:.0f} ms",
        detail={"downtime_seconds": worst, "processes": list(replacements)},
    )
