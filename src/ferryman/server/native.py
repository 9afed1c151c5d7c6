"""Route of Ferryman's native protocol: ``POST /v1/endpoints/{endpoint}/predict``."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman.server._context import ServerContext, read_body, timed_response
from ferryman.server._serving import predict as serve_prediction
from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs import native
from ferryman.serving.codecs.base import DecodedBatch


def _same(batch: DecodedBatch) -> DecodedBatch:
    return batch


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
            deployment, _, timed = await serve_prediction(
                context,
                request,
                runtime,
                rid,
                body,
                lambda target: native.decode(body, target.schema),
                _same,
            )
            content = native.encode(
                timed.prediction, model_version=deployment.version.ref, request_id=rid
            )
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except Exception as exc:
            return error_response(exc, protocol=Protocol.NATIVE, request_id=rid, endpoint=name)
        return timed_response(request, content, timed)

    return [Route("/v1/endpoints/{endpoint}/predict", predict, methods=["POST"])]
