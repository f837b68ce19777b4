"""The socket behind an ASGI send on Hypercorn, for writing realtime's bytes directly.

Sending through the ASGI send goes Hypercorn's stream (`WSStream.app_send`, or
`HTTPStream.app_send` for an SSE response) → wsproto's or h11's framing →
`TCPServer.protocol_send`, which takes a lock, writes and drains: per frame and per
connection, and most of the cost of fan-out (a profile at 1,000 subscribers put it, with
Quart's wrapper, at two thirds). Server WebSocket frames are not masked and an SSE
message is the same text for every subscriber, so realtime builds each one's bytes once
(`realtime/flusher.py`) and writes them to each connection's transport here: WebSocket
frames, or HTTP/1.1 chunks of the SSE response's chunked body.

This reaches into Hypercorn's protocol objects, so it is pinned in pyproject.toml;
`tests/test_direct_sockets.py` fails loudly if the chain changes. Wherever the chain
is not as expected (another server, HTTP/2 or HTTP/1.0, a negotiated permessage-deflate,
which must compress what it sends), `DirectSocket.of` answers None and the connection
sends through the ASGI send.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from wsproto.connection import ConnectionState

from .wsproto import compresses

__all__ = ["HIGH_WATER", "DirectSocket"]

# Bytes in the transport's buffer past which a connection waits (its reader is slow):
# asyncio's own high-water mark for stream writers.
HIGH_WATER = 64 * 1024


class DirectSocket:
    """Writes whole frames (or chunks) to one connection's transport, in order with what
    Hypercorn writes itself (each write is one call, and asyncio keeps their order)."""

    __slots__ = ("_open", "_transport", "_writer")

    def __init__(self, is_open: Callable[[], bool], writer: asyncio.StreamWriter) -> None:
        self._open = is_open
        self._writer = writer
        self._transport = writer.transport

    @classmethod
    def of(cls, send: Any) -> DirectSocket | None:
        """For an ASGI `send` of an accepted WebSocket or of a started HTTP/1.1 response,
        or None if it cannot be written directly."""
        stream = getattr(send, "__self__", None)  # Hypercorn's stream's app_send
        is_open: Callable[[], bool]
        if isinstance(stream, WSStream):
            connection = stream.connection
            if connection is None or compresses(connection):
                return None
            is_open = functools.partial(_websocket_open, connection)
        elif isinstance(stream, HTTPStream):
            if stream.scope.get("http_version") != "1.1":
                return None  # chunked bodies are HTTP/1.1's
            is_open = functools.partial(_response_open, stream)
        else:
            return None
        http = getattr(stream.send, "__self__", None)  # H11Protocol.stream_send
        if not isinstance(http, H11Protocol):
            return None  # HTTP/2 frames its data itself
        server = getattr(http.send, "__self__", None)  # TCPServer.protocol_send
        if not isinstance(server, TCPServer):
            return None
        return cls(is_open, server.writer)

    def open(self) -> bool:
        return self._open() and not self._transport.is_closing()

    def writable(self) -> bool:
        return self.open() and self._transport.get_write_buffer_size() < HIGH_WATER

    def write(self, data: bytes) -> None:
        if self.open():  # once a close has begun, data may not follow
            self._transport.write(data)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()


def _websocket_open(connection: Any) -> bool:
    return connection.state is ConnectionState.OPEN


def _response_open(stream: HTTPStream) -> bool:
    return stream.state is ASGIHTTPState.RESPONSE and not stream.closed
