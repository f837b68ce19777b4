"""The Server-Sent Events transport: `GET /realtime/subscribe` and, to change a live
stream's subscriptions, `POST /realtime/subscribe`.

The stream carries the same JSON objects as the WebSocket: each message's `data:` is
the frame, `event:` its type, and events carry `id:` so that EventSource resumes with
Last-Event-ID by itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from quart import Response, current_app, jsonify, request

from ..errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from ..requests import read_body
from . import protocol
from .commands import connected_frame, handle_command
from .connection import Connection
from .extension import RealtimeState, current_realtime
from .handshake import origin_allowed
from .patterns import InvalidPattern, parse_pattern
from .protocol import ErrorCode, ProtocolError, Subscribe, Unsubscribe

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


def _subscribe_command(item: Any, index: int, since: str | None = None) -> Subscribe:
    """A subscription from a query parameter (a pattern) or a POST item (an object)."""
    if isinstance(item, str):
        item = {"pattern": item}
    if not isinstance(item, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "each subscription is a pattern or object")
    frame = {"type": "subscribe", "id": item.get("id", index), **item}
    if since is not None and "since" not in item:
        frame["since"] = since
    command = protocol.parse_client_frame(protocol.encode(frame), max_size=1 << 20)
    assert isinstance(command, Subscribe)
    return command


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
    if state.shutting_down or len(broker.connections) >= config.max_connections:
        response = jsonify({"error": {"code": "unavailable", "message": "Try again later."}})
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    since = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or None
    snapshot = request.args.get("snapshot") == "1"
    patterns = request.args.getlist("pattern")

    conn = Connection(
        user=user, session_hash=session_hash, transport="sse", max_queue=config.send_queue_size
    )
    broker.connect(conn)
    conn.send(connected_frame(conn, config.heartbeat))
    items = [{"pattern": text, "snapshot": snapshot} for text in patterns]
    replies, replay = _subscribe_all(state, conn, items, since)
    for frame in (*replies, *replay):
        conn.send(frame, bounded=False)

    response = Response(
        _stream(state, conn),
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # Quart would cut a streaming response after its timeout
    return response


def _subscribe_all(
    state: RealtimeState, conn: Connection, items: list[Any], since: str | None = None
) -> tuple[list[str], list[str]]:
    """Subscribe `conn` to every item; a reply frame per item, in order, and the replay."""
    results: list[str] = []
    commands: list[Subscribe] = []
    positions: list[int] = []
    for index, item in enumerate(items):
        try:
            commands.append(_subscribe_command(item, index, since))
        except ProtocolError as error:
            results.append(_error_frame(_item_id(item, index), error))
        else:
            positions.append(len(results))
            results.append("")  # the broker's reply goes here
    replies, replay = state.broker.subscribe_many(conn, commands)
    for position, reply in zip(positions, replies, strict=True):
        results[position] = (
            _error_frame(reply.request_id, reply) if isinstance(reply, ProtocolError) else reply
        )
    return results, replay


def _error_frame(request_id: Any, error: ProtocolError) -> str:
    return protocol.encode(protocol.error(request_id, error.code, error.message))


async def _stream(state: RealtimeState, conn: Connection) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    heartbeat = state.config.heartbeat
    next_ping = loop.time() + heartbeat
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            await conn.wait(next_ping)
            if conn.closing:
                # SSE has no close codes: say why in a last message, then end the stream.
                frame = {"type": "close", "code": conn.close_code, "reason": conn.close_reason}
                yield f"event: close\ndata: {protocol.encode(frame)}\n\n"
                return
            frames = conn.drain()
            if frames:
                yield "".join(sse_message(frame) for frame in frames)
            if loop.time() >= next_ping:
                next_ping = loop.time() + heartbeat
                yield ": ping\n\n"
    finally:
        state.broker.disconnect(conn)


async def sse_update() -> Response:
    """Change a live SSE stream's subscriptions; only its own session may."""
    state = current_realtime(current_app)
    _check_origin()
    body = await read_body()  # JSON only: a form post from another site cannot do this
    conn = state.broker.connections.get(str(body.get("connection_id", "")))
    if conn is None or conn.transport != "sse":
        raise NotFound("No such SSE connection.")
    _user, session_hash = await state.identify()
    if session_hash != conn.session_hash:
        raise Forbidden("Only the session that opened this stream may change it.")
    subscribe, unsubscribe = body.get("subscribe", []), body.get("unsubscribe", [])
    if not isinstance(subscribe, list) or not isinstance(unsubscribe, list):
        raise BadRequest("subscribe and unsubscribe must be lists.")
    if len(subscribe) + len(unsubscribe) > state.config.max_subscriptions:
        raise BadRequest("Too many changes in one request.")
    wait = state.message_limit.retry_after(conn.id)  # the same budget as WebSocket messages
    if wait:
        state.broker.stats.rate_limited += 1
        raise RateLimited(retry_after=wait)
    state.message_limit.hit(conn.id)
    frames, replay = _subscribe_all(state, conn, subscribe)
    for frame in replay:
        conn.send(frame, bounded=False)
    for index, item in enumerate(unsubscribe):
        text = item.get("pattern") if isinstance(item, dict) else item
        try:
            command = Unsubscribe(_item_id(item, index), parse_pattern(text))
        except InvalidPattern as error:
            frames.append(
                _error_frame(
                    _item_id(item, index), ProtocolError(ErrorCode.INVALID_PATTERN, str(error))
                )
            )
            continue
        frames.extend(handle_command(state, conn, command))
    return jsonify({"results": [json.loads(frame) for frame in frames]})


def _item_id(item: Any, index: int) -> Any:
    """The id a reply carries: the item's own, if it is a valid one, else its position."""
    request_id = item.get("id", index) if isinstance(item, dict) else index
    valid = isinstance(request_id, int | str) and not isinstance(request_id, bool)
    return request_id if valid and len(str(request_id)) <= 64 else index
