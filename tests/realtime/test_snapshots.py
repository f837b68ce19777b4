"""Snapshots, read against a real database: the position a snapshot stands at is asked
for while no commit can complete, so that the live events after it are exactly those
the snapshot does not show."""

from __future__ import annotations

import asyncio
import threading

from quart import Quart

from runtime.db import database
from runtime.demo import Message
from runtime.realtime.broker.snapshots import Snapshots
from runtime.realtime.patterns import parse_pattern
from runtime.realtime.protocol import Subscribe
from runtime.realtime.publishing.backends import Position
from runtime.realtime.stats import Faults
from runtime.users import User
from tests.support import TIMEOUT


def _could_commit_now() -> bool:
    """Whether another thread could take the commit lock at this moment."""
    lock = database.obj.commits_held()
    taken: list[bool] = []

    def try_it() -> None:
        taken.append(lock.acquire(blocking=False))
        if taken[0]:
            lock.release()

    thread = threading.Thread(target=try_it)
    thread.start()
    thread.join(TIMEOUT)
    return taken[0]


async def test_the_position_is_asked_for_while_commits_are_held(
    app: Quart, users: dict[str, User]
) -> None:
    Message.create(text="before", author=users["alice"])
    asked: list[bool] = []

    def position() -> asyncio.Future[Position]:
        asked.append(_could_commit_now())
        where: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        where.set_result(Position("run", 1))
        return where

    snapshots = Snapshots(limit=10, faults=Faults(), position=position)
    command = Subscribe("s1", parse_pattern("messages"), snapshot=True)
    wanted = snapshots.wanted(Message, None, command)
    assert _could_commit_now()
    (body,), _left = await snapshots.take(None, [wanted], 1_000_000)
    assert asked == [False]  # asked while no commit could complete
    assert [r["text"] for r in body["records"]] == ["before"]
    assert (body["position"], body["seq"]) == ("run-1", 1)
