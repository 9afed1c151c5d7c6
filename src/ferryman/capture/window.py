"""Durations written the short way: ``90s``, ``15m``, ``1h``, ``7d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

from ferryman.errors import InvalidInputError

_WINDOW = re.compile(r"^\s*(?P<amount>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_window(text: str) -> timedelta:
    """Parse a duration such as ``90s``, ``15m``, ``1h``, ``1.5h``, ``7d`` or ``2w``.

    >>> parse_window("1h"), parse_window("30m")
    (datetime.timedelta(seconds=3600), datetime.timedelta(seconds=1800))

    Raises:
        InvalidInputError: The text is not a positive number followed by s, m, h, d or w.
    """
    match = _WINDOW.match(text) if isinstance(text, str) else None
    if match is None or float(match["amount"]) <= 0:
        raise InvalidInputError(
            f"Invalid window {text!r}: expected a positive number and a unit, e.g. 90s, 15m, "
            "1h, 7d or 2w."
        )
    return timedelta(seconds=float(match["amount"]) * _SECONDS[match["unit"]])
