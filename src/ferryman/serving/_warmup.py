"""A synthetic, valid input row for warming up a freshly loaded version.

The row is typical rather than random: the median of each numeric feature and the most
frequent category, from the version's reference profile; failing that, values inside the
signature's training range. It is a record (dict of column to JSON value), so warming up
exercises the same validator as a real request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ferryman.signature import (
    CategoricalProfile,
    ColumnSpec,
    NumericProfile,
    ReferenceProfile,
    Signature,
)


def sample_row(signature: Signature, profile: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return one record that ``signature`` accepts.

    Args:
        signature: The version's signature.
        profile: The version's stored reference profile (``ReferenceProfile.to_dict()``),
            or ``None``.
    """
    features: dict[str, NumericProfile | CategoricalProfile] = {}
    if profile is not None:
        try:
            parsed = ReferenceProfile.from_dict(profile)
        except ValueError:  # an old or edited profile: fall back to the signature
            parsed = None
        if parsed is not None:
            features = {feature.name: feature for feature in parsed.features}
    return {column.name: _value(column, features.get(column.name)) for column in signature.columns}


def _value(column: ColumnSpec, feature: NumericProfile | CategoricalProfile | None) -> Any:
    typical = _from_profile(column, feature)
    if typical is not None:
        return typical
    return _from_signature(column)


def _from_profile(column: ColumnSpec, feature: NumericProfile | CategoricalProfile | None) -> Any:
    if isinstance(feature, NumericProfile) and feature.quantiles:
        median = feature.quantiles[len(feature.quantiles) // 2]
        if column.dtype == "int64":
            return round(median)
        if column.dtype == "float64":
            return float(median)
        if column.dtype == "datetime":
            return _iso(median)
    if isinstance(feature, CategoricalProfile) and feature.categories:
        value = feature.categories[0]
        if column.dtype == "bool" and isinstance(value, bool):
            return value
        if column.dtype == "string" and isinstance(value, str):
            return value
        if column.dtype == "category":
            return value
    return None


def _from_signature(column: ColumnSpec) -> Any:
    if column.dtype in ("int64", "float64"):
        low, high = column.minimum, column.maximum
        value = 0.0
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None or high is not None:
            value = low if low is not None else high  # type: ignore[assignment]
        return round(value) if column.dtype == "int64" else float(value)
    if column.dtype == "bool":
        return False
    if column.dtype in ("string", "category"):
        if column.categories:
            return column.categories[0]
        return "" if column.dtype == "string" else None
    return _iso(946_684_800.0)  # 2000-01-01T00:00:00


def _iso(epoch_seconds: float) -> str:
    # Naive ISO text: read as UTC by time-zone-aware columns, as is by naive ones.
    return datetime.fromtimestamp(epoch_seconds, UTC).replace(tzinfo=None).isoformat()
