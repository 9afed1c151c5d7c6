"""The Ferryman server: one ASGI application for the data plane (and, later, the control plane).

:func:`create_app` builds the application; ``ferryman serve`` runs it on uvicorn, one
instance per worker process. Routes speak three prediction protocols over the same
runtime pool — Ferryman's native JSON (``/v1/endpoints/{endpoint}/predict``), the Open
Inference Protocol V2 (``/v2/...``) and the MLflow scoring protocol (``/invocations``) —
plus health checks and the OpenAPI document (``/openapi.json``). Exceptions map to status
codes in one table, :mod:`ferryman.server.errors`.
"""

from __future__ import annotations

from ferryman.server.app import create_app

__all__ = ["create_app"]
