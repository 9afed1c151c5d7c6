"""The curated public surface: sorted __all__ equal to the public names, lazy imports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "ferryman",
    "ferryman.errors",
    "ferryman.registry",
    "ferryman.store",
    "ferryman.flavors",
    "ferryman.signature",
    "ferryman.drift",
]


def _isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest: the order ruff's RUF022 keeps."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_style)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_every_error_inherits_the_root_and_a_builtin() -> None:
    from ferryman import errors

    for attr in errors.__all__:
        cls = getattr(errors, attr)
        assert issubclass(cls, errors.FerrymanError)
        if cls is not errors.FerrymanError:
            assert any(
                not issubclass(base, errors.FerrymanError) and base is not object
                for base in cls.__mro__[1:]
            ), attr


def test_cli_help_imports_neither_database_driver_nor_scientific_stack() -> None:
    code = (
        "import sys\n"
        "from ferryman.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'pandas', 'sklearn', 'sqlalchemy', 'psycopg', "
        "'pyarrow', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="
