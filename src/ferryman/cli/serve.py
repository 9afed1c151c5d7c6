"""``ferryman serve``: run the prediction server on uvicorn."""

from __future__ import annotations

import copy
import ipaddress
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ferryman.cli._app import fail, settings

if TYPE_CHECKING:
    from ferryman.config import Settings

#: The ASGI application factory each worker process calls.
APP_FACTORY = "ferryman.server:create_app"

#: uvicorn's httptools protocol, sending each response in one system call.
HTTP_PROTOCOL = "ferryman.server._http:HttpProtocol"


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Server processes; each loads every endpoint's model."
    ),
    default_endpoint: str | None = typer.Option(
        None,
        "--default-endpoint",
        help="Endpoint served by the MLflow routes at the root (/invocations, /ping). "
        "Default: the only endpoint, when there is exactly one.",
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Allow binding beyond loopback although requests are not authenticated.",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve predictions for every endpoint over HTTP (native, Open Inference V2, MLflow).

    Models load and warm up at start; alias moves and endpoint changes are picked up
    within about a second, without a restart. SIGTERM stops accepting connections and
    lets in-flight requests finish (for up to FERRYMAN_GRACEFUL_SHUTDOWN_SECONDS).
    """
    import uvicorn

    config = settings()
    check_bind(host, insecure=insecure or _tokens_exist(config))
    if insecure:
        # Worker processes build their own Settings from the environment.
        os.environ["FERRYMAN_INSECURE"] = "true"
    if default_endpoint is not None:
        # Worker processes build their own Settings from the environment.
        os.environ["FERRYMAN_DEFAULT_ENDPOINT"] = default_endpoint
    metrics_dir = None
    if workers > 1 and config.metrics_multiproc_dir is None:
        metrics_dir = metrics_directory(config.home)
        # Read by prometheus-client when each worker imports it, so before they start.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http=HTTP_PROTOCOL,
            lifespan="on",
            access_log=access_log,
            log_config=log_config(),
            timeout_graceful_shutdown=int(config.graceful_shutdown_seconds),
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def metrics_directory(home: Path) -> Path:
    """Create an empty directory for the workers' metric files: ``HOME/run/metrics-PID``.

    One per server (the supervisor's process id), emptied first: files left by an earlier
    server with the same id would otherwise add to this one's counters.
    """
    directory = (home / "run" / f"metrics-{os.getpid()}").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def log_config() -> dict[str, Any]:
    """Uvicorn's logging setup plus Ferryman's loggers, each line tagged with the process id."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["ferryman"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s [%(process)d] %(name)s: %(message)s",
    }
    config["handlers"]["ferryman"] = {
        "formatter": "ferryman",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["ferryman"] = {"handlers": ["ferryman"], "level": "INFO", "propagate": False}
    return config


def check_bind(host: str, *, insecure: bool) -> None:
    """Exit with a one-line reason when ``host`` reaches beyond loopback without auth.

    Args:
        host: The interface to bind.
        insecure: Authentication is set up (API tokens exist), or the user accepts
            unauthenticated access from the network.
    """
    if insecure or is_loopback(host):
        return
    fail(
        f"refusing to bind to {host!r}: no API token exists, so only loopback clients "
        "could be authenticated. Create one with 'ferryman tokens create NAME --role ROLE', "
        "bind to 127.0.0.1, or pass --insecure if a proxy in front authenticates"
    )


def _tokens_exist(config: Settings) -> bool:
    from ferryman.security import TokenService
    from ferryman.store import Database

    database = Database(
        url=config.resolved_database_url, migrate_on_start=config.migrate_on_start
    ).open()
    try:
        return TokenService(database=database, user=config.user).has_any()
    finally:
        database.close()


def is_loopback(host: str) -> bool:
    """Tell whether every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    )


if __name__ == "__main__":  # python -m ferryman.cli.serve
    typer.run(serve)
