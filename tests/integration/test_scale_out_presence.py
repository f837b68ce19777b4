"""Presence and per-user connection caps shared by several server processes on one
Redis (issue 14): real `python -m runtime serve` processes, a real redis-server, real
WebSocket clients on each.

A client's events on one process say nothing of when another process has handled a
change, so each check that something did NOT happen ends with a barrier: a change that
goes through the same process after it (its shared state is sent in order), whose event
must be the very next one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from runtime.realtime.publishing.backends.redis_shared import liveness
from tests.cluster import create_user, logged_in
from tests.docs_apps import blocks
from tests.realtime_client import Client, login_cookie
from tests.redis_server import RedisServer
from tests.support import TIMEOUT, ServerProcess, metrics_until

pytestmark = pytest.mark.cluster  # server processes of their own

# An app of its own for `python -m runtime serve --app`: a channel with presence.
LOBBY_APP = """
from runtime import Realtime, create_app

app = create_app()
Realtime.of(app).channel("lobby", presence=True)
"""
HEARTBEAT = 0.5  # seconds: a dead process's members leave within a few
USERS = ("alice", "bob", "carol", "dave")


class Cluster:
    """Server processes on one database and one Redis, started when asked."""

    def __init__(self, folder: Path, redis_url: str, stack: ExitStack, **settings: str) -> None:
        (example,) = blocks("docs/scaling.md", "toml", section="Several processes on Redis")
        self.config = folder / "config.toml"
        self.config.write_text(example.replace("redis://127.0.0.1:6379/0", redis_url))
        (folder / "lobbyapp.py").write_text(LOBBY_APP)
        self.folder = folder
        self.url = redis_url
        self.stack = stack
        self.settings = {
            "RUNTIME_DATABASE_PATH": str(folder / "shared.sqlite3"),
            "RUNTIME_APP_SECRET_KEY": "a-secret-key-both-processes-share-0123456789",
            "RUNTIME_REALTIME_HEARTBEAT": str(HEARTBEAT),
            **settings,
        }
        self.servers: list[ServerProcess] = []

    def start(self) -> ServerProcess:
        server = ServerProcess(self.config, self.settings, app="lobbyapp:app")
        self.stack.enter_context(server)
        if not self.servers:  # the first made the tables
            for name in USERS:
                create_user(self.folder, self.settings, name)
        self.servers.append(server)
        return server


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cluster]:
    with ExitStack() as stack:
        yield Cluster(tmp_path, redis_server.database(), stack)


async def here(server: ServerProcess, name: str) -> tuple[Client, dict[str, Any]]:
    """`name` on `server`, subscribed to the lobby: the client and the reply."""
    # No keepalive of the client's own: one the test does not read from stops reading
    # its socket once its queue is full, and would be closed for missing pongs.
    client = await Client.connect(server, user=name, ping_interval=None)
    return client, await client.ok_subscribe("lobby")


def names(reply: dict[str, Any]) -> set[str]:
    return {user["username"] for user in reply["presence"]}


async def presence_event(client: Client) -> tuple[str, str]:
    event = await client.recv_type("event")
    return event["action"], event["user"]["username"]


async def connections_on(server: ServerProcess, count: int) -> None:
    """Until `server` has forgotten all but `count` WebSocket connections."""
    async with logged_in(server, "dave") as http:
        line = f'runtime_realtime_connections{{transport="websocket"}} {count}\n'
        await metrics_until(http, line, 4 * TIMEOUT)


async def test_a_user_on_two_processes_is_here_once_until_her_last_tab_goes(
    cluster: Cluster,
) -> None:
    first, second = cluster.start(), cluster.start()
    bob, reply = await here(first, "bob")
    assert reply["presence"] == []
    assert await presence_event(bob) == ("join", "bob")
    alice_on_first, reply = await here(first, "alice")
    assert names(reply) == {"bob"}
    assert await presence_event(bob) == ("join", "alice")
    alice_on_second, reply = await here(second, "alice")
    assert names(reply) == {"alice", "bob"}  # the second process lists the first's
    carol, _ = await here(second, "carol")  # after alice's second tab, on its process
    assert await presence_event(bob) == ("join", "carol")  # and no second join of alice
    await alice_on_first.ws.close()
    await connections_on(first, 1)  # the first has forgotten her tab: bob is left
    dave, _ = await here(first, "dave")
    assert await presence_event(bob) == ("join", "dave")  # and no leave: her tab elsewhere
    await alice_on_second.ws.close()
    assert await presence_event(bob) == ("leave", "alice")  # her last tab anywhere
    await carol.ws.close()
    assert await presence_event(bob) == ("leave", "carol")
    async with await Client.connect(second, user="carol") as late:
        assert names(await late.ok_subscribe("lobby")) == {"bob", "dave"}
    for client in (bob, dave):
        await client.ws.close()


async def test_the_members_of_a_killed_process_leave_once(cluster: Cluster) -> None:
    first, second, doomed = cluster.start(), cluster.start(), cluster.start()
    alice, _ = await here(doomed, "alice")
    bob, _ = await here(first, "bob")
    carol, _ = await here(second, "carol")
    assert await presence_event(bob) == ("join", "bob")
    for watcher in (bob, carol):
        assert await presence_event(watcher) == ("join", "carol")
    doomed.process.kill()  # SIGKILL: no clean shutdown, alice still counted there
    doomed.process.wait(TIMEOUT)
    _interval, expiry = liveness(HEARTBEAT)
    for watcher in (bob, carol):  # within the expiry and one renewal (pings meanwhile)
        leave = await asyncio.wait_for(presence_event(watcher), expiry + 4 * TIMEOUT)
        assert leave == ("leave", "alice")
    dave, _ = await here(second, "dave")  # both survivors swept: one leave between
    for watcher in (bob, carol):
        assert await presence_event(watcher) == ("join", "dave")
    async with await Client.connect(first, user="alice") as back:
        assert names(await back.ok_subscribe("lobby")) == {"bob", "carol", "dave"}
    for client in (alice, bob, carol, dave):
        await client.ws.close()


async def test_a_process_started_later_lists_who_is_here(cluster: Cluster) -> None:
    first = cluster.start()
    alice, _ = await here(first, "alice")
    second = cluster.start()
    bob, reply = await here(second, "bob")
    assert names(reply) == {"alice"}
    assert await presence_event(bob) == ("join", "bob")
    await alice.ws.close()
    assert await presence_event(bob) == ("leave", "alice")
    await bob.ws.close()


async def admitted(server: ServerProcess, cookie: str) -> Client:
    """A connection of the cookie's user, once one is let in (the process that closed
    one tells Redis after it has forgotten it; until then one is still too many)."""
    while True:
        try:
            client = await Client.connect(server, headers={"Cookie": cookie})
            await client.ok_subscribe("lobby")
            return client
        except ConnectionClosed:
            continue


async def refused(server: ServerProcess, cookie: str) -> None:
    with pytest.raises(ConnectionClosed) as info:
        extra = await Client.connect(server, headers={"Cookie": cookie})
        await extra.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4429
    assert info.value.rcvd.reason == "too many connections for this user"


async def test_the_cap_per_user_counts_connections_on_every_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with ExitStack() as stack:
        cluster = Cluster(
            tmp_path, redis_server.database(), stack, RUNTIME_REALTIME_MAX_CONNECTIONS_PER_USER="2"
        )
        first, second = cluster.start(), cluster.start()
        cookie = await login_cookie(first, "alice")
        on_first = await Client.connect(first, headers={"Cookie": cookie})
        on_second = await Client.connect(second, headers={"Cookie": cookie})
        await refused(first, cookie)
        await refused(second, cookie)
        async with httpx.AsyncClient(base_url=second.url, timeout=TIMEOUT) as http:
            answer = await http.get(
                "/realtime/subscribe", headers={"Accept": "text/event-stream", "Cookie": cookie}
            )
            assert answer.status_code == 429, answer.text
            assert answer.json()["error"]["code"] == "rate_limited"
        await on_second.ws.close()
        await connections_on(second, 0)  # forgotten there, and so in Redis very soon
        again = await asyncio.wait_for(admitted(first, cookie), 4 * TIMEOUT)
        await refused(second, cookie)
        for client in (on_first, again):
            await client.ws.close()
