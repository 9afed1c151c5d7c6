"""The HTTP/1.1 protocol ``ferryman serve`` runs: uvicorn's httptools one, one send per answer.

uvicorn writes a response's status line and headers, then its body, in two
``transport.write`` calls, and uvloop sends each at once: two ``send`` system calls and
two TCP segments per answer, each waking the client. :class:`HttpProtocol` hands uvicorn
a transport that holds what is written and sends it in one call when the response is
complete (or, for a response streamed in parts, at the end of the event loop's pass), so
a one-row prediction costs one ``send``. Once :data:`MAX_HELD_BYTES` are held they go out
at once, so a large or fast-streamed body still meets the transport's flow control.
Everything else is uvicorn's protocol as it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Held bytes that are sent at once rather than at the response's end.
MAX_HELD_BYTES = 64 * 1024


class _HeldWrites:
    """A transport that sends what is written to it in one call, soon.

    Writes made in one pass of the event loop go out together: when the response is
    complete (:meth:`flush`, called by the protocol), before closing, or at the end of
    the pass (a callback scheduled by the first held write), whichever comes first.
    Everything but writing and closing is the real transport's.
    """

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._held_bytes = len(data)
            self._loop.call_soon(self.flush)
        else:
            held.append(data)
            self._held_bytes += len(data)
        if self._held_bytes >= MAX_HELD_BYTES:
            self.flush()

    def flush(self) -> None:
        """Send what is held (nothing when the transport is closing)."""
        held = self._held
        if held is None:
            return
        self._held = None
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (sum(map(len, held)) if held else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol sending each complete response in one system call."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeldWrites(transport, self.loop))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()


__all__ = ["HttpProtocol"]
