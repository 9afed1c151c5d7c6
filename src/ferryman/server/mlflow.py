"""Routes of the MLflow scoring protocol (also the SageMaker custom-container contract).

``/invocations``, ``/ping``, ``/health`` and ``/version`` at the root serve the default
endpoint: the one named by the ``default_endpoint`` setting (``ferryman serve
--default-endpoint``), else the only endpoint when there is exactly one.
``/v1/endpoints/{endpoint}/invocations`` serves any endpoint.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ferryman._version import __version__
from ferryman.errors import EndpointNotFoundError
from ferryman.server._context import ServerContext, read_body, timed_response
from ferryman.server._serving import predict
from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs import mlflow
from ferryman.serving.codecs.base import DecodedBatch, dumps
from ferryman.serving.runtime import EndpointRuntime, RuntimePool


def default_endpoint(pool: RuntimePool, configured: str | None) -> EndpointRuntime:
    """Return the endpoint the root MLflow routes serve.

    Raises:
        EndpointNotFoundError: The configured endpoint does not exist, or none is
            configured and there is not exactly one endpoint.
    """
    if configured is not None:
        runtime = pool.find(configured)
        if runtime is None:
            raise EndpointNotFoundError(
                f"the default endpoint {configured!r} (from --default-endpoint or "
                "FERRYMAN_DEFAULT_ENDPOINT) does not exist"
            )
        return runtime
    runtimes = pool.list()
    if len(runtimes) == 1:
        return runtimes[0]
    names = ", ".join(runtime.name for runtime in runtimes) or "none"
    raise EndpointNotFoundError(
        f"no default endpoint: {len(runtimes)} endpoints exist ({names}); start the server "
        "with --default-endpoint NAME, or call /v1/endpoints/{endpoint}/invocations"
    )


def _same(batch: DecodedBatch) -> DecodedBatch:
    return batch


def routes(context: ServerContext) -> list[Route]:
    """The protocol's routes, bound to the server's context."""
    pool = context.pool
    limit = context.settings.max_body_bytes
    configured = context.settings.default_endpoint

    async def invoke(request: Request, runtime_name: str | None) -> Response:
        rid = request_id(request.scope)
        try:
            runtime = (
                pool.get(runtime_name)
                if runtime_name is not None
                else default_endpoint(pool, configured)
            )
            content_type = request.headers.get("content-type")
            mlflow.media_type(content_type)  # 415 before reading the body
            body = await read_body(request, limit)
            _, _, timed = await predict(
                context,
                request,
                runtime,
                rid,
                body,
                lambda target: mlflow.decode(body, content_type, target.schema),
                _same,
            )
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:
            return error_response(
                exc, protocol=Protocol.MLFLOW, request_id=rid, endpoint=runtime_name
            )
        return timed_response(request, mlflow.encode(timed.prediction), timed)

    async def root_invocations(request: Request) -> Response:
        return await invoke(request, None)

    async def endpoint_invocations(request: Request) -> Response:
        return await invoke(request, request.path_params["endpoint"])

    async def ping(request: Request) -> Response:
        try:
            runtime = default_endpoint(pool, configured)
            runtime.ready()
        except Exception as exc:
            return error_response(
                exc, protocol=Protocol.MLFLOW, request_id=request_id(request.scope)
            )
        return Response(dumps({"status": "ok"}), media_type="application/json")

    async def version(request: Request) -> Response:
        return PlainTextResponse(__version__)

    return [
        Route("/invocations", root_invocations, methods=["POST"]),
        Route("/v1/endpoints/{endpoint}/invocations", endpoint_invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
