"""Text the wire cannot carry, refused where it comes in, over a real server.

JSON's `"\\ud800"` escape decodes to a lone surrogate: a Python string that UTF-8 cannot
encode, so no socket, file or database can carry it. One in a `publish` once silenced
every connection written in the same turn of the event loop. Now every string a client
sends (in a WebSocket frame, an SSE POST, a records API body) is checked once, at the
edge, and so is what app code hands realtime (a handler's answer, a broadcast); the
attacker's connection lives on, and bystanders on both transports get every event.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from quart import Quart

from runtime import Realtime, create_app
from runtime.config import Config
from runtime.db import database
from runtime.demo import Message  # registered: the app serves every collection
from runtime.realtime import Sender
from runtime.users import User
from tests.databases import both_databases
from tests.realtime_client import Client, login_cookie
from tests.sse_client import SSEStream, stream
from tests.support import TIMEOUT, LiveServer, assert_error

realtime = Realtime()
realtime.channel("lobby", read_rule="authenticated", write_rule="authenticated")
realtime.channel("hall", read_rule="authenticated", write_rule="authenticated", presence=True)


@realtime.on("echo")
def echo(data: Any, sender: Sender) -> Any:
    return data


@realtime.on("garble")
def garble(data: Any, sender: Sender) -> Any:
    return {"text": "half a pair: \ud83d"}


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    app = create_app(config, realtime=realtime)
    yield app
    database.close()


class Bystanders:
    """Bob on WebSocket and on SSE, both subscribed to the lobby and to messages."""

    def __init__(self, ws: Client, sse: SSEStream) -> None:
        self.ws, self.sse = ws, sse

    async def next_events(self) -> list[dict[str, Any]]:
        """The next event each of them receives (the same one, or the test fails)."""
        ws = await self.ws.recv_type("event")
        sse = await self.sse.frame()
        assert sse == ws, (sse, ws)
        return [ws, sse]


@contextlib.asynccontextmanager
async def bystanders(server: LiveServer) -> AsyncIterator[Bystanders]:
    cookie = await login_cookie(server, "bob")
    async with (
        await Client.connect(server, user="bob") as ws,
        stream(server, "?pattern=lobby&pattern=messages", cookie=cookie) as sse,
    ):
        await ws.ok_subscribe("lobby")
        await ws.ok_subscribe("messages")
        assert (await sse.frame())["type"] == "connected"
        assert [(await sse.frame())["type"] for _ in range(2)] == ["subscribed"] * 2
        yield Bystanders(ws, sse)


async def publish_and_see_it_arrive(alice: Client, seen: Bystanders, name: str) -> None:
    """Alice publishes a well-formed event: acked, and both bystanders get it next."""
    await alice.send({"type": "publish", "id": "ok", "channel": "lobby", "name": name, "data": 1})
    ack = await alice.recv_type("ack")
    for event in await seen.next_events():
        assert (event["id"], event["name"]) == (ack["data"]["event_id"], name)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ('{"type":"publish","id":"bad","channel":"lobby","name":"x","data":"\\ud800"}', "data"),
        (
            '{"type":"publish","id":"bad","channel":"lobby","name":"x",'
            '"data":{"ok":[1,{"deep":["\\udc00\\ud800"]}]}}',  # a reversed pair, deep down
            "data",
        ),
        ('{"type":"publish","id":"bad","channel":"lobby","name":"x","data":{"\\udfff":1}}', "data"),
        ('{"type":"emit","id":"bad","name":"echo","data":{"text":"x\\ud83d"}}', "data"),
        ('{"type":"subscribe","id":"bad","pattern":"messages","filter":{"a":"\\ud800"}}', "filter"),
        ('{"type":"subscribe","id":"bad","pattern":"messages","filter":{"\\ud800":1}}', "filter"),
        ('{"type":"subscribe","id":"bad","pattern":"messages","since":"\\ud800"}', "since"),
        ('{"type":"ping","id":"bad","newer_field":"\\ud800"}', "a field"),
        ('{"type":"ping","id":"bad","\\ud800":"a name"}', "a field"),
    ],
)
async def test_a_frame_with_unencodable_text_is_refused_and_everyone_goes_on(
    server: LiveServer, users: dict[str, User], frame: str, field: str
) -> None:
    async with (
        bystanders(server) as seen,
        await Client.connect(server, user="alice") as alice,
    ):
        await alice.ws.send(frame)
        error = await alice.recv_type("error")
        assert (error["id"], error["code"]) == ("bad", "bad_request")
        assert field in error["message"] and "surrogate" in error["message"]
        # The attacker's connection lives on, and nobody was silenced.
        await publish_and_see_it_arrive(alice, seen, "after")
        await seen.ws.expect_silence()


async def test_an_unreadable_request_id_is_not_echoed(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        await client.ws.send('{"type":"ping","id":"\\ud800"}')
        error = await client.recv_type("error")
        assert (error["id"], error["code"]) == (None, "bad_request")


async def test_an_sse_post_with_unencodable_text_is_a_400_and_everyone_goes_on(
    server: LiveServer, users: dict[str, User]
) -> None:
    cookie = await login_cookie(server, "alice")
    async with (
        bystanders(server) as seen,
        stream(server, "", cookie=cookie) as attacker,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        connection_id = (await attacker.frame())["connection_id"]
        for items in [
            {"publish": [{"channel": "lobby", "name": "x", "data": "\ud800"}]},
            {"emit": [{"name": "echo", "data": ["\udfff"]}]},
            {"subscribe": [{"pattern": "messages", "filter": {"\ud800": 1}}]},
            {"unsubscribe": ["\ud800"]},
        ]:
            # json.dumps writes a lone surrogate as its escape, as a hostile client would.
            raw = json.dumps({"connection_id": connection_id, **items}).encode()
            response = await http.post(
                "/realtime/subscribe",
                content=raw,
                headers={"Cookie": cookie, "Content-Type": "application/json"},
            )
            assert_error(response, 400, "bad_request")
        # The attacker's stream lives on: its next publish goes out to everyone.
        response = await http.post(
            "/realtime/subscribe",
            json={
                "connection_id": connection_id,
                "publish": [{"id": "ok", "channel": "lobby", "name": "after", "data": 1}],
            },
            headers={"Cookie": cookie},
        )
        [ack] = response.json()["results"]
        for event in await seen.next_events():
            assert (event["id"], event["name"]) == (ack["data"]["event_id"], "after")


async def test_a_handlers_unencodable_answer_is_an_internal_error(
    server: LiveServer, users: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        bystanders(server) as seen,
        await Client.connect(server, user="alice") as alice,
    ):
        await alice.send({"type": "emit", "id": "g", "name": "garble", "data": None})
        error = await alice.recv_type("error")
        assert (error["id"], error["code"]) == ("g", "internal_error")
        assert "surrogate" not in error["message"]  # the details are for the log
        assert "garble" in caplog.text and "surrogate" in caplog.text
        await publish_and_see_it_arrive(alice, seen, "after")


async def test_a_broadcast_of_unencodable_text_is_a_value_error(
    server: LiveServer, users: dict[str, User]
) -> None:
    app: Any = server.app
    async with bystanders(server) as seen:
        for name, data in [
            ("x", "\ud800"),
            ("x", {"list": [{"\udc00": 1}]}),
            ("x\ud800", None),
        ]:
            with pytest.raises(ValueError, match="surrogate"):
                app.realtime_broadcast(name, data, collection="lobby")
            with pytest.raises(ValueError, match="surrogate"):
                await app.realtime_broadcast_async(name, data, collection="lobby")
        event_id = app.realtime_broadcast("after", 1, collection="lobby")
        for event in await seen.next_events():
            assert (event["id"], event["name"]) == (event_id, "after")


async def test_a_publish_nested_too_deep_is_a_bad_request(
    server: LiveServer, users: dict[str, User]
) -> None:
    """Custom event data is at most 100 levels deep: the publisher is told so, and its
    connection lives (it was closed with 1011 by an error the router did not expect)."""
    async with (
        bystanders(server) as seen,
        await Client.connect(server, user="alice") as alice,
    ):
        deep = "[" * 150 + "]" * 150
        await alice.ws.send(
            '{"type":"publish","id":"deep","channel":"lobby","name":"x","data":' + deep + "}"
        )
        error = await alice.recv_type("error")
        assert (error["id"], error["code"]) == ("deep", "bad_request")
        assert "100 levels" in error["message"]
        await publish_and_see_it_arrive(alice, seen, "after")


@both_databases
async def test_a_record_with_unencodable_text_is_never_stored_nor_sent(
    server: LiveServer, users: dict[str, User]
) -> None:
    """The records API refuses it (400), and a write of app code fails in the database
    driver itself (neither SQLite's nor PostgreSQL's takes it): nothing is stored, no
    event is sent, and the next record's event reaches everyone."""
    alice = users["alice"]
    async with bystanders(server) as seen:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            cookie = await login_cookie(server, "alice")
            response = await http.post(
                "/api/collections/messages/records",
                content=b'{"text": "\\ud800"}',
                headers={"Cookie": cookie, "Content-Type": "application/json"},
            )
            assert_error(response, 400, "bad_request")
        with pytest.raises(UnicodeEncodeError):
            Message.create(text="\ud800", author=alice)
        with pytest.raises(UnicodeEncodeError), database.atomic():
            Message.create(text="fine", author=alice)
            Message.create(text="x\udfff", author=alice)
        assert Message.select().count() == 0
        message = Message.create(text="after", author=alice)
        for event in await seen.next_events():
            assert (event["action"], event["record"]["id"]) == ("create", message.id)
        await seen.ws.expect_silence()


async def test_a_users_unencodable_public_fields_are_sent_escaped(
    server: LiveServer, users: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """App code's own data that UTF-8 cannot encode (here a user's public fields, shown
    in `connected` and in presence to everyone on the topic) is written as JSON's escape:
    every frame can be sent, and one user's data costs nobody their events."""
    public = User.public_dict

    def public_dict(user: User) -> dict[str, Any]:
        shown = public(user)
        return {**shown, "username": "\ud800" + shown["username"]}

    monkeypatch.setattr(User, "public_dict", public_dict)
    cookie = await login_cookie(server, "bob")
    async with (
        await Client.connect(server, user="bob") as ws,
        stream(server, "?pattern=hall", cookie=cookie) as sse,
    ):
        assert ws.connected["user"]["username"] == "\ud800bob"
        assert (await sse.frame())["user"]["username"] == "\ud800bob"
        assert (await sse.frame())["type"] == "subscribed"
        assert (await sse.frame())["action"] == "join"  # bob, from his stream
        await ws.ok_subscribe("hall")
        async with await Client.connect(server, user="alice") as alice:
            reply = await alice.ok_subscribe("hall")
            assert [u["username"] for u in reply["presence"]] == ["\ud800bob"]
            for client in (ws, alice):
                join = await client.recv_type("event")
                assert (join["action"], join["user"]["username"]) == ("join", "\ud800alice")
            assert (await sse.frame())["user"]["username"] == "\ud800alice"
            await alice.send({"type": "publish", "id": "p", "channel": "hall", "name": "hi"})
            own = await alice.recv_type("event")  # her own publication, queued before the ack
            ack = await alice.recv_type("ack")
            for event in [own, await ws.recv_type("event"), await sse.frame()]:
                assert (event["id"], event["user"]["username"]) == (
                    ack["data"]["event_id"],
                    "\ud800alice",
                )
