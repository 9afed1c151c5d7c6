"""Routes of the Open Inference Protocol V2 (KServe v2, Triton), REST with JSON tensors.

Model names are endpoint names; ``versions/{version}`` is the registry version number of
the model the endpoint serves right now (404 for any other). Requests without a
Content-Type are accepted, as ``tritonclient.http`` sends none. Binary tensor data is not
supported and not advertised.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ferryman._version import __version__
from ferryman.errors import EndpointNotReadyError, MalformedRequestError, VersionNotFoundError
from ferryman.server._context import OFFLOAD_BYTES, ServerContext, read_body, timed_response
from ferryman.server._serving import predict
from ferryman.server.errors import Protocol, error_response
from ferryman.server.middleware import request_id
from ferryman.serving.codecs import oip_v2
from ferryman.serving.codecs.base import DecodedBatch, dumps
from ferryman.serving.runtime import Deployment, EndpointRuntime, RuntimePool

#: Server name in ``GET /v2``.
SERVER_NAME = "ferryman"
_BINARY_HEADER = b"inference-header-content-length"


def _json(payload: object, status: int = 200) -> Response:
    return Response(dumps(payload), status_code=status, media_type="application/json")


def _deployment(pool: RuntimePool, request: Request) -> Deployment:
    """The named endpoint's deployment, checking the version in the path if any."""
    name = request.path_params["name"]
    deployment = pool.get(name).ready()
    version = request.path_params.get("version")
    if version is not None and version != str(deployment.version.info.version):
        raise VersionNotFoundError(
            f"model {name!r} has no version {version!r} loaded; it serves version "
            f"{deployment.version.info.version}"
        )
    return deployment


def _endpoint(pool: RuntimePool, request: Request) -> tuple[EndpointRuntime, Deployment | None]:
    """The named endpoint, and the deployment its path pins by version, if it does.

    During a rollout ``versions/{version}`` may name the stable version or the
    candidate; the request then goes to that version, bypassing the traffic split.
    """
    name = request.path_params["name"]
    runtime = pool.get(name)
    version = request.path_params.get("version")
    if version is None:
        return runtime, None
    deployment = runtime.ready()
    split = runtime.split
    for served in (deployment, split.candidate if split is not None else None):
        if served is not None and version == str(served.version.info.version):
            return runtime, served
    raise VersionNotFoundError(
        f"model {name!r} has no version {version!r} loaded; it serves version "
        f"{deployment.version.info.version}"
    )


def _batch(decoded: oip_v2.InferRequest) -> DecodedBatch:
    return decoded.batch


def routes(context: ServerContext) -> list[Route]:
    """The protocol's routes, bound to the server's context."""
    pool = context.pool
    limit = context.settings.max_body_bytes

    def fail(exc: Exception, request: Request) -> Response:
        return error_response(
            exc,
            protocol=Protocol.OIP_V2,
            request_id=request_id(request.scope),
            endpoint=request.path_params.get("name"),
        )

    async def server_metadata(request: Request) -> Response:
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": []})

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        if pool.is_ready:
            return _json({"ready": True})
        waiting = [runtime.name for runtime in pool.list() if not runtime.is_ready]
        detail = f"endpoints not ready: {', '.join(waiting)}" if waiting else "starting up"
        return fail(EndpointNotReadyError(f"server not ready: {detail}"), request)

    async def model_metadata(request: Request) -> Response:
        try:
            deployment = _deployment(pool, request)
            version = deployment.version
            return _json(
                oip_v2.model_metadata(
                    deployment.name,
                    version=version.info.version,
                    platform=version.info.flavor,
                    schema=deployment.schema,
                    layout=version.layout,
                )
            )
        except Exception as exc:
            return fail(exc, request)

    async def model_ready(request: Request) -> Response:
        try:
            deployment = _deployment(pool, request)
        except Exception as exc:
            return fail(exc, request)
        return _json({"name": deployment.name, "ready": True})

    async def infer(request: Request) -> Response:
        rid = request_id(request.scope)
        try:
            runtime, pinned = _endpoint(pool, request)
            if any(key == _BINARY_HEADER for key, _ in request.scope["headers"]):
                raise MalformedRequestError(
                    "binary tensor data is not supported; send JSON tensors "
                    "(in tritonclient: binary_data=False)"
                )
            body = await read_body(request, limit)

            def decode(target: Deployment) -> oip_v2.InferRequest:
                return oip_v2.decode_infer(body, target.schema, target.version.layout)

            if pinned is None:
                deployment, decoded, timed = await predict(
                    context, request, runtime, rid, body, decode, _batch
                )
            else:
                deployment = pinned
                decoded = (
                    decode(deployment)
                    if len(body) <= OFFLOAD_BYTES
                    else (await run_in_threadpool(decode, deployment))
                )
                timed = await deployment.run(deployment.validate(decoded.batch))
                request.scope["state"]["served_version"] = deployment.version.ref
            content = oip_v2.encode_infer(
                timed.prediction,
                model_name=deployment.name,
                model_version=deployment.version.info.version,
                request_id=decoded.id if decoded.id is not None else rid,
                outputs=decoded.outputs,
            )
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:
            return fail(exc, request)
        return timed_response(request, content, timed)

    model = "/v2/models/{name}"
    version = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(f"{model}/infer", infer, methods=["POST"]),
        Route(f"{version}/infer", infer, methods=["POST"]),
        Route(f"{model}/ready", model_ready, methods=["GET"]),
        Route(f"{version}/ready", model_ready, methods=["GET"]),
        Route(model, model_metadata, methods=["GET"]),
        Route(version, model_metadata, methods=["GET"]),
    ]
