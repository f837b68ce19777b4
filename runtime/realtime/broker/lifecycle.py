"""A connection's life as the broker sees it: connected, kept alive, closed.

One heartbeat for every connection: each interval a ping for each (its transport sends
it its own way), a close (4408) for those that answer pings but went silent, and a close
(4401) for those whose session reached its end. The interval is cut in slices about a
second apart, each connection in one of them (by its id): a thousand pings sent at once,
and their pongs, stopped the event loop for ~115 ms, every event of that moment late.
A session that ends otherwise (logout) closes its connections at once (4401); a server
that stops closes them all (1001), refusing new ones meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ...json_values import json_tree
from .. import protocol
from ..connections.connection import TOO_SLOW_REASON
from ..events import public_user
from ..protocol import CloseCode

if TYPE_CHECKING:
    from ..connections.connection import Connection
    from ..connections.flusher import Flusher
    from ..connections.index import ConnectionIndex
    from ..stats import DeliveryStats, Faults

__all__ = ["SESSION_EXPIRED", "Lifecycle"]

log = logging.getLogger("runtime.realtime")

SESSION_EXPIRED = "session expired"  # the reason of a 4401 for a session's lifetime
MAX_SLICES = 60  # a heartbeat of a minute or more: slices a second or more apart


def heartbeat_slices(heartbeat: float) -> int:
    """How many slices an interval of `heartbeat` seconds is cut in: about a second
    each, one for an interval of a second or less."""
    return max(1, min(MAX_SLICES, round(heartbeat)))


class Lifecycle:
    def __init__(
        self,
        connections: ConnectionIndex,
        flusher: Flusher,
        stats: DeliveryStats,
        faults: Faults,
        *,
        heartbeat: float,
        heartbeat_timeout: float,
    ) -> None:
        self._connections = connections
        self._flusher = flusher
        self._stats = stats
        self._faults = faults
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.shutting_down = False  # no new connections: they are told to come back

    def start(self) -> None:
        self.shutting_down = False  # an app may be served again after a shutdown
        self._connections.renew_idle_event()

    def connect(self, conn: Connection, delivered: int) -> None:
        """`conn` is open, after the event numbered `delivered`: it gets its `connected`
        frame first, then events."""
        self._connections.add(conn)
        conn.flusher = self._flusher
        conn.faults = self._faults
        conn.globals_from = delivered
        totals = self._stats.connections_total
        totals[conn.transport] = totals.get(conn.transport, 0) + 1
        info = json_tree(public_user(conn.user))
        frame = protocol.connected(conn.id, info, self.heartbeat, conn.stream_key)
        conn.send(protocol.encode(frame))

    def forget(self, conn: Connection) -> bool:
        """`conn` is gone; False if it was forgotten before."""
        if not self._connections.remove(conn):
            return False
        conn.gone = True
        if conn.close_code == CloseCode.TOO_SLOW and conn.close_reason == TOO_SLOW_REASON:
            self._stats.slow_disconnects += 1
        return True

    async def keep_alive(self) -> None:
        """The heartbeat, for ever (a supervised task): a slice of the connections at
        each tick, every connection once an interval."""
        slices = heartbeat_slices(self.heartbeat)
        slot = 0
        while True:
            await asyncio.sleep(self.heartbeat / slices)
            # Sessions end by the wall clock, as the HTTP side sees them; silence is
            # measured by the monotonic one.
            self.beat(
                now=time.time(),
                silent_since=time.monotonic() - self.heartbeat_timeout,
                part=(slot, slices),
            )
            slot = (slot + 1) % slices

    def beat(self, *, now: float, silent_since: float, part: tuple[int, int] | None = None) -> None:
        """One heartbeat: close with 4401 the connections whose session ended by `now`
        (a Unix time), with 4408 those that answer pings but were last heard before
        `silent_since` (a monotonic time), and ping the others. `part` (slot, slices):
        only the connections of that slot, else all."""
        for conn in self._connections:
            if part is not None and hash(conn.id) % part[1] != part[0]:
                continue
            if conn.session_ends is not None and conn.session_ends <= now:
                conn.close(CloseCode.SESSION_ENDED, SESSION_EXPIRED)
            elif conn.pongs and conn.last_seen < silent_since:
                conn.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
            else:
                conn.ping()

    def close_session(self, session_hash: str) -> None:
        for conn in self._connections.of_session(session_hash):
            conn.close(CloseCode.SESSION_ENDED, "session ended")

    def close_all(self, code: int, reason: str) -> None:
        for conn in self._connections:
            conn.close(code, reason)

    async def going_away(self, timeout: float) -> None:
        """Refuse new connections, close every one with 1001, and give them up to
        `timeout` to go."""
        self.shutting_down = True
        self.close_all(CloseCode.GOING_AWAY, "server shutting down")
        if not await self._connections.wait_idle(timeout):
            log.warning("%d connections still open after 1001", len(self._connections))
