"""The fast route for all-float64 signatures: JSON numbers straight into one float64 matrix.

Most served models take only float64 columns, and most requests send plain numbers. For
those, the codecs skip the column-by-column route and build the float64 matrix with one
NumPy call; the validator then only checks it for missing values. Whenever a value is not
a plain JSON number (a null, a string, a boolean, a nested array), :func:`float_matrix`
returns ``None`` and the codec takes its general route, which produces the precise error
or the general result. So the fast route changes the speed of a request, never its
outcome: the same matrix, the same errors.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

_NUMBER_TYPES = frozenset({int, float})

#: Below this many values, the validator's own route for records and rows costs no more
#: than this one, so the codecs keep to it; and up to this many, checking each value's
#: type costs less than NumPy's fixed costs.
FEW_VALUES = 128

#: Above this fraction of values equal to 0 or 1, checking every value's type at once is
#: cheaper than looking at those values one by one.
_MANY_CANDIDATES = 0.125


def float_matrix(nested: Sequence[Collection[Any]], shape: tuple[int, int]) -> np.ndarray | None:
    """Convert nested JSON numbers into one float64 array of ``shape``, or step aside.

    Args:
        nested: Values decoded from JSON by orjson: ``shape[0]`` collections of
            ``shape[1]`` values each (rows of a batch, or one list of values per column),
            each iterable in order.
        shape: The shape the values must have; both sizes at least 1.

    Returns:
        A fresh float64 array of ``shape`` with the values in row-major order, exactly as
        ``np.array(nested, dtype=np.float64)`` would hold them, or ``None`` when a value
        is not a plain ``int`` or ``float`` or the nesting does not match ``shape``, so
        that the caller takes its general route.
    """
    rows, width = shape
    try:
        if len(nested) != rows or set(map(len, nested)) != {width}:
            return None
    except TypeError:
        return None  # a value where a collection was expected
    flat: list[Any] = list(itertools.chain.from_iterable(nested))
    matrix = np.empty(len(flat), dtype=np.float64)
    try:
        # struct converts in C and refuses what is not a number (strings, nulls, arrays,
        # objects) and ints beyond float64; ints round as NumPy rounds them.
        struct.pack_into(f"{len(flat)}d", matrix.data, 0, *flat)
    except (struct.error, TypeError, OverflowError):
        return None
    # Booleans pass as numbers (True as 1.0). Few values: check every type. Many: only a
    # value of 0 or 1 can be a boolean, so check the types of those, unless they abound.
    if len(flat) > FEW_VALUES:
        candidates = np.flatnonzero((matrix == 0) | (matrix == 1))
        if candidates.size <= _MANY_CANDIDATES * matrix.size:
            if any(type(flat[index]) not in _NUMBER_TYPES for index in candidates.tolist()):
                return None
            return matrix.reshape(shape)
    if not set(map(type, flat)) <= _NUMBER_TYPES:
        return None
    return matrix.reshape(shape)
