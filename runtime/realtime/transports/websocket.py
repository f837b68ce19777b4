"""The WebSocket transport: its sink, which writes frames as WebSocket messages, and
how it refuses a connection (an HTTP answer, or a close right after the upgrade)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...adapters.hypercorn import DirectSocket
from .. import protocol
from ..protocol import CloseCode, Refusal
from .serving import Send, SocketSink, answer
from .wire import text_frame, wire_bytes

if TYPE_CHECKING:
    from ..connections.connection import FlushCache

__all__ = ["WebSocketSink", "refuse"]

_PING = protocol.encode(protocol.ping())


async def refuse(refusal: Refusal, scope: Any, send: Send) -> None:
    """An HTTP answer before the upgrade, or, for a refusal with a close code, the
    upgrade and that close at once."""
    if refusal.close_code is not None:
        await send({"type": "websocket.accept"})
        await send(
            {"type": "websocket.close", "code": refusal.close_code, "reason": refusal.reason}
        )
    elif "websocket.http.response" in scope.get("extensions", {}):
        await answer(_http_response(send), refusal)
    else:
        await send({"type": "websocket.close", "code": CloseCode.NORMAL})  # HTTP 403


def _http_response(send: Send) -> Send:
    """`send` for an HTTP answer to a WebSocket handshake (ASGI's websocket.http.response
    extension names its messages so)."""

    async def send_as_websocket(message: Any) -> None:
        kind = message["type"].replace("http.response.", "websocket.http.response.")
        await send({**message, "type": kind})

    return send_as_websocket


class WebSocketSink(SocketSink):
    """A WebSocket's frames: written straight to its socket where the server allows
    (`socket`), else sent through the ASGI send, one message each; for `?batch=1`
    clients, frames queued together go as one JSON array."""

    __slots__ = ("_batch",)

    def __init__(self, send: Send, socket: DirectSocket | None, *, batch: bool) -> None:
        super().__init__(send, socket)
        self._batch = batch

    def write(self, frames: list[str], cache: FlushCache) -> bool:
        if len(frames) == 1:
            return self.write_one(frames[0], cache)
        socket = self._socket
        if socket is None:
            return False
        built = cache.get(WebSocketSink)
        if built is None:
            built = cache[WebSocketSink] = {}
        if self._batch:
            key = tuple(frames)
            data = built.get(key)
            if data is None:
                data = built[key] = text_frame(protocol.encode_batch(frames))
        else:
            parts = []
            for frame in frames:
                part = built.get(frame)
                if part is None:
                    part = built[frame] = text_frame(frame)
                parts.append(part)
            data = b"".join(parts)
        return socket.write_if_room(data)

    def write_one(self, frame: str, cache: FlushCache) -> bool:
        built = cache.get(WebSocketSink)
        if built is None:
            built = cache[WebSocketSink] = {}
        data = built.get(frame)
        if data is None:
            data = built[frame] = text_frame(frame)
        socket = self._socket
        return socket is not None and socket.write_if_room(data)

    async def send(self, frames: list[str], *, ping: bool = False) -> None:
        if ping:
            frames.append(_PING)
        if not frames:
            return
        if self._socket is not None:
            self._socket.write(wire_bytes(frames, self._batch))
            return
        if self._batch and len(frames) > 1:
            frames = [protocol.encode_batch(frames)]
        for frame in frames:
            await self._send({"type": "websocket.send", "text": frame})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
