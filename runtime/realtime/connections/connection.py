"""One client connection as the broker sees it: identity, auth context, send queue.

The broker appends encoded frames with `send()`, which never waits. Its transport gives
it a `sink`, which writes frames in the transport's own wire format. A sink that can
write without awaiting (a socket written directly) has the queue written by the flusher
at the end of the loop's turn, or by the transport's task once the socket can take more;
any other sink is written by the transport's task, which awaits it.

Everything queued for a connection counts against its budget, events, replies,
replays and errors alike, and so do events held back while one of its subscribes is
under way: past `max_queue` frames or `max_queue_bytes` characters the
connection is closed as too slow a reader (4429). A client that never reads cannot make
the server keep more than that for it, nor keep it once closed (its transport drops a
connection whose client does not take the close: runtime/realtime/transports/serving.py).

Whatever one connection's frames or socket do, it is that connection's alone: a step of
getting frames to it that raises (queueing, encoding, writing) closes it with 1011, and
is counted and logged (`fail`); every other connection goes on.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..protocol import CloseCode

if TYPE_CHECKING:
    from ..stats import Faults
    from .message_limit import MessageWindow

__all__ = [
    "TOO_SLOW_REASON",
    "Connection",
    "ConnectionGone",
    "FlushCache",
    "Flusher",
    "HeldEvent",
    "Sink",
]

TOO_SLOW_REASON = "too slow: send queue full"

# An event held back for subscriptions that are not live yet: (its order, its frame,
# the held subscriptions it matched, opaque here: see runtime/realtime/broker/).
HeldEvent: TypeAlias = tuple[int, str, tuple[object, ...]]


# One flush's bytes, by whatever key each kind of sink chooses (its own dict inside).
FlushCache: TypeAlias = dict[object, dict[Any, Any]]


class ConnectionGone(Exception):
    """What was asked for a connection cannot be done: the connection is gone (an SSE
    POST's stream ended while the POST was under way)."""


class Flusher(Protocol):
    """Writes marked connections' queues at the end of the loop's turn (flusher.py)."""

    # Writing through (flusher.py): a connection given a frame writes it at once.
    through: bool
    cache: FlushCache

    def mark(self, conn: Connection) -> None: ...


class Sink(Protocol):
    """Where a connection's frames go, in its transport's wire format (see
    `runtime/realtime/transports/`)."""

    # Whether it can write without awaiting, at the end of the loop's turn.
    direct: bool

    def write(self, frames: list[str], cache: FlushCache) -> bool:
        """Write `frames` at once, if the socket takes more now (open, below its
        high-water mark): False, and nothing written, if not. `cache` lives for one
        flush, for bytes that every connection with the same frames would build alike."""

    def write_one(self, frame: str, cache: FlushCache) -> bool:
        """`write([frame], cache)`."""

    async def send(self, frames: list[str], *, ping: bool = False) -> None:
        """Write `frames` (and a keep-alive after them, if `ping`), awaiting the socket."""

    async def drain(self) -> None:
        """Until it is writable again (or closed)."""

    async def close(self, code: int, reason: str) -> None:
        """Tell the client why, and end the connection."""

    def unread(self) -> bool:
        """Whether the socket holds bytes that its client has not taken (False where
        that cannot be told)."""

    def drop(self) -> None:
        """End the connection at once, and what it holds for the client with it."""


class Connection:
    __slots__ = (
        "_signal",
        "_waiter",
        "address",
        "blocked",
        "close_code",
        "close_reason",
        "command_lock",
        "emits",
        "faults",
        "flusher",
        "globals_from",
        "gone",
        "held",
        "held_bytes",
        "id",
        "last_seen",
        "marked",
        "max_queue",
        "max_queue_bytes",
        "message_window",
        "on_close",
        "ping_due",
        "pongs",
        "present",
        "queue",
        "queued_bytes",
        "rejected",
        "session_ends",
        "session_hash",
        "sink",
        "stream_key",
        "transport",
        "user",
    )

    def __init__(
        self,
        *,
        user: Any,
        session_hash: str | None,
        transport: str,
        max_queue: int,
        max_queue_bytes: int = 1 << 62,
        address: str | None = None,
        pongs: bool = False,
        session_ends: float | None = None,
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.address = address  # the client's, as app.trusted_proxies tells it
        self.user = user
        self.session_hash = session_hash
        self.session_ends = session_ends  # a Unix time: closed with 4401 from then on
        self.transport = transport
        # An SSE stream's secret, which only its client reads (on the stream, in its
        # `connected` frame): its POSTs carry it. None for other transports.
        self.stream_key = secrets.token_urlsafe(18) if transport == "sse" else None
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        # Plain lists and a bare future, not deques and asyncio.Events (each of those
        # allocates a deque of 760 bytes): a connection's idle cost is the point here.
        self.queue: list[str] = []
        self.queued_bytes = 0  # characters queued
        self.held: list[HeldEvent] = []
        self.held_bytes = 0
        self._signal = False  # there may be work for the transport's task
        self._waiter: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        # The broker forgot it: nothing may be registered for it any more (what awaits
        # on its behalf, an SSE POST's subscribe, checks this when it resumes).
        self.gone = False
        self.on_close: Callable[[], object] | None = None  # the transport's, told of close()
        self.last_seen = time.monotonic()
        self.pongs = pongs  # the client answers pings: silence past the timeout closes it
        self.ping_due = False  # set by the broker's heartbeat; the transport sends its ping
        self.sink: Sink | None = None  # set by its transport
        self.flusher: Flusher | None = None  # set by the broker
        self.faults: Faults | None = None  # set by the broker: where failures are counted
        self.marked = False  # with the flusher, to be written at the end of this turn
        self.blocked = False  # the sink could not take more: the transport's task waits
        self.rejected = 0  # messages refused by the rate limit in a row
        self.message_window: MessageWindow | None = None  # made at the first message
        self.present: set[str] | None = None  # topics it counts in the presence of
        self.emits: set[asyncio.Task[None]] | None = None  # client events being answered
        # Subscribes of one connection are carried out one at a time (SSE POSTs may
        # overlap), so at most one is under way and holding events back.
        self.command_lock = asyncio.Lock()
        # Custom events without a collection reach every connection, whatever it
        # subscribed: it has them from this order number on (see the broker's replay).
        self.globals_from = 0

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.transport} user={self.user_id!r}>"

    @property
    def user_id(self) -> Any:
        return self.user.id if self.user is not None else None

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def send(self, frame: str) -> bool:
        """Queue an encoded frame; False if the connection is closing or now too slow.
        While the flusher writes through and nothing waits before it, the frame goes
        straight to the sink: what queueing and flushing it would do, without the queue
        (fan-out's common case, one call per reader)."""
        flusher = self.flusher
        if (
            flusher is not None
            and flusher.through
            and not self.queue
            and not self.held
            and not self.blocked
            and self.close_code is None
            and self.max_queue > 0
            and len(frame) <= self.max_queue_bytes
        ):
            sink = self.sink
            if sink is not None and sink.direct:
                # Written now (inline: this runs once per reader of an event); a write
                # that raises closes this connection alone; no room: queued.
                try:
                    if sink.write_one(frame, flusher.cache):
                        return True
                except Exception as error:  # that connection's alone
                    self.fail("write", error)
                    return True
                self._queue_unwritten(frame)
                return True
        if not self._room_for(frame):
            return False
        self.queue.append(frame)
        self.queued_bytes += len(frame)
        sink = self.sink
        if sink is not None and sink.direct and self.flusher is not None and not self.blocked:
            self.flusher.mark(self)
        else:
            self.wake()
        return True

    def _queue_unwritten(self, frame: str) -> None:
        """A frame written through that the socket had no room for: the transport's
        task writes it once it has, as after `flush`."""
        self.queue.append(frame)
        self.queued_bytes += len(frame)
        self.blocked = True
        self.wake()

    def flush(self, cache: FlushCache) -> None:
        """Write what is queued to the sink (the flusher calls this); if the sink cannot
        take it now, leave it to the transport's task, which waits until it can."""
        if not self.queue or self.close_code is not None or self.sink is None:
            return  # a closing connection's transport writes what close() kept
        if self.sink.write(self.queue, cache):
            self.queue = []
            self.queued_bytes = 0
        else:
            self.blocked = True
            self.wake()

    def hold(self, event: HeldEvent) -> bool:
        """Keep an event back until the subscribe under way settles (see the broker)."""
        if not self._room_for(event[1]):
            return False
        self.held.append(event)
        self.held_bytes += len(event[1])
        return True

    def take_held(self) -> list[HeldEvent]:
        held, self.held, self.held_bytes = self.held, [], 0
        return held

    def _room_for(self, frame: str) -> bool:
        if self.close_code is not None:
            return False
        if (
            len(self.queue) + len(self.held) >= self.max_queue
            or self.queued_bytes + self.held_bytes + len(frame) > self.max_queue_bytes
        ):
            self.close(CloseCode.TOO_SLOW, TOO_SLOW_REASON)
            return False
        return True

    def close(self, code: int, reason: str = "", *, flush: bool = False) -> None:
        """Ask the transport to close. What is still queued is dropped, unless `flush`:
        then it is sent first (the errors that explain a rate-limit close, say)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.held.clear()
            self.held_bytes = 0
            if not flush:
                self.queue.clear()
                self.queued_bytes = 0
            self.wake()
            if self.on_close is not None:
                self.on_close()

    def fail(self, stage: str, error: Exception) -> None:
        """Getting frames to this connection raised at `stage` ("queue", "write"): it is
        closed with 1011, the WebSocket's code for a server that met an unexpected
        condition (clients reconnect and resume), and the failure is counted and logged.
        Nothing else is touched; once failed, it is not counted again while it closes."""
        if self.close_code == CloseCode.INTERNAL_ERROR:
            return
        if self.faults is not None:
            self.faults.connection_failed(stage, self.id, error)
        self.close(CloseCode.INTERNAL_ERROR, "internal error")

    def ping(self) -> None:
        """Ask the transport to send its keep-alive (a ping frame, an SSE comment)."""
        self.ping_due = True
        self.wake()

    async def wait(self) -> None:
        """Until the transport's task has something to do: frames to send (for a sink
        that is not direct), a sink that blocked, a ping due, or a close."""
        if not (
            self.close_code is not None
            or self.ping_due
            or self.blocked
            or (self.queue and (self.sink is None or not self.sink.direct))
            or self._signal
        ):
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._signal = False

    def wake(self) -> None:
        """Tell the transport's task there may be work for it."""
        self._signal = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take_queued(self) -> list[str]:
        """Everything queued, in order; the queue is empty after."""
        frames, self.queue = self.queue, []
        self.queued_bytes = 0
        return frames
