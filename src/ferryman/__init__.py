"""Ferryman: take trained machine-learning models to production and keep them healthy there.

The public surface is small: :func:`register` and :func:`load` for the common case, a
:class:`Client` for more, :class:`Settings` for configuration, and the error classes in
:mod:`ferryman.errors`. Subpackages (``ferryman.registry``, ``ferryman.signature``,
``ferryman.flavors``, ``ferryman.store``) expose their own documented names.

Names are imported lazily, so ``import ferryman`` (and ``ferryman --help``) stays fast and
does not load the database driver or the scientific stack until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ferryman._version import __version__

if TYPE_CHECKING:
    from ferryman.client import Client, load, register
    from ferryman.config import Settings
    from ferryman.errors import FerrymanError

_LAZY = {
    "Client": "ferryman.client",
    "FerrymanError": "ferryman.errors",
    "Settings": "ferryman.config",
    "load": "ferryman.client",
    "register": "ferryman.client",
}

__all__ = ["Client", "FerrymanError", "Settings", "__version__", "load", "register"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ferryman' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
