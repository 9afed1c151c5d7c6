"""Redacting personal data in free text: emails, card numbers, IP addresses, phone numbers.

What counts as each kind (documented in ``docs/capture.md``):

- ``[EMAIL]``: ``local@domain.tld``, the usual address characters on each side.
- ``[IP]``: an IPv6 address (any form :mod:`ipaddress` accepts, zone ids included), or a
  dotted-quad IPv4 address with every part 0-255.
- ``[CARD]``: 13 to 19 digits, optionally grouped by single spaces or dashes, whose digits
  pass the Luhn check (a digit run that fails it is left for the phone rule).
- ``[PHONE]``: an international number (``+`` then 8-15 digits, spaces, dots, dashes or
  parentheses between them), a North American number (``555-123-4567``,
  ``(555) 123 4567``) or a national number starting with ``0`` with 9-11 digits
  (``020 7946 0958``, ``06 12 34 56 78``). Bare digit runs without a ``+`` or a leading
  ``0`` (order numbers, amounts, dates) are kept.

The rules run in that order, so a card number is never half-eaten by the phone rule. A
cheap check (does the text hold an ``@``, a ``:`` or a digit at all?) skips the regular
expressions for text that cannot contain any of these; the Arrow-level
:func:`redact_array` runs it vectorised and then works once per distinct value.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import pyarrow as pa
import pyarrow.compute as pc

EMAIL = "[EMAIL]"
CARD = "[CARD]"
IP = "[IP]"
PHONE = "[PHONE]"

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_EMAIL_RE = re.compile(
    rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.\-]+@(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
)
# Candidates only: ipaddress decides. Two colons at least; a zone id after '%'.
_IPV6_RE = re.compile(
    r"(?<![0-9A-Za-z:.])(?=[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:)[0-9A-Fa-f:.]{2,45}"
    r"(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"(?<![0-9.])(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9])")
_CARD_RE = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])")
_PHONE_RES = (
    re.compile(r"(?<![0-9A-Za-z+])\+[0-9][0-9 ().\-]{6,22}[0-9](?![0-9])"),
    re.compile(r"(?<![0-9])(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}(?![0-9])"),
    re.compile(r"(?<![0-9A-Za-z])0[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){1,4}(?![0-9])"),
)
#: Digits each phone rule requires, inclusive.
_PHONE_DIGITS = ((8, 15), (10, 10), (9, 11))

#: RE2 pattern (pyarrow.compute) for text that may hold something to redact.
_MAYBE = r"[@:0-9]"


def redact_text(text: str) -> str:
    """Replace emails, IP addresses, card numbers and phone numbers in ``text``.

    Args:
        text: Free text.

    Returns:
        The text with each finding replaced by ``[EMAIL]``, ``[IP]``, ``[CARD]`` or
        ``[PHONE]``; text without any is returned unchanged.

    >>> redact_text("mail ann@example.org from 10.0.0.7, card 4111 1111 1111 1111")
    'mail [EMAIL] from [IP], card [CARD]'
    >>> redact_text("call +44 20 7946 0958 about order 1234567")
    'call [PHONE] about order 1234567'
    """
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
    if ":" in text:
        text = _IPV6_RE.sub(_ipv6, text)
    if not any(character.isdigit() for character in text):
        return text
    text = _IPV4_RE.sub(IP, text)
    text = _CARD_RE.sub(_card, text)
    for pattern, (low, high) in zip(_PHONE_RES, _PHONE_DIGITS, strict=True):
        text = pattern.sub(functools.partial(_phone, low=low, high=high), text)
    return text


def redact_array(values: pa.Array) -> pa.Array:
    """Redact every string of an Arrow array; other types are turned into text first.

    Rows that cannot hold anything to redact (no ``@``, ``:`` or digit) are found
    vectorised and left alone; the others are redacted once per distinct value.

    Args:
        values: An Arrow array (chunked arrays must be combined first).

    Returns:
        A string array of the same length, nulls kept.
    """
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    if len(text) == 0:
        return text
    maybe = pc.fill_null(pc.match_substring_regex(text, _MAYBE), False)
    if not pc.any(maybe).as_py():
        return text
    candidates = text.filter(maybe)
    distinct = pc.unique(candidates)
    redacted = pa.array([redact_text(value) for value in distinct.to_pylist()], pa.string())
    replaced = redacted.take(pc.index_in(candidates, value_set=distinct))
    return pc.replace_with_mask(text, maybe, replaced)


def _ipv6(match: re.Match[str]) -> str:
    found = match.group(0)
    candidate = found.rstrip(".")  # a full stop ending a sentence is not part of it
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return found
    return IP + found[len(candidate) :]


def _card(match: re.Match[str]) -> str:
    digits = [int(character) for character in match.group(0) if character.isdigit()]
    return CARD if _luhn_valid(digits) else match.group(0)


def _phone(match: re.Match[str], low: int, high: int) -> str:
    count = sum(character.isdigit() for character in match.group(0))
    return PHONE if low <= count <= high else match.group(0)


def _luhn_valid(digits: list[int]) -> bool:
    """Whether a digit sequence passes the Luhn checksum that card numbers carry.

    >>> _luhn_valid([int(c) for c in "4111111111111111"])
    True
    >>> _luhn_valid([int(c) for c in "4111111111111112"])
    False
    """
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
