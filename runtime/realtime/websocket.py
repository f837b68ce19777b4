"""The WebSocket transport: `/realtime/subscribe`, served in front of Quart.

`Realtime.init_app` wraps the app's ASGI callable (`app.asgi_app`, Quart's place for
middleware) with `RealtimeWebSocket`: WebSocket connections to this path are served here
from the ASGI messages. The handshake's checks run inside a Quart websocket context, like
any view (sessions, `g`, the app's `identify`), and then the connection lives without
Quart's per-connection wrapper (a queue, two tasks and a websocket object held for the
connection's whole life): a connection is the server's task, which reads, and one task
that writes what the flusher does not (pings, frames while the socket is full, the
close). Every other request goes to Quart as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from quart import Quart, websocket
from werkzeug.datastructures import Headers

from ..errors import error_body
from ..proxies import request_client
from ..websocket_direct import DirectSocket
from . import protocol
from .commands import connected_frame, handle_message
from .connection import Connection
from .flusher import wire_bytes
from .handshake import origin_allowed, too_many_connections
from .protocol import CloseCode
from .state import RealtimeState, current_realtime

__all__ = ["PATH", "RealtimeWebSocket"]

log = logging.getLogger("runtime.realtime")

PATH = "/realtime/subscribe"
CLOSE_TIMEOUT = 2.0  # seconds a closing connection gets to send its close frame

# ASGI's callables, loosely typed: this sits between the server and Quart, whose own
# types are narrower TypedDicts for every message.
Scope = Any
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class RealtimeWebSocket:
    """ASGI middleware: WebSockets to `PATH` are realtime's, the rest the app's."""

    def __init__(self, app: Quart, inner: ASGIApp) -> None:
        self.app = app
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == PATH:
            await serve(self.app, scope, receive, send)
        else:
            await self.inner(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def serve(app: Quart, scope: Scope, receive: Receive, send: Send) -> None:
    state = current_realtime(app)
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    async with app.websocket_context(_quart_websocket(app, scope)):
        admitted = await _admit(state)
    if isinstance(admitted, tuple):
        status, code, text = admitted
        await _refuse(scope, send, status, code, text)
        return
    await send({"type": "websocket.accept"})
    if isinstance(admitted, str):  # refused after the upgrade, with a close code
        close = CloseCode.TRY_AGAIN_LATER if admitted == "at capacity" else CloseCode.TOO_SLOW
        await send({"type": "websocket.close", "code": close, "reason": admitted})
        return
    await _run(state, admitted, receive, send)


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


async def _run(state: RealtimeState, conn: Connection, receive: Receive, send: Send) -> None:
    broker, config = state.broker, state.config
    sink = DirectSocket.of(send)
    broker.connect(conn)
    conn.sink = sink
    conn.send(connected_frame(conn, config.heartbeat))
    writer = asyncio.create_task(_write(conn, sink, send))
    loop = asyncio.get_running_loop()
    # A close gives the writer a bounded time to get the close frame out (a client that
    # stopped reading may never let it through): a timer, not a task per connection.
    conn.on_close = lambda: loop.call_later(CLOSE_TIMEOUT, writer.cancel)
    reading = asyncio.current_task()
    assert reading is not None

    def writer_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("websocket %s failed", conn.id, exc_info=task.exception())
        # The close frame is out (or the writer gave up): the client's answer ends the
        # reading below. Wait for it a bounded time, not for ever: closing the TCP
        # connection first could reset it before the client has read our close frame.
        loop.call_later(0 if task.cancelled() else CLOSE_TIMEOUT, reading.cancel)

    writer.add_done_callback(writer_done)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            conn.last_seen = time.monotonic()
            if not conn.closing:
                await handle_message(state, conn, raw)
    except asyncio.CancelledError:
        if not writer.done():
            raise  # cancelled from outside: shutting down
        reading.uncancel()  # our own timer: the client did not answer the close in time
    finally:
        broker.disconnect(conn)
        writer.remove_done_callback(writer_done)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def _write(conn: Connection, sink: DirectSocket | None, send: Send) -> None:
    """Sends what the flusher does not: pings, frames while the socket was full, the
    frames left at a close and the close itself; everything, without a sink."""
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


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """An HTTP answer instead of the upgrade, where the server can send one."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": CloseCode.NORMAL})  # HTTP 403
        return
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _quart_websocket(app: Quart, scope: Scope) -> Any:
    """Quart's websocket object for the handshake's checks (Quart's own reading of the
    scope); it neither reads nor writes the socket."""
    headers = Headers()
    headers["Remote-Addr"] = (scope.get("client") or ["<local>"])[0]
    for name, value in scope["headers"]:
        headers.add(name.decode("latin1").title(), value.decode("latin1"))
    return app.websocket_class(
        scope["path"],
        scope["query_string"],
        scope.get("scheme", "ws"),
        headers,
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
    raise RuntimeError("realtime reads and writes its WebSockets itself")
