"""The socket behind a WebSocket's ASGI send on Hypercorn, for writing frames directly.

Sending a frame through the ASGI send goes Hypercorn's `WSStream.app_send` → wsproto's
framing → `TCPServer.protocol_send`, which takes a lock, writes and drains: per frame
and per connection, and most of the cost of fan-out (a profile at 1,000 subscribers put
it, with Quart's wrapper, at two thirds). Server frames are not masked, so realtime
builds each frame's bytes once (`realtime/flusher.py`) and writes them to each
connection's transport here.

This reaches into Hypercorn's protocol objects, so it is pinned in pyproject.toml;
`tests/test_websocket_direct.py` fails loudly if the chain changes. Wherever the chain
is not as expected (another server, HTTP/2, a negotiated permessage-deflate, which must
compress what it sends), `DirectSocket.of` answers None and the connection sends
through the ASGI send.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import WSStream
from wsproto.connection import ConnectionState

from .websocket_limits import compresses

__all__ = ["HIGH_WATER", "DirectSocket"]

# Bytes in the transport's buffer past which a connection waits (its reader is slow):
# asyncio's own high-water mark for stream writers.
HIGH_WATER = 64 * 1024


class DirectSocket:
    """Writes whole frames to one WebSocket's transport, in order with what Hypercorn
    writes itself (each write is one call, and asyncio keeps their order)."""

    __slots__ = ("_stream", "_transport", "_writer")

    def __init__(self, stream: WSStream, writer: asyncio.StreamWriter) -> None:
        self._stream = stream
        self._writer = writer
        self._transport = writer.transport

    @classmethod
    def of(cls, send: Any) -> DirectSocket | None:
        """For a WebSocket's ASGI `send` (accepted), or None if it cannot be written
        directly."""
        stream = getattr(send, "__self__", None)  # Hypercorn's WSStream.app_send
        if not isinstance(stream, WSStream) or stream.connection is None:
            return None
        if compresses(stream.connection):
            return None
        http = getattr(stream.send, "__self__", None)  # H11Protocol.stream_send
        if not isinstance(http, H11Protocol):
            return None  # HTTP/2 frames its data itself
        server = getattr(http.send, "__self__", None)  # TCPServer.protocol_send
        if not isinstance(server, TCPServer):
            return None
        return cls(stream, server.writer)

    def open(self) -> bool:
        return (
            self._stream.connection.state is ConnectionState.OPEN
            and not self._transport.is_closing()
        )

    def writable(self) -> bool:
        return self.open() and self._transport.get_write_buffer_size() < HIGH_WATER

    def write(self, data: bytes) -> None:
        if self.open():  # once a close has begun, data frames may not follow
            self._transport.write(data)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()
