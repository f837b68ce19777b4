"""The WebSocket transport: `/realtime/subscribe`, served in front of Quart (see asgi.py).

The handshake's checks run in a Quart websocket context; then the server's task reads
client messages and one task writes what the flusher does not: pings, frames while the
socket is full, the frames left at a close and the close itself (everything, for a
socket that cannot be written directly).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from quart import Quart, websocket

from ...adapters.hypercorn import DirectSocket
from ...proxies import request_client
from .. import protocol
from ..clients.admission import origin_allowed, too_many_connections
from ..clients.commands import connected_frame, handle_message
from ..connections.connection import Connection
from ..connections.flusher import wire_bytes
from ..protocol import CloseCode
from ..state import RealtimeState, current_realtime
from .serving import Receive, Send, answer, quart_headers, run_connection

__all__ = ["serve"]


async def serve(app: Quart, scope: Any, receive: Receive, send: Send) -> None:
    state = current_realtime(app)
    if (await receive())["type"] != "websocket.connect":
        return
    async with app.websocket_context(_quart_websocket(app, scope)):
        admitted = await _admit(state)
    if isinstance(admitted, tuple):  # refused before the upgrade: an HTTP answer
        if "websocket.http.response" in scope.get("extensions", {}):
            status, code, message = admitted
            await answer(_http_response(send), status, code, message)
        else:
            await send({"type": "websocket.close", "code": CloseCode.NORMAL})  # HTTP 403
        return
    await send({"type": "websocket.accept"})
    if isinstance(admitted, str):  # refused after the upgrade, with a close code
        close = CloseCode.TRY_AGAIN_LATER if admitted == "at capacity" else CloseCode.TOO_SLOW
        await send({"type": "websocket.close", "code": close, "reason": admitted})
        return
    conn, broker = admitted, state.broker
    sink = DirectSocket.of(send)
    broker.connect(conn)
    try:
        conn.sink = sink
        conn.send(connected_frame(conn, state.config.heartbeat))

        async def on_message(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "websocket.receive":
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                conn.last_seen = time.monotonic()
                if not conn.closing:
                    await handle_message(state, conn, raw)

        await run_connection(conn, receive, lambda: _write(conn, sink, send), on_message)
    finally:
        broker.disconnect(conn)


async def _admit(state: RealtimeState) -> Connection | tuple[int, str, str] | str:
    """The connection, or why not: an HTTP refusal (status, code, message) before the
    upgrade, or a close reason after it. Runs in a Quart websocket context."""
    config, broker = state.config, state.broker
    if not origin_allowed(
        websocket.headers.get("Origin"), websocket.headers.get("Host"), config.allowed_origins
    ):
        return 403, "forbidden", "This origin may not connect."
    user, session_hash = await state.identify()
    if user is None and not config.allow_anonymous:
        return 401, "unauthorized", "Log in to connect."
    if state.shutting_down:
        return 503, "unavailable", "The server is shutting down."
    if broker.connection_count() >= config.max_connections:
        return "at capacity"
    address = request_client().address
    refusal = too_many_connections(config, broker, user, address)
    if refusal is not None:
        return refusal
    return Connection(
        user=user,
        session_hash=session_hash,
        address=address,
        transport="websocket",
        max_queue=config.send_queue_size,
        max_queue_bytes=config.send_queue_bytes,
        batch=websocket.args.get("batch") == "1",
        pongs=True,
    )


async def _write(conn: Connection, sink: DirectSocket | None, send: Send) -> None:
    ping = protocol.encode(protocol.ping())
    while True:
        await conn.wait()
        if conn.ping_due:
            conn.ping_due = False
            conn.send(ping)
        # Closing: what is queued now is all there will be (what close(flush=True) kept
        # and was queued before), so send it, then the close frame.
        closing = conn.closing
        if sink is not None:
            if conn.blocked:
                await sink.drain()
                conn.blocked = False
            frames = conn.drain()
            if frames:
                sink.write(wire_bytes(frames, conn.batch))
        else:
            frames = conn.drain()
            if conn.batch and len(frames) > 1:
                frames = [protocol.encode_batch(frames)]
            for frame in frames:
                await send({"type": "websocket.send", "text": frame})
        if closing:
            assert conn.close_code is not None
            await send(
                {"type": "websocket.close", "code": conn.close_code, "reason": conn.close_reason}
            )
            return


def _http_response(send: Send) -> Send:
    """`send` for an HTTP answer to a WebSocket handshake (ASGI's websocket.http.response
    extension names its messages so)."""

    async def send_as_websocket(message: Any) -> None:
        kind = message["type"].replace("http.response.", "websocket.http.response.")
        await send({**message, "type": kind})

    return send_as_websocket


def _quart_websocket(app: Quart, scope: Any) -> Any:
    """Quart's websocket object for the handshake's checks (Quart's own reading of the
    scope); it neither reads nor writes the socket."""
    return app.websocket_class(
        scope["path"],
        scope["query_string"],
        scope.get("scheme", "ws"),
        quart_headers(scope),
        scope.get("root_path", ""),
        scope.get("http_version", "1.1"),
        list(scope.get("subprotocols", [])),
        _unused,
        _unused,
        _unused,
        _unused,
        scope=scope,
    )


async def _unused(*args: Any) -> Any:
    raise RuntimeError("realtime reads and writes this socket itself")
