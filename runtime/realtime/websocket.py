"""The WebSocket transport: `/realtime/subscribe`.

Per connection, two tasks: a reader that carries out client messages, and a writer that
drains the send queue, sends the pings the broker's heartbeat asks for, and closes the
socket when the connection is closed (too slow, session ended, heartbeat timeout,
shutdown). Whatever ends first ends the other; the broker forgets the connection in
every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from quart import Response, current_app, jsonify, websocket

from ..errors import error_body
from ..proxies import request_client
from ..websocket_direct import DirectSocket
from . import protocol
from .commands import connected_frame, handle_message
from .connection import Connection
from .flusher import wire_bytes
from .handshake import origin_allowed, too_many_connections
from .protocol import CloseCode
from .state import current_realtime

__all__ = ["websocket_endpoint"]

log = logging.getLogger("runtime.realtime")

CLOSE_TIMEOUT = 2.0  # seconds a closing connection gets to send its close frame


def _reject(status: int, code: str, message: str) -> Response:
    response = jsonify(error_body(code, message))
    response.status_code = status
    return response


async def websocket_endpoint() -> Response | None:
    state = current_realtime(current_app)
    config = state.config
    if not origin_allowed(
        websocket.headers.get("Origin"), websocket.headers.get("Host"), config.allowed_origins
    ):
        return _reject(403, "forbidden", "This origin may not connect.")
    user, session_hash = await state.identify()
    if user is None and not config.allow_anonymous:
        return _reject(401, "unauthorized", "Log in to connect.")
    if state.shutting_down:
        return _reject(503, "unavailable", "The server is shutting down.")
    await websocket.accept()
    broker = state.broker
    if broker.connection_count() >= config.max_connections:
        await websocket.close(CloseCode.TRY_AGAIN_LATER, "at capacity")
        return None
    address = request_client().address
    refusal = too_many_connections(config, broker, user, address)
    if refusal is not None:
        await websocket.close(CloseCode.TOO_SLOW, refusal)
        return None
    conn = Connection(
        user=user,
        session_hash=session_hash,
        address=address,
        transport="websocket",
        max_queue=config.send_queue_size,
        max_queue_bytes=config.send_queue_bytes,
        batch=websocket.args.get("batch") == "1",
        pongs=True,
    )
    sink = DirectSocket.of(websocket)
    broker.connect(conn)
    conn.sink = sink
    conn.send(connected_frame(conn, config.heartbeat))
    reader = asyncio.create_task(_read(conn))
    writer = asyncio.create_task(_write(conn, sink))
    # A close gives the writer a bounded time to get the close frame out (a client that
    # stopped reading may never let it through): a timer, not a task per connection.
    loop = asyncio.get_running_loop()
    conn.on_close = lambda: loop.call_later(CLOSE_TIMEOUT, writer.cancel)
    tasks = (reader, writer)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if writer in done and not writer.cancelled() and writer.exception() is None:
            # The close frame is out. Give the client a bounded time to answer it:
            # closing the TCP connection first could reset it before the client has
            # read our close frame. Its answer ends this handler (Quart cancels it), so
            # this wait rarely runs to its end.
            await asyncio.wait({reader}, timeout=CLOSE_TIMEOUT)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("websocket %s failed", conn.id, exc_info=task.exception())
    finally:
        broker.disconnect(conn)
        for task in tasks:
            task.cancel()
        # Cancelled by a client disconnect or shutdown: the tasks must still end here.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    return None


async def _read(conn: Connection) -> None:
    state = current_realtime(current_app)
    while True:
        raw = await websocket.receive()
        if raw is None:  # Quart's reading of an empty binary frame
            raw = b""
        conn.last_seen = time.monotonic()
        if not conn.closing:
            await handle_message(state, conn, raw)


async def _write(conn: Connection, sink: DirectSocket | None) -> None:
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
                await websocket.send(protocol.encode_batch(frames))
            else:
                for frame in frames:
                    await websocket.send(frame)
        if closing:
            assert conn.close_code is not None
            await websocket.close(conn.close_code, conn.close_reason)
            return
