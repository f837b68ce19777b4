"""The Server-Sent Events transport: `GET /realtime/subscribe`, served in front of Quart
(see asgi.py), and, to change a live stream's subscriptions, `POST /realtime/subscribe`,
a Quart view.

The stream carries the same JSON objects as the WebSocket (see `flusher.sse_message`).
Its admission checks run in a Quart request context; then the server's task waits for
the client to go, and one task writes what the flusher does not: pings, frames while
the socket is full, the last message at a close and the end of the stream (everything,
where the socket cannot be written directly).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from quart import Quart, Response, current_app, request

from ...adapters.hypercorn import DirectSocket
from ...errors import ApiError, BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from ...proxies import request_client
from ...requests import read_body
from .. import protocol
from ..clients.admission import origin_allowed, too_many_connections
from ..clients.commands import answer_emit, answer_publish, connected_frame, rate_limit
from ..connections.connection import Connection
from ..connections.flusher import chunk, sse_message
from ..patterns import InvalidPattern, parse_pattern
from ..protocol import ErrorCode, Frame, ProtocolError, Subscribe
from ..state import RealtimeState, current_realtime
from .html import Fragments
from .serving import Receive, Send, answer, quart_headers, run_connection

__all__ = ["serve", "sse_update"]

RETRY_MS = 2000  # how long EventSource waits before reconnecting by itself
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx would hold the stream back otherwise
]


class _Unavailable(ApiError):
    status, code, default_message = 503, "unavailable", "Try again later."


def _check_origin() -> None:
    config = current_realtime(current_app).config
    if not origin_allowed(
        request.headers.get("Origin"), request.headers.get("Host"), config.allowed_origins
    ):
        raise Forbidden("This origin may not connect.")


def _subscribe_command(item: Any, index: int, since: str | None) -> Subscribe | ProtocolError:
    """A subscription from a query parameter (a pattern) or a POST item (an object)."""
    if isinstance(item, str):
        item = {"pattern": item}
    request_id = _item_id(item, index)
    if not isinstance(item, dict):
        return ProtocolError(
            ErrorCode.BAD_REQUEST, "each subscription is a pattern or object", request_id
        )
    if since is not None and item.get("since") is None:
        item = {**item, "since": since}
    try:
        return protocol.parse_subscribe(item, request_id)
    except ProtocolError as error:
        return error


def _item_id(item: Any, index: int) -> Any:
    """The id a reply carries: the item's own, if it is a valid one, else its position."""
    request_id = item.get("id", index) if isinstance(item, dict) else index
    valid = isinstance(request_id, int | str) and not isinstance(request_id, bool)
    return request_id if valid and len(str(request_id)) <= 64 else index


def _check_count(state: RealtimeState, count: int) -> None:
    limit = state.config.max_subscriptions
    if count > limit:
        raise BadRequest(f"At most {limit} patterns in one request.")


async def serve(app: Quart, scope: Any, receive: Receive, send: Send) -> None:
    state = current_realtime(app)
    async with app.request_context(_quart_request(app, scope)):
        try:
            conn, commands = await _admit(state)
        except ApiError as error:
            retry = getattr(error, "retry_after", 5 if error.status == 503 else None)
            headers = {"Retry-After": str(retry)} if retry is not None else None
            await answer(send, error.status, error.code, error.message, headers)
            return
    broker = state.broker
    broker.connect(conn)
    try:
        conn.send(connected_frame(conn, state.config.heartbeat))
        if commands:
            await broker.subscribe(conn, commands)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        first = f"retry: {RETRY_MS}\n\n".encode()
        await send({"type": "http.response.body", "body": first, "more_body": True})
        sink = DirectSocket.of(send)
        conn.sink = sink
        conn.wake()  # what was queued before the stream began

        async def on_message(message: MutableMapping[str, Any]) -> None:
            pass  # the request's (empty) body: nothing to do but wait for the end

        fragments = broker.flusher.fragments
        await run_connection(conn, receive, lambda: _write(conn, sink, send, fragments), on_message)
    finally:
        broker.disconnect(conn)


async def _admit(state: RealtimeState) -> tuple[Connection, list[Subscribe | ProtocolError]]:
    """The connection and its subscriptions, or an ApiError. In a request context."""
    config, broker = state.config, state.broker
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise BadRequest("Connect with WebSocket, or send Accept: text/event-stream.")
    _check_origin()
    user, session_hash = await state.identify()
    if user is None and not config.allow_anonymous:
        raise Unauthorized("Log in to connect.")
    if state.shutting_down or broker.connection_count() >= config.max_connections:
        raise _Unavailable()
    address = request_client().address
    refusal = too_many_connections(config, broker, user, address)
    if refusal is not None:
        raise RateLimited(refusal[0].upper() + refusal[1:] + ".", retry_after=5)
    html = _html_format(request.args.get("format", "json"))
    since = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or None
    snapshot = request.args.get("snapshot") == "1"
    patterns = request.args.getlist("pattern")
    _check_count(state, len(patterns))
    conn = Connection(
        user=user,
        session_hash=session_hash,
        address=address,
        transport="sse",
        max_queue=config.send_queue_size,
        max_queue_bytes=config.send_queue_bytes,
    )
    conn.html = html
    if patterns:
        wait = rate_limit(state, conn, cost=len(patterns))
        if wait:
            raise RateLimited(retry_after=wait)
    items = [{"pattern": text, "snapshot": snapshot} for text in patterns]
    return conn, [_subscribe_command(item, i, since) for i, item in enumerate(items)]


def _html_format(text: str) -> bool:
    if text not in ("json", "html"):
        raise BadRequest("format is json (the default) or html.")
    return text == "html"


async def _write(
    conn: Connection, sink: DirectSocket | None, send: Send, fragments: Fragments | None
) -> None:
    while True:
        await conn.wait()
        closing = conn.closing  # then what is queued now is all there will be
        if sink is not None and conn.blocked:
            await sink.drain()
            conn.blocked = False
        if conn.html and fragments is not None:
            text = fragments.messages(conn.drain())
        else:
            text = "".join(sse_message(frame) for frame in conn.drain())
        if conn.ping_due:  # a comment keeps proxies from timing the stream out
            conn.ping_due = False
            text += ": ping\n\n"
        if closing:
            # SSE has no close codes: say why in a last message, then end the stream.
            frame = {"type": "close", "code": conn.close_code, "reason": conn.close_reason}
            text += f"event: close\ndata: {protocol.encode(frame)}\n\n"
        if text:
            data = text.encode("utf-8")
            if sink is not None:
                sink.write(chunk(data))
            else:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        if closing:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return


def _quart_request(app: Quart, scope: Any) -> Any:
    """Quart's request object for the admission checks (Quart's own reading of the
    scope); its body is not read."""
    return app.request_class(
        scope["method"],
        scope["scheme"],
        scope["path"],
        scope["query_string"],
        quart_headers(scope),
        scope.get("root_path", ""),
        scope["http_version"],
        scope,
        max_content_length=app.config["MAX_CONTENT_LENGTH"],
        body_timeout=app.config["BODY_TIMEOUT"],
        send_push_promise=_unused,
    )


async def _unused(*args: Any) -> Any:
    raise RuntimeError("realtime writes this stream itself")


async def sse_update() -> Response:
    """Change a live SSE stream's subscriptions, and send client events and channel
    publications from it (what a WebSocket sends as frames); only its own session may."""
    state = current_realtime(current_app)
    _check_origin()
    body = await read_body()  # JSON only: a form post from another site cannot do this
    conn = state.broker.connection(str(body.get("connection_id", "")))
    if conn is None or conn.transport != "sse":
        raise NotFound("No such SSE connection.")
    _user, session_hash = await state.identify()
    if session_hash != conn.session_hash:
        raise Forbidden("Only the session that opened this stream may change it.")
    lists = {key: body.get(key, []) for key in ("subscribe", "unsubscribe", "emit", "publish")}
    if not all(isinstance(items, list) for items in lists.values()):
        raise BadRequest("subscribe, unsubscribe, emit and publish must be lists.")
    count = sum(len(items) for items in lists.values())
    _check_count(state, count)
    # The same budget as WebSocket messages, each item counted as one.
    wait = rate_limit(state, conn, cost=max(1, count))
    if wait:
        raise RateLimited(retry_after=wait)
    subscribe = lists["subscribe"]
    commands = [_subscribe_command(item, i, None) for i, item in enumerate(subscribe)]
    results = await state.broker.subscribe(conn, commands, replies_on_stream=False)
    async with conn.command_lock:  # not in the middle of another request's subscribe
        for i, item in enumerate(lists["unsubscribe"]):
            results.append(_unsubscribe(state, conn, item, i))
    for i, item in enumerate(lists["emit"]):
        results.append(await _answer(state, conn, item, i, "emit"))
    for i, item in enumerate(lists["publish"]):
        results.append(await _answer(state, conn, item, i, "publish"))
    # Encoded as frames are: a snapshot's datetimes as ISO text, like on the stream.
    return Response(protocol.encode({"results": results}), content_type="application/json")


async def _answer(
    state: RealtimeState, conn: Connection, item: Any, index: int, kind: str
) -> Frame:
    """An emit's or a publish's answer, as the WebSocket's frame would be."""
    request_id = _item_id(item, index)
    if not isinstance(item, dict):
        return protocol.error(request_id, ErrorCode.BAD_REQUEST, f"each {kind} is an object")
    limit = state.config.max_message_size  # as for a WebSocket frame
    if len(protocol.encode(item)) > limit:
        message = f"{kind} exceeds {limit} bytes"
        return protocol.error(request_id, ErrorCode.MESSAGE_TOO_BIG, message)
    try:
        if kind == "emit":
            return await answer_emit(state, conn, protocol.parse_emit(item, request_id))
        return await answer_publish(state, conn, protocol.parse_publish(item, request_id))
    except ProtocolError as error:
        return protocol.error(request_id, error.code, error.message)


def _unsubscribe(state: RealtimeState, conn: Connection, item: Any, index: int) -> Frame:
    request_id = _item_id(item, index)
    text = item.get("pattern") if isinstance(item, dict) else item
    try:
        pattern = parse_pattern(text)
    except InvalidPattern as error:
        return protocol.error(request_id, ErrorCode.INVALID_PATTERN, str(error))
    state.broker.unsubscribe(conn, pattern)
    return protocol.unsubscribed(request_id, pattern.text)
