"""Rollout durations (`--bake`, `--keep-previous`, `--interval`): parsed, or refused by name."""

from __future__ import annotations

import pytest

from ferryman.errors import InvalidInputError
from ferryman.rollout.base import parse_duration


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5m", None),
        ("1h30m", None),
        (90, None),
        ("-1", "expected a duration >= 0"),
        ("nan", "expected a duration >= 0"),
        ("1e300", "expected at most"),
        ("later", "expected e.g. 30s, 5m, 1h30m or seconds"),
        (True, "expected e.g. 30s, 5m or 1h"),
    ],
)
def test_rollout_durations_parse_or_name_what_is_wrong(
    text: str | int | bool, message: str | None
) -> None:
    if message is None:
        assert parse_duration(text, field_name="bake") > 0
        return
    with pytest.raises(InvalidInputError, match=message):
        parse_duration(text, field_name="bake")
