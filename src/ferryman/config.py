"""The one settings object.

Settings come, highest priority first, from keyword arguments, environment variables
prefixed ``FERRYMAN_`` (``__`` separates nested keys), a ``ferryman.toml`` file in the
working directory (or the file named by ``FERRYMAN_CONFIG``), and the defaults below.
They are built once at the edge (the CLI entry point, the ASGI app factory) and passed
down; no other module reads ``os.environ``.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: A dotted Python module name (a prefix of the modules python gates may import).
_MODULE_PREFIX = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "unknown"


class Settings(BaseSettings):
    """Ferryman's configuration.

    Attributes are documented by their ``description``; ``ferryman config`` prints the
    values in force.
    """

    model_config = SettingsConfigDict(
        env_prefix="FERRYMAN_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    home: Path = Field(
        default=Path(".ferryman"),
        description="Directory for the embedded database, artifacts, logs and caches.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the metadata store. Default: SQLite at HOME/ferryman.db. "
            "For a team: postgresql+psycopg://user@host:5432/dbname"
        ),
    )
    artifact_uri: str | None = Field(
        default=None,
        description="Where artifacts live: a local path or any fsspec URL (s3://bucket/prefix). "
        "Default: HOME/artifacts.",
    )
    artifact_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the fsspec filesystem, e.g. "
        '{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}} for an S3-compatible '
        "server.",
    )
    user: str = Field(
        default_factory=_default_user,
        description="Who is acting; recorded in created_by fields and the audit log.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Apply pending schema migrations when the store opens."
    )
    unknown_columns: Literal["reject", "ignore"] = Field(
        default="reject",
        description="What the signature validator does with input columns the model does not "
        "know: reject the request, or drop the columns.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Secret for keyed hashing of personal data; set it in production.",
    )
    token_cache_seconds: float = Field(
        default=2.0,
        ge=0.0,
        description="How long (seconds) a server process trusts its in-memory copy of an API "
        "token before reading it again from the metadata store; revocations take effect "
        "within this time. 0 reads the store on every request.",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1,
        description="Largest request body (bytes) the server accepts; a larger body is "
        "answered with 413 without being read to the end.",
    )
    default_endpoint: str | None = Field(
        default=None,
        description="Endpoint served by the MLflow routes at the root (/invocations, /ping). "
        "Default: the only endpoint, when there is exactly one.",
    )
    model_threads: int = Field(
        default=1,
        ge=1,
        description="Threads per endpoint that run model calls, so a slow model only holds "
        "up its own endpoint; also the number of micro-batches an endpoint runs at once. "
        "1 suits models that hold the GIL (most scikit-learn); raise it for models that "
        "release it (ONNX Runtime, XGBoost, LightGBM).",
    )
    endpoint_refresh_seconds: float = Field(
        default=1.0,
        gt=0.0,
        description="How often (seconds) each server process checks the metadata store for "
        "changed endpoints and moved aliases, then loads and swaps in new versions.",
    )
    alert_rules: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Alert rules from configuration, each as AlertRule.from_dict reads it: "
        '{"name", "endpoint", "when", optional "window", "severity", "version", "role", '
        '"webhooks": [{"url", "format": "json"|"slack"}]}.',
    )
    alert_interval_seconds: float = Field(
        default=15.0, gt=0.0, description="Seconds between evaluations of every alert rule."
    )
    rollout_webhooks: list[dict[str, str]] = Field(
        default_factory=list,
        description="Webhooks told when a rollout finishes, switches or rolls back: "
        '[{"url": "https://…", "format": "json"|"slack"}].',
    )
    gate_modules: list[Annotated[str, Field(pattern=_MODULE_PREFIX)]] = Field(
        default_factory=list,
        description="Module prefixes that python:MODULE:ATTRIBUTE rollout gates may be "
        "imported from, as JSON, e.g. '[\"my_package.checks\"]'; my_package allows "
        "my_package.checks but not my_package_extra. Default: none, so python gates are "
        "refused: a gate runs code in the server, chosen by whoever starts the rollout.",
    )
    drift_monitor: bool = Field(
        default=True,
        description="Evaluate drift of every endpoint's captured traffic on a schedule.",
    )
    drift_interval_seconds: float = Field(
        default=300.0, gt=0.0, description="Seconds between drift monitor evaluations."
    )
    drift_process: bool = Field(
        default=True,
        description="Compute the drift monitor's reports in a child process at the lowest "
        "CPU priority (nice 19; SCHED_IDLE on Linux), so an evaluation never holds the "
        "serving process's GIL nor makes a request wait for the CPU; false: on "
        "a thread of the server (no extra process, but requests stall while it runs).",
    )
    background_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness (CPU priority, 0-19) of a server's bookkeeping threads: the "
        "prediction log writer, metrics flusher, alerts and drift scheduler, so that their "
        "work outside the GIL never delays requests; 0 runs them at normal priority. Linux "
        "only.",
    )
    gil_switch_interval_ms: float = Field(
        default=1.0,
        gt=0.0,
        le=100.0,
        description="How long (milliseconds) a server's thread may hold the GIL while "
        "another waits for it (Python's switch interval; Python's default is 5): a "
        "request waits at most this long for a bookkeeping thread running Python code.",
    )
    gc_young_threshold: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Container allocations (net of those freed) between collections of "
        "the youngest garbage generation while a server runs (Python's default is 700): "
        "requests' short-lived objects are then freed by reference counting before a "
        "collection walks them.",
    )
    drift_window: str = Field(
        default="1h",
        pattern=r"^\s*(\d+(\.\d+)?\s*[smhdw]|\d+)\s*$",
        description="Rolling window the drift monitor checks: a duration (90s, 15m, 1h, 7d) "
        "or a number of latest records (5000).",
    )
    drift_min_rows: int = Field(
        default=100, ge=1, description="Fewest usable values per feature for a drift verdict."
    )
    capture_flush_seconds: float = Field(
        default=1.0,
        gt=0.0,
        description="Seconds between prediction log flushes; the most a killed server "
        "process loses.",
    )
    mirror_queue_size: int = Field(
        default=1000,
        ge=1,
        description="Shadow copies of requests that may wait for a shadow candidate at once; "
        "more are dropped (and counted), so a slow candidate never slows callers.",
    )
    mirror_max_share: float = Field(
        default=0.1,
        gt=0.0,
        le=1.0,
        description="The most of a server process's time shadow copies may take (0 < share "
        "<= 1): beyond it copies wait, are served together, and are dropped when the queue "
        "is full, so mirroring never takes the callers' time. 1 mirrors as fast as it can.",
    )
    graceful_shutdown_seconds: float = Field(
        default=30.0,
        ge=0.0,
        description="On SIGTERM, how long (seconds) the server waits for in-flight requests "
        "to finish before it closes their connections.",
    )
    startup_timeout_seconds: float = Field(
        default=300.0,
        ge=0.0,
        description="How long (seconds) a server process waits at start for every endpoint's "
        "model to load and warm up before it accepts requests; endpoints still loading after "
        "that answer 503 until they are ready.",
    )

    metrics_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "metrics_multiproc_dir"),
        description="Directory where every server process writes its Prometheus metrics, "
        "merged at /metrics (prometheus-client's multiprocess mode; read from "
        "PROMETHEUS_MULTIPROC_DIR, which 'ferryman serve --workers N' sets for N > 1). "
        "Default: none, each process serves only its own metrics.",
    )

    insecure: bool = Field(
        default=False,
        description="Serve clients beyond loopback without API tokens (set by "
        "'ferryman serve --insecure', for a proxy in front that authenticates).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # This is the edge where the environment is read, so it may look at os.environ.
        toml_file = Path(os.environ.get("FERRYMAN_CONFIG", "ferryman.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one or SQLite under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'ferryman.db').resolve()}"

    @property
    def resolved_artifact_uri(self) -> str:
        """The artifact location in force: the configured one or ``home/artifacts``."""
        if self.artifact_uri:
            return self.artifact_uri
        return str((self.home / "artifacts").resolve())


__all__ = ["Settings"]
