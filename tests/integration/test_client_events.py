"""Client events with acknowledgements, channels without models, and presence, over a
real server with real WebSocket and SSE clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from quart import Quart

from runtime import Realtime, create_app
from runtime.config import Config
from runtime.db import database
from runtime.errors import Forbidden
from runtime.realtime import Sender
from runtime.users import User
from tests.conftest import PASSWORD_HASH
from tests.realtime_client import Client, login_cookie
from tests.sse_client import SSEStream
from tests.support import TIMEOUT, LiveServer

realtime = Realtime()
gate: dict[str, asyncio.Event] = {}
parked: list[str] = []


@realtime.on("add")
def add(data: Any, sender: Sender) -> dict[str, Any]:  # sync: runs in a worker thread
    user = sender.user.username if sender.user is not None else None
    return {"sum": data["a"] + data["b"], "user": user, "connection": sender.connection_id}


@realtime.on("hold")
async def hold(data: Any, sender: Sender) -> str:
    await gate.setdefault("open", asyncio.Event()).wait()
    return "released"


@realtime.on("park")
async def park(data: Any, sender: Sender) -> str:
    """`hold`, and the eighth to arrive says so (`gate["parked"]`)."""
    parked.append(sender.connection_id)
    if len(parked) == 8:
        gate.setdefault("parked", asyncio.Event()).set()
    await gate.setdefault("open", asyncio.Event()).wait()
    return "released"


@realtime.on("release")
async def release(data: Any, sender: Sender) -> str:
    gate.setdefault("open", asyncio.Event()).set()
    return "done"


@realtime.on("refuse")
def refuse(data: Any, sender: Sender) -> None:
    raise Forbidden("Not for you.")


@realtime.on("bug")
def bug(data: Any, sender: Sender) -> None:
    raise RuntimeError("a bug in the handler")


realtime.channel("lobby", read_rule="authenticated", write_rule="authenticated", presence=True)
realtime.channel("news", read_rule="public", write_rule=lambda user: bool(user.is_admin))


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    gate.clear()
    parked.clear()
    app = create_app(config, realtime=realtime)
    yield app
    database.close()


async def emit(client: Client, name: str, data: Any, request_id: str) -> dict[str, Any]:
    await client.send({"type": "emit", "id": request_id, "name": name, "data": data})
    frame = await client.recv()
    assert frame.get("id") == request_id, frame
    return frame


async def test_handlers_answer_with_acks_and_errors(server: LiveServer) -> None:
    assert Realtime.of(server.app) is realtime
    async with await Client.connect(server, user="alice") as alice:
        ack = await emit(alice, "add", {"a": 1, "b": 2}, "e1")
        assert ack == {
            "type": "ack",
            "id": "e1",
            "data": {"sum": 3, "user": "alice", "connection": alice.connected["connection_id"]},
        }
        for name, code in (
            ("nothing", "bad_request"),
            ("refuse", "forbidden"),
            ("bug", "internal_error"),
        ):
            frame = await emit(alice, name, None, f"x-{name}")
            assert frame["type"] == "error" and frame["code"] == code, frame
        bad = await emit(alice, "add", {"a": 1}, "e2")  # KeyError in the handler
        assert bad["code"] == "internal_error" and "KeyError" not in bad["message"]
        # Without an id no ack comes (an error still would); the connection goes on.
        await alice.send({"type": "emit", "name": "add", "data": {"a": 0, "b": 0}})
        await alice.expect_silence()


async def test_handlers_run_beside_each_other_a_few_at_a_time(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        for i in range(8):  # the handlers of eight client events may be running at once
            await client.send({"type": "emit", "id": f"h{i}", "name": "hold"})
        await client.send({"type": "emit", "id": "h8", "name": "hold"})
        refused = await client.recv_type("error")
        assert refused["id"] == "h8" and refused["code"] == "rate_limited"
        await client.send({"type": "ping"})
        assert (await client.recv())["type"] == "pong"  # pings go on meanwhile
        async with await Client.connect(server) as other:  # its own budget of handlers
            assert (await emit(other, "release", None, "r"))["data"] == "done"
        acks = [await client.recv_type("ack") for _ in range(8)]
        assert sorted(a["id"] for a in acks) == [f"h{i}" for i in range(8)]
        assert {a["data"] for a in acks} == {"released"}


async def test_sse_posts_meet_the_same_cap_of_handlers_at_a_time(
    server: LiveServer, users: dict[str, User]
) -> None:
    cookie = await login_cookie(server, "bob")

    async def post(http: httpx.AsyncClient, connection_id: str, request_id: str) -> Any:
        body = {"connection_id": connection_id, "emit": [{"id": request_id, "name": "park"}]}
        reply = await http.post("/realtime/subscribe", json=body, headers={"Cookie": cookie})
        return reply.json()["results"][0]

    async def all_parked() -> None:
        await gate.setdefault("parked", asyncio.Event()).wait()

    async with (
        sse(server, "", cookie) as stream,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        connection_id = (await stream.frame())["connection_id"]
        held = [asyncio.create_task(post(http, connection_id, f"p{i}")) for i in range(8)]
        await server.run(all_parked())
        refused = await post(http, connection_id, "p8")  # as a WebSocket's ninth would be
        assert (refused["id"], refused["code"]) == ("p8", "rate_limited")
        async with await Client.connect(server) as other:  # its own budget of handlers
            assert (await emit(other, "release", None, "r"))["data"] == "done"
        acks = await asyncio.wait_for(asyncio.gather(*held), TIMEOUT)
        assert [(a["type"], a["id"], a["data"]) for a in acks] == [
            ("ack", f"p{i}", "released") for i in range(8)
        ]


@contextlib.asynccontextmanager
async def sse(server: LiveServer, query: str, cookie: str | None) -> AsyncIterator[SSEStream]:
    headers = {"Accept": "text/event-stream", **({"Cookie": cookie} if cookie else {})}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        http.stream("GET", f"/realtime/subscribe{query}", headers=headers) as response,
    ):
        stream = SSEStream(response)
        await stream.next()  # retry
        yield stream


async def test_client_events_and_publishing_over_sse(
    server: LiveServer, users: dict[str, User]
) -> None:
    cookie = await login_cookie(server, "bob")
    async with (
        sse(server, "?pattern=lobby", cookie) as stream,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        connection_id = (await stream.frame())["connection_id"]
        assert (await stream.frame())["presence"] == []
        assert (await stream.frame())["action"] == "join"  # bob, on the stream
        reply = await http.post(
            "/realtime/subscribe",
            json={
                "connection_id": connection_id,
                "emit": [{"id": "s1", "name": "add", "data": {"a": 2, "b": 2}}, {"name": "x"}],
                "publish": [{"id": "p1", "channel": "lobby", "name": "hello", "data": [1]}],
            },
            headers={"Cookie": cookie},
        )
        results = reply.json()["results"]
        assert results[0] == {
            "type": "ack",
            "id": "s1",
            "data": {"sum": 4, "user": "bob", "connection": connection_id},
        }
        assert results[1]["code"] == "bad_request"
        assert results[2]["type"] == "ack" and results[2]["id"] == "p1"
        event = await stream.frame()
        assert event["id"] == results[2]["data"]["event_id"]
        assert (event["collection"], event["name"], event["data"]) == ("lobby", "hello", [1])
        assert event["user"] == {"id": users["bob"].id, "username": "bob", "is_admin": False}


async def test_channels_have_read_and_write_rules(
    server: LiveServer, users: dict[str, User]
) -> None:
    app: Any = server.app
    async with (
        await Client.connect(server) as visitor,
        await Client.connect(server, user="alice") as alice,
        await Client.connect(server, user="root") as root,
    ):
        refused = await visitor.subscribe("lobby")
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        assert (await visitor.subscribe("lobby/1"))["code"] == "forbidden"
        await visitor.ok_subscribe("news")
        await visitor.ok_subscribe("*")  # wildcards cover channels a reader may read
        await alice.ok_subscribe("news")
        await alice.send(
            {"type": "publish", "id": "p", "channel": "news", "name": "scoop", "data": {}}
        )
        assert (await alice.recv())["code"] == "forbidden"  # only admins write news
        await root.send(
            {"type": "publish", "id": "p", "channel": "news", "name": "scoop", "data": {"n": 1}}
        )
        published = await root.recv_type("ack")
        for client in (visitor, alice):
            event = await client.recv_type("event")
            assert (event["id"], event["name"], event["topic"]) == (
                published["data"]["event_id"],
                "scoop",
                "news",
            )
        await visitor.expect_silence()  # once, though two subscriptions cover it
        # The server broadcasts to a channel as to a collection.
        app.realtime_broadcast("tick", {"t": 1}, collection="lobby")
        await alice.expect_silence()  # not subscribed to lobby
        await visitor.expect_silence()  # "*" covers lobby, but a visitor may not read it
        with pytest.raises(ValueError, match="nowhere"):
            app.realtime_broadcast("x", None, collection="nowhere")


async def test_presence_lists_joins_and_leaves_per_user(
    server: LiveServer, users: dict[str, User]
) -> None:
    def who(frame: dict[str, Any]) -> list[str]:
        return sorted(user["username"] for user in frame["presence"])

    alice_1 = await Client.connect(server, user="alice")
    assert who(await alice_1.ok_subscribe("lobby")) == []
    join = await alice_1.recv_type("event")  # its own arrival, after the reply
    assert (join["action"], join["user"]["username"], join["topic"]) == ("join", "alice", "lobby")
    alice_2 = await Client.connect(server, user="alice")
    assert who(await alice_2.ok_subscribe("lobby")) == ["alice"]
    await alice_1.expect_silence()  # a second tab: no second join
    async with await Client.connect(server, user="bob") as bob:
        assert who(await bob.ok_subscribe("lobby")) == ["alice"]
        for client in (alice_1, alice_2, bob):
            event = await client.recv_type("event")
            assert (event["action"], event["user"]["username"]) == ("join", "bob")
        await alice_2.ws.close()  # alice is still here in her first tab
        await bob.expect_silence()
        await alice_1.send({"type": "unsubscribe", "id": "u", "pattern": "lobby"})
        assert (await alice_1.recv())["type"] == "unsubscribed"
        leave = await bob.recv_type("event")
        assert (leave["action"], leave["user"]["username"]) == ("leave", "alice")
        # A resume does not replay joins and leaves: the list says who is here.
        reply = await alice_1.ok_subscribe("lobby", since=join["id"])
        assert reply["recovered"] is True and who(reply) == ["bob"]
        assert (await alice_1.recv_type("event"))["user"]["username"] == "alice"  # back
    await alice_1.ws.close()


async def test_presence_on_a_channel_declared_after_the_app(config: Config) -> None:
    # The tutorial's order: create_app() first (no presence anywhere yet), then
    # Realtime.of(app).channel(..., presence=True). The broker reads the set live.
    late = Realtime()
    app = create_app(config, realtime=late)
    try:
        late.channel("board", read_rule="authenticated", presence=True)
        User.create(username="alice", password_hash=PASSWORD_HASH)
        with LiveServer(app) as server:
            async with await Client.connect(server, user="alice") as alice:
                assert (await alice.ok_subscribe("board"))["presence"] == []
                join = await alice.recv_type("event")
                assert (join["action"], join["user"]["username"]) == ("join", "alice")
    finally:
        database.close()
