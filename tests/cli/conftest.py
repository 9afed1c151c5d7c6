"""Shared fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from ferryman.cli._app import console, err_console


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render Rich output 250 columns wide, whatever terminal (or none) runs the tests.

    The consoles read the terminal's width once, when ``ferryman.cli`` is imported; under
    pytest-xdist there is no terminal and tables would wrap their cells mid-phrase.
    """
    monkeypatch.setattr(console, "width", 250)
    monkeypatch.setattr(err_console, "width", 250)
