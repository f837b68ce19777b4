"""Writes under way: the requests being served that may commit, so that the events of
writes served together are delivered together.

A request is under way from its arrival until it starts its answer (ASGI's
`http.response.start`); its commit is handed to fan-out once it answers (the writer's
answer first). While other requests that may write (any method but GET, HEAD and
OPTIONS) are under way, it waits for them too, at most `realtime.outbox_group_wait`
seconds (the relay's timer): under load the events of writes served together then go
to each subscriber in one write, as a burst's do, instead of one fan-out per event,
each write waiting behind the fan-outs before it. With no other write under way, which
is every rate the server keeps up with, nothing waits. Commits made outside a request
(a task, a script, another process) never wait.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["UNSAFE_EXEMPT", "WritesUnderWay"]

UNSAFE_EXEMPT = frozenset({"GET", "HEAD", "OPTIONS"})  # methods that do not write


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
        """`callback()` now if no write is under way, else once the last one ends."""
        if self.count == 0:
            callback()
        else:
            self._idle.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        """`callback` is not to be called (it ran another way)."""
        if callback in self._idle:
            self._idle.remove(callback)
