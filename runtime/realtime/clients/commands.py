"""What every transport does with a client's message, whatever carries it."""

from __future__ import annotations

import asyncio
import logging

from ...json_values import json_tree
from .. import protocol
from ..broker.presence import public_user
from ..connections.connection import Connection
from ..events import custom_event
from ..protocol import (
    CloseCode,
    Command,
    Emit,
    ErrorCode,
    Frame,
    Ping,
    ProtocolError,
    Publish,
    Subscribe,
    Unsubscribe,
)
from ..state import RealtimeState
from .handlers import Sender, call_handler

__all__ = [
    "MAX_EMITS_IN_FLIGHT",
    "MAX_REJECTED",
    "answer_emit",
    "answer_publish",
    "connected_frame",
    "handle_message",
    "rate_limit",
    "send_error",
]

log = logging.getLogger("runtime.realtime")

# Messages refused in a row for the rate limit before the connection is closed (4429).
MAX_REJECTED = 20
# Client events of one connection whose handlers are still running; more are refused.
MAX_EMITS_IN_FLIGHT = 8


def connected_frame(conn: Connection, heartbeat: float) -> str:
    """The first frame of every connection; the user as their `public_dict()` shows them."""
    info = json_tree(public_user(conn.user))
    return protocol.encode(protocol.connected(conn.id, info, heartbeat))


def send_error(conn: Connection, error: ProtocolError, retry_after: float | None = None) -> None:
    frame = protocol.error(error.request_id, error.code, error.message, retry_after)
    conn.send(protocol.encode(frame))


def rate_limit(state: RealtimeState, conn: Connection, cost: int = 1) -> int:
    """Count `cost` messages against the connection's budget; 0 if they may go on, else
    the seconds to wait (and the connection is closed after MAX_REJECTED refusals)."""
    window = conn.message_window
    if window is None:
        window = conn.message_window = state.message_limit.window()
    wait = window.retry_after(cost)
    if wait:
        state.broker.stats.rate_limited += 1
        conn.rejected += 1
        if conn.rejected > MAX_REJECTED:
            # What is queued goes out first: the rate_limited errors that explain this.
            conn.close(CloseCode.TOO_SLOW, "too many requests", flush=True)
        return wait
    window.hit(cost)
    conn.rejected = 0
    return 0


async def handle_message(state: RealtimeState, conn: Connection, raw: str | bytes) -> None:
    """Parse, rate-limit and carry out one client message; errors become error frames.

    Every message counts against the rate limit, the malformed ones too.
    """
    command: Command | ProtocolError
    try:
        command = protocol.parse_client_frame(raw, max_size=state.config.max_message_size)
    except ProtocolError as error:
        command = error
    wait = rate_limit(state, conn)
    if wait:
        if not conn.closing:
            request_id = getattr(command, "request_id", None)
            refusal = ProtocolError(ErrorCode.RATE_LIMITED, "too many messages", request_id)
            send_error(conn, refusal, retry_after=wait)
    elif isinstance(command, ProtocolError):
        send_error(conn, command)
    else:
        await _carry_out(state, conn, command)


async def _carry_out(state: RealtimeState, conn: Connection, command: Command) -> None:
    if isinstance(command, Subscribe):
        await state.broker.subscribe(conn, [command])
    elif isinstance(command, Unsubscribe):
        state.broker.unsubscribe(conn, command.pattern)
        frame = protocol.unsubscribed(command.request_id, command.pattern.text)
        conn.send(protocol.encode(frame))
    elif isinstance(command, Emit):
        _spawn_emit(state, conn, command)
    elif isinstance(command, Publish):
        conn.send(protocol.encode(await answer_publish(state, conn, command)))
    elif isinstance(command, Ping):
        conn.send(protocol.encode(protocol.pong()))
    # Pong: its arrival was the point.


def _spawn_emit(state: RealtimeState, conn: Connection, command: Emit) -> None:
    """Run the handler beside the connection's other messages (pings go on meanwhile),
    a few at a time; its answer is sent when it comes."""
    running = conn.emits if conn.emits is not None else set()
    conn.emits = running
    if len(running) >= MAX_EMITS_IN_FLIGHT:
        refusal = ProtocolError(
            ErrorCode.RATE_LIMITED, "too many events awaiting an answer", command.request_id
        )
        send_error(conn, refusal, retry_after=1)
        return

    async def answer() -> None:
        frame = await answer_emit(state, conn, command)
        if frame["type"] == "error" or command.request_id is not None:
            conn.send(protocol.encode(frame))

    task = asyncio.create_task(answer())
    running.add(task)
    task.add_done_callback(running.discard)


async def answer_emit(state: RealtimeState, conn: Connection, command: Emit) -> Frame:
    """The `ack` carrying the handler's answer, or the `error` instead."""
    request_id = command.request_id
    handler = state.handlers.get(command.name)
    if handler is None:
        message = f"no handler for the event {command.name!r}"
        return protocol.error(request_id, ErrorCode.BAD_REQUEST, message)
    result = await call_handler(handler, command.data, Sender(conn.id, conn.user), request_id)
    if isinstance(result, ProtocolError):
        return protocol.error(request_id, result.code, result.message)
    frame = protocol.ack(request_id, result)
    if len(protocol.encode(frame)) > state.config.send_queue_bytes // 2:
        message = "the answer is larger than the connection may queue"
        return protocol.error(request_id, ErrorCode.INTERNAL_ERROR, message)
    return frame


async def answer_publish(state: RealtimeState, conn: Connection, command: Publish) -> Frame:
    """A browser's custom event on a channel: published if the write rule lets it, and
    acknowledged with its event id."""
    channel = state.channels.get(command.channel)
    try:
        allowed = channel is not None and channel.writable_by(conn.user)
    except Exception:  # app code: refuse, and say so in the log
        log.exception("realtime: the write rule of channel %r failed", command.channel)
        allowed = False
    if not allowed:
        message = f"no channel named {command.channel!r} that you may publish to"
        return protocol.error(command.request_id, ErrorCode.FORBIDDEN, message)
    event = custom_event(
        command.name, command.data, collection=command.channel, user=public_user(conn.user)
    )
    event_id = await state.broker.publish_async(event)
    return protocol.ack(command.request_id, {"event_id": event_id})
