"""Signatures for codec tests, and the prepared store of served models for runtime tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferryman.config import Settings
from ferryman.registry import Registry
from ferryman.serving import EndpointService
from ferryman.serving.codecs import InputSchema
from ferryman.signature import Signature, infer_signature
from tests.serving._store import fresh_copy, template

MakeSchema = Callable[..., InputSchema]


def mixed_frame() -> pd.DataFrame:
    """Training data with one column of each common type."""
    return pd.DataFrame(
        {
            "age": [30, 40, 50],
            "income": [1.5, 2.5, 3.5],
            "city": ["Oslo", "Bergen", "Oslo"],
            "member": [True, False, True],
        }
    )


@pytest.fixture(scope="session")
def mixed_signature() -> Signature:
    return infer_signature(mixed_frame())


@pytest.fixture(scope="session")
def numeric_signature() -> Signature:
    return infer_signature(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))


@pytest.fixture(scope="session")
def tensor_signature() -> Signature:
    return infer_signature(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32))


@pytest.fixture
def make_schema(
    mixed_signature: Signature, numeric_signature: Signature, tensor_signature: Signature
) -> MakeSchema:
    """Build an InputSchema over one of the signatures, with an endpoint's column policy."""
    signatures = {
        "mixed": mixed_signature,
        "numeric": numeric_signature,
        "tensor": tensor_signature,
    }

    def make(
        kind: str = "mixed",
        *,
        unknown_columns: str = "reject",
        passthrough: Iterable[str] = (),
    ) -> InputSchema:
        return InputSchema(
            signatures[kind],
            unknown_columns=unknown_columns,  # type: ignore[arg-type]
            passthrough=frozenset(passthrough),
        )

    return make


# -- a prepared store of served models (see tests/serving/_store.py) ---------------------


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template(tmp_path_factory)


@pytest.fixture
def store_registry(template_home: Path, tmp_path: Path) -> Iterator[Registry]:
    """An opened registry on a fresh copy of the prepared store."""
    settings = Settings(home=fresh_copy(template_home, tmp_path), user="alice")
    with Registry.from_settings(settings) as registry:
        yield registry


@pytest.fixture
def store_endpoints(store_registry: Registry) -> EndpointService:
    return EndpointService(database=store_registry.database, user="alice")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
