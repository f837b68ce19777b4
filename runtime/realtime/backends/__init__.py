"""Broker backends: where events get their ids, their order and their history.

Every event goes through the backend, the in-memory one included, so that ids and
ordering are one code path whether the server is one process or a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..events import Event

__all__ = ["Backend", "Deliver", "backend_from_url"]

Deliver = Callable[[Event], None]


class Backend(Protocol):
    """Publishes events in one order and keeps a bounded history of them."""

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering every published event, in id order, to `deliver`."""

    async def stop(self) -> None: ...

    def publish(self, event: Event) -> str:
        """Give `event` the next id, keep it in the history, deliver it; return the id."""

    def head(self) -> str:
        """The id of the newest event ("" before the first): a position to resume from."""

    def events_after(self, event_id: str) -> list[Event] | None:
        """The events published after `event_id`, oldest first, or None when the history
        no longer covers that point (or the id is from another run or not one of ours)."""


def backend_from_url(url: str, *, history_size: int) -> Backend:
    if url == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(history_size=history_size)
    raise ValueError(f"realtime.broker: unsupported backend {url!r}")
