"""The in-process backend: offsets from a counter, history in a ring buffer."""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING

from . import Deliver, Position

if TYPE_CHECKING:
    from ...events import Event

__all__ = ["DEDUP_WINDOW", "MemoryBackend"]

# Keys of the latest events kept to tell a retried publish from a new one. In-process a
# publish cannot half fail, so this only matters to callers that retry on their own.
DEDUP_WINDOW = 10_000


class MemoryBackend:
    """The epoch is the run: a random token made at each start, so that ids of an
    earlier server run are told apart. Publishing does no I/O, so it is offered
    synchronously too (`publish_now`), and delivers before it returns.
    """

    def __init__(self, *, history_size: int) -> None:
        self.epoch = secrets.token_hex(4)
        self._offset = 0
        self._history: deque[Event] = deque(maxlen=history_size)
        self._published: OrderedDict[str, Event] = OrderedDict()  # by key, oldest first
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        # A new epoch, as after a restart: ids given before cannot be resumed from.
        self.epoch = secrets.token_hex(4)
        self._offset = 0
        self._history.clear()
        self._published.clear()
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        return self.publish_now(events)

    def publish_now(self, events: Sequence[Event]) -> list[Event]:
        published: list[Event] = []
        new: list[Event] = []
        for event in events:
            earlier = self._published.get(event.key) if event.key else None
            if earlier is not None:
                published.append(earlier)
                continue
            self._offset += 1
            event = event.published(f"{self.epoch}-{self._offset}", self._offset)
            published.append(event)
            new.append(event)
            if event.key:
                self._remember(event)
        if self._history.maxlen:
            self._history.extend(new)
        if self._deliver is not None and new:
            self._deliver(new)
        return published

    def _remember(self, event: Event) -> None:
        self._published[event.key] = event
        if len(self._published) > DEDUP_WINDOW:
            self._published.popitem(last=False)

    async def position(self) -> Position:
        return Position(self.epoch, self._offset)

    async def read_after(self, event_id: str, limit: int) -> list[Event] | None:
        since = Position.parse(event_id)
        if since is None or since.epoch != self.epoch:
            return None
        offset = since.offset
        if offset > self._offset or self._offset - offset > limit:
            return None  # an id we never gave out, or more than the caller may take
        if offset == self._offset:
            return []
        oldest = self._offset - len(self._history) + 1  # offset of history[0]
        if offset + 1 < oldest:
            return None  # events after `offset` have already left the history
        return list(islice(self._history, offset + 1 - oldest, None))
