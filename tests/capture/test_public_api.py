"""The curated surface of ferryman.capture, and its doctests."""

from __future__ import annotations
import __future__

import doctest
import importlib
from types import ModuleType

import pytest

import ferryman.capture


def public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and value is not __future__.annotations
    }


def _isort_style(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_lists_exactly_the_public_names_in_sorted_order() -> None:
    exported = list(ferryman.capture.__all__)

    assert exported == sorted(exported, key=_isort_style)
    assert set(exported) == public_names(ferryman.capture)


@pytest.mark.parametrize(
    "module",
    [
        "ferryman.capture._redaction",
        "ferryman.capture.feedback",
        "ferryman.capture.privacy",
        "ferryman.capture.window",
        "ferryman.capture.writer",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))

    assert result.attempted > 0
    assert result.failed == 0
