"""Liveness and readiness: ``GET /healthz`` and ``GET /readyz``.

``/healthz`` answers 200 while the process serves HTTP. ``/readyz`` answers 200 once every
endpoint's model is loaded and warmed up, else 503 with each endpoint's state, so a load
balancer sends traffic only to processes that can predict.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman.server._context import ServerContext
from ferryman.serving.codecs.base import dumps


def routes(context: ServerContext) -> list[Route]:
    """The health routes, bound to the server's context."""
    pool = context.pool

    async def healthz(request: Request) -> Response:
        return Response(dumps({"status": "ok"}), media_type="application/json")

    async def readyz(request: Request) -> Response:
        endpoints = {
            runtime.name: (
                {"state": "ready", "model_version": runtime.deployment.version.ref}
                if runtime.deployment is not None
                else {"state": "failed" if runtime.error else "loading", "error": runtime.error}
            )
            for runtime in pool.list()
        }
        ready = pool.is_ready
        return Response(
            dumps({"status": "ready" if ready else "not ready", "endpoints": endpoints}),
            status_code=200 if ready else 503,
            media_type="application/json",
            headers=None if ready else {"retry-after": "1"},
        )

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
