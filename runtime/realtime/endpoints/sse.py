"""The SSE endpoint: `GET /realtime/subscribe`, served in front of Quart (asgi.py).

The door's checks run in a Quart request context, with the stream's own: `Accept`, its
format, its patterns (counted against the rate limit); then the server's task waits for
the client to go, and the transport's sink and task write (see
runtime/realtime/transports/). A live stream's subscriptions change with
`POST /realtime/subscribe` (http.py), which may arrive at another process when there
are several (clients/forwarding.py: the stream is known in Redis as held here).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from quart import Quart, request

from ...access_log import stream_opened
from ...adapters.hypercorn import DirectSocket
from ...adapters.quart import request_for_checks
from ...errors import ApiError
from ...expand import split_expand
from ..protocol import ProtocolError, Refusal, Subscribe
from ..transports.serving import Receive, Send, answer, run_connection
from ..transports.sse import HEADERS, HTMLSink, SSESink, start_stream

if TYPE_CHECKING:
    from ..connections.connection import Connection
    from ..state import RealtimeState

__all__ = ["serve"]

NOT_AN_EVENT_STREAM = Refusal(
    400, "bad_request", "Connect with WebSocket, or send Accept: text/event-stream."
)
UNKNOWN_FORMAT = Refusal(400, "bad_request", "format is json (the default) or html.")
FILTER_TWICE = Refusal(400, "bad_request", "filter is given once: it applies to every pattern.")

_Admitted = tuple["Connection", bool, list[Subscribe | ProtocolError]]


async def serve(app: Quart, state: RealtimeState, scope: Any, receive: Receive, send: Send) -> None:
    async with app.request_context(request_for_checks(app, scope)):
        admitted = await _admit(state)
    if isinstance(admitted, Refusal):
        await answer(send, admitted)
        return
    conn, html, commands = admitted
    broker, forwarding = state.broker, state.forwarding
    broker.connect(conn)
    try:
        if forwarding is not None:  # known as held here before its client reads its id
            await forwarding.hold(conn)
        if commands:
            await broker.subscribing.subscribe(conn, commands)
        await start_stream(send)
        stream_opened(scope, 200, HEADERS)  # the server logs its line once it ends
        socket = DirectSocket.of(send) if state.config.fast_path else None
        sink = HTMLSink(send, socket, state.fragments) if html else SSESink(send, socket)

        async def on_message(message: MutableMapping[str, Any]) -> None:
            pass  # the request's (empty) body: nothing to do but wait for the end

        await run_connection(conn, sink, receive, on_message)
    finally:
        broker.disconnect(conn)
        if forwarding is not None:
            forwarding.release(conn)


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
    filters = request.args.getlist("filter")
    if len(filters) > 1:
        return FILTER_TWICE
    try:
        commands = state.router.stream_subscriptions(
            conn,
            request.args.getlist("pattern"),
            since=since,
            snapshot=request.args.get("snapshot") == "1",
            filter=filters[0] if filters else None,
            # `expand=author,project`, or several `expand=`: for every pattern, as filter.
            expand=[n for raw in request.args.getlist("expand") for n in split_expand(raw)] or None,
        )
    except ApiError as error:
        return Refusal(error.status, error.code, error.message, retry_after=_retry_after(error))
    return conn, view == "html", commands


def _retry_after(error: ApiError) -> int | None:
    retry: int | None = getattr(error, "retry_after", None)
    return retry
