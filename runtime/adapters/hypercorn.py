"""Hypercorn's insides that realtime relies on: the socket behind an ASGI send, for
writing frames directly (the fast path) and for dropping a connection whose client
stopped reading (either path); the WebSocket handshake, for bounding inbound messages
(with runtime/adapters/wsproto.py); and telling, at start-up, whether the app is served
that way at all.

Sending through the ASGI send goes Hypercorn's stream (`WSStream.app_send`, or
`HTTPStream.app_send` for an SSE response) → wsproto's or h11's framing →
`TCPServer.protocol_send`, which takes a lock, writes and drains: per frame and per
connection, and most of the cost of fan-out (a profile at 1,000 subscribers put it, with
Quart's wrapper, at two thirds). Server WebSocket frames are not masked and an SSE
message is the same text for every subscriber, so realtime builds each one's bytes once
(runtime/realtime/transports/) and writes them to each connection's transport here:
WebSocket frames, or HTTP/1.1 chunks of the SSE response's chunked body.

A connection's writer may stop waiting on a send (a close does not wait behind a
client that stopped reading, runtime/realtime/transports/serving.py): Hypercorn writes
each frame or chunk in one call, then waits (`TCPServer.protocol_send`), so a cancelled
send has written all of its frame or none of it. And a connection whose client never
takes what it holds is dropped here (`abort`), which Hypercorn would keep for ever.

Hypercorn is pinned in pyproject.toml; `tests/adapters/test_hypercorn.py` fails loudly
if what is relied on here changes. Wherever the chain is not as expected (another
server, HTTP/2 or HTTP/1.0, a negotiated permessage-deflate, which must compress what it
sends), `DirectSocket.of` answers None and the connection sends through the ASGI send.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol import ws_stream
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import WSStream

from .wsproto import bounded_connection, compresses, open_test

if TYPE_CHECKING:
    from wsproto.connection import Connection

__all__ = [
    "HIGH_WATER",
    "DirectSocket",
    "abort",
    "handshake_class",
    "install",
    "installed",
    "serves",
    "unsent",
]

# Bytes in the transport's buffer past which a connection waits (its reader is slow):
# asyncio's own high-water mark for stream writers.
HIGH_WATER = 64 * 1024

# Hypercorn's own, captured before install() replaces it: each class made here derives
# from it, never from the one a previous install() put in its place.
_HypercornHandshake = ws_stream.Handshake


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
        still_open: Callable[[], bool]
        if isinstance(stream, WSStream):
            connection = stream.connection
            if connection is None or compresses(connection):
                return None
            still_open = open_test(connection)
        elif isinstance(stream, HTTPStream):
            if stream.scope.get("http_version") != "1.1":
                return None  # chunked bodies are HTTP/1.1's
            still_open = functools.partial(_response_open, stream)
        else:
            return None
        writer = _writer(stream)
        return None if writer is None else cls(still_open, writer)

    def open(self) -> bool:
        return self._open() and not self._transport.is_closing()

    def write_if_room(self, data: bytes) -> bool:
        """Write `data` if the socket is open and its buffer below the high-water mark
        (a flush's one check per connection); False, writing nothing, otherwise."""
        transport = self._transport
        if (
            not self._open()
            or transport.is_closing()
            or transport.get_write_buffer_size() >= HIGH_WATER
        ):
            return False
        transport.write(data)
        return True

    def write(self, data: bytes) -> None:
        if self.open():  # once a close has begun, data may not follow
            self._transport.write(data)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()


def _response_open(stream: HTTPStream) -> bool:
    return stream.state is ASGIHTTPState.RESPONSE and not stream.closed


def _writer(stream: WSStream | HTTPStream) -> asyncio.StreamWriter | None:
    """The writer of the TCP connection under a stream of Hypercorn's HTTP/1.1 (h11)
    protocol; None under HTTP/2, whose streams share a connection and frame their data."""
    http = getattr(stream.send, "__self__", None)  # H11Protocol.stream_send
    if not isinstance(http, H11Protocol):
        return None
    server = getattr(http.send, "__self__", None)  # TCPServer.protocol_send
    if not isinstance(server, TCPServer):
        return None
    return server.writer


def _transport(send: Any) -> asyncio.WriteTransport | None:
    stream = getattr(send, "__self__", None)  # Hypercorn's stream's app_send
    if not isinstance(stream, WSStream | HTTPStream):
        return None
    writer = _writer(stream)
    return None if writer is None else writer.transport


# -- a connection's end ----------------------------------------------------------------


def unsent(send: Any) -> int | None:
    """How many bytes the connection behind an ASGI `send` holds in this process, that
    the kernel has not taken yet (it takes none once its own buffers are full: the
    client stopped reading), whether they were written directly or through `send`; None
    where that cannot be told (another server, HTTP/2)."""
    transport = _transport(send)
    return None if transport is None else transport.get_write_buffer_size()


def abort(send: Any) -> bool:
    """Drop the connection behind an ASGI `send` at once, and what it holds: a TCP reset,
    so that the kernel does not keep its unsent bytes either; False where that cannot be
    done (another server, HTTP/2).

    Hypercorn closes a connection only once it has written everything it holds
    (`TCPServer._close` awaits the writer's `wait_closed()`), so a client that never
    reads again would keep the connection, its buffer and Hypercorn's task for it for
    ever. Once aborted, Hypercorn's reader sees the end and its pending writes fail
    with ConnectionError, which it takes as a close."""
    transport = _transport(send)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:  # linger 0: close() resets the connection, it sends nothing more
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


# -- the handshake: inbound messages bounded ------------------------------------------


def install(*, max_message_size: int, compression: bool) -> None:
    """Bound every WebSocket message this process receives to `max_message_size` bytes
    (see runtime/adapters/wsproto.py). The only way in is Hypercorn's handshake class,
    looked up per connection in `hypercorn.protocol.ws_stream`: replaced here, for the
    whole process."""
    ws_stream.Handshake = handshake_class(  # type: ignore[misc]
        max_message_size=max_message_size, compression=compression
    )


def installed() -> bool:
    """Whether this process's WebSocket handshakes are those of `install()`."""
    return getattr(ws_stream.Handshake, "bounds_messages", False) is True


def handshake_class(*, max_message_size: int, compression: bool) -> type[_HypercornHandshake]:
    """Hypercorn's handshake, accepting connections whose inbound messages are bounded.

    Without `compression` permessage-deflate is never negotiated (Hypercorn accepts it
    whenever a client offers it; browsers always do).
    """

    class Handshake(_HypercornHandshake):
        bounds_messages = True

        def __init__(self, headers: list[tuple[bytes, bytes]], http_version: str) -> None:
            super().__init__(headers, http_version)
            # Hypercorn would negotiate permessage-deflate itself; accept() does it instead.
            self.offers = self.extensions if compression else None
            self.extensions = None

        def accept(
            self, subprotocol: str | None, additional_headers: Iterable[tuple[bytes, bytes]]
        ) -> tuple[int, list[tuple[bytes, bytes]], Connection]:
            status, headers, _ = super().accept(subprotocol, additional_headers)
            connection, accepted = bounded_connection(max_message_size, self.offers)
            if accepted:
                headers.append((b"sec-websocket-extensions", accepted))
            return status, headers, connection

    return Handshake


# -- who serves the app ----------------------------------------------------------------


def serves(lifespan_send: Any) -> bool:
    """Whether the server that sent an ASGI lifespan scope `lifespan_send` is Hypercorn
    on asyncio (whose connections the fast path can write to)."""
    return isinstance(getattr(lifespan_send, "__self__", None), Lifespan)
