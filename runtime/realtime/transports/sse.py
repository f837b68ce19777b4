"""The Server-Sent Events transport: its sinks, which write frames as SSE messages (the
JSON the WebSocket would send) or, for `format=html` streams, as htmx's fragments; and
the start of a stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...adapters.hypercorn import DirectSocket
from .. import protocol
from .html import Fragments
from .serving import Send, SocketSink
from .wire import chunk, frame_message

if TYPE_CHECKING:
    from ..connections.connection import FlushCache

__all__ = ["HTMLSink", "SSESink", "start_stream"]

RETRY_MS = 2000  # how long EventSource waits before reconnecting by itself
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx would hold the stream back otherwise
]


async def start_stream(send: Send) -> None:
    """The response's head, and the `retry:` line EventSource reads first."""
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    first = f"retry: {RETRY_MS}\n\n".encode()
    await send({"type": "http.response.body", "body": first, "more_body": True})


class SSESink(SocketSink):
    """A stream's frames as SSE messages: written straight to its socket as HTTP/1.1
    chunks where the server allows (`socket`), else sent through the ASGI send as the
    response's body."""

    __slots__ = ()

    def write(self, frames: list[str], cache: FlushCache) -> bool:
        socket = self._socket
        return socket is not None and socket.write_if_room(chunk(self._messages(frames, cache)))

    def _messages(self, frames: list[str], cache: FlushCache) -> bytes:
        """The frames' SSE messages, each built once per flush."""
        built = cache.get(SSESink)
        if built is None:
            built = cache[SSESink] = {}
        parts = []
        for frame in frames:
            data = built.get(frame)
            if data is None:
                data = built[frame] = frame_message(frame).encode("utf-8")
            parts.append(data)
        return b"".join(parts)

    def _text(self, frames: list[str]) -> str:
        return "".join(frame_message(frame) for frame in frames)

    async def send(self, frames: list[str], *, ping: bool = False) -> None:
        text = self._text(frames)
        if ping:  # a comment keeps proxies from timing the stream out
            text += ": ping\n\n"
        if text:
            await self._body(text.encode("utf-8"))

    async def _body(self, data: bytes) -> None:
        if self._socket is not None:
            self._socket.write(chunk(data))
        else:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def close(self, code: int, reason: str) -> None:
        # SSE has no close codes: say why in a last message, then end the stream.
        frame = protocol.encode({"type": "close", "code": code, "reason": reason})
        await self._body(frame_message(frame).encode())  # `event: close`
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


class HTMLSink(SSESink):
    """A `format=html` stream: record events of collections with a fragment template
    as rendered HTML under htmx's event names (see html.py), the rest as SSESink."""

    __slots__ = ("_fragments",)

    def __init__(self, send: Send, socket: DirectSocket | None, fragments: Fragments) -> None:
        super().__init__(send, socket)
        self._fragments = fragments

    def _messages(self, frames: list[str], cache: FlushCache) -> bytes:
        built = cache.get(HTMLSink)
        if built is None:
            built = cache[HTMLSink] = {}
        return self._fragments.messages(frames, built).encode("utf-8")

    def _text(self, frames: list[str]) -> str:
        return self._fragments.messages(frames)
