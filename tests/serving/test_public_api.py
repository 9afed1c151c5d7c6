"""The curated public surfaces of ferryman.serving, its codecs and ferryman.server."""

from __future__ import annotations
import __future__

import importlib
from types import ModuleType

import pytest

PACKAGES = ["ferryman.serving", "ferryman.serving.codecs", "ferryman.server"]


def public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and value is not __future__.annotations
    }


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names_in_sorted_order(name: str) -> None:
    module = importlib.import_module(name)

    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public_names(module)
