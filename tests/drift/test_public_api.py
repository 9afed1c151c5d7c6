"""The drift package's curated surface: a sorted __all__ of exactly its public names."""

from __future__ import annotations

from types import ModuleType

import ferryman.drift as drift


def _isort_style(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_drift_all_is_sorted_isort_style() -> None:
    assert list(drift.__all__) == sorted(drift.__all__, key=_isort_style)


def test_drift_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(drift).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert set(drift.__all__) == public
