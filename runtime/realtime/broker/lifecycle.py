"""A connection's life as the broker sees it: connected, kept alive, closed.

One heartbeat for every connection: each interval a ping for each (its transport sends
it its own way) and a close (4408) for those that answer pings but went silent. A
session that ends closes its connections (4401); a server that stops closes them all
(1001), refusing new ones meanwhile.
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

__all__ = ["Lifecycle"]

log = logging.getLogger("runtime.realtime")


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
        conn.send(protocol.encode(protocol.connected(conn.id, info, self.heartbeat)))

    def forget(self, conn: Connection) -> bool:
        """`conn` is gone; False if it was forgotten before."""
        if not self._connections.remove(conn):
            return False
        if conn.close_code == CloseCode.TOO_SLOW and conn.close_reason == TOO_SLOW_REASON:
            self._stats.slow_disconnects += 1
        return True

    async def keep_alive(self) -> None:
        """The heartbeat, for ever (a supervised task)."""
        while True:
            await asyncio.sleep(self.heartbeat)
            silent_since = time.monotonic() - self.heartbeat_timeout
            for conn in self._connections:
                if conn.pongs and conn.last_seen < silent_since:
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
