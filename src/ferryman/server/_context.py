"""What every route needs: the settings, the runtime pool, and reading a bounded body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ferryman.config import Settings
from ferryman.errors import InvalidInputError, MalformedRequestError, PayloadTooLargeError
from ferryman.registry import Registry
from ferryman.serving.batching import TimedPrediction
from ferryman.serving.runtime import RuntimePool

if TYPE_CHECKING:
    from ferryman.capture import PredictionLog
    from ferryman.monitoring.recorder import MonitoringRecorder
    from ferryman.rollout.service import RolloutService
    from ferryman.serving.mirror import Mirror

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

#: Bodies above this size (bytes) are decoded and validated on a worker thread, so one
#: big request does not stall the event loop for everyone else.
OFFLOAD_BYTES = 256 * 1024


@dataclass(frozen=True)
class ServerContext:
    """The server's shared state, built once per process by the app factory.

    Attributes:
        settings: The settings in force.
        registry: The model registry; ``registry.database`` is the metadata store.
        pool: The runtime pool.
        rollouts: The rollout service, when rollouts are on.
        mirror: Where shadow copies of requests go, when rollouts are on.
        recorder: Where each prediction is counted for windowed and input/output
            metrics, when monitoring is on.
        capture: The prediction log, when capture is on.
    """

    settings: Settings
    registry: Registry
    pool: RuntimePool
    rollouts: RolloutService | None = None
    mirror: Mirror | None = None
    recorder: MonitoringRecorder | None = None
    capture: PredictionLog | None = None


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing one over ``limit`` bytes before reading it all.

    Raises:
        PayloadTooLargeError: Content-Length, or the bytes received, exceed ``limit``.
        MalformedRequestError: Content-Length is not a number.
        ClientDisconnect: The client went away.
    """
    for key, value in request.scope["headers"]:
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise MalformedRequestError(f"invalid Content-Length {value!r}") from None
            if length > limit:
                raise PayloadTooLargeError(_too_large(f"{length} bytes", limit))
            break
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(_too_large(f"more than {limit} bytes", limit))
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def parse_body(
    request: Request, model: type[_M], limit: int, *, optional: bool = False
) -> _M:
    """Read a JSON body and validate it with the pydantic ``model``.

    Args:
        request: The request.
        model: The body's pydantic model.
        limit: Largest body accepted (bytes).
        optional: An empty body means ``model()`` with its defaults.

    Raises:
        MalformedRequestError: No body (unless optional), or not JSON.
        InvalidInputError: A field is invalid; the message names the first one.
        PayloadTooLargeError: The body is over ``limit``.
    """
    body = await read_body(request, limit)
    if not body.strip():
        if optional:
            return model.model_validate({})
        raise MalformedRequestError("request body is required: a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"request body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInputError(f"invalid field {where!r}: {first['msg']}") from None


def _too_large(size: str, limit: int) -> str:
    return (
        f"request body of {size} is over the limit of {limit} bytes; send fewer rows per "
        "request or raise FERRYMAN_MAX_BODY_BYTES"
    )


async def prepare(body: bytes, work: Callable[[], _T]) -> _T:
    """Run decoding/validation ``work`` inline for small bodies, on a thread for big ones."""
    if len(body) <= OFFLOAD_BYTES:
        return work()
    return await run_in_threadpool(work)


def timed_response(request: Request, content: bytes, timed: TimedPrediction) -> Response:
    """A JSON prediction response reporting queue and compute time in its headers.

    The timings also go to ``request.state.prediction_timing`` (a
    :class:`TimedPrediction`), where metrics middleware can read them.
    """
    request.scope["state"]["prediction_timing"] = timed
    return _PredictionResponse(content, timed)


class _PredictionResponse(Response):
    """A 200 JSON answer with ``X-Queue-Time-Ms`` and ``X-Compute-Time-Ms``.

    Its headers are built as bytes directly: Starlette's generic header handling (a dict
    encoded and scanned per response) was a few percent of a one-row prediction.
    """

    media_type = "application/json"

    def __init__(self, content: bytes, timed: TimedPrediction) -> None:
        self.status_code = 200
        self.background = None
        self.body = content
        self.raw_headers = [
            (b"x-queue-time-ms", b"%.3f" % timed.queue_ms),
            (b"x-compute-time-ms", b"%.3f" % timed.compute_ms),
            (b"content-length", b"%d" % len(content)),
            (b"content-type", b"application/json"),
        ]
