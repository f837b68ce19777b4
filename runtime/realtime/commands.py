"""What every transport does with a client's message, whatever carries it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import protocol
from .connection import Connection
from .protocol import (
    CloseCode,
    Command,
    ErrorCode,
    Ping,
    ProtocolError,
    Subscribe,
    Unsubscribe,
)

if TYPE_CHECKING:
    from .extension import RealtimeState

__all__ = ["connected_frame", "handle_command", "handle_message", "send_error"]

# Messages refused in a row for the rate limit before the connection is closed (4429).
MAX_REJECTED = 20


def connected_frame(conn: Connection, heartbeat: float) -> str:
    """The first frame of every connection; the user as their `public_dict()` shows them."""
    user = conn.user
    info = None
    if user is not None:
        public = getattr(user, "public_dict", None)
        info = public() if callable(public) else {"id": user.id}
    return protocol.encode(protocol.connected(conn.id, info, heartbeat))


def send_error(conn: Connection, error: ProtocolError, retry_after: float | None = None) -> None:
    frame = protocol.error(error.request_id, error.code, error.message, retry_after)
    conn.send(protocol.encode(frame), bounded=False)


def handle_command(state: RealtimeState, conn: Connection, command: Command) -> list[str]:
    """Carry out one command; returns the frames that answer it, in order."""
    if isinstance(command, Subscribe):
        return state.broker.subscribe(conn, command)
    if isinstance(command, Unsubscribe):
        state.broker.unsubscribe(conn, command.pattern)
        return [protocol.encode(protocol.unsubscribed(command.request_id, command.pattern.text))]
    if isinstance(command, Ping):
        return [protocol.encode(protocol.pong())]
    return []  # Pong: its arrival was the point


def handle_message(state: RealtimeState, conn: Connection, raw: str | bytes) -> None:
    """Parse, rate-limit and carry out one client message; errors become error frames."""
    try:
        command = protocol.parse_client_frame(raw, max_size=state.config.max_message_size)
    except ProtocolError as error:
        send_error(conn, error)
        return
    wait = state.message_limit.retry_after(conn.id)
    if wait:
        state.broker.stats.rate_limited += 1
        conn.rejected += 1
        if conn.rejected > MAX_REJECTED:
            conn.close(CloseCode.TOO_SLOW, "too many requests")
            return
        request_id = getattr(command, "request_id", None)
        send_error(
            conn,
            ProtocolError(ErrorCode.RATE_LIMITED, "too many messages", request_id),
            retry_after=wait,
        )
        return
    state.message_limit.hit(conn.id)
    conn.rejected = 0
    try:
        frames = handle_command(state, conn, command)
    except ProtocolError as error:
        send_error(conn, error)
        return
    for frame in frames:
        conn.send(frame, bounded=False)
