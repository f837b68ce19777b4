"""Writing queued frames straight to sockets, once per turn of the event loop.

A connection whose sink is direct (a socket written without awaiting, see
`runtime/adapters/hypercorn.py`) does not wake a task per frame: `Connection.send` marks
it with the flusher, and at the end of the loop's turn the flusher has each marked
connection write its queue in one write. Everything published in one turn (a
transaction's events, a burst) thus goes out together, and `?batch=1` clients get it as
one message.

An event delivered alone, with nothing else waiting to be written, is written through:
each connection's frame as fan-out gives it (`writing_through`), so that the first
readers have it while fan-out is still judging the others, rather than all of them
after the last (a connection with nothing waiting writes it from `Connection.send`
itself, the common case). Several events published together are still written once per
connection.

Each sink encodes its own wire format; what every connection would build alike (a
frame's WebSocket bytes, its SSE message) is built once per flush, in the cache the
flusher hands them and empties after.

A connection whose write raises (its frames, its socket) is closed (1011) and the rest
are written all the same: every marked connection is unmarked and written, whatever
another did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import Connection, FlushCache

__all__ = ["Flusher"]


class Flusher:
    """Collects the connections that have frames to write, and writes them all once the
    loop's current turn is done."""

    def __init__(self) -> None:
        self._marked: list[Connection] = []
        self._scheduled = False
        self.cache: FlushCache = {}
        self.through = False

    @property
    def idle(self) -> bool:
        """Nothing is waiting to be written, nor being written through."""
        return not self._marked and not self.through

    @contextlib.contextmanager
    def writing_through(self) -> Iterator[None]:
        """While it lasts, a connection given frames writes them at once (what every
        connection would build alike is still built once, in the cache)."""
        self.through = True
        try:
            yield
        finally:
            self.through = False
            self.cache.clear()

    def mark(self, conn: Connection) -> None:
        if conn.marked:
            return
        if self.through:
            try:
                conn.flush(self.cache)
            except Exception as error:  # that connection's alone
                conn.fail("write", error)
            return
        conn.marked = True
        self._marked.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        marked, self._marked, self._scheduled = self._marked, [], False
        try:
            for conn in marked:
                conn.marked = False
                try:
                    conn.flush(self.cache)
                except Exception as error:  # that connection's alone
                    conn.fail("write", error)
        finally:
            self.cache.clear()
