"""The metadata database: migrations, and clear errors when it cannot be used."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ferryman.errors import ConfigurationError, StoreUnavailableError
from ferryman.store import Database
from ferryman.store._tables import Base


def test_migrations_build_exactly_the_mapped_schema(database_url: str) -> None:
    database = Database(url=database_url).open()
    try:
        with database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert database.current_revision() == database.head_revision()
    finally:
        database.close()


def test_upgrade_is_a_no_op_when_current(database_url: str) -> None:
    database = Database(url=database_url).open()
    try:
        assert database.upgrade() is False
    finally:
        database.close()


def test_unreachable_database_names_the_url_without_password() -> None:
    url = "postgresql+psycopg://bob:secret@127.0.0.1:9/nowhere"
    with pytest.raises(
        StoreUnavailableError,
        match=r"Cannot reach the metadata store at "
        r"postgresql\+psycopg://bob:\*\*\*@127.0.0.1:9/nowhere",
    ) as err:
        Database(url=url).open()
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_malformed_database_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="URL"):
        Database(url=url).open()
