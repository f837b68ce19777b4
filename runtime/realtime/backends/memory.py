"""The in-process backend: ids from a counter, history in a ring buffer."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections import deque
from itertools import islice

from ..events import Event
from . import Deliver

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Ids are `<run>-<seq>`: the run part tells ids of an earlier server run apart."""

    def __init__(self, *, history_size: int) -> None:
        self.run = secrets.token_hex(4)
        self._seq = 0
        self._history: deque[Event] = deque(maxlen=history_size)
        self._deliver: Deliver | None = None
        self._lock = threading.Lock()  # publish() may be called from any thread

    async def start(self, deliver: Deliver) -> None:
        # A new run, as after a restart: ids given before cannot be resumed from.
        with self._lock:
            self.run = secrets.token_hex(4)
            self._seq = 0
            self._history.clear()
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    def publish(self, event: Event) -> str:
        with self._lock:
            self._seq += 1
            event = dataclasses.replace(event, id=f"{self.run}-{self._seq}")
            if self._history.maxlen:
                self._history.append(event)
        if self._deliver is not None:
            self._deliver(event)
        return event.id

    def head(self) -> str:
        return f"{self.run}-{self._seq}" if self._seq else ""

    def events_after(self, event_id: str) -> list[Event] | None:
        run, _, seq_text = event_id.rpartition("-")
        if run != self.run or not seq_text.isdigit():
            return None
        seq = int(seq_text)
        with self._lock:
            if seq > self._seq:
                return None  # an id we never gave out
            if seq == self._seq:
                return []
            oldest = self._seq - len(self._history) + 1  # seq of history[0]
            if seq + 1 < oldest:
                return None  # events after `seq` have already left the history
            return list(islice(self._history, seq + 1 - oldest, None))
