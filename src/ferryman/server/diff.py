"""The shadow diff report over HTTP: ``GET /v1/rollouts/{endpoint}/report``.

Query parameters, all optional:

- ``since``: start of the window, a duration back from now (``90s``, ``15m``, ``1h``,
  ``7d``) or an ISO 8601 time with a zone (URL-encode ``+`` as ``%2B``); default ``1h``.
- ``until``: end of the window, the same forms; default now.
- ``candidate``: the shadowed version, ``name/N``; default the only one in the window.
- ``top``: how many disagreements to list, 0-1000; default 20.
- ``format``: ``json`` (default, :meth:`~ferryman.rollout.diff.DiffReport.to_dict`) or
  ``html`` (the standalone page, ``text/html``).

The report lists captured inputs of the rows that disagree, which may hold personal
data, so on top of the ``read`` permission the auth middleware checks for every
``GET /v1/rollouts/...``, the caller needs ``read_logs`` on the endpoint (403 otherwise),
as for reading the log itself. Without a prediction log (capture off) the answer is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ferryman.errors import InvalidInputError, NotFoundError
from ferryman.server.auth import log_reading_route
from ferryman.serving.codecs.base import dumps

if TYPE_CHECKING:
    from ferryman.capture import LogStore

#: Most disagreements one report lists over HTTP.
MAX_TOP = 1000
FORMATS = ("json", "html")


class DiffContext(Protocol):
    """What the report route needs from the server's context."""

    @property
    def log(self) -> LogStore | None:
        """The prediction log's store, or ``None`` when capture is off."""
        ...


def routes(context: DiffContext) -> list[Route]:
    """The diff report route."""

    async def report(request: Request, endpoint: str) -> Response:
        return await _report(context, request, endpoint)

    return [
        log_reading_route(
            "/v1/rollouts/{endpoint}/report", report, why="the diff report shows captured inputs"
        )
    ]


async def _report(context: DiffContext, request: Request, endpoint: str) -> Response:
    from ferryman.rollout.diff import shadow_report

    log = context.log
    if log is None:
        raise NotFoundError(
            "This server keeps no prediction log (capture is off), so there are no shadow "
            "records to compare; turn capture on for the endpoint before a shadow rollout."
        )
    query = request.query_params
    output = query.get("format", "json")
    if output not in FORMATS:
        raise InvalidInputError(f"invalid format {output!r}: expected json or html")
    top_text = query.get("top", "20")
    if not top_text.isdigit() or int(top_text) > MAX_TOP:
        raise InvalidInputError(f"invalid top {top_text!r}: expected an integer 0-{MAX_TOP}")
    now = log.now()
    until_text = query.get("until")
    until = now if until_text is None else _moment(until_text, "until", now)
    since = _moment(query.get("since", "1h"), "since", until)
    candidate = query.get("candidate")

    def work() -> Any:
        found = shadow_report(
            log,
            endpoint,
            since=since,
            until=until,
            candidate=candidate,
            top=int(top_text),
        )
        return found.to_html() if output == "html" else found.to_dict()

    result = await run_in_threadpool(work)
    if output == "html":
        return HTMLResponse(result)
    return Response(dumps(result), media_type="application/json")


def _moment(text: str, name: str, now: dt.datetime) -> dt.datetime:
    """A duration back from ``now`` (``1h``) or an ISO 8601 time with a zone.

    Raises:
        InvalidInputError: ``text`` is neither.
    """
    from ferryman.capture import parse_window

    if text[:1].isdigit() and text.rstrip()[-1:] in ("s", "m", "h", "d", "w"):
        try:
            return now - parse_window(text)
        except InvalidInputError:
            pass
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInputError(
            f"invalid {name} {text!r}: expected a duration such as 15m, 1h or 7d, or ISO "
            "8601 with a zone, e.g. 2026-01-31T12:00:00+00:00 (URL-encode '+' as %2B) or ...Z"
        )
    return value


__all__ = ["FORMATS", "MAX_TOP", "DiffContext", "routes"]
