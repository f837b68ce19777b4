"""Events of writes served together are delivered together (writes_under_way.py), over a
real server: a commit's events wait for the other requests that may write to answer,
at most `realtime.outbox_group_wait` seconds, and are then written with theirs; a write
alone does not wait; every request is counted out however it ends."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from quart import Quart

from runtime.demo import Message
from runtime.users import User
from tests.cluster import logged_in
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer

RECORDS = "/api/collections/messages/records"


class SlowWrite:
    """`POST /slow-write`: creates a message, then answers only once released."""

    def __init__(self) -> None:
        self.committed = threading.Event()
        self._release: asyncio.Event | None = None  # made on the server's loop

    def release(self) -> None:  # on the server's loop (LiveServer.call)
        assert self._release is not None
        self._release.set()

    async def serve(self) -> dict[str, str]:
        self._release = asyncio.Event()
        Message.create(text="slow", author=User.get(User.username == "alice"))
        self.committed.set()
        await self._release.wait()
        return {"ok": "yes"}


@pytest.fixture
def slow() -> SlowWrite:
    return SlowWrite()


@pytest.fixture
def app(app: Quart, slow: SlowWrite) -> Iterator[Quart]:
    app.post("/slow-write")(slow.serve)

    @app.post("/failing-write")
    async def failing_write() -> None:
        raise RuntimeError("the handler fails")

    yield app


async def _slow_write_under_way(server: LiveServer, slow: SlowWrite) -> asyncio.Task[int]:
    async def post() -> int:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT * 3) as http:
            return (await http.post("/slow-write")).status_code

    task = asyncio.create_task(post())
    assert await asyncio.to_thread(slow.committed.wait, TIMEOUT)
    return task


@pytest.mark.parametrize("realtime_settings", [{"outbox_group_wait": 60.0, "outbox_poll": 3600}])
async def test_the_events_of_writes_served_together_go_out_together(
    server: LiveServer, users: dict[str, User], slow: SlowWrite
) -> None:
    async with await Client.connect(server, user="bob", query="?batch=1") as ws:
        await ws.ok_subscribe("messages")
        slow_request = await _slow_write_under_way(server, slow)
        # It committed with no other write under way: its event went out alone, at once.
        assert [e["record"]["text"] for e in await ws.events(1)] == ["slow"]
        published = server.call(lambda: server.broker.stats.published)
        async with logged_in(server, "alice") as http:
            for text in ("a", "b"):
                assert (await http.post(RECORDS, json={"text": text})).status_code == 201
        # Both committed and answered while the slow write is being served: held.
        assert server.call(lambda: server.broker.stats.published) == published
        server.call(slow.release)
        assert await slow_request == 200
        # Then one message, both events in commit order.
        message = json.loads(await asyncio.wait_for(ws.ws.recv(), TIMEOUT))
        assert isinstance(message, list), message
        assert [(e["type"], e["record"]["text"]) for e in message] == [
            ("event", "a"),
            ("event", "b"),
        ]
        await ws.expect_silence()
    assert server.call(lambda: server.broker.writes.count) == 0


@pytest.mark.parametrize("realtime_settings", [{"outbox_group_wait": 0.2, "outbox_poll": 3600}])
async def test_a_write_that_does_not_answer_holds_the_others_events_no_longer_than_the_wait(
    server: LiveServer, users: dict[str, User], slow: SlowWrite
) -> None:
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages")
        slow_request = await _slow_write_under_way(server, slow)
        async with logged_in(server, "alice") as http:
            assert (await http.post(RECORDS, json={"text": "quick"})).status_code == 201
            # The slow write has not answered, and never will by itself.
            assert [e["record"]["text"] for e in await ws.events(2)] == ["slow", "quick"]
            assert not slow_request.done()
            # Later writes are held no longer either, each its own fan-out.
            assert (await http.post(RECORDS, json={"text": "later"})).status_code == 201
            assert [e["record"]["text"] for e in await ws.events(1)] == ["later"]
        server.call(slow.release)
        assert await slow_request == 200
        await ws.expect_silence()


@pytest.mark.parametrize("realtime_settings", [{"outbox_group_wait": 60.0, "outbox_poll": 3600}])
async def test_with_no_other_write_under_way_an_event_does_not_wait(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages")
        async with logged_in(server, "alice") as http:
            for i in range(3):  # each well before the minute the wait could take
                assert (await http.post(RECORDS, json={"text": f"m{i}"})).status_code == 201
                assert [e["record"]["text"] for e in await ws.events(1)] == [f"m{i}"]
        Message.create(text="outside a request", author=users["alice"])
        assert [e["record"]["text"] for e in await ws.events(1)] == ["outside a request"]


@pytest.mark.parametrize("realtime_settings", [{"outbox_group_wait": 60.0, "outbox_poll": 3600}])
async def test_every_request_that_may_write_is_counted_out_however_it_ends(
    server: LiveServer, users: dict[str, User], slow: SlowWrite
) -> None:
    writes = server.broker.writes
    async with logged_in(server, "alice") as http:
        assert (await http.post(RECORDS, json={})).status_code == 400  # refused
        assert (await http.post("/failing-write")).status_code == 500  # raised
        assert (await http.get(RECORDS)).status_code == 200  # not a write
        record = (await http.post(RECORDS, json={"text": "kept"})).json()
        assert (await http.delete(f"{RECORDS}/{record['id']}")).status_code == 204
    assert server.call(lambda: writes.count) == 0
    # A client that goes before its answer: the handler is cancelled, nothing answers.
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /slow-write HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    assert await asyncio.to_thread(slow.committed.wait, TIMEOUT)
    writer.close()
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages")
        async with logged_in(server, "alice") as http:
            assert (await http.post(RECORDS, json={"text": "after"})).status_code == 201
        # Not held for the minute: nothing is left under way.
        assert [e["record"]["text"] for e in await ws.events(1)] == ["after"]
    assert server.call(lambda: writes.count) == 0
