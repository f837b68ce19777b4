"""Presence and connection counts shared through Redis (publishing/backends/redis_shared.py),
its scripts driven directly: several backends on one prefix stand for several
processes, against a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from runtime.realtime.events import Event
from runtime.realtime.publishing.backends.redis_shared import PresenceChange
from runtime.realtime.publishing.backends.redis_streams import RedisBackend
from runtime.realtime.publishing.codec import EventCodec
from tests.redis_server import RedisServer

ALICE = {"id": 1, "username": "alice"}

Start = Callable[[], Awaitable[RedisBackend]]


@pytest.fixture
async def processes(redis_server: RedisServer) -> AsyncIterator[Start]:
    """Starts backends on one prefix, as processes of one cluster."""
    prefix = redis_server.prefix()
    started: list[RedisBackend] = []

    async def start() -> RedisBackend:
        backend = RedisBackend(
            redis_server.url, EventCodec(Event), history_size=100, prefix=prefix, min_length=100
        )
        backend.shared.on_reset = lambda joins: setattr(backend, "here_at_start", joins)
        await backend.start(lambda events: None)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.stop()


def arrives(topic: str = "lobby", user: dict[str, object] = ALICE) -> PresenceChange:
    join, leave = Event("join", topic, user=user), Event("leave", topic, user=user)
    return PresenceChange(topic, user["id"], join, leave)


def departs(topic: str = "lobby", user: dict[str, object] = ALICE) -> PresenceChange:
    return PresenceChange(topic, user["id"])


async def presence_events(backend: RedisBackend) -> list[tuple[str, str]]:
    position = await backend.position()
    events = await backend.read_after(f"{position.epoch}-0", 10_000)
    assert events is not None
    return [(e.action, e.user["username"]) for e in events if e.is_presence]


async def forget_alive_key(backend: RedisBackend) -> None:
    """As if the process had died: its key expired."""
    client = aioredis.Redis.from_url(backend._url)
    await client.delete(f"{backend._prefix}alive:{backend.shared.process}")
    await client.aclose()


async def test_one_join_and_one_leave_for_tabs_on_two_processes(processes: Start) -> None:
    first, second = await processes(), await processes()
    assert await first.shared.change_presence([arrives()])
    assert await second.shared.change_presence([arrives()])
    assert await first.shared.change_presence([arrives()])  # again: nothing more
    assert await first.shared.change_presence([departs()])
    assert await presence_events(first) == [("join", "alice")]
    assert await second.shared.change_presence([departs()])
    assert await presence_events(first) == [("join", "alice"), ("leave", "alice")]


async def test_joins_and_leaves_decided_at_once_never_cross(processes: Start) -> None:
    first, second = await processes(), await processes()
    here = {first: False, second: False}
    rng = random.Random(14)
    for _ in range(60):
        wanted = {backend: rng.random() < 0.5 for backend in here}
        await asyncio.gather(
            *(b.shared.change_presence([arrives() if w else departs()]) for b, w in wanted.items())
        )
        here = wanted
    actions = [action for action, _ in await presence_events(first)]
    assert all(a != b for a, b in itertools.pairwise(actions)), actions
    assert actions[:1] in ([], ["join"])
    assert (actions[-1:] == ["join"]) == any(here.values())


async def test_a_dead_process_is_swept_once_and_its_members_leave(processes: Start) -> None:
    doomed, first, second = await processes(), await processes(), await processes()
    assert await doomed.shared.change_presence([arrives()])
    await forget_alive_key(doomed)
    await asyncio.gather(first.shared.renew(), second.shared.renew(), first.shared.renew())
    assert await presence_events(first) == [("join", "alice"), ("leave", "alice")]
    # One that was only stalled learns it was forgotten, and must say all again.
    assert not await doomed.shared.change_presence([arrives()])
    assert not await doomed.shared.renew()
    assert await doomed.shared.change_presence([arrives()])
    assert (await presence_events(first))[-1] == ("join", "alice")


async def test_a_process_that_starts_later_reads_who_is_here(processes: Start) -> None:
    first = await processes()
    await first.shared.change_presence([arrives(), arrives("other")])
    await first.shared.change_presence([departs("other")])
    late = await processes()
    joins = late.here_at_start  # type: ignore[attr-defined]
    assert [(e.collection, e.user) for e in joins] == [("lobby", ALICE)]


async def test_connections_per_user_count_on_every_live_process(processes: Start) -> None:
    first, second = await processes(), await processes()
    assert await first.shared.admit("1", 1, 2) is True
    assert await second.shared.admit("1", 1, 2) is True
    assert await first.shared.admit("1", 2, 2) is False
    assert await second.shared.admit("1", 2, 2) is False
    assert await second.shared.admit("2", 1, 2) is True  # another user
    await first.shared.set_connections({"1": 0})  # its connection closed
    assert await second.shared.admit("1", 2, 2) is True
    await second.shared.set_connections({"1": 1})
    assert await first.shared.admit("1", 1, 2) is True
    await forget_alive_key(first)  # dead: its connections count no more, swept or not
    assert await second.shared.admit("1", 2, 2) is True
