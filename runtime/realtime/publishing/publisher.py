"""The publisher: one ordered hand-off from any thread to the backend.

Commit hooks (on whatever thread committed, under the commit lock) and broadcasts
append events to one queue; the order of the queue is the order of publication. One
task on the event loop takes events off the queue and publishes them with the
backend, in that order, whatever thread they came from. So events leave in commit
order: the order is decided where the commit happens, and nothing can overtake.

The queue is bounded (`max_pending` events): past it, events are dropped and counted,
which only a stalled backend can cause.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..stats import DeliveryStats
from .backends import Backend, Position, PublishesNow

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["NotRunning", "Publisher"]

log = logging.getLogger("runtime.realtime")

MAX_BATCH = 512  # events handed to the backend at once

Ticket = concurrent.futures.Future[str]


class NotRunning(RuntimeError):
    """Realtime is not serving: there is no event loop to publish on."""


class Publisher:
    def __init__(self, backend: Backend, *, max_pending: int, stats: DeliveryStats) -> None:
        self._backend = backend
        self._stats = stats
        self._now = backend.publish_now if isinstance(backend, PublishesNow) else None
        self._max_pending = max_pending
        self._lock = threading.Lock()  # everything below: submit() may run on any thread
        self._queue: deque[tuple[Event, Ticket | None]] = deque()
        self._submitted = 0  # how many events were queued, ever (their submission order)
        self._published = 0  # how many of them were published
        # The last one published (or the start position): where everything published
        # so far stands. Kept as it came, made a Position only when asked.
        self._last: Event | Position | None = None
        self._marks: list[tuple[int, asyncio.Future[Position]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._wake_pending = False
        self._publishing = False  # a batch is with the backend (fan-out runs inside it)

    # -- lifecycle (on the loop) ---------------------------------------------------

    def start(self, position: Position) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._wakeup = asyncio.Event()
            self._queue.clear()
            self._submitted = self._published = 0
            self._last = position
            self._wake_pending = False

    def stop(self) -> None:
        with self._lock:
            self._loop = None
            dropped, self._queue = self._queue, deque()
            marks, self._marks = self._marks, []
        for _event, ticket in dropped:
            if ticket is not None:
                ticket.set_exception(NotRunning("realtime stopped before publishing"))
        for _, mark in marks:
            mark.cancel()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop it publishes on, while running."""
        return self._loop

    def on_loop_thread(self) -> bool:
        return self._loop_thread == threading.get_ident() and self._loop is not None

    # -- submitting (any thread) -----------------------------------------------------

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events for publication, in this order, after everything queued before."""
        with self._lock:
            if self._loop is None:
                raise NotRunning("realtime is not serving")
            if len(self._queue) + len(events) > self._max_pending:
                self._stats.lost += len(events)
                log.error("realtime: publish queue full, %d events lost", len(events))
                return
            for event in events:
                self._queue.append((event, None))
            self._submitted += len(events)
            self._wake()

    def submit_one(self, event: Event) -> Ticket:
        """Queue one event; the ticket gets its id once it is published."""
        ticket: Ticket = concurrent.futures.Future()
        with self._lock:
            if self._loop is None:
                raise NotRunning("realtime is not serving: serve the app to broadcast")
            if len(self._queue) >= self._max_pending:
                self._stats.lost += 1
                raise RuntimeError("realtime: publish queue full")
            self._queue.append((event, ticket))
            self._submitted += 1
            self._wake()
        return ticket

    def _wake(self) -> None:
        # Under the lock. One wake-up per batch of submissions, not one per event.
        if self._wake_pending or self._loop is None or self._wakeup is None:
            return
        self._wake_pending = True
        if threading.get_ident() == self._loop_thread:
            self._wakeup.set()
        else:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    # -- positions (on the loop) -------------------------------------------------------

    def mark(self) -> asyncio.Future[Position]:
        """The position of everything submitted so far: resolves, once all of it is
        published, to the position of the last of it (or to the start position if
        nothing was)."""
        assert self._loop is not None
        mark: asyncio.Future[Position] = self._loop.create_future()
        with self._lock:
            if self._published == self._submitted:
                assert self._last is not None
                mark.set_result(_position_of(self._last))
            else:
                self._marks.append((self._submitted, mark))
        return mark

    # -- publishing (on the loop) ------------------------------------------------------

    async def run(self) -> None:
        """Publish what is queued, for ever; a failed batch is kept for the next run."""
        assert self._wakeup is not None
        while True:
            while await self._publish_batch():
                pass
            await self._wakeup.wait()
            self._wakeup.clear()

    def can_publish_now(self) -> bool:
        """Whether `publish_queued_now` can: the backend is in-process, and this is not
        fan-out itself calling back (its batch is still with the backend)."""
        return self._now is not None and not self._publishing

    def publish_queued_now(self) -> bool:
        """Publish everything queued, synchronously, if the backend can (in-process);
        False if it cannot. For callers on the loop's thread that need an id now."""
        if self._now is None or self._publishing:
            return False
        self._publishing = True
        try:
            while batch := self._take():
                self._done(batch, self._now([event for event, _ in batch]))
        finally:
            self._publishing = False
        return True

    async def _publish_batch(self) -> bool:
        batch = self._take()
        if not batch:
            return False
        self._publishing = True
        try:
            published = await self._backend.publish([event for event, _ in batch])
        except BaseException:
            with self._lock:  # keep the order: the batch goes back in front
                self._queue.extendleft(reversed(batch))
            raise
        finally:
            self._publishing = False
        self._done(batch, published)
        return True

    def _take(self) -> list[tuple[Event, Ticket | None]]:
        with self._lock:
            self._wake_pending = False
            count = min(len(self._queue), MAX_BATCH)
            return [self._queue.popleft() for _ in range(count)]

    def _done(self, batch: list[tuple[Event, Ticket | None]], published: list[Event]) -> None:
        with self._lock:
            first = self._published + 1
            self._published += len(batch)
            self._last = published[-1]
            due = [(seq, mark) for seq, mark in self._marks if seq <= self._published]
            if due:
                self._marks = [(seq, mark) for seq, mark in self._marks if seq > self._published]
        for (_, ticket), event in zip(batch, published, strict=True):
            if ticket is not None:
                ticket.set_result(event.id)
        for seq, mark in due:
            if not mark.done():
                mark.set_result(_position_of(published[seq - first]))


def _position_of(point: Event | Position) -> Position:
    return point if isinstance(point, Position) else Position(point.id, point.seq)
