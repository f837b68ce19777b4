"""The publisher: one ordered hand-off from any thread to the backend.

Commit hooks (on whatever thread committed, under the commit lock) and broadcasts
append events to one queue; the order of the queue is the order of publication. One
task on the event loop takes events off the queue and publishes them with the
backend, in that order, whatever thread they came from. So events leave in commit
order: the order is decided where the commit happens, and nothing can overtake.

Each event gets its idempotency key when it first leaves the queue, so a batch retried
after a failure whose outcome is unknown is not published twice (see backends/).

When the backend fails, the outage is logged once and the batch retried with a growing
delay, in order, until it goes through. Record changes wait in the queue; a broadcast
waiting for its id is failed instead (`BrokerUnavailable`: the caller decides), and so
is any broadcast made while the backend is known to be down.

The queue is bounded (`max_pending` events): past it, events are dropped and counted,
which only a stalled backend can cause.

"Published" is not "delivered": a network backend delivers later, and a position is
worth something to a snapshot only once what it covers has been fanned out here, so
`mark()` waits for both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import logging
import secrets
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..stats import DeliveryStats
from .backends import Backend, Position, PublishesNow, UnpublishableEvent

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["BrokerUnavailable", "NotRunning", "Publisher"]

log = logging.getLogger("runtime.realtime")

MAX_BATCH = 512  # events handed to the backend at once
RETRY_DELAYS = (0.05, 5.0)  # the first and the longest wait before publishing again

Ticket = concurrent.futures.Future[str]


class NotRunning(RuntimeError):
    """Realtime is not serving: there is no event loop to publish on."""


class BrokerUnavailable(Exception):
    """The broker's backend could not publish the event (an outage): it may or may not
    have gone out. Raised by `app.realtime_broadcast()` while the backend is down."""


class _Entry(NamedTuple):
    number: int  # its place in the order of submission
    event: Event
    ticket: Ticket | None  # a broadcast's, waiting for the id


class Publisher:
    def __init__(
        self,
        backend: Backend,
        *,
        max_pending: int,
        stats: DeliveryStats,
        retry_delays: tuple[float, float] = RETRY_DELAYS,
    ) -> None:
        self._backend = backend
        self._stats = stats
        self._now = backend.publish_now if isinstance(backend, PublishesNow) else None
        self._max_pending = max_pending
        self._retry_delays = retry_delays
        self._keys = _Keys()
        self._lock = threading.Lock()  # everything below: submit() may run on any thread
        self._queue: deque[_Entry] = deque()
        self._submitted = 0  # the number of the last entry queued
        self._finished = 0  # every entry up to this number is published or failed
        # Where the last event published stands (or the start position).
        self._last = Position("", 0)
        self._delivered = Position("", 0)  # the last position fanned out here
        self._marks: list[tuple[int, asyncio.Future[Position]]] = []  # by entry number
        self._undelivered: list[tuple[Position, asyncio.Future[Position]]] = []
        self.outage: BaseException | None = None  # why the backend last failed, until back
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
            self._submitted = self._finished = 0
            self._last = self._delivered = position
            self._wake_pending = False
            self.outage = None

    def stop(self) -> None:
        with self._lock:
            self._loop = None
            dropped, self._queue = self._queue, deque()
            marks = [mark for _, mark in self._marks + self._undelivered]
            self._marks, self._undelivered = [], []
        for entry in dropped:
            if entry.ticket is not None:
                entry.ticket.set_exception(NotRunning("realtime stopped before publishing"))
        for mark in marks:
            mark.cancel()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop it publishes on, while running."""
        return self._loop

    @property
    def max_pending(self) -> int:
        """The queue's bound, in events."""
        return self._max_pending

    @property
    def pending(self) -> int:
        """Events queued, not yet with the backend."""
        return len(self._queue)

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
                self._submitted += 1
                self._queue.append(_Entry(self._submitted, event, None))
            self._wake()

    def submit_one(self, event: Event) -> Ticket:
        """Queue one event; the ticket gets its id once it is published, or
        BrokerUnavailable if the backend fails first."""
        ticket: Ticket = concurrent.futures.Future()
        with self._lock:
            if self._loop is None:
                raise NotRunning("realtime is not serving: serve the app to broadcast")
            if self.outage is not None:
                raise _unavailable(self.outage)
            if len(self._queue) >= self._max_pending:
                self._stats.lost += 1
                raise RuntimeError("realtime: publish queue full")
            self._submitted += 1
            self._queue.append(_Entry(self._submitted, event, ticket))
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
        published and delivered, to the position of the last of it (or to where
        publishing stood, if nothing was)."""
        assert self._loop is not None
        mark: asyncio.Future[Position] = self._loop.create_future()
        with self._lock:
            if self._finished == self._submitted:
                self._when_delivered(self._last, mark)
            else:
                self._marks.append((self._submitted, mark))
        return mark

    def delivered(self, position: Position) -> None:
        """The backend delivered everything up to `position` (fan-out has it)."""
        with self._lock:
            self._delivered = position
            due = [(p, mark) for p, mark in self._undelivered if position.covers(p)]
            if due:
                self._undelivered = [
                    (p, mark) for p, mark in self._undelivered if not position.covers(p)
                ]
        for p, mark in due:
            if not mark.done():
                mark.set_result(p)

    def _when_delivered(self, position: Position, mark: asyncio.Future[Position]) -> None:
        # Under the lock.
        if self._delivered.covers(position):
            if not mark.done():
                mark.set_result(position)
        else:
            self._undelivered.append((position, mark))

    # -- publishing (on the loop) ------------------------------------------------------

    async def run(self) -> None:
        """Publish what is queued, for ever; a failed batch is retried, in order, after
        a growing delay."""
        assert self._wakeup is not None
        first, longest = self._retry_delays
        delay = first
        while True:
            try:
                while await self._publish_batch():
                    pass
            except Exception:  # the batch is back in the queue (see _failed)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            delay = first
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
                self._done(batch, self._now([entry.event for entry in batch]))
        finally:
            self._publishing = False
        return True

    async def _publish_batch(self) -> bool:
        batch = self._take()
        if not batch:
            return False
        self._publishing = True
        try:
            published = await self._backend.publish([entry.event for entry in batch])
        except UnpublishableEvent as error:
            self._unpublishable(batch, error)
            return True  # the others go again at once
        except BaseException as error:
            self._failed(batch, error)
            raise
        finally:
            self._publishing = False
        self._done(batch, published)
        return True

    def _take(self) -> list[_Entry]:
        with self._lock:
            self._wake_pending = False
            count = min(len(self._queue), MAX_BATCH)
            batch = [self._queue.popleft() for _ in range(count)]
        return [self._keys.keyed(entry) for entry in batch]

    def _done(self, batch: list[_Entry], published: list[Event]) -> None:
        if self.outage is not None:
            log.warning("realtime: the broker's backend is back; publishing again")
            self.outage = None
        before = self._last
        with self._lock:
            self._last = Position.of(published[-1])
            self._finished = self._queue[0].number - 1 if self._queue else self._submitted
            due = self._due()
            first = batch[0].number
            for number, mark in due:  # the position of each mark's event, made for it
                index = min(number - first, len(published) - 1)
                self._when_delivered(Position.of(published[index]) if index >= 0 else before, mark)
        for entry, event in zip(batch, published, strict=True):
            if entry.ticket is not None:
                entry.ticket.set_result(event.id)

    def _failed(self, batch: list[_Entry], error: BaseException) -> None:
        """The batch goes back in front, in order, but for broadcasts waiting for their
        id: their callers learn of the failure."""
        if isinstance(error, asyncio.CancelledError):
            kept, failed = batch, []
        else:
            kept = [entry for entry in batch if entry.ticket is None]
            failed = [entry.ticket for entry in batch if entry.ticket is not None]
            self._outage(error)
        self._requeue(kept)
        for ticket in failed:
            if ticket is not None:
                ticket.set_exception(_unavailable(error))

    def _unpublishable(self, batch: list[_Entry], error: UnpublishableEvent) -> None:
        """The event the backend cannot carry is dropped (counted, logged, its caller
        told); the rest of the batch goes back in front, as it was."""
        culprit = batch[error.index]
        self._stats.lost += 1
        log.error(
            "realtime: an event of %r cannot be published and is lost: %s",
            culprit.event.collection or culprit.event.name,
            error.__cause__ or error,
        )
        self._requeue(batch[: error.index] + batch[error.index + 1 :])
        if culprit.ticket is not None:
            culprit.ticket.set_exception(ValueError(str(error.__cause__ or error)))

    def _requeue(self, kept: list[_Entry]) -> None:
        """Entries of a batch that did not go out back in front, in order; marks waiting
        only for those that are gone for good resolve."""
        with self._lock:
            self._queue.extendleft(reversed(kept))
            self._finished = self._queue[0].number - 1 if self._queue else self._submitted
            for _, mark in self._due():
                self._when_delivered(self._last, mark)

    def _outage(self, error: BaseException) -> None:
        if self.outage is None:
            self._stats.broker_outages += 1
            log.error(
                "realtime: the broker's backend failed (%s: %s); retrying with backoff, "
                "record changes wait and broadcasts fail until it is back",
                type(error).__name__,
                error,
                exc_info=None if isinstance(error, OSError | TimeoutError) else error,
            )
        self.outage = error

    def _due(self) -> list[tuple[int, asyncio.Future[Position]]]:
        # Under the lock: the marks whose entries are all finished, taken off the list.
        due = [(number, mark) for number, mark in self._marks if number <= self._finished]
        if due:
            self._marks = [(n, mark) for n, mark in self._marks if n > self._finished]
        return due


class _Keys:
    """Idempotency keys: this publisher's token (another process's, or an earlier
    run's, differs) and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8) + "-"
        self._count = itertools.count(1)

    def keyed(self, entry: _Entry) -> _Entry:
        if entry.event.key:
            return entry  # keyed when first taken: a retry keeps it
        event = dataclasses.replace(entry.event, key=f"{self._prefix}{next(self._count)}")
        return entry._replace(event=event)


def _unavailable(error: BaseException) -> BrokerUnavailable:
    unavailable = BrokerUnavailable(
        f"realtime: the broker's backend is unavailable ({type(error).__name__}: {error}); "
        "the event may not have been published"
    )
    unavailable.__cause__ = error
    return unavailable
