"""The backend contract (runtime/realtime/publishing/backends/__init__.py), one suite for
every backend: positions, order, idempotent publishing, delivery apart from publishing,
history. A new backend joins by adding its factory to BACKENDS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest

from runtime.realtime.events import Event
from runtime.realtime.publishing.backends import Backend, Position
from runtime.realtime.publishing.backends.memory import MemoryBackend
from tests.support import TIMEOUT

HISTORY = 8

BackendFactory = Callable[[int], Awaitable[Backend]]


async def _memory(history_size: int) -> Backend:
    return MemoryBackend(history_size=history_size)


BACKENDS: dict[str, BackendFactory] = {"memory": _memory}


@dataclass
class Running:
    """A started backend and what it delivered, in order."""

    backend: Backend
    delivered: list[Event] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, events: Sequence[Event]) -> None:
        self.delivered.extend(events)
        self.arrived.set()

    async def delivered_count(self, count: int) -> list[Event]:
        """The deliveries once there are `count` of them (a network backend delivers
        after publish returns)."""

        async def wait() -> None:
            while len(self.delivered) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(wait(), TIMEOUT)
        return self.delivered


@pytest.fixture(params=sorted(BACKENDS))
async def running(request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    backend = await BACKENDS[request.param](HISTORY)
    running = Running(backend)
    await backend.start(running.deliver)
    try:
        yield running
    finally:
        await backend.stop()


def _events(*names: str, key_prefix: str = "k") -> list[Event]:
    return [
        Event("custom", None, name=name, data={"n": i}, key=f"{key_prefix}-{name}")
        for i, name in enumerate(names)
    ]


async def test_positions_have_an_epoch_and_offsets_one_apart(running: Running) -> None:
    backend = running.backend
    start = await backend.position()
    assert start.epoch and Position.parse(start.id) == start
    published = await backend.publish(_events("a", "b", "c"))
    offsets = [event.seq for event in published]
    assert offsets == [start.offset + 1, start.offset + 2, start.offset + 3]
    for event in published:
        assert Position.parse(event.id) == Position.of(event) == (start.epoch, event.seq)
    assert await backend.position() == Position.of(published[-1])


async def test_published_events_are_delivered_once_in_order_as_published(
    running: Running,
) -> None:
    published = await running.backend.publish(_events("a", "b"))
    published += await running.backend.publish(_events("c"))
    delivered = await running.delivered_count(3)
    assert delivered == published
    assert [(e.name, e.data) for e in delivered] == [
        ("a", {"n": 0}),
        ("b", {"n": 1}),
        ("c", {"n": 0}),
    ]


async def test_publishing_is_idempotent_by_key(running: Running) -> None:
    backend = running.backend
    first = await backend.publish(_events("a", "b"))
    # A retry of the same batch (its acknowledgement lost), and one overlapping it.
    again = await backend.publish(_events("a", "b"))
    mixed = await backend.publish(_events("b", "c"))
    assert again == first
    assert mixed[0] == first[1] and mixed[1].seq == first[1].seq + 1
    delivered = await running.delivered_count(3)
    assert [e.name for e in delivered] == ["a", "b", "c"]
    history = await backend.read_after(Position(first[0].id.rpartition("-")[0], 0).id, 100)
    assert history is not None and [e.name for e in history] == ["a", "b", "c"]


async def test_the_history_after_a_position(running: Running) -> None:
    backend = running.backend
    start = await backend.position()
    published = await backend.publish(_events(*"abcde"))
    assert await backend.read_after(start.id, 100) == published
    assert await backend.read_after(published[1].id, 100) == published[2:]
    assert await backend.read_after(published[-1].id, 100) == []
    assert await backend.read_after(published[1].id, 2) is None  # more than the limit


async def test_the_history_is_bounded_and_says_when_it_no_longer_covers(
    running: Running,
) -> None:
    backend = running.backend
    start = await backend.position()
    published = await backend.publish(_events(*(f"e{i}" for i in range(HISTORY + 3))))
    assert await backend.read_after(start.id, 100) is None  # the first ones are gone
    kept = await backend.read_after(published[2].id, 100)
    assert kept == published[3:] and len(kept) == HISTORY


@pytest.mark.parametrize(
    "since",
    ["", "-", "garbage", "nope-1", "x-y-z", "1-1", "a-" + "9" * 40, "a--1", "a-1.5", "a-\u0661"],
)
async def test_ids_not_ours_are_refused(running: Running, since: str) -> None:
    await running.backend.publish(_events("a"))
    assert await running.backend.read_after(since, 100) is None


async def test_an_id_past_the_newest_is_refused(running: Running) -> None:
    newest = await running.backend.position()
    ahead = Position(newest.epoch, newest.offset + 5)
    assert await running.backend.read_after(ahead.id, 100) is None


async def test_after_a_restart_old_ids_are_resumed_exactly_or_refused(running: Running) -> None:
    backend = running.backend
    start = await backend.position()
    published = await backend.publish(_events("a", "b"))
    await backend.stop()
    again = Running(backend)
    await backend.start(again.deliver)
    resumed = await backend.read_after(start.id, 100)
    # A backend that kept its history (same epoch) gives the same events; one that lost
    # it (a new epoch) refuses the old ids rather than answering with other events.
    after = await backend.position()
    if after.epoch == start.epoch:
        assert resumed == published
    else:
        assert resumed is None and after.offset == 0
    newer = await backend.publish(_events("c", key_prefix="after"))
    assert Position.of(newer[0]).offset == after.offset + 1
