"""The Server-Sent Events transport: `GET /realtime/subscribe` and, to change a live
stream's subscriptions, `POST /realtime/subscribe`.

The stream carries the same JSON objects as the WebSocket: each message's `data:` is
the frame, `event:` its type, and events carry `id:` so that EventSource resumes with
Last-Event-ID by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Response, current_app, jsonify, request

from ..errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from ..proxies import request_client
from ..requests import read_body
from . import protocol
from .commands import connected_frame, rate_limit
from .connection import Connection
from .handshake import origin_allowed, too_many_connections
from .patterns import InvalidPattern, parse_pattern
from .protocol import ErrorCode, Frame, ProtocolError, Subscribe
from .state import RealtimeState, current_realtime

__all__ = ["sse_stream", "sse_update"]

RETRY_MS = 2000  # how long EventSource waits before reconnecting by itself
_EVENT_PREFIX = '{"type":"event","id":"'
_TYPE_PREFIX = '{"type":"'


def sse_message(frame: str) -> str:
    """One encoded frame as an SSE message.

    `protocol.encode` writes "type" first and, for events, "id" second, in compact JSON
    with no raw newlines; so both are read off the front without decoding the frame
    again (it is encoded once for every subscriber).
    """
    if frame.startswith(_EVENT_PREFIX):
        event_id = frame[len(_EVENT_PREFIX) : frame.index('"', len(_EVENT_PREFIX))]
        return f"id: {event_id}\nevent: event\ndata: {frame}\n\n"
    kind = frame[len(_TYPE_PREFIX) : frame.index('"', len(_TYPE_PREFIX))]
    return f"event: {kind}\ndata: {frame}\n\n"


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


async def sse_stream() -> Response:
    state = current_realtime(current_app)
    config = state.config
    accept = request.headers.get("Accept", "")
    if "text/event-stream" not in accept:
        raise BadRequest("Connect with WebSocket, or send Accept: text/event-stream.")
    _check_origin()
    user, session_hash = await state.identify()
    if user is None and not config.allow_anonymous:
        raise Unauthorized("Log in to connect.")
    broker = state.broker
    if state.shutting_down or broker.connection_count() >= config.max_connections:
        response = jsonify({"error": {"code": "unavailable", "message": "Try again later."}})
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    address = request_client().address
    refusal = too_many_connections(config, broker, user, address)
    if refusal is not None:
        raise RateLimited(refusal[0].upper() + refusal[1:] + ".", retry_after=5)
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
    broker.connect(conn)
    try:
        conn.send(connected_frame(conn, config.heartbeat))
        if patterns:
            wait = rate_limit(state, conn, cost=len(patterns))
            if wait:
                raise RateLimited(retry_after=wait)
            items = [{"pattern": text, "snapshot": snapshot} for text in patterns]
            commands = [_subscribe_command(item, i, since) for i, item in enumerate(items)]
            await broker.subscribe(conn, commands)
    except BaseException:
        broker.disconnect(conn)
        raise
    response = Response(
        _stream(state, conn),
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # Quart would cut a streaming response after its timeout
    return response


async def _stream(state: RealtimeState, conn: Connection) -> AsyncIterator[str]:
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            await conn.wait()
            closing = conn.closing  # then what is queued now is all there will be
            frames = conn.drain()
            if frames:
                yield "".join(sse_message(frame) for frame in frames)
            if closing:
                # SSE has no close codes: say why in a last message, then end the stream.
                frame = {"type": "close", "code": conn.close_code, "reason": conn.close_reason}
                yield f"event: close\ndata: {protocol.encode(frame)}\n\n"
                return
            if conn.ping_due:  # a comment keeps proxies from timing the stream out
                conn.ping_due = False
                yield ": ping\n\n"
    finally:
        state.broker.disconnect(conn)


async def sse_update() -> Response:
    """Change a live SSE stream's subscriptions; only its own session may."""
    state = current_realtime(current_app)
    _check_origin()
    body = await read_body()  # JSON only: a form post from another site cannot do this
    conn = state.broker.connection(str(body.get("connection_id", "")))
    if conn is None or conn.transport != "sse":
        raise NotFound("No such SSE connection.")
    _user, session_hash = await state.identify()
    if session_hash != conn.session_hash:
        raise Forbidden("Only the session that opened this stream may change it.")
    subscribe, unsubscribe = body.get("subscribe", []), body.get("unsubscribe", [])
    if not isinstance(subscribe, list) or not isinstance(unsubscribe, list):
        raise BadRequest("subscribe and unsubscribe must be lists.")
    _check_count(state, len(subscribe) + len(unsubscribe))
    # The same budget as WebSocket messages, each item counted as one.
    wait = rate_limit(state, conn, cost=max(1, len(subscribe) + len(unsubscribe)))
    if wait:
        raise RateLimited(retry_after=wait)
    commands = [_subscribe_command(item, i, None) for i, item in enumerate(subscribe)]
    results = await state.broker.subscribe(conn, commands, replies_on_stream=False)
    async with conn.command_lock:  # not in the middle of another request's subscribe
        results.extend(_unsubscribe(state, conn, item, i) for i, item in enumerate(unsubscribe))
    # Encoded as frames are: a snapshot's datetimes as ISO text, like on the stream.
    return Response(protocol.encode({"results": results}), content_type="application/json")


def _unsubscribe(state: RealtimeState, conn: Connection, item: Any, index: int) -> Frame:
    request_id = _item_id(item, index)
    text = item.get("pattern") if isinstance(item, dict) else item
    try:
        pattern = parse_pattern(text)
    except InvalidPattern as error:
        return protocol.error(request_id, ErrorCode.INVALID_PATTERN, str(error))
    state.broker.unsubscribe(conn, pattern)
    return protocol.unsubscribed(request_id, pattern.text)
