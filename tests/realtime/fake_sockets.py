"""What a direct sink writes to, without a server: a list of the writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.realtime.connections.connection import Connection
    from runtime.realtime.connections.flusher import Flusher
    from runtime.realtime.stats import Faults

__all__ = ["RecordingSocket", "direct_connection", "unused_send"]


class RecordingSocket:
    """A DirectSocket that keeps what is written to it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.full = False  # its buffer past the high-water mark: nothing more is written

    def write_if_room(self, data: bytes) -> bool:
        if self.full:
            return False
        self.written.append(data)
        return True

    def write(self, data: bytes) -> None:
        self.written.append(data)


async def unused_send(message: object) -> None:
    raise AssertionError("a direct sink writes its frames to the socket")


def direct_connection(
    faults: Faults, flusher: Flusher | None = None
) -> tuple[Connection, RecordingSocket]:
    """A WebSocket connection whose frames the flusher writes to a RecordingSocket, as
    the server's fast path does."""
    from runtime.realtime.connections.connection import Connection
    from runtime.realtime.transports.websocket import WebSocketSink

    conn = Connection(user=None, session_hash=None, transport="websocket", max_queue=100)
    socket = RecordingSocket()
    conn.sink = WebSocketSink(unused_send, socket, batch=False)  # type: ignore[arg-type]
    conn.flusher, conn.faults = flusher, faults
    return conn, socket
