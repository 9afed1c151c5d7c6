"""One prediction, whatever the protocol: route, decode, validate, run, mirror.

Every protocol route reads its body, then calls :func:`predict` with a function that
decodes the body for a given deployment (decoding depends on the served version's
schema, and a candidate's may differ from the stable version's). Outside rollouts this
is: decode, validate, run. During a rollout the endpoint's split picks the deployment by
the request's routing key (a header, a field of the first row, or the request id), and a
share of requests is mirrored to a shadow candidate after the answer is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ferryman.errors import (
    EndpointNotReadyError,
    FerrymanError,
    PredictionError,
    PredictionTimeoutError,
    SchemaValidationError,
)
from ferryman.server._context import OFFLOAD_BYTES, ServerContext
from ferryman.server.errors import status_of
from ferryman.serving.batching import TimedPrediction
from ferryman.serving.codecs.base import DecodedBatch
from ferryman.serving.mirror import MirroredRequest
from ferryman.serving.runtime import Deployment, EndpointRuntime, Split

_T = TypeVar("_T")


async def predict(
    context: ServerContext,
    request: Request,
    runtime: EndpointRuntime,
    request_id: str,
    body: bytes,
    decode: Callable[[Deployment], _T],
    batch_of: Callable[[_T], DecodedBatch],
) -> tuple[Deployment, _T, TimedPrediction]:
    """Serve one request on the endpoint ``runtime``.

    Args:
        context: The server's context.
        request: The HTTP request (for headers and per-request state).
        runtime: The endpoint.
        request_id: The request's id.
        body: The request body (its size decides whether decoding leaves the loop).
        decode: Decodes the body for a deployment (raises for malformed bodies).
        batch_of: The decoded batch inside ``decode``'s result.

    Returns:
        The deployment that served, the decoded request, and the timed prediction.

    Raises:
        Whatever decoding, validation or the model raise (mapped to HTTP by the caller).
    """
    started = time.perf_counter()
    chosen: list[Deployment] = []
    try:
        deployment, decoded, data, timed, split, key = await _serve(
            context, request, runtime, request_id, body, decode, batch_of, chosen
        )
    except Exception as exc:
        _observe_failure(context, runtime, chosen, exc, started, request_id)
        raise
    request.scope["state"]["served_version"] = deployment.version.ref
    latency_ms = (time.perf_counter() - started) * 1000.0
    batch = batch_of(decoded)
    rows = _observed_rows(batch, data, deployment.schema.columns)
    recorder = context.recorder
    if recorder is not None:
        recorder.observe_prediction(
            runtime.name, deployment.version.ref, "primary", 200, latency_ms, rows, timed.prediction
        )
    capture = context.capture
    if capture is not None:
        capture.writer.submit(
            request_id,
            runtime.name,
            deployment.version.ref,
            "primary",
            rows,
            timed.prediction,
            latency_ms,
            passthrough=batch.passthrough,
            columns=deployment.schema.columns,
        )
    mirror = context.mirror
    if (
        split is not None
        and mirror is not None
        and deployment is not split.candidate
        and split.router.mirrors(key)
    ):
        reuse = split.same_input and deployment is split.stable
        mirror.submit(
            MirroredRequest(
                endpoint=runtime.name,
                request_id=request_id,
                candidate=split.candidate,
                decode=lambda target: batch_of(decode(target)),
                primary=timed,
                primary_version=deployment.version.ref,
                decoded=batch_of(decoded) if reuse else None,
                validated=data if reuse else None,
            )
        )
    return deployment, decoded, timed


async def _serve(
    context: ServerContext,
    request: Request,
    runtime: EndpointRuntime,
    request_id: str,
    body: bytes,
    decode: Callable[[Deployment], _T],
    batch_of: Callable[[_T], DecodedBatch],
    chosen: list[Deployment],
) -> tuple[Deployment, _T, Any, TimedPrediction, Split | None, str]:
    split = runtime.split
    offload = len(body) > OFFLOAD_BYTES
    if split is None:
        deployment = runtime.ready()
        chosen.append(deployment)
        if deployment.defers_validation and not offload:
            # The batcher validates the request with the rest of its batch.
            decoded = decode(deployment)
            timed = await deployment.run_decoded(batch_of(decoded).data)
            return deployment, decoded, timed.inputs, timed, None, request_id
        decoded, data = await _decoded(deployment, decode, batch_of, offload)
        return deployment, decoded, data, await deployment.run(data), None, request_id
    stable = runtime.ready()
    key = _header_key(request, split) or request_id
    decoded_stable: Any = None
    if split.key is not None and split.key.source == "field":
        decoded_stable = decode(stable) if not offload else await run_in_threadpool(decode, stable)
        key = field_key(batch_of(decoded_stable), split.key.name) or request_id
    deployment = split.candidate if split.router.routes_to_candidate(key) else stable
    chosen.append(deployment)
    if decoded_stable is not None and deployment is stable:
        decoded = decoded_stable
        data = deployment.validate(batch_of(decoded))
    else:
        decoded, data = await _decoded(deployment, decode, batch_of, offload)
    return deployment, decoded, data, await deployment.run(data), split, key


def _observed_rows(batch: DecodedBatch, data: Any, columns: Sequence[str]) -> Any:
    """The rows to monitor and capture: the decoded float matrix if any, else ``data``.

    The codecs' float-matrix route decodes all-float64 requests into one matrix whose
    columns are the signature's; validation only checks it, so the matrix holds the
    validated values. The recorder's checks and the capture thread read a matrix several
    times faster than a DataFrame (no per-request ``to_numpy``).
    """
    raw = batch.data
    if (
        isinstance(raw, np.ndarray)
        and raw.ndim == 2
        and raw.dtype == np.float64
        and raw.shape[1] == len(columns)
        and raw.shape[0] == getattr(data, "shape", (-1,))[0]
    ):
        return raw
    return data


def _observe_failure(
    context: ServerContext,
    runtime: EndpointRuntime,
    chosen: list[Deployment],
    exc: Exception,
    started: float,
    request_id: str,
) -> None:
    """Count and log a failed request for the version that was to serve it."""
    version = chosen[-1].version.ref if chosen else None
    latency_ms = (time.perf_counter() - started) * 1000.0
    capture = context.capture
    if capture is not None:
        status, _ = status_of(exc)
        capture.writer.submit(
            request_id, runtime.name, version, "primary", None, None, latency_ms, status, exc
        )
    recorder = context.recorder
    if recorder is None:
        return
    feature: str | None = None
    if isinstance(exc, SchemaValidationError):
        kind, feature = "schema_violation", exc.column
    elif isinstance(exc, PredictionTimeoutError):
        kind = "timeout"
    elif isinstance(exc, PredictionError | EndpointNotReadyError) or not isinstance(
        exc, FerrymanError
    ):
        kind = "server_error"
    else:
        kind = "client_error"
    recorder.observe_rejected(runtime.name, version, kind, feature=feature, latency_ms=latency_ms)


async def _decoded(
    deployment: Deployment,
    decode: Callable[[Deployment], _T],
    batch_of: Callable[[_T], DecodedBatch],
    offload: bool,
) -> tuple[_T, Any]:
    def work() -> tuple[_T, Any]:
        decoded = decode(deployment)
        return decoded, deployment.validate(batch_of(decoded))

    return await run_in_threadpool(work) if offload else work()


def _header_key(request: Request, split: Split) -> str | None:
    key = split.key
    if key is None or key.source != "header":
        return None
    wanted = key.name.encode("latin-1")
    for name, value in request.scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def field_key(batch: DecodedBatch, name: str) -> str | None:
    """The value of column ``name`` in a request's first row, as text, if it has one."""
    values = batch.passthrough.get(name)
    if values:
        first = values[0]
        return None if first is None else str(first)
    data = batch.data
    if isinstance(data, list) and data and isinstance(data[0], dict):
        value: object = data[0].get(name)
        return None if value is None else str(value)
    if isinstance(data, dict):
        column = data.get(name)
        if isinstance(column, list) and column:
            return None if column[0] is None else str(column[0])
    return None


__all__ = ["field_key", "predict"]
