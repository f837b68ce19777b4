"""The WebSocket endpoint: `/realtime/subscribe`, served in front of Quart (asgi.py).

The door's checks run in a Quart websocket context; then the server's task reads client
messages, each to the command router, and the transport's sink and task write (see
runtime/realtime/transports/).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from quart import Quart, websocket

from ...adapters.hypercorn import DirectSocket
from ...adapters.quart import websocket_for_checks
from ..protocol import Refusal
from ..transports.serving import Receive, Send, run_connection
from ..transports.websocket import WebSocketSink, refuse

if TYPE_CHECKING:
    from ..state import RealtimeState

__all__ = ["serve"]


async def serve(app: Quart, state: RealtimeState, scope: Any, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    async with app.websocket_context(websocket_for_checks(app, scope)):
        admitted = await state.door.admit(websocket.headers, "websocket", pongs=True)
        batch = websocket.args.get("batch") == "1"
    if isinstance(admitted, Refusal):
        await refuse(admitted, scope, send)
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
