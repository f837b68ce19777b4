"""Presence outlives no connection, whatever comes between a subscribe and its going
live (issue 15, item 9): an SSE stream that goes while a POST's subscribe waits on its
snapshot leaves nobody listed. The interleaving is forced, over a real server with real
clients: the snapshot is held on the server until the stream is gone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from quart import Quart

from runtime import Realtime
from runtime.config import Config
from runtime.db import database
from runtime.demo import create_demo_app
from runtime.realtime.connections.connection import ConnectionGone
from runtime.realtime.protocol import parse_subscribe
from runtime.users import User
from tests.realtime_client import Client, login_cookie
from tests.sse_client import ids_of, stream
from tests.support import TIMEOUT, LiveServer, assert_error


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    app = create_demo_app(config)
    Realtime.of(app).track_presence("messages")
    yield app
    database.close()


class HeldSnapshots:
    """Holds every snapshot the server takes, once read, until released: `taken` is set
    (on the server's loop) when one is held."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.taken = asyncio.Event()
        self.released = asyncio.Event()
        # The broker's one Snapshots job: its take(), wrapped on this instance.
        snapshots = server.broker.subscribing._snapshots
        take = snapshots.take

        async def held(*args: Any) -> Any:
            result = await take(*args)
            self.taken.set()
            await self.released.wait()
            return result

        snapshots.take = held

    async def wait_taken(self) -> None:
        await self.server.run(self.taken.wait())

    def release(self) -> None:
        self.server.call(self.released.set)


async def test_a_stream_gone_while_a_post_subscribe_waits_leaves_nobody_present(
    server: LiveServer, users: dict[str, User]
) -> None:
    cookie = await login_cookie(server, "alice")
    held = HeldSnapshots(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        async with stream(server, cookie=cookie) as sse:
            ids = ids_of(await sse.frame())
            posted = asyncio.create_task(
                http.post(
                    "/realtime/subscribe",
                    json={**ids, "subscribe": [{"pattern": "messages", "snapshot": True}]},
                    headers={"Cookie": cookie},
                )
            )
            await held.wait_taken()  # the subscribe is under way, waiting on its snapshot
        # The stream is gone, and the server has forgotten it ...
        assert await server.run(server.broker.connections.wait_idle(TIMEOUT))
        held.release()  # ... before the subscribe settles.
        # As if the POST had come a moment later: the stream it names is gone.
        assert_error(await asyncio.wait_for(posted, TIMEOUT), 404, "not_found")
    assert server.broker.registry.is_empty()
    async with await Client.connect(server, user="bob") as bob:
        held.release()  # bob's own snapshot is not held
        reply = await bob.ok_subscribe("messages", snapshot=True)
        assert reply["presence"] == []  # alice was listed here for ever
        joined = await bob.recv_type("event")  # his own join, after the list
        assert (joined["action"], joined["user"]["username"]) == ("join", "bob")
        await bob.expect_silence()


async def test_a_subscribe_for_a_connection_already_gone_registers_nothing(
    server: LiveServer, users: dict[str, User]
) -> None:
    """The other window: a POST that found its stream, then awaited (the app's identify,
    another POST's subscribe holding the connection's lock) while the stream went."""
    cookie = await login_cookie(server, "alice")
    broker = server.broker
    async with stream(server, cookie=cookie) as sse:
        conn = server.call(broker.connections.get, (await sse.frame())["connection_id"])
    assert await server.run(broker.connections.wait_idle(TIMEOUT))
    command = parse_subscribe({"pattern": "messages"}, "r1")
    with pytest.raises(ConnectionGone):
        await server.run(broker.subscribing.subscribe(conn, [command], replies_on_stream=False))
    assert broker.registry.is_empty() and not conn.present
    async with await Client.connect(server, user="bob") as bob:
        assert (await bob.ok_subscribe("messages"))["presence"] == []
