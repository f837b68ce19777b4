"""Broker backends: where events get their ids, their order and their history.

Every event goes through the backend, the in-memory one included, so that ids and
ordering are one code path whether the server is one process or a cluster. The
interface is asynchronous because a network backend (Redis) cannot give an id or read
its history without awaiting; everything is called on the event loop's thread.

The contract, the same for every backend (tests/realtime/test_backend_contract.py):

- A position is an epoch and an offset. Offsets grow by one per event within an epoch;
  an epoch is one unbroken history (a memory backend's run, a Redis stream that kept its
  data). An event's id is its position's id, `<epoch>-<offset>`, and is what clients
  resume from; ids of another epoch are not ours.
- Publishing is idempotent by the event's `key`: an event whose key was published
  before (within the backend's dedup window) is not published again, and comes back with
  the position it was published at the first time. So a publish retried after an error whose outcome
  is unknown (a lost acknowledgement) cannot duplicate an event.
- Publishing is not delivering: `publish` returns the events as published; they reach
  `deliver`, in the backend's order, when the backend delivers them, which for a
  network backend is later, and includes the events other processes publish.
- A backend that cannot publish raises `BackendUnavailable`; nothing it raises means the
  events were not published (see the previous point).
- An event a backend cannot carry (a value its codec cannot encode) is
  `UnpublishableEvent`, naming it, before anything of the batch is published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ...events import Event
    from ..codec import EventCodec

__all__ = [
    "REDIS_SCHEMES",
    "Backend",
    "BackendUnavailable",
    "Deliver",
    "Position",
    "PublishesNow",
    "UnpublishableEvent",
    "backend_from_url",
]

# Receives published events in the backend's order, on the event loop's thread.
Deliver = Callable[[Sequence["Event"]], None]

_MAX_OFFSET_DIGITS = 18  # an offset past this is no id we gave out (and no huge int parse)


class Position(NamedTuple):
    """A point in the backend's order: after the event at `offset` of `epoch` (offset 0:
    before the first event). Positions of one epoch compare by offset."""

    epoch: str
    offset: int

    @property
    def id(self) -> str:
        """As clients see it: a valid `since`."""
        return f"{self.epoch}-{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position | None:
        """The position an id names; None when it cannot be one of ours."""
        epoch, _, offset = text.rpartition("-")
        if not epoch or not (offset.isascii() and offset.isdigit()):
            return None
        if len(offset) > _MAX_OFFSET_DIGITS:
            return None
        return cls(epoch, int(offset))

    @classmethod
    def of(cls, event: Event) -> Position:
        """Where a published event stands."""
        return cls(event.id.rpartition("-")[0], event.seq)

    def covers(self, other: Position) -> bool:
        """Whether everything up to `other` is at or before this position. A position of
        another epoch is covered: its history is gone, nothing more of it will come."""
        return self.epoch != other.epoch or self.offset >= other.offset


class BackendUnavailable(ConnectionError):
    """The backend cannot publish or read now (a network backend's outage)."""


class UnpublishableEvent(ValueError):
    """The backend cannot carry the event at `index` of a batch; none was published."""

    def __init__(self, index: int, reason: Exception) -> None:
        super().__init__(f"event {index} of the batch cannot be published: {reason}")
        self.index = index


class Backend(Protocol):
    """Publishes events in one order and keeps a history of them, bounded in events and
    in bytes."""

    async def start(self, deliver: Deliver) -> Position:
        """Begin delivering, in order, to `deliver` every event published after the
        position returned (where the backend stands as it starts)."""

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        """Give each event the next position (its id and `seq`, the offset), keep it in
        the history, have it delivered; return them as published, in the order given. An
        event whose `key` was published before is returned at the position it was given
        then, and neither kept nor delivered again."""

    async def position(self) -> Position:
        """The newest position: after the last event published."""

    async def read_after(self, event_id: str, limit: int) -> list[Event] | None:
        """The events published after `event_id`, oldest first; None when the history
        no longer covers that point, the id is not one of ours (another epoch, garbage),
        or more than `limit` events would have to be read."""


@runtime_checkable
class PublishesNow(Protocol):
    """A backend that publishes without I/O (in-process): it can do so synchronously,
    and delivers what it publishes before returning."""

    def publish_now(self, events: Sequence[Event]) -> list[Event]: ...


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def backend_from_url(
    url: str, *, history_size: int, history_bytes: int, codec: EventCodec[Event]
) -> Backend:
    """The backend `realtime.broker` names: "memory", or a Redis URL (events of every
    process in one Redis stream, see redis_streams.py; `history_bytes` bounds only the
    memory backend: Redis keeps `history_size` entries). BackendUnavailable if Redis
    cannot be reached."""
    if url == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(history_size=history_size, history_bytes=history_bytes)
    if url.startswith(REDIS_SCHEMES):
        from .redis_streams import RedisBackend, check_reachable

        check_reachable(url)  # now, with one clear line, not in the server's start-up
        return RedisBackend(url, codec, history_size=history_size)
    raise ValueError(f"realtime.broker: unsupported backend {url!r}")
