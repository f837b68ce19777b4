"""The in-process backend: offsets from a counter, history in a ring buffer bounded in
events and in bytes."""

from __future__ import annotations

import datetime
import decimal
import secrets
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from itertools import islice
from operator import attrgetter
from sys import getsizeof
from typing import TYPE_CHECKING, Any

from . import Deliver, Position

if TYPE_CHECKING:
    from ...events import Event

__all__ = ["DEDUP_WINDOW", "DEFAULT_HISTORY_BYTES", "MemoryBackend", "event_bytes"]

DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024

# Keys of the latest events kept to tell a retried publish from a new one. In-process a
# publish cannot half fail, so this only matters to callers that retry on their own.
DEDUP_WINDOW = 10_000


class MemoryBackend:
    """The epoch is the run: a random token made at each start, so that ids of an
    earlier server run are told apart. Publishing does no I/O, so it is offered
    synchronously too (`publish_now`), and delivers before it returns. The history keeps
    the newest events, at most `history_size` of them holding at most `history_bytes` of
    memory together (`event_bytes`): whichever bound is met first lets the oldest go.
    """

    def __init__(self, *, history_size: int, history_bytes: int = DEFAULT_HISTORY_BYTES) -> None:
        self.epoch = secrets.token_hex(4)
        self._offset = 0
        self._history: deque[Event] = deque()
        self._sizes: deque[int] = deque()  # each kept event's event_bytes, in order
        self._kept_bytes = 0
        self._max_events = history_size
        self._max_bytes = history_bytes
        # Offsets by key, oldest first (not the events: they would outlive the history).
        self._published: OrderedDict[str, int] = OrderedDict()
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> Position:
        # A new epoch, as after a restart: ids given before cannot be resumed from.
        self.epoch = secrets.token_hex(4)
        self._offset = 0
        self._history.clear()
        self._sizes.clear()
        self._kept_bytes = 0
        self._published.clear()
        self._deliver = deliver
        return Position(self.epoch, 0)

    async def stop(self) -> None:
        self._deliver = None

    @property
    def kept_bytes(self) -> int:
        """What the events in the history hold now, by `event_bytes`."""
        return self._kept_bytes

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        return self.publish_now(events)

    def publish_now(self, events: Sequence[Event]) -> list[Event]:
        published: list[Event] = []
        new: list[Event] = []
        for event in events:
            earlier = self._published.get(event.key) if event.key else None
            if earlier is not None:
                published.append(event.published(f"{self.epoch}-{earlier}", earlier))
                continue
            self._offset += 1
            event = event.published(f"{self.epoch}-{self._offset}", self._offset)
            published.append(event)
            new.append(event)
            if event.key:
                self._remember(event)
        if self._max_events and self._max_bytes:
            self._keep(new)
        if self._deliver is not None and new:
            self._deliver(new)
        return published

    def _remember(self, event: Event) -> None:
        self._published[event.key] = event.seq
        if len(self._published) > DEDUP_WINDOW:
            self._published.popitem(last=False)

    def _keep(self, events: list[Event]) -> None:
        history, sizes = self._history, self._sizes
        for event in events:
            size = event_bytes(event)
            history.append(event)
            sizes.append(size)
            self._kept_bytes += size
        # An event larger than the whole budget leaves at once: the history is then
        # empty, and resuming from before it is `recovered: false`, as it should be.
        while len(history) > self._max_events or self._kept_bytes > self._max_bytes:
            history.popleft()
            self._kept_bytes -= sizes.popleft()

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


def event_bytes(event: Event) -> int:
    """The memory `event` holds, about and never less: the event, its strings, and its
    record's values (an update's values before too), data and user walked to every
    leaf, each by `sys.getsizeof`.

    Not its JSON's length, which a hostile payload makes tiny beside what it holds: the
    16 KB `[[],[],…]` parses to 5,400 lists of 56 bytes and more each. Objects shared
    with other events (field names, small numbers) are counted for each: it errs high.
    """
    total = getsizeof(event)
    # None holds nothing of an event's own (most of a record event's fields are None).
    level: list[Any] = [value for value in _walked(event) if value is not None]
    while level:  # a level at a time: no recursion, however deep the data
        inner: list[Any] = []
        for value in level:
            total += getsizeof(value)
            kind = type(value)
            if kind in _LEAVES:
                continue
            if kind is dict or (kind not in _SEQUENCES and isinstance(value, Mapping)):
                inner += value.keys()
                inner += value.values()
            elif kind in _SEQUENCES or isinstance(value, _CONTAINERS):
                inner += value
        level = inner
    return total


# The fields of an event that may hold memory of its own (its `action` is one of a few
# names).
_walked = attrgetter(
    "id",
    "key",
    "collection",
    "record_id",
    "changed",
    "name",
    "values",
    "previous",
    "data",
    "user",
    "client_ids",
    "user_ids",
)
# What JSON values and stored fields mostly are: nothing inside to walk (a datetime's
# time zone is shared by many, not its own).
_LEAVES = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        decimal.Decimal,
        uuid.UUID,
    }
)
_CONTAINERS = (list, tuple, set, frozenset)
_SEQUENCES = frozenset(_CONTAINERS)  # the same, for a test of the exact type
