"""Settings come from keyword arguments, FERRYMAN_* variables and ferryman.toml, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferryman.config import Settings


def test_defaults_put_everything_under_dot_ferryman() -> None:
    settings = Settings()
    assert settings.home == Path(".ferryman")
    assert settings.resolved_database_url.endswith("/.ferryman/ferryman.db")
    assert settings.resolved_artifact_uri.endswith("/.ferryman/artifacts")


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ferryman.toml").write_text('home = "from-toml"\nuser = "toml-user"\n')
    monkeypatch.setenv("FERRYMAN_USER", "env-user")
    settings = Settings()
    assert (settings.home, settings.user) == (Path("from-toml"), "env-user")


def test_nested_storage_options_from_json_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FERRYMAN_ARTIFACT_STORAGE_OPTIONS",
        '{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}',
    )
    assert Settings().artifact_storage_options == {
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}
    }


def test_invalid_setting_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMAN_UNKNOWN_COLUMNS", "maybe")
    with pytest.raises(ValueError, match="unknown_columns"):
        Settings()
