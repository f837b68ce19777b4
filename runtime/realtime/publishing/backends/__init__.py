"""Broker backends: where events get their ids, their order and their history.

Every event goes through the backend, the in-memory one included, so that ids and
ordering are one code path whether the server is one process or a cluster. The
interface is asynchronous because a network backend (Redis) cannot give an id or read
its history without awaiting; everything is called on the event loop's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ...events import Event

__all__ = ["Backend", "Deliver", "Position", "PublishesNow", "backend_from_url"]

# Receives published events in the backend's order, on the event loop's thread.
Deliver = Callable[[Sequence["Event"]], None]


class Position(NamedTuple):
    """A point in the backend's order: `id` is a valid `since` (the id of the event
    there, or of the point before the first event), `seq` compares."""

    id: str
    seq: int


class Backend(Protocol):
    """Publishes events in one order and keeps a history of them, bounded in events and
    in bytes."""

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering every published event, in order, to `deliver`."""

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        """Give each event the next id and order number, keep it in the history, deliver
        it; return them as published, in the order given."""

    async def position(self) -> Position:
        """The newest position: after the last event published."""

    async def read_after(self, event_id: str, limit: int) -> list[Event] | None:
        """The events published after `event_id`, oldest first; None when the history
        no longer covers that point, the id is not one of ours (another run, garbage),
        or more than `limit` events would have to be read."""


@runtime_checkable
class PublishesNow(Protocol):
    """A backend that publishes without I/O (in-process): it can do so synchronously."""

    def publish_now(self, events: Sequence[Event]) -> list[Event]: ...


def backend_from_url(url: str, *, history_size: int, history_bytes: int) -> Backend:
    if url == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(history_size=history_size, history_bytes=history_bytes)
    raise ValueError(f"realtime.broker: unsupported backend {url!r}")
