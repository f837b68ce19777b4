"""The relay: publishes one database's outbox rows (capture/outbox.py) in id order,
which is commit order, at least once; each event carries the key it was written with,
so the backend publishes it once however many relays hand it over (several processes,
each with its relay, or a relay starting again after a crash).

Several relays are safe together: each publishes in id order and a backend publishes a
key it has seen before at the position it gave it first, so an event is in the
backend's order only after every event of a lower id; ids are commit order, so the
backend's order is commit order whichever relay got there first.

The rows this process commits it hears of from the writer, events and all, and hands
on without reading them back, as long as they follow the last row it handed on with no
id in between; otherwise (another process's rows, a PostgreSQL id a rollback used up,
or more than it keeps) it reads the table. It reads the table only when there may be
rows it has not heard of: a gap before its own, another process's commit notified, at
start, for a snapshot, and at each poll; never for its own commits alone.

When it runs: at once when this process commits (the writer tells it; a commit on the
loop's thread is handed on at the loop's next turn, or, while other requests that may
write are being served, once they have answered, within `group_wait` seconds: see
writes_under_way.py), when PostgreSQL notifies a commit of another process (LISTEN; a
notification names the process that wrote), and every `poll` seconds for the commits
nothing announces (another process's on SQLite).

Bookkeeping: once its events are published and delivered, the last id goes to
`runtime_outbox_relayed`, where a relay starting up begins: at most every
RECORD_EVERY seconds (a write that every relay would otherwise make per batch, each
waiting for SQLite's one writer), and when the relay stops; a relay killed before it
recorded the last of them publishes those again when it starts, under the same keys.
Published rows are kept `keep` seconds (a snapshot reads the newest id to know where it
stands) and then deleted; past `size` rows, the oldest go whether published or not,
counted as lost and logged (only a long outage of the backend can cause that).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..capture.outbox import CHANNEL, OutboxEntry, OutboxTable, OutboxWriter
from .writes_under_way import WritesUnderWay

if TYPE_CHECKING:
    from ...base_model import BaseModel
    from ...change_tracking import ChangeTracking
    from ..events import Event
    from ..publishing.codec import EventCodec
    from ..publishing.publisher import Publisher
    from ..stats import DeliveryStats

__all__ = ["Relay"]

log = logging.getLogger("runtime.realtime")

BATCH = 512  # rows read at once
PRUNE_EVERY = 5.0  # seconds between prunings
RECORD_EVERY = 0.5  # seconds between writes of how far publishing got
# This process's committed rows kept to hand on unread; past it the oldest go, and are
# read from the table instead.
OWN_ROWS = 4 * BATCH


class Relay:
    def __init__(
        self,
        writer: OutboxWriter,
        publisher: Publisher,
        codec: EventCodec[Event],
        served: Callable[[], Mapping[str, type[BaseModel]]],
        stats: DeliveryStats,
        *,
        poll: float,
        keep: float,
        size: int,
        max_in_flight: int,
        group_wait: float = 0.0,
        writes: WritesUnderWay | None = None,
    ) -> None:
        self.table: OutboxTable = writer.table
        self.database: ChangeTracking = writer.table.database
        self._writer = writer
        self._publisher = publisher
        self._codec = codec
        self._served = served
        self._stats = stats
        self._poll = poll
        self._keep = keep
        self._size = size
        self._max_in_flight = max_in_flight
        self._group_wait = group_wait
        self._writes = writes
        self._grouping: asyncio.TimerHandle | None = None  # the bound of the wait for them
        self.cursor = 0  # the last id handed to the publisher
        self.relayed = 0  # the last id published and delivered here
        self._recorded = 0  # ... as runtime_outbox_relayed says
        self._recorded_at = 0.0
        self._pruned_at = 0.0
        self._own: deque[OutboxEntry] = deque(maxlen=OWN_ROWS)  # appended on any thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._wake_pending = False
        self._hand_over_pending = False
        # Another process may have committed rows this one has not heard of: the table
        # must be read (set at start, on a notification, at each poll).
        self._others_wrote = True

    # -- lifecycle (on the loop) -------------------------------------------------------

    def start(self) -> None:
        self.table.ensure()
        self.cursor = self.relayed = self._recorded = self.table.relayed()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        self._wake_pending = self._hand_over_pending = False
        self._others_wrote = True
        self._own.clear()
        self._writer.listeners.append(self.committed)

    def stop(self) -> None:
        self._loop = None
        self._end_grouping()  # the rows not handed on wait in the outbox for the next start
        if self.committed in self._writer.listeners:
            self._writer.listeners.remove(self.committed)
        if self.relayed <= self._recorded:
            return
        # The app may have closed its connection already: one opened here is closed here.
        closed = self.database.is_closed()  # type: ignore[attr-defined]
        try:
            self._record(force=True)
        except Exception:  # stopping goes on; the next start publishes these again
            log.warning("realtime: cannot record how far the outbox was published", exc_info=True)
        finally:
            if closed:
                self.database.close()  # type: ignore[attr-defined]

    def committed(self, rows: list[OutboxEntry]) -> None:
        """This process committed these rows (any thread, under the commit lock)."""
        self._own.extend(rows)
        loop = self._loop
        if loop is None or threading.get_ident() != self._loop_thread:
            self.wake()
        elif not self._hand_over_pending:
            # Committed on the loop (a request's write): handed on as soon as the
            # committing code lets the loop run, not a few turns later by the relay's
            # task, so that an in-process backend delivers it first thing; with other
            # writes under way than (at most) its own, once they answer
            # (writes_under_way.py).
            self._hand_over_pending = True
            writes = self._writes
            if writes is None or writes.count <= 1 or self._group_wait <= 0:
                loop.call_soon(self._hand_over)
            else:
                self._grouping = loop.call_later(self._group_wait, self._hand_over)
                writes.when_none(self._hand_over_soon)

    def _end_grouping(self) -> None:
        """No more waiting for the writes under way: the timer and the callback go."""
        if self._grouping is not None:
            self._grouping.cancel()
            self._grouping = None
            if self._writes is not None:
                self._writes.forget(self._hand_over_soon)

    def _hand_over_soon(self) -> None:
        if self._loop is not None:
            self._loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        if not self._hand_over_pending:
            return  # handed over already: the wait for the writes under way had two ends
        self._hand_over_pending = False
        self._end_grouping()
        if self._loop is None:
            return
        self.catch_up()
        self._publisher.publish_queued_now()  # False: the publisher's task will
        self._set()  # the relay's task records how far publishing got

    def wake(self) -> None:
        """Something was committed: look now (any thread)."""
        loop = self._loop
        if loop is None or self._wake_pending:
            return
        self._wake_pending = True
        loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def behind(self) -> bool:
        """Whether this process committed rows the relay has not handed on yet."""
        return self._writer.last_committed > self.cursor

    # -- publishing --------------------------------------------------------------------

    def catch_up(self, upto: int | None = None) -> int:
        """Hand the rows after the cursor (up to `upto`) to the publisher, in order, as
        many as its queue has room for (on the loop's thread); how many were read."""
        room = self._max_in_flight - self._publisher.pending
        read = 0
        while room > 0:
            limit = min(BATCH, room)
            rows = self._own_rows(upto, limit)
            if rows is None:
                if not (self._own or self._others_wrote or upto is not None):
                    return read  # nothing but this process's rows, all handed on
                if upto is None:  # a commit notified from now on sets it again
                    self._others_wrote = False
                rows = self._read(upto, limit)
                if len(rows) == limit:
                    self._others_wrote = True  # there may be more
            if not rows:
                return read
            served = self._served()
            events = [e for _, e in rows if e is not None and e.collection in served]
            if events:
                self._publisher.submit(events)
            self.cursor = rows[-1][0]
            room -= len(rows)
            read += len(rows)
            if len(rows) < limit and (upto is None or self.cursor >= upto):
                # All there is for now (another process's later rows wake it anew).
                return read
        self._others_wrote = True  # the next look reads on
        return read  # no room: the rest waits in the outbox (the backend is down)

    def _own_rows(self, upto: int | None, limit: int) -> list[tuple[int, Event | None]] | None:
        """The next rows from this process's own commits, if they follow the cursor with
        no id in between; else None (the table must be read)."""
        own = self._own
        while own and own[0][0] <= self.cursor:
            own.popleft()  # read from the table meanwhile
        rows: list[tuple[int, Event | None]] = []
        expected = self.cursor + 1
        while own and len(rows) < limit and own[0][0] == expected:
            if upto is not None and expected > upto:
                break
            rows.append(own.popleft())
            expected += 1
        return rows or None

    def _read(self, upto: int | None, limit: int) -> list[tuple[int, Event | None]]:
        """The next rows from the table, decoded (None: a row that cannot be)."""
        rows: list[tuple[int, Event | None]] = []
        for row_id, payload in self.table.read_after(self.cursor, upto, limit):
            try:
                rows.append((row_id, self._codec.decode(payload)))
            except ValueError as error:
                self._stats.lost += 1
                log.error("realtime: outbox row %d is unreadable, lost: %s", row_id, error)
                rows.append((row_id, None))
        return rows

    async def run(self) -> None:
        """Relay for ever: catch up, record what is published, prune, wait."""
        assert self._wakeup is not None
        # Stopped: done. (Python 3.11's wait_for can lose the cancellation that stopping
        # sends, when its wait ends in the same turn: the loop would go on unstopped.)
        while self._loop is not None:
            self._wakeup.clear()
            self._wake_pending = False
            read = self.catch_up()
            if self.cursor > self.relayed:
                upto = self.cursor
                await self._publisher.mark()  # published and delivered (waits out outages)
                self.relayed = max(self.relayed, upto)
            self._record()
            self._prune()
            if (read and self.behind()) or self._wakeup.is_set():
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._poll)
            except TimeoutError:
                self._others_wrote = True  # what no notification announces (SQLite)

    def _record(self, force: bool = False) -> None:
        """Write how far publishing got, if it moved and it is time (or `force`)."""
        now = time.monotonic()
        if self.relayed <= self._recorded or (not force and now - self._recorded_at < RECORD_EVERY):
            return
        self.table.set_relayed(self.relayed)
        self._recorded, self._recorded_at = self.relayed, now

    def _prune(self) -> None:
        now = time.time()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        lost = self.table.prune(self.relayed, now - self._keep, self._size)
        if lost:
            self._stats.lost += lost
            log.error(
                "realtime: the outbox held more than %d rows; %d unpublished events were "
                "dropped (realtime.outbox_size)",
                self._size,
                lost,
            )

    # -- waking on PostgreSQL ----------------------------------------------------------

    @property
    def listens(self) -> bool:
        return self.table.postgres

    async def listen(self) -> None:
        """Wake on every commit PostgreSQL notifies (any process's), for ever."""
        import psycopg

        database = self.database
        async with await psycopg.AsyncConnection.connect(
            database.database,  # type: ignore[attr-defined]
            autocommit=True,
            **database.connect_params,  # type: ignore[attr-defined]
        ) as connection:
            await connection.execute(f"LISTEN {CHANNEL}")
            self._others_wrote = True  # anything committed before LISTEN took effect
            self._set()
            own = self.table.origin
            async for notification in connection.notifies():
                if notification.payload != own or not own:
                    self._others_wrote = True
                    self._set()

    # -- where a snapshot stands ---------------------------------------------------------

    def horizon(self) -> int:
        """The newest id committed, as the current read sees it."""
        return self.table.newest()

    def waiting(self) -> tuple[int, float | None]:
        """Rows not yet published, and how old the oldest is (seconds), for metrics."""
        count, oldest = self.table.waiting(self.relayed)
        return count, (time.time() - oldest if oldest is not None else None)
