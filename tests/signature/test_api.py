"""The public surface of ferryman.signature, and its docstring examples."""

from __future__ import annotations
import __future__

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import ferryman.signature


def public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and value is not __future__.annotations
    }


def isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff's RUF022 keeps."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_lists_exactly_the_public_names_in_sorted_order() -> None:
    exported = ferryman.signature.__all__

    assert exported == sorted(exported, key=isort_style)
    assert set(exported) == public_names(ferryman.signature)


MODULES = [
    importlib.import_module(f"ferryman.signature.{info.name}")
    for info in pkgutil.iter_modules(ferryman.signature.__path__)
]


@pytest.mark.parametrize("module", MODULES, ids=[module.__name__ for module in MODULES])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)

    assert result.failed == 0
