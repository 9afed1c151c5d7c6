"""The examples in the drift package's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ferryman.drift

MODULES = sorted(
    f"ferryman.drift.{info.name}" for info in pkgutil.iter_modules(ferryman.drift.__path__)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0
