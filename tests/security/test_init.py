"""The public face of ferryman.security: a sorted __all__ listing exactly the public names."""

from __future__ import annotations

from types import ModuleType

import ferryman.security


def _isort_style(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = {
        name
        for name, value in vars(ferryman.security).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name != "annotations"  # the `from __future__ import annotations` feature
    }

    assert ferryman.security.__all__ == sorted(ferryman.security.__all__, key=_isort_style)
    assert set(ferryman.security.__all__) == public
