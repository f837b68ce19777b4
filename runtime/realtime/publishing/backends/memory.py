"""The in-process backend: ids from a counter, history in a ring buffer."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING

from . import Deliver, Position

if TYPE_CHECKING:
    from ...events import Event

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Ids are `<run>-<seq>`: the run part tells ids of an earlier server run apart.

    `<run>-0` is the position before the first event. Publishing does no I/O, so it is
    offered synchronously too (`publish_now`).
    """

    def __init__(self, *, history_size: int) -> None:
        self.run = secrets.token_hex(4)
        self._seq = 0
        self._history: deque[Event] = deque(maxlen=history_size)
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        # A new run, as after a restart: ids given before cannot be resumed from.
        self.run = secrets.token_hex(4)
        self._seq = 0
        self._history.clear()
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        return self.publish_now(events)

    def publish_now(self, events: Sequence[Event]) -> list[Event]:
        published = []
        for event in events:
            self._seq += 1
            published.append(event.published(f"{self.run}-{self._seq}", self._seq))
        if self._history.maxlen:
            self._history.extend(published)
        if self._deliver is not None:
            self._deliver(published)
        return published

    async def position(self) -> Position:
        return Position(f"{self.run}-{self._seq}", self._seq)

    async def read_after(self, event_id: str, limit: int) -> list[Event] | None:
        run, _, seq_text = event_id.rpartition("-")
        if run != self.run or not (seq_text.isascii() and seq_text.isdigit()) or len(seq_text) > 18:
            return None
        seq = int(seq_text)
        if seq > self._seq or self._seq - seq > limit:
            return None  # an id we never gave out, or more than the caller may take
        if seq == self._seq:
            return []
        oldest = self._seq - len(self._history) + 1  # seq of history[0]
        if seq + 1 < oldest:
            return None  # events after `seq` have already left the history
        return list(islice(self._history, seq + 1 - oldest, None))
