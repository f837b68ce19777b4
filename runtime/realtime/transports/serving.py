"""Realtime's connections, served in front of Quart from the ASGI messages.

`Realtime.init_app` wraps the app's ASGI callable (`app.asgi_app`, Quart's place for
middleware) with `transports.RealtimeASGI`: a WebSocket to `/realtime/subscribe`, and the
SSE stream (a GET there), are served by `websocket.serve` and `sse.serve`; everything
else goes to Quart as before (the SSE POST too: it is an ordinary request). What they
share is here.

Their admission checks run inside a Quart websocket or request context, like a view
(sessions, `g`, the app's `identify`), and then a connection lives without Quart's
per-connection machinery (a queue, two tasks and a request or websocket object held for
its whole life): the server's task reads, and one task of ours writes what the flusher
does not. An idle connection costs a third less memory this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from werkzeug.datastructures import Headers

from ...errors import error_body
from ..connections.connection import Connection

__all__ = ["PATH", "answer", "quart_headers", "route_path", "run_connection"]

log = logging.getLogger("runtime.realtime")

PATH = "/realtime/subscribe"
CLOSE_TIMEOUT = 2.0  # seconds a closing connection gets to say why, and to be answered

# ASGI's callables, loosely typed: this sits between the server and Quart, whose own
# types are narrower TypedDicts for every message.
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def route_path(scope: Any) -> str:
    """The scope's path as the app routes it (without the root path it is mounted at)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def quart_headers(scope: Any) -> Headers:
    """The request's headers as Quart reads them from the scope."""
    headers = Headers()
    headers["Remote-Addr"] = (scope.get("client") or ["<local>"])[0]
    for name, value in scope["headers"]:
        headers.add(name.decode("latin1").title(), value.decode("latin1"))
    return headers


async def answer(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """A whole JSON error answer, as the app's error handlers would write it."""
    body = json.dumps(error_body(code, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw.extend((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def run_connection(
    conn: Connection,
    receive: Receive,
    write: Callable[[], Coroutine[Any, Any, None]],
    on_message: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Live until the client goes, or until `write` (a coroutine that ends after sending
    the close) has closed the connection and the client had a bounded time to answer.

    This coroutine reads: `on_message(message)` for each ASGI message but the last.
    """
    writer = asyncio.create_task(write())
    loop = asyncio.get_running_loop()
    # A close gives the writer a bounded time to get its last words out (a client that
    # stopped reading may never let them through): a timer, not a task per connection.
    conn.on_close = lambda: loop.call_later(CLOSE_TIMEOUT, writer.cancel)
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
    finally:
        writer.remove_done_callback(writer_done)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
