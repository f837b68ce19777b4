"""The Server-Sent Events transport: `GET /realtime/subscribe`, served in front of
Quart (see endpoints.py), and its sinks, which write frames as SSE messages (the JSON
the WebSocket would send) or, for `format=html` streams, as htmx's fragments.

The door's checks run in a Quart request context; then the server's task waits for the
client to go, and one task writes what the flusher does not (see serving.py). A live
stream's subscriptions change with `POST /realtime/subscribe` (endpoints.py).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from quart import Quart, request

from ...adapters.hypercorn import DirectSocket
from ...adapters.quart import request_for_checks
from ...errors import ApiError
from .. import protocol
from ..protocol import ProtocolError, Refusal, Subscribe
from .html import Fragments
from .serving import Receive, Send, SocketSink, answer, run_connection
from .wire import chunk, sse_message

if TYPE_CHECKING:
    from ..connections.connection import Connection
    from ..connections.flusher import FlushCache
    from ..state import RealtimeState

__all__ = ["HTMLSink", "SSESink", "serve"]

RETRY_MS = 2000  # how long EventSource waits before reconnecting by itself
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx would hold the stream back otherwise
]
NOT_AN_EVENT_STREAM = Refusal(
    400, "bad_request", "Connect with WebSocket, or send Accept: text/event-stream."
)
UNKNOWN_FORMAT = Refusal(400, "bad_request", "format is json (the default) or html.")

_Admitted = tuple["Connection", bool, list[Subscribe | ProtocolError]]


async def serve(app: Quart, state: RealtimeState, scope: Any, receive: Receive, send: Send) -> None:
    async with app.request_context(request_for_checks(app, scope)):
        admitted = await _admit(state)
    if isinstance(admitted, Refusal):
        await answer(send, admitted)
        return
    conn, html, commands = admitted
    broker = state.broker
    broker.connect(conn)
    try:
        if commands:
            await broker.subscribing.subscribe(conn, commands)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        first = f"retry: {RETRY_MS}\n\n".encode()
        await send({"type": "http.response.body", "body": first, "more_body": True})
        socket = DirectSocket.of(send) if state.config.fast_path else None
        sink = HTMLSink(send, socket, state.fragments) if html else SSESink(send, socket)

        async def on_message(message: MutableMapping[str, Any]) -> None:
            pass  # the request's (empty) body: nothing to do but wait for the end

        await run_connection(conn, sink, receive, on_message)
    finally:
        broker.disconnect(conn)


async def _admit(state: RealtimeState) -> _Admitted | Refusal:
    """The connection, whether it is an HTML stream, and its subscriptions; or why not.
    In a request context."""
    if "text/event-stream" not in request.headers.get("Accept", ""):
        return NOT_AN_EVENT_STREAM
    conn = await state.door.admit(request.headers, "sse", pongs=False)
    if isinstance(conn, Refusal):
        return conn
    view = request.args.get("format", "json")
    if view not in ("json", "html"):
        return UNKNOWN_FORMAT
    since = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or None
    try:
        commands = state.router.stream_subscriptions(
            conn,
            request.args.getlist("pattern"),
            since=since,
            snapshot=request.args.get("snapshot") == "1",
        )
    except ApiError as error:
        return Refusal(error.status, error.code, error.message, retry_after=_retry_after(error))
    return conn, view == "html", commands


def _retry_after(error: ApiError) -> int | None:
    retry: int | None = getattr(error, "retry_after", None)
    return retry


class SSESink(SocketSink):
    """A stream's frames as SSE messages: written straight to its socket as HTTP/1.1
    chunks where the server allows (`socket`), else sent through the ASGI send as the
    response's body."""

    __slots__ = ()

    def write(self, frames: list[str], cache: FlushCache) -> None:
        assert self._socket is not None
        self._socket.write(chunk(self._messages(frames, cache)))

    def _messages(self, frames: list[str], cache: FlushCache) -> bytes:
        """The frames' SSE messages, each built once per flush."""
        built = cache.get(SSESink)
        if built is None:
            built = cache[SSESink] = {}
        parts = []
        for frame in frames:
            data = built.get(frame)
            if data is None:
                data = built[frame] = sse_message(frame).encode("utf-8")
            parts.append(data)
        return b"".join(parts)

    def _text(self, frames: list[str]) -> str:
        return "".join(sse_message(frame) for frame in frames)

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
        await self._body(f"event: close\ndata: {frame}\n\n".encode())
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
