"""``ferryman serve``: loopback only unless --insecure, and Ferryman's log lines."""

from __future__ import annotations

import logging.config

import pytest
import typer

from ferryman.cli.serve import check_bind, is_loopback, log_config


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_hosts_are_recognised(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "no-such-host.invalid"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_binding_beyond_loopback_needs_insecure(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        check_bind("0.0.0.0", insecure=False)

    assert caught.value.exit_code == 2
    assert "pass --insecure" in capsys.readouterr().err


def test_insecure_allows_any_host() -> None:
    check_bind("0.0.0.0", insecure=True)


def test_the_log_configuration_adds_ferrymans_loggers_to_uvicorns() -> None:
    config = log_config()

    assert config["loggers"]["ferryman"]["handlers"] == ["ferryman"]
    assert "uvicorn" in config["loggers"]
    assert "%(process)d" in config["formatters"]["ferryman"]["fmt"]
    logging.config.dictConfig({**config, "loggers": {}})
