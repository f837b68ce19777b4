"""Writes under way: the requests being served that may commit, so that the events of
writes served together are delivered together.

A request that may write (any method but GET, HEAD and OPTIONS) is under way from its
arrival until it starts its answer (ASGI's `http.response.start`). A commit on the
loop's thread is handed to fan-out at the loop's next turn, before its request's answer
is written (the subscribers first, as Socket.IO's emit-then-answer does), unless other
requests that may write are under way besides (at most) its own: then it waits for all
of them to answer, at most `realtime.outbox_group_wait` seconds (the relay's timer), and
their events go to each subscriber in one write, as a burst's do, instead of one
fan-out per event, each write waiting behind the fan-outs before it. Only under load
is there such a request, so a write alone never waits; commits made outside the loop's
thread (a worker thread, a script, another process) never wait either.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["WritesUnderWay"]


class WritesUnderWay:
    """How many requests that may write are being served (on the loop's thread), and
    who waits for there to be none."""

    __slots__ = ("_idle", "count")

    def __init__(self) -> None:
        self.count = 0
        self._idle: list[Callable[[], None]] = []

    def started(self) -> None:
        self.count += 1

    def ended(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle:
            waiting, self._idle = self._idle, []
            for callback in waiting:
                callback()

    def when_none(self, callback: Callable[[], None]) -> None:
        """`callback()` once the writes under way now have all ended."""
        self._idle.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        """`callback` is not to be called (it ran another way)."""
        if callback in self._idle:
            self._idle.remove(callback)
