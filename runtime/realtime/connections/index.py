"""Who is connected: the open connections, by id, user, session and client address.

Plain bookkeeping on the event loop's thread. Empty buckets are deleted, so memory
follows the connections that are open, not the ones that ever were. With a shared
backend, `on_user_change` hears of each user whose count changed (to share it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from .connection import Connection

__all__ = ["ConnectionIndex"]


class ConnectionIndex:
    def __init__(self) -> None:
        self.by_id: dict[str, Connection] = {}
        self.by_user: dict[Any, set[Connection]] = {}
        self.by_session: dict[str, set[Connection]] = {}
        self.by_address: dict[str, set[Connection]] = {}
        self._idle = asyncio.Event()  # set whenever no connection is open
        self._idle.set()
        self.on_user_change: Callable[[Any], None] | None = None

    def renew_idle_event(self) -> None:
        """An asyncio.Event belongs to the loop that first waits on it: a new one for a
        new serving loop."""
        self._idle = asyncio.Event()
        if not self.by_id:
            self._idle.set()

    def add(self, conn: Connection) -> None:
        self.by_id[conn.id] = conn
        self._idle.clear()
        if conn.user is not None:
            self.by_user.setdefault(conn.user_id, set()).add(conn)
            if self.on_user_change is not None:
                self.on_user_change(conn.user_id)
        if conn.session_hash is not None:
            self.by_session.setdefault(conn.session_hash, set()).add(conn)
        if conn.address is not None:
            self.by_address.setdefault(conn.address, set()).add(conn)

    def remove(self, conn: Connection) -> bool:
        """Forget `conn`; False if it was not here."""
        if self.by_id.pop(conn.id, None) is None:
            return False
        _discard(self.by_user, conn.user_id, conn)
        _discard(self.by_session, conn.session_hash, conn)
        _discard(self.by_address, conn.address, conn)
        if conn.user is not None and self.on_user_change is not None:
            self.on_user_change(conn.user_id)
        if not self.by_id:
            self._idle.set()
        return True

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self.by_id.values()))

    def get(self, connection_id: str) -> Connection | None:
        return self.by_id.get(connection_id)

    def of_session(self, session_hash: str) -> list[Connection]:
        return list(self.by_session.get(session_hash, ()))

    def targets(self, client_ids: frozenset[str], user_ids: frozenset[Any]) -> set[Connection]:
        """The connections named by id, and every connection of the users named."""
        found = {self.by_id[c] for c in client_ids if c in self.by_id}
        for user_id in user_ids:
            found.update(self.by_user.get(user_id, ()))
        return found

    def count_of_user(self, user_id: Any) -> int:
        return len(self.by_user.get(user_id, ()))

    def count_of_address(self, address: str) -> int:
        return len(self.by_address.get(address, ()))

    def counts_by_transport(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for conn in self.by_id.values():
            counts[conn.transport] = counts.get(conn.transport, 0) + 1
        return counts

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is open; False if `timeout` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def _discard(index: dict[Any, set[Connection]], key: Any, conn: Connection) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(conn)
        if not bucket:
            del index[key]
