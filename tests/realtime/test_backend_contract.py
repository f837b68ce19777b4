"""The backend contract (runtime/realtime/publishing/backends/__init__.py), one suite for
every backend: positions, order, idempotent publishing, delivery apart from publishing,
history. A new backend joins by adding its factory to BACKENDS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest

from runtime.realtime.events import Event
from runtime.realtime.publishing.backends import Backend, Position, UnpublishableEvent
from runtime.realtime.publishing.backends.memory import MemoryBackend
from runtime.realtime.publishing.backends.redis_streams import RedisBackend
from runtime.realtime.publishing.codec import EventCodec
from tests.redis_server import RedisServer
from tests.support import TIMEOUT

HISTORY = 8

BackendFactory = Callable[[int, pytest.FixtureRequest], Awaitable[Backend]]


async def _memory(history_size: int, request: pytest.FixtureRequest) -> Backend:
    return MemoryBackend(history_size=history_size)


async def _redis(history_size: int, request: pytest.FixtureRequest) -> Backend:
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisBackend(
        server.url,
        EventCodec(Event),
        history_size=history_size,
        prefix=server.prefix(),
        min_length=history_size,
    )


BACKENDS: dict[str, BackendFactory] = {"memory": _memory, "redis": _redis}


@dataclass
class Running:
    """A started backend and what it delivered, in order."""

    backend: Backend
    started_at: Position = field(default_factory=lambda: Position("", 0))  # deliveries begin
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
def make_backend(request: pytest.FixtureRequest) -> Callable[[], Awaitable[Backend]]:
    return lambda: BACKENDS[request.param](HISTORY, request)


@contextlib.asynccontextmanager
async def started(make_backend: Callable[[], Awaitable[Backend]]) -> AsyncIterator[Running]:
    """A backend started for the test, stopped after it (in the test's own loop)."""
    running = Running(await make_backend())
    running.started_at = await running.backend.start(running.deliver)
    try:
        yield running
    finally:
        await running.backend.stop()


def _events(*names: str, key_prefix: str = "k") -> list[Event]:
    return [
        Event("custom", None, name=name, data={"of": name}, key=f"{key_prefix}-{name}")
        for name in names
    ]


async def test_deliveries_begin_right_after_where_it_says_it_started(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
        assert running.started_at == await running.backend.position()
        published = await running.backend.publish(_events("a"))
        assert published[0].seq == running.started_at.offset + 1
        assert (await running.delivered_count(1))[0] == published[0]


async def test_positions_have_an_epoch_and_offsets_one_apart(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
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
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
        published = await running.backend.publish(_events("a", "b"))
        published += await running.backend.publish(_events("c"))
        delivered = await running.delivered_count(3)
        assert delivered == published
        assert [(e.name, e.data) for e in delivered] == [(n, {"of": n}) for n in "abc"]


async def test_publishing_is_idempotent_by_key(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
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


async def test_the_history_after_a_position(make_backend: Callable[[], Awaitable[Backend]]) -> None:
    async with started(make_backend) as running:
        backend = running.backend
        start = await backend.position()
        published = await backend.publish(_events(*"abcde"))
        assert await backend.read_after(start.id, 100) == published
        assert await backend.read_after(published[1].id, 100) == published[2:]
        assert await backend.read_after(published[-1].id, 100) == []
        assert await backend.read_after(published[1].id, 2) is None  # more than the limit


async def test_the_history_is_bounded_and_says_when_it_no_longer_covers(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
        backend = running.backend
        start = await backend.position()
        published = await backend.publish(_events(*(f"e{i}" for i in range(HISTORY + 3))))
        assert await backend.read_after(start.id, 100) is None  # the first ones are gone
        kept = await backend.read_after(published[2].id, 100)
        assert kept == published[3:] and len(kept) == HISTORY


async def test_a_quiet_topics_resume_point_survives_a_busy_topic_within_the_history(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    """The history is global (docs/scaling.md): a quiet collection's last event stays
    resumable while fewer than history_size events of any topic came after it, then the
    resume is refused, never answered short."""
    async with started(make_backend) as running:
        backend = running.backend
        (quiet,) = await backend.publish([Event("create", "quiet", "1", {"id": 1}, key="quiet-1")])
        busy = [Event("create", "busy", str(i), {"id": i}, key=f"busy-{i}") for i in range(HISTORY)]
        published = await backend.publish(busy)
        assert await backend.read_after(quiet.id, 100) == published  # resumable
        (one_more,) = await backend.publish([Event("create", "busy", "x", key="busy-x")])
        assert await backend.read_after(quiet.id, 100) is None  # gone: refused, not short
        assert await backend.read_after(published[0].id, 100) == [*published[1:], one_more]


@pytest.mark.parametrize(
    "since",
    ["", "-", "garbage", "nope-1", "x-y-z", "1-1", "a-" + "9" * 40, "a--1", "a-1.5", "a-\u0661"],
)
async def test_ids_not_ours_are_refused(
    make_backend: Callable[[], Awaitable[Backend]], since: str
) -> None:
    async with started(make_backend) as running:
        await running.backend.publish(_events("a"))
        assert await running.backend.read_after(since, 100) is None


async def test_an_id_past_the_newest_is_refused(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
        newest = await running.backend.position()
        ahead = Position(newest.epoch, newest.offset + 5)
        assert await running.backend.read_after(ahead.id, 100) is None


async def test_after_a_restart_old_ids_are_resumed_exactly_or_refused(
    make_backend: Callable[[], Awaitable[Backend]],
) -> None:
    async with started(make_backend) as running:
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


async def test_redis_refuses_what_its_codec_cannot_carry_and_publishes_none_of_the_batch(
    redis_server: RedisServer,
) -> None:
    async def make() -> Backend:
        return RedisBackend(redis_server.url, EventCodec(Event), history_size=HISTORY)

    async with started(make) as running:
        backend = running.backend
        start = await backend.position()
        odd = Event("custom", None, name="odd", data={"a": object()}, key="odd")
        with pytest.raises(UnpublishableEvent) as refused:
            await backend.publish([*_events("a"), odd])
        assert refused.value.index == 1 and "data" in str(refused.value)
        assert await backend.position() == start
