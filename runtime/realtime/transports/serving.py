"""What the transports share: a connection's life on the ASGI messages, the task that
writes to its sink, the sinks' common part, a refusal's HTTP answer, and the start-up
report of whether frames can be written straight to the sockets.

Realtime's endpoints (runtime/realtime/endpoints/) serve connections in front of Quart:
their admission checks run inside a Quart websocket or request context, like a view
(sessions, `g`, the app's `identify`), and then a connection lives without Quart's
per-connection machinery (a queue, two tasks and a request or websocket object held for
its whole life): the server's task reads, and one task of ours writes what the flusher
does not. An idle connection costs a third less memory this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import TYPE_CHECKING, Any

from ...adapters import hypercorn
from ...errors import error_body

if TYPE_CHECKING:
    from ...config import RealtimeConfig
    from ..connections.connection import Connection, FlushCache, Sink
    from ..protocol import Refusal

__all__ = ["SocketSink", "answer", "fast_path_report", "route_path", "run_connection"]

log = logging.getLogger("runtime.realtime")

CLOSE_TIMEOUT = 2.0  # seconds a closing connection gets to say why, and to be answered

# ASGI's callables, loosely typed: this sits between the server and Quart, whose own
# types are narrower TypedDicts for every message.
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class SocketSink:
    """What the transports' sinks share: frames written straight to the connection's
    socket where the server allows it (`socket`), else sent through the ASGI send."""

    __slots__ = ("_send", "_socket", "direct")

    def __init__(self, send: Send, socket: hypercorn.DirectSocket | None) -> None:
        self._send = send
        self._socket = socket
        self.direct = socket is not None  # an attribute: read for every frame queued

    def write(self, frames: list[str], cache: FlushCache) -> bool:
        raise NotImplementedError

    def write_one(self, frame: str, cache: FlushCache) -> bool:
        return self.write([frame], cache)

    async def drain(self) -> None:
        if self._socket is not None:
            await self._socket.drain()

    def unread(self) -> bool:
        return bool(hypercorn.unsent(self._send))  # None on another server: it cannot tell

    def drop(self) -> None:
        hypercorn.abort(self._send)


def route_path(scope: Any) -> str:
    """The scope's path as the app routes it (without the root path it is mounted at)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def answer(send: Send, refusal: Refusal) -> None:
    """A whole JSON error answer, as the app's error handlers would write it."""
    body = json.dumps(error_body(refusal.code, refusal.message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw.extend((k.lower().encode(), v.encode()) for k, v in refusal.headers().items())
    await send({"type": "http.response.start", "status": refusal.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def run_connection(
    conn: Connection,
    sink: Sink,
    receive: Receive,
    on_message: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Live until the client goes, or until the connection was closed, the close written
    to `sink`, and the client had a bounded time to answer.

    This coroutine reads: `on_message(message)` for each ASGI message but the last. A
    task of its own writes to `sink` what the flusher does not.
    """
    conn.sink = sink
    conn.wake()  # what was queued before the sink was there
    writing = _write_until_closed(conn, sink)
    writer = asyncio.create_task(writing)
    _bound_the_close(conn, writer, writing)
    loop = asyncio.get_running_loop()
    reading = asyncio.current_task()
    assert reading is not None

    def writer_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("realtime connection %s failed", conn.id, exc_info=task.exception())
        # The close is out (or the writer gave up): the client's answer ends the reading
        # below. Wait for it a bounded time, not for ever: closing the TCP connection
        # first could reset it before the client has read what we sent last.
        loop.call_later(0 if task.cancelled() else CLOSE_TIMEOUT, reading.cancel)

    writer.add_done_callback(writer_done)
    gave_up = False  # on the client: its time to take the close and answer is over
    try:
        while True:
            message = await receive()
            if message["type"] in ("websocket.disconnect", "http.disconnect"):
                return
            await on_message(message)
    except asyncio.CancelledError:
        if not writer.done():
            raise  # cancelled from outside: shutting down
        reading.uncancel()  # our own timer: the client did not answer in time
        gave_up = True
    finally:
        writer.remove_done_callback(writer_done)
        writer.cancel()
        _let_go(sink, gave_up)
        with contextlib.suppress(asyncio.CancelledError):
            await writer


def _bound_the_close(
    conn: Connection, writer: asyncio.Task[None], writing: Coroutine[Any, Any, None]
) -> None:
    """When `conn` closes, its close goes out at once, after what is in flight, not once
    the socket takes more (a client that stopped reading may never take more): the
    writer stops waiting (see _write_until_closed), unless it has not begun. It then has
    a bounded time to get the close out, as that client may not take the close either:
    a timer, not a task per connection."""
    loop = asyncio.get_running_loop()

    def on_close() -> None:
        # Not when the writer closes it itself (a write that failed): it goes on to the
        # close by itself.
        started = inspect.getcoroutinestate(writing) != inspect.CORO_CREATED
        if started and asyncio.current_task() is not writer:
            writer.cancel()
        loop.call_later(CLOSE_TIMEOUT, writer.cancel)

    conn.on_close = on_close
    if conn.closing:  # before it was served (its first snapshots overflowed it, say)
        loop.call_later(CLOSE_TIMEOUT, writer.cancel)


def _let_go(sink: Sink, gave_up: bool) -> None:
    """The connection is over for us. What its socket still holds, the client has had
    its time to take (or gets it now, if it left half-way): then the connection is
    dropped, which the server would keep until the client reads it, if ever."""
    if gave_up:
        _drop_if_unread(sink)
    elif sink.unread():
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, _drop_if_unread, sink)


def _drop_if_unread(sink: Sink) -> None:
    if sink.unread():
        sink.drop()


async def _write_until_closed(conn: Connection, sink: Sink) -> None:
    """What the flusher does not write (everything, for a sink that is not direct; for
    one that is, what was queued while its socket was full) and pings, until the
    connection closes; then what the close kept, and the close.

    `close()` cancels this task (see _bound_the_close): if it waits on the socket, it
    stops, and the close does not wait behind what the client has not taken. A send cut
    short so has written all of its frame or none (the server writes a frame in one call
    before it waits: runtime/adapters/hypercorn.py), and what it had not sent is
    dropped with the rest of the queue.

    A write that raises (the frames, the socket) closes this connection (1011), counted
    and logged; its close is then written if the sink still can.
    """
    try:
        await _write_until_closing(conn, sink)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        assert task is not None
        if not conn.closing or task.uncancel() > 0:
            raise  # not close()'s doing, or not only: shutting down
    assert conn.close_code is not None
    try:
        await sink.send(conn.take_queued())  # what close(flush=True) kept
        await sink.close(conn.close_code, conn.close_reason)
    except Exception as error:  # the socket just ends; counted once if not before
        conn.fail("write", error)


async def _write_until_closing(conn: Connection, sink: Sink) -> None:
    while True:
        await conn.wait()
        if conn.closing:
            return
        try:
            if conn.blocked:
                await sink.drain()
                conn.blocked = False
            ping, conn.ping_due = conn.ping_due, False
            await sink.send(conn.take_queued(), ping=ping)
        except Exception as error:
            conn.fail("write", error)  # closes it (1011)
            return


# What `python -m runtime serve` and runtime.server.run(app) do that other ways of
# serving do not.
_SERVE_SO = "`python -m runtime serve` or runtime.server.run(app) serve with both"


def fast_path_report(config: RealtimeConfig, lifespan_send: Any) -> tuple[int, str] | None:
    """Why realtime will not write every frame straight to the sockets, if it will not:
    a log level and a line for the log at start-up. `lifespan_send` is the ASGI send of
    the server's lifespan scope (it tells which server this is)."""
    if not hypercorn.serves(lifespan_send):
        return logging.WARNING, (
            "realtime: not served by Hypercorn: the fast path is off (every frame goes "
            "through the ASGI send), and inbound WebSocket messages are bounded by the "
            f"server's own limits, not 4 x realtime.max_message_size; {_SERVE_SO}"
        )
    if not hypercorn.installed():
        return logging.WARNING, (
            "realtime: served by the hypercorn command: WebSocket frames go through the "
            "ASGI send (the fast path is off for them), Hypercorn negotiates compression "
            "whenever a client offers it, and inbound messages are bounded by its "
            f"websocket_max_message_size, not 4 x realtime.max_message_size; {_SERVE_SO}"
        )
    if not config.fast_path:
        return logging.INFO, (
            "realtime: the fast path is off (realtime.fast_path = false): every frame goes "
            "through the ASGI send"
        )
    if config.websocket_compression:
        return logging.INFO, (
            "realtime: realtime.websocket_compression = true: WebSocket connections that "
            "negotiate compression go through the ASGI send (the fast path is off for them)"
        )
    return None
