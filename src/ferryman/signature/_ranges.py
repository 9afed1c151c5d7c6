"""count_out_of_range: the monitoring signals validation deliberately lets through."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError
from ferryman.signature._specs import Signature


def count_out_of_range(signature: Signature, data: pd.DataFrame | np.ndarray) -> dict[str, int]:
    """Count values outside the training range and unseen categories, per column.

    Numeric columns count values below ``minimum`` or above ``maximum`` (missing values
    never count); string and category columns with known ``categories`` count values
    not among them. Other columns are not checked.

    Args:
        signature: The signature that validated ``data``.
        data: A batch as returned by :meth:`Signature.validate`.

    Returns:
        Column name to count, only for columns with a non-zero count (an empty dict
        means everything was within the training range).

    Raises:
        InvalidInputError: ``data`` is not a DataFrame or 2-D array with the
            signature's columns.

    Example:
        >>> import pandas as pd
        >>> from ferryman.signature import infer_signature
        >>> signature = infer_signature(pd.DataFrame({"x": [1.0, 5.0], "c": ["a", "b"]}))
        >>> batch = signature.validate([{"x": 9.0, "c": "a"}, {"x": 2.0, "c": "z"}])
        >>> count_out_of_range(signature, batch)
        {'x': 1, 'c': 1}
    """
    plan = signature._validation_plan()
    counts: dict[str, int] = {}
    if isinstance(data, np.ndarray):
        if data.ndim != 2 or data.shape[1] != plan.width:
            raise InvalidInputError(
                f"Expected a 2-D array with {plan.width} columns, got shape {data.shape}."
            )
        matrix = data[:, plan.range_positions] if plan.range_positions.size else None
    elif isinstance(data, pd.DataFrame):
        present = set(data.columns.tolist())
        missing = [name for name in plan.names if name not in present]
        if missing:
            raise InvalidInputError(
                f"The batch lacks the signature columns {missing}; pass the output of "
                "Signature.validate."
            )
        matrix = _range_matrix(plan.range_index, data)
    else:
        raise InvalidInputError(
            f"Expected a DataFrame or ndarray from Signature.validate, got {type(data).__name__}."
        )
    if matrix is not None:
        with np.errstate(invalid="ignore"):
            outside = (matrix < plan.range_lows) | (matrix > plan.range_highs)
        for name, count in zip(plan.range_names, outside.sum(axis=0).tolist(), strict=True):
            if count:
                counts[name] = int(count)
    if isinstance(data, pd.DataFrame):
        for name, categories in plan.category_columns:
            column = data[name]
            unseen = int((~column.isin(categories) & column.notna()).sum())
            if unseen:
                counts[name] = unseen
    return {name: counts[name] for name in plan.names if name in counts}


def _range_matrix(names: pd.Index, frame: pd.DataFrame) -> np.ndarray | None:
    if not len(names):
        return None
    selected = frame if frame.columns.equals(names) else frame[names]
    return selected.to_numpy(dtype=np.float64, na_value=np.nan)
