"""The server's HTTP protocol: each complete response leaves in one write, nothing lost."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.lifespan.on import LifespanOn
from uvicorn.server import ServerState

from ferryman.cli.serve import HTTP_PROTOCOL
from ferryman.server._http import MAX_HELD_BYTES, HttpProtocol


class _Transport:
    """Records every write and close, as a socket transport would see them."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _plain(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b"hello " + scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _streamed(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one", b"two"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await asyncio.sleep(0.01)  # the event loop passes between the parts
    await send({"type": "http.response.body", "body": b""})


async def _connected(app: Any) -> tuple[HttpProtocol, _Transport]:
    config = Config(app=app, lifespan="off", log_level="warning")
    protocol = HttpProtocol(
        config=config,
        server_state=ServerState(),
        app_state=LifespanOn(config).state,
        _loop=asyncio.get_running_loop(),
    )
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def _settle(seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)


def _exchange(app: Any, request: bytes) -> _Transport:
    """Feed ``request`` to a connected protocol and let the app answer."""

    async def scenario() -> _Transport:
        protocol, transport = await _connected(app)
        protocol.data_received(request)
        await _settle()
        if not transport.closed:
            protocol.connection_lost(None)
        return transport

    return asyncio.run(scenario())


def test_a_response_leaves_in_one_write() -> None:
    writes = _exchange(_plain, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").writes
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\nhello /a")


def test_pipelined_responses_are_all_sent_in_order() -> None:
    request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    sent = b"".join(_exchange(_plain, request).writes)
    assert sent.count(b"HTTP/1.1 200 OK") == 2
    assert sent.index(b"hello /a") < sent.index(b"hello /b")


def test_a_streamed_response_is_sent_as_it_is_produced() -> None:
    async def scenario() -> list[bytes]:
        protocol, transport = await _connected(_streamed)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.005)  # the first part is out before the app sends the next
        first = list(transport.writes)
        await _settle()
        protocol.connection_lost(None)
        return [b"".join(first), b"".join(transport.writes)]

    first, everything = asyncio.run(scenario())
    assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"3\r\none\r\n")
    assert everything.endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


async def _large(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(3):  # no await between the parts: one pass of the event loop
        await send({"type": "http.response.body", "body": b"x" * MAX_HELD_BYTES, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def test_a_large_body_is_sent_as_it_grows_within_one_pass() -> None:
    transport = _exchange(_large, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sizes = [len(write) for write in transport.writes]
    assert len(sizes) >= 3  # not held until the end of the response
    assert all(size <= 2 * MAX_HELD_BYTES + 100 for size in sizes)
    assert b"".join(transport.writes).endswith(b"0\r\n\r\n")


def test_connection_close_sends_the_response_before_closing() -> None:
    transport = _exchange(_plain, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert transport.closed
    assert b"".join(transport.writes).endswith(b"hello /a")


def test_a_malformed_request_gets_its_400_before_the_close() -> None:
    transport = _exchange(_plain, b"NOT HTTP AT ALL\r\n\r\n")
    assert transport.closed
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 400")


def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    async def scenario() -> _Transport:
        protocol, transport = await _connected(_plain)
        protocol.transport.write(b"held")
        transport.closed = True  # the peer went away before the loop's pass ended
        await _settle()
        return transport

    assert asyncio.run(scenario()).writes == []


def test_the_serve_command_names_this_protocol() -> None:
    from uvicorn.importer import import_from_string

    assert import_from_string(HTTP_PROTOCOL) is HttpProtocol
