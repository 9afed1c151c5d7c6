"""The open-loop generator's floor: a server that answers every request at once.

A plain ASGI app, no framework, on uvicorn as the floor runs (``floor_app.serve``): it
reads the request body whole and answers ``200`` with a small fixed JSON body. Timing
the open-loop generator against it at the rate it offers Ferryman shows the latency
that comes from the generator and the machine (the generator's own event loop, the
loopback, the scheduler), not from the server under test.

Usage::

    python bench/serving/echo_app.py --port 8000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from floor_app import serve

#: The answer to every request.
BODY = b'{"predictions":[1],"probabilities":[[0.25,0.75]]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer any HTTP request with :data:`BODY` once its body has arrived."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description="Answer every request at once.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
