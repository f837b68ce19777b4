"""The WebSocket transport: `/realtime/subscribe`, served in front of Quart (see
endpoints.py), and its sink, which writes frames as WebSocket messages.

The door's checks run in a Quart websocket context; then the server's task reads client
messages (each one goes to the command router) and one task writes what the flusher
does not (see serving.py).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from quart import Quart, websocket

from ...adapters.hypercorn import DirectSocket
from ...adapters.quart import websocket_for_checks
from .. import protocol
from ..protocol import CloseCode, Refusal
from .serving import Receive, Send, SocketSink, answer, run_connection
from .wire import text_frame, wire_bytes

if TYPE_CHECKING:
    from ..connections.flusher import FlushCache
    from ..state import RealtimeState

__all__ = ["WebSocketSink", "serve"]

_PING = protocol.encode(protocol.ping())


async def serve(app: Quart, state: RealtimeState, scope: Any, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    async with app.websocket_context(websocket_for_checks(app, scope)):
        admitted = await state.door.admit(websocket.headers, "websocket", pongs=True)
        batch = websocket.args.get("batch") == "1"
    if isinstance(admitted, Refusal):
        await _refuse(admitted, scope, send)
        return
    await send({"type": "websocket.accept"})
    conn, broker = admitted, state.broker
    broker.connect(conn)
    try:

        async def on_message(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "websocket.receive":
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                conn.last_seen = time.monotonic()
                if not conn.closing:
                    await state.router.frame(conn, raw)

        socket = DirectSocket.of(send) if state.config.fast_path else None
        sink = WebSocketSink(send, socket, batch=batch)
        await run_connection(conn, sink, receive, on_message)
    finally:
        broker.disconnect(conn)


async def _refuse(refusal: Refusal, scope: Any, send: Send) -> None:
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

    def write(self, frames: list[str], cache: FlushCache) -> None:
        assert self._socket is not None
        built = cache.get(WebSocketSink)
        if built is None:
            built = cache[WebSocketSink] = {}
        if self._batch and len(frames) > 1:
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
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._socket.write(data)

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
