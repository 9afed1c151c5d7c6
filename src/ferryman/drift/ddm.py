"""DDM, the drift detection method for a classifier's error stream.

Gama, Medas, Castillo and Rodrigues, "Learning with drift detection" (SBIA 2004). With
``p`` the error rate so far and ``s = sqrt(p (1 - p) / n)``, DDM remembers the smallest
``p + s`` seen and warns when ``p + s`` exceeds it by ``warning_level`` times its
``s``, and detects a change at ``drift_level`` times. It watches only for more errors,
and its false-alarm rate is not calibrated.

Its error rate and minimum are cumulative since the last reset, so the longer a stream
has been quiet, the more evidence a change needs: in ``bench/drift/concept.py``, after
10,000 quiet values, DDM at 3 sd is slower than a moving average held to its own low
false-alarm rate; at ``drift_level=2.0`` it is faster, at about 6 false alarms per
10,000 values. :class:`~ferryman.drift.PageHinkley` is the detector to alert on.
"""

from __future__ import annotations

import math

from ferryman.drift._parameters import Configured, check_integer, check_number
from ferryman.errors import InvalidInputError


class DDM(Configured):
    """Drift detection method on a 0/1 error stream (1 = the prediction was wrong).

    Args:
        min_instances: Updates, after creation or a detection, before any decision.
        warning_level: Standard deviations above the best level for a warning.
        drift_level: Standard deviations above the best level for a change.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> errors = np.concatenate([rng.random(2000) < 0.1, rng.random(2000) < 0.3])
        >>> detector = DDM()
        >>> for error in errors:
        ...     detector.update(error)
        >>> detector.detections
        (2011,)
    """

    name = "ddm"
    _n: int
    _p: float
    _p_min: float
    _s_min: float
    _warning: bool

    def __init__(
        self, *, min_instances: int = 30, warning_level: float = 2.0, drift_level: float = 3.0
    ) -> None:
        self.min_instances = check_integer("DDM", "min_instances", min_instances, low=1)
        self.warning_level = check_number("DDM", "warning_level", warning_level, low=0)
        self.drift_level = check_number("DDM", "drift_level", drift_level, low=0)
        if self.drift_level < self.warning_level:
            raise InvalidInputError(
                f"DDM: drift_level ({drift_level!r}) must be >= warning_level ({warning_level!r})."
            )
        self._updates = 0
        self._detections: list[int] = []
        self._drift = False
        self._reset()

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        return self._drift

    @property
    def warning_detected(self) -> bool:
        """Whether the error rate is above the warning level (and not yet a change)."""
        return self._warning

    @property
    def detections(self) -> tuple[int, ...]:
        """Zero-based stream indices of every update that detected a change."""
        return tuple(self._detections)

    def update(self, x: float) -> None:
        """Feed whether the next prediction was wrong (1 or True) or right (0 or False).

        Raises:
            InvalidInputError: ``x`` is not 0, 1, False or True.
        """
        if x not in (0, 1):
            raise InvalidInputError(f"DDM.update needs 0 or 1 (an error flag), got {x!r}.")
        if self._drift:
            self._reset()
            self._drift = False
        index = self._updates
        self._updates += 1
        self._n += 1
        self._p += (float(x) - self._p) / self._n
        s = math.sqrt(self._p * (1 - self._p) / self._n)
        self._warning = False
        if self._n < self.min_instances:
            return
        if self._p + s <= self._p_min + self._s_min:
            self._p_min, self._s_min = self._p, s
        level = self._p + s
        if level > self._p_min + self.drift_level * self._s_min:
            self._drift = True
            self._detections.append(index)
        elif level > self._p_min + self.warning_level * self._s_min:
            self._warning = True

    def _reset(self) -> None:
        self._n = 0
        self._p = 0.0
        self._p_min = math.inf
        self._s_min = math.inf
        self._warning = False
