"""Live views that stay true (issue 16) where a subscriber was not listening all along,
or writers race: a resumed subscription replays the same creates, deletes and updates a
live one heard; a snapshot plus the events after it is the API's filtered list while
records move in and out of it; concurrent writers of the same records, and a row
committed into an update's WHERE while it runs, leave a view true; a write on one
process moves a record out of a view on another (the values before travel through Redis
and its history)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.db import database
from runtime.demo import Message
from runtime.users import User
from tests.cluster import logged_in, server_cluster
from tests.databases import both_databases
from tests.realtime_client import Client
from tests.redis_server import RedisServer
from tests.support import TIMEOUT, LiveServer

RECORDS = "/api/collections/messages/records"
VIEW = "text ~ 'tea'"


def _edit(message: Message, text: str) -> None:
    message.text = text
    message.save()


def _heard(event: dict[str, Any]) -> tuple[str, str, str | None, dict[str, Any]]:
    return event["id"], event["action"], event.get("reason"), event["record"]


@both_databases
async def test_a_resumed_view_replays_what_a_live_one_heard(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    async with await Client.connect(server, user="bob") as live:
        await live.ok_subscribe("messages", filter=VIEW)
        async with await Client.connect(server, user="bob") as away:
            await away.ok_subscribe("messages", filter=VIEW)
            first = Message.create(text="tea 1", author=alice)
            since = (await away.recv_type("event"))["id"]
        await live.recv_type("event")
        second = Message.create(text="coffee 2", author=alice)
        third = Message.create(text="coffee 3", author=alice)
        _edit(first, "cocoa 1")  # out
        _edit(second, "tea 2")  # in
        _edit(second, "tea 2!")  # in, changed
        _edit(third, "decaf 3")  # out, stays out
        _edit(first, "tea 1 again")  # back in
        _edit(second, "gone 2")  # out again
        heard = [_heard(e) for e in await live.events(5)]
        assert [(action, reason) for _, action, reason, _ in heard] == [
            ("delete", "filter"),
            ("create", "filter"),
            ("update", None),
            ("create", "filter"),
            ("delete", "filter"),
        ]
        assert heard[0][3]["text"] == "tea 1" and heard[4][3]["text"] == "tea 2!"
        async with await Client.connect(server, user="bob") as back:
            reply = await back.ok_subscribe("messages", filter=VIEW, since=since)
            assert reply["recovered"] is True
            assert [_heard(e) for e in await back.events(5)] == heard
            await back.expect_silence()
        await live.expect_silence()


@both_databases
async def test_a_snapshot_and_the_events_after_it_are_the_filtered_list(
    server: LiveServer, users: dict[str, User]
) -> None:
    """A thread moves records in and out of the view while clients subscribe with a
    snapshot, one after another: each client's snapshot, with the creates, deletes and
    updates after it applied, is `GET …/records?filter=` at the end."""
    alice, rounds = users["alice"], 150
    texts = [f"tea {i}" if i % 2 else f"coffee {i}" for i in range(12)]
    records = [Message.create(text=text, author=alice) for text in texts]
    go, subscribed = threading.Event(), threading.Event()

    def writer() -> None:
        """Moves records in and out until every client has subscribed (and a while),
        but not past what a client's send queue holds before it is read (1,000)."""
        go.wait(TIMEOUT)
        i = 0
        while i < rounds or (not subscribed.is_set() and i < 600):
            text = f"tea {i}" if (i * 7) % 3 else f"coffee {i}"
            Message.update(text=text).where(Message.id == records[i % 12].id).execute()
            i += 1
        database.close()

    thread = threading.Thread(target=writer)
    thread.start()
    clients = [await Client.connect(server, user="bob") for _ in range(5)]
    try:
        go.set()
        views: list[dict[int, dict[str, Any]]] = []
        for client in clients:  # subscribing one after another while the writer runs
            reply = await client.ok_subscribe("messages", filter=VIEW, snapshot={"limit": 500})
            views.append({r["id"]: r for r in reply["snapshot"]["records"]})
        subscribed.set()
        await asyncio.to_thread(thread.join, TIMEOUT)
        assert not thread.is_alive()
        last = Message.create(text="tea, last", author=alice).id
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            listed = await http.get(RECORDS, params={"filter": VIEW, "per_page": 100})
        expected = {item["id"]: item for item in listed.json()["items"]}
        assert last in expected and len(expected) > 2  # the test means something
        for client, view in zip(clients, views, strict=True):
            while True:
                event = await client.recv_type("event")
                record = event["record"]
                if event["action"] == "delete":
                    assert view.pop(record["id"]) == record  # as it was last seen
                else:
                    # a create is of a record not in view, an update of one in it
                    assert (record["id"] in view) == (event["action"] == "update"), event
                    view[record["id"]] = record
                if record["id"] == last:
                    break
            assert view == expected
            await client.expect_silence()
    finally:
        for client in clients:
            await client.ws.close()


@pytest.mark.cluster
async def test_a_write_on_one_process_moves_a_record_out_of_a_view_on_the_other(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with server_cluster(tmp_path, redis_server) as (first, second):
        async with (
            await Client.connect(second) as ws,
            logged_in(first, "alice") as alice,
        ):
            await ws.ok_subscribe("messages", filter=VIEW)
            posted = await alice.post(RECORDS, json={"text": "tea"})
            assert posted.status_code == 201, posted.text
            created = await ws.recv_type("event")
            assert (created["action"], created["record"]["text"]) == ("create", "tea")
            url = f"{RECORDS}/{posted.json()['id']}"
            for text in ("coffee", "decaf", "tea again"):
                assert (await alice.patch(url, json={"text": text})).status_code == 200
            left, back = await ws.events(2)
            assert (left["action"], left["reason"], left["record"]) == (
                "delete",
                "filter",
                created["record"],
            )
            assert (back["action"], back["reason"], back["record"]["text"]) == (
                "create",
                "filter",
                "tea again",
            )
        # Resumed on the first process, from Redis's history: the same frames.
        async with await Client.connect(first) as resumed:
            reply = await resumed.ok_subscribe("messages", filter=VIEW, since=created["id"])
            assert reply["recovered"] is True
            assert await resumed.events(2) == [left, back]


@both_databases
async def test_concurrent_writers_of_the_same_records_keep_a_view_true(
    server: LiveServer, users: dict[str, User]
) -> None:
    """Threads update the same few records at once, each from the value it finds (one
    statement: text = text || '.', or a new text): each update is judged on the values
    just before it (locked while read), so a subscriber never hears a delete of a record
    it does not have nor a create of one it has, and ends with the API's list."""
    alice, threads, rounds = users["alice"], 4, 30
    records = [Message.create(text=f"tea {i}", author=alice) for i in range(3)]
    async with await Client.connect(server, user="bob") as ws:
        reply = await ws.ok_subscribe("messages", filter=VIEW, snapshot=True)
        view = {r["id"]: r for r in reply["snapshot"]["records"]}
        assert len(view) == 3

        def writer(n: int) -> None:
            for i in range(rounds):
                record = records[(n + i) % 3]
                if (n + i) % 4 == 0:
                    text = Message.text.concat(".")  # from the value it finds
                else:
                    text = f"tea {n}.{i}" if (n * i) % 3 else f"coffee {n}.{i}"
                Message.update(text=text).where(Message.id == record.id).execute()
            database.close()

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            await asyncio.to_thread(thread.join, TIMEOUT)
        await _follow_to_the_list(server, ws, view, alice)
        await ws.expect_silence()


@both_databases
async def test_a_row_that_starts_matching_an_update_while_it_runs_keeps_the_view_true(
    server: LiveServer, users: dict[str, User]
) -> None:
    """A bulk update reads the rows its WHERE picks (locking them) before it writes;
    another transaction commits a row into that WHERE between the two. On PostgreSQL
    (READ COMMITTED) the UPDATE would pick that row too, with no values from before for
    it: a subscriber would never hear it leave their view. The update writes the rows it
    read, as if it had run when it read them."""
    alice = users["alice"]
    first = Message.create(text="tea 1", author=alice)
    second = Message.create(text="coffee 2", author=alice)
    test_thread, real = threading.current_thread(), database.obj
    execute_sql = real.execute_sql

    def concurrent_commit() -> None:
        Message.update(text="tea 2").where(Message.id == second.id).execute()
        database.close()

    def traced(sql: str, *args: Any, **kwargs: Any) -> Any:
        cursor = execute_sql(sql, *args, **kwargs)
        if threading.current_thread() is test_thread and sql.endswith("FOR UPDATE"):
            other = threading.Thread(target=concurrent_commit)  # its own connection
            other.start()
            other.join(TIMEOUT)
            assert not other.is_alive()
        return cursor

    async with await Client.connect(server, user="bob") as ws:
        reply = await ws.ok_subscribe("messages", filter=VIEW, snapshot=True)
        view = {r["id"]: r for r in reply["snapshot"]["records"]}
        real.execute_sql = traced
        try:
            Message.update(text="done").where(Message.text.contains("tea")).execute()
        finally:
            del real.execute_sql
        if not real.for_update:  # SQLite: the write lock, not row locks; no such moment
            concurrent_commit()
        await _follow_to_the_list(server, ws, view, alice)
        assert first.id not in view and second.id in view
        await ws.expect_silence()


async def _follow_to_the_list(
    server: LiveServer, ws: Client, view: dict[Any, dict[str, Any]], author: User
) -> None:
    """Apply the events to `view` (a create of a record not in it, an update or a delete
    of one in it, the delete as it was last seen) up to a record created now, then
    check that it is what `GET ?filter=` lists."""
    last = Message.create(text="tea, last", author=author).id
    while True:
        event = await ws.recv_type("event")
        record = event["record"]
        if event["action"] == "delete":
            assert view.pop(record["id"]) == record, event  # as it was last seen
        else:
            assert (record["id"] in view) == (event["action"] == "update"), event
            view[record["id"]] = record
        if record["id"] == last:
            break
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        listed = await http.get(RECORDS, params={"filter": VIEW, "per_page": 100})
    assert view == {item["id"]: item for item in listed.json()["items"]}
