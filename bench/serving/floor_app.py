"""The serving floor: the least a Python HTTP server can do to answer a prediction.

One Starlette route, ``POST /predict``, in one uvicorn process (uvloop, httptools, no
access log): parse the JSON body ``{"instances": [[x1, ..., xn], ...]}`` with orjson,
build a float64 NumPy array, call the model's ``predict_proba`` inline on the event loop
and answer ``{"probabilities": [[...], ...]}``. No validation, no thread hop, no request
id, no error handling beyond Starlette's own. ``GET /ready`` answers 200 once the model
is loaded.

Usage::

    python bench/serving/floor_app.py --model model.joblib --port 8000
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app(model: Any) -> Starlette:
    """Build the floor app around a fitted classifier."""

    async def predict(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        rows = np.asarray(payload["instances"], dtype=np.float64)
        probabilities = model.predict_proba(rows)
        body = orjson.dumps({"probabilities": probabilities}, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(body, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b'{"ready": true}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/ready", ready, methods=["GET"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Load the model and serve it until interrupted."""
    parser = argparse.ArgumentParser(description="Serve a joblib model with the bare floor app.")
    parser.add_argument("--model", type=Path, required=True, help="a joblib file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(create_app(joblib.load(args.model)), host=args.host, port=args.port)


def serve(app: Any, *, host: str, port: int) -> None:
    """Run ``app`` on uvicorn as every bare server of the benchmark runs: uvloop,
    httptools, no access log, the long-lived heap frozen out of the collector's way
    (as Ferryman does), so that a full collection of the imported libraries does not
    stall requests."""
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
