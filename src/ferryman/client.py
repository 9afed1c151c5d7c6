"""The Python SDK: a thin face over the registry (and, later, a running server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferryman.config import Settings
from ferryman.registry import Model, Registry, VersionInfo


class Client:
    """Talk to Ferryman from Python.

    Args:
        settings: The settings to use; default: read from the environment and
            ``ferryman.toml``, like the CLI.

    Example:
        >>> client = Client()                                  # doctest: +SKIP
        >>> client.register(model, name="churn", X=X, y=y)     # doctest: +SKIP
        >>> client.load("churn@production").predict(X[:5])     # doctest: +SKIP
    """

    def __init__(self, *, settings: Settings | None = None) -> None:
        self.settings = settings
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        """The registry, opened on first use."""
        if self._registry is None:
            self._registry = Registry.from_settings(self.settings or Settings()).open()
        return self._registry

    def close(self) -> None:
        """Release connections."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(
        self,
        model: object,
        *,
        name: str,
        X: Any = None,
        y: Any = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        description: str = "",
        **options: Any,
    ) -> VersionInfo:
        """Register a new version of ``name``; see :meth:`Registry.register` for options."""
        return self.registry.register(
            model,
            name=name,
            X=X,
            y=y,
            metrics=metrics,
            params=params,
            description=description,
            **options,
        )

    def load(self, ref: str) -> Model:
        """Load ``churn@production``, ``churn/3`` or ``churn`` (latest), ready to predict."""
        return self.registry.load(ref)


def register(
    model: object,
    *,
    name: str,
    X: Any = None,
    y: Any = None,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
    **options: Any,
) -> VersionInfo:
    """Register a model version with the settings in force (see :class:`Client`).

    Example:
        >>> ferryman.register(clf, name="churn", X=X_train, y=y_train,
        ...                   metrics={"accuracy": 0.93})          # doctest: +SKIP
    """
    with Client() as client:
        return client.register(
            model,
            name=name,
            X=X,
            y=y,
            metrics=metrics,
            params=params,
            description=description,
            **options,
        )


def load(ref: str) -> Model:
    """Load a registered version (``churn@production``, ``churn/3``, ``churn``)."""
    with Client() as client:
        return client.load(ref)
