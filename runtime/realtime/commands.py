"""What every transport does with a client's message, whatever carries it."""

from __future__ import annotations

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
from .state import RealtimeState

__all__ = ["MAX_REJECTED", "connected_frame", "handle_message", "rate_limit", "send_error"]

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
    elif isinstance(command, Ping):
        conn.send(protocol.encode(protocol.pong()))
    # Pong: its arrival was the point.
