"""The relay reads the outbox table only when there may be rows it has not heard of,
over a real server on SQLite and PostgreSQL: this process's commits (a request's, on the
loop; a thread's) are handed on from memory, its own PostgreSQL notifications wake
nothing, and a row after a gap (an id a rollback used up) is read. (Another process's
commits, read after their notification or at the poll: test_outbox.py.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from quart import Quart

from runtime.db import database
from runtime.demo import Message
from runtime.realtime.capture.outbox import OutboxTable
from runtime.realtime.events import Event, custom_event
from runtime.realtime.publishing.codec import EventCodec
from runtime.users import User
from tests.cluster import logged_in
from tests.databases import both_databases
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer

RECORDS = "/api/collections/messages/records"


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    return {"outbox_poll": 3600}  # no poll during a test: only what a write causes


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many rows each read of the outbox table returned (see `_settled`)."""
    found: list[int] = []
    real = OutboxTable.read_after

    def counting(self: OutboxTable, after: int, upto: int | None, limit: int) -> Any:
        rows = real(self, after, upto, limit)
        found.append(len(rows))
        return rows

    monkeypatch.setattr(OutboxTable, "read_after", counting)
    yield found


async def _settled(ws: Client, author: User, reads: list[int]) -> None:
    """Past the reads of starting up: one write heard, then `reads` emptied. (On
    PostgreSQL the relay also reads once when its LISTEN takes effect, which may come
    later still: the tests allow for that one read.)"""
    Message.create(text="warm-up", author=author)
    assert [e["record"]["text"] for e in await ws.events(1)] == ["warm-up"]
    reads.clear()


@both_databases
async def test_this_processs_commits_are_handed_on_without_reading_them_back(
    server: LiveServer, users: dict[str, User], reads: list[int]
) -> None:
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages")
        await _settled(ws, users["alice"], reads)
        async with logged_in(server, "alice") as http:
            for i in range(5):  # committed on the server's loop
                assert (await http.post(RECORDS, json={"text": f"api {i}"})).status_code == 201
        for i in range(5):  # committed on this thread
            Message.create(text=f"thread {i}", author=users["alice"])
        heard = [event["record"]["text"] for event in await ws.events(10)]
        assert heard == [f"api {i}" for i in range(5)] + [f"thread {i}" for i in range(5)]
        await ws.expect_silence()  # each once
    # Before, each of these ten was read back (once per commit, once per notification).
    assert reads in ([], [0])


@both_databases
async def test_a_row_after_an_id_a_rollback_used_up_is_read(
    server: LiveServer, users: dict[str, User], reads: list[int]
) -> None:
    codec = EventCodec(Event)
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages")
        await _settled(ws, users["alice"], reads)
        with database.atomic() as transaction:  # takes the next id, and gives it up
            database.obj.outbox.table.insert([codec.encode(custom_event("lost", None))])
            transaction.rollback()
        Message.create(text="after the gap", author=users["alice"])
        (event,) = await ws.events(1)
        assert event["record"]["text"] == "after the gap"
    if database.obj.outbox.table.postgres:
        assert 1 in reads  # the row after the gap, read from the table
    else:  # SQLite hands the rolled-back id out again: no gap, nothing to read
        assert reads == []


def _parked_after(app: Quart, row: int) -> asyncio.Event:
    """Set when the relay, having published up to outbox row `row`, waits for its next
    wake-up again (its wake-up's wait, watched on the instance)."""
    (relay,) = app.extensions["realtime"].broker.relays
    wakeup = relay._wakeup
    assert wakeup is not None
    parked, wait = asyncio.Event(), wakeup.wait

    async def watched() -> bool:
        if relay.relayed >= row:
            parked.set()
        return await wait()

    wakeup.wait = watched  # type: ignore[method-assign]
    return parked


async def test_stopping_right_after_a_write_stops_the_relay_quietly(
    app: Quart, users: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    """Served in this test's loop: a write on the loop wakes the relay, and realtime stops
    before the relay's turn. (On Python 3.11 its wait could swallow the cancellation, and
    the relay then ran on into a stopped publisher: a traceback, and a restart.)"""
    caplog.set_level(logging.WARNING, "runtime.realtime")
    for _ in range(3):
        await app.startup()
        Message.create(text="first", author=users["alice"])
        parked = _parked_after(app, database.obj.outbox.last_committed)
        await asyncio.wait_for(parked.wait(), TIMEOUT)  # the relay waits, "first" out
        Message.create(text="just before stopping", author=users["alice"])
        await app.shutdown()
    assert [r.getMessage() for r in caplog.records] == []
