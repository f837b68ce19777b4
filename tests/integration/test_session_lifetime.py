"""A session that reaches its lifetime (`auth.session_lifetime`, or the end an app's
`identify` gives) closes its connections with 4401 at the first heartbeat after, on both
transports, with no request to notice it, over a real server with real clients (issue
15, item 5). That it is the first heartbeat after, not a later one, is
tests/realtime/test_lifecycle.py's (given the clocks); here, that the end reaches the
sockets, and no earlier than it should."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from websockets.exceptions import ConnectionClosed

from runtime import Realtime
from runtime.config import Config, RealtimeConfig
from runtime.db import database, open_database
from runtime.users import Session, User
from tests.realtime_client import Client, login_cookie
from tests.sse_client import SSEStream, stream
from tests.support import TIMEOUT, LiveServer

HEARTBEAT = 0.25
# Seconds a login lasts here: shorter than the configuration allows (60 at least), long
# enough for the test's clients to connect before it ends (scaled with TIMEOUT).
LIFETIME = math.ceil(TIMEOUT / 2)


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    return {"heartbeat": HEARTBEAT}


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(
        config, auth=dataclasses.replace(config.auth, session_lifetime=LIFETIME)
    )


async def websocket_close(client: Client) -> tuple[int, str]:
    """Answer pings until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frame = json.loads(await client.ws.recv())
            assert frame == {"type": "ping"}, frame
            await client.send({"type": "pong"})
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def sse_close(sse: SSEStream) -> tuple[int, str]:
    """Read `: ping` comments until the `close` message, then the stream's end."""
    while True:
        message = await sse.next(keep_comments=True)
        if message.event == "close":
            with pytest.raises(EOFError):
                await sse.next()
            return message.json["code"], message.json["reason"]
        assert message.comments == ["ping"] and not message.data, message


async def test_a_session_reaching_its_lifetime_closes_its_connections(
    server: LiveServer, users: dict[str, User]
) -> None:
    cookie = await login_cookie(server, "alice")
    session = Session.get(Session.user == users["alice"].id)
    ends = session.expires_at.replace(tzinfo=datetime.UTC).timestamp()
    async with (
        await Client.connect(server, headers={"Cookie": cookie}) as alice,
        stream(server, "?pattern=messages", cookie=cookie) as sse,
        await Client.connect(server) as visitor,
    ):
        # Admitted as alice: her session was live then.
        assert alice.connected["user"]["username"] == "alice"
        assert (await sse.frame())["user"]["username"] == "alice"
        assert (await sse.frame())["type"] == "subscribed"
        closes = await asyncio.wait_for(
            asyncio.gather(websocket_close(alice), sse_close(sse)), LIFETIME + TIMEOUT
        )
        assert time.time() >= ends  # not before its end
        assert closes == [(4401, "session expired"), (4401, "session expired")]
        await visitor.expect_silence()  # no session, no end: untouched
    assert await server.run(server.broker.connections.wait_idle(TIMEOUT))


class Member:
    def __init__(self, name: str) -> None:
        self.id, self.is_admin = name, False


@pytest.fixture
def own_app(tmp_path: Path) -> Iterator[tuple[Quart, dict[str, datetime.datetime]]]:
    """An app whose `identify` says when each member's session ends (naive: UTC)."""
    open_database(str(tmp_path / "own.sqlite3"))
    ends: dict[str, datetime.datetime] = {}

    async def identify() -> Any:
        from quart import websocket

        name = websocket.headers.get("X-Member")
        return (Member(name), f"session-{name}", ends[name]) if name else (None, None)

    app = Quart("own")
    Realtime(config=RealtimeConfig(heartbeat=HEARTBEAT), identify=identify).init_app(app)
    yield app, ends
    database.close()


async def test_an_apps_identify_may_say_when_its_session_ends(
    own_app: tuple[Quart, dict[str, datetime.datetime]],
) -> None:
    app, ends = own_app
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    ends["ann"] = now + datetime.timedelta(seconds=1)
    ends["bob"] = now + datetime.timedelta(days=1)
    with LiveServer(app) as server:
        async with (
            await Client.connect(server, headers={"X-Member": "ann"}) as ann,
            await Client.connect(server, headers={"X-Member": "bob"}) as bob,
        ):
            assert ann.connected["user"] == {"id": "ann"}
            code, reason = await asyncio.wait_for(websocket_close(ann), 1 + TIMEOUT)
            assert (code, reason) == (4401, "session expired")
            assert time.time() >= ends["ann"].replace(tzinfo=datetime.UTC).timestamp()
            await bob.expect_silence()  # his session lasts: untouched
