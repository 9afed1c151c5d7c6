"""Route of Ferryman's native protocol: ``POST /v1/endpoints/{endpoint}/predict``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman.server._context import OFFLOAD_BYTES, ServerContext, read_body, timed_response
from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs import native


def routes(context: ServerContext) -> list[Route]:
    """The native protocol's routes, bound to the server's context."""
    pool = context.pool
    limit = context.settings.max_body_bytes

    async def predict(request: Request) -> Response:
        rid = request_id(request.scope)
        name = request.path_params["endpoint"]
        try:
            runtime = pool.get(name)
            body = await read_body(request, limit)
            deployment = runtime.ready()
            if len(body) <= OFFLOAD_BYTES:
                data = deployment.validate(native.decode(body, deployment.schema))
            else:
                data = await run_in_threadpool(
                    lambda: deployment.validate(native.decode(body, deployment.schema))
                )
            timed = await deployment.run(data)
            content = native.encode(
                timed.prediction, model_version=deployment.version.ref, request_id=rid
            )
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except Exception as exc:
            return error_response(exc, protocol=Protocol.NATIVE, request_id=rid, endpoint=name)
        return timed_response(request, content, timed)

    return [Route("/v1/endpoints/{endpoint}/predict", predict, methods=["POST"])]
