"""Record and custom events over a real server and real WebSocket clients."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import peewee
import pytest

from runtime import BaseModel
from runtime.db import database
from runtime.demo import Message, Note
from runtime.users import User
from tests.realtime_client import Client, api_session
from tests.support import TIMEOUT, LiveServer


class Secretive(BaseModel):
    """A public collection with a hidden field, to prove it never travels."""

    label = peewee.CharField()
    token = peewee.CharField(default="tok-HIDDEN-123")

    read_rule = "public"
    write_rule = "nobody"
    hidden = ("token",)

    class Meta:
        table_name = "test_secretive"


async def test_create_update_delete_through_the_api(server: LiveServer) -> None:
    records = "/api/collections/messages/records"
    async with await Client.connect(server) as watcher, api_session(server, "alice") as alice:
        await watcher.ok_subscribe("messages")
        created = (await alice.post(records, json={"text": "hello"})).json()
        event = await watcher.recv_type("event")
        assert event == {
            "type": "event",
            "id": event["id"],
            "collection": "messages",
            "topic": f"messages/{created['id']}",
            "action": "create",
            "record": created,
        }
        await alice.patch(f"{records}/{created['id']}", json={"text": "edited"})
        update = await watcher.recv_type("event")
        assert update["action"] == "update" and update["changed"] == ["text"]
        assert update["record"]["text"] == "edited"
        await alice.delete(f"{records}/{created['id']}")
        delete = await watcher.recv_type("event")
        assert delete["action"] == "delete" and delete["record"]["text"] == "edited"
        assert "changed" not in delete


async def test_patterns_and_wildcards(server: LiveServer, users: dict[str, User]) -> None:
    alice = users["alice"]
    first = Message.create(text="first", author=alice)
    async with (
        await Client.connect(server) as one,
        await Client.connect(server) as everything,
        await Client.connect(server) as glob,
        await Client.connect(server) as other,
    ):
        await one.ok_subscribe(f"messages/{first.id}")
        await everything.ok_subscribe("*")
        await glob.ok_subscribe("mess*")
        await other.ok_subscribe("test_secretive")
        second = Message.create(text="second", author=alice)
        first.text = "first, edited"
        first.save()
        assert [e["record"]["text"] for e in await everything.events(2)] == [
            "second",
            "first, edited",
        ]
        assert [e["record"]["text"] for e in await glob.events(2)] == ["second", "first, edited"]
        only = await one.recv_type("event")
        assert only["record"] == {**only["record"], "id": first.id, "text": "first, edited"}
        await one.expect_silence()
        await other.expect_silence()
        assert second.id != first.id


async def test_read_rules_per_subscriber(server: LiveServer, users: dict[str, User]) -> None:
    async with (
        await Client.connect(server, user="alice") as alice,
        await Client.connect(server, user="bob") as bob,
        await Client.connect(server) as visitor,
    ):
        await alice.ok_subscribe("notes")
        await bob.ok_subscribe("notes")
        await bob.ok_subscribe("*")
        await visitor.ok_subscribe("*")
        note = Note.create(title="alice only", owner=users["alice"])
        message = Message.create(text="for everyone", author=users["bob"])
        assert (await alice.recv_type("event"))["record"]["title"] == "alice only"
        assert (await bob.recv_type("event"))["record"]["id"] == message.id
        assert (await visitor.recv_type("event"))["record"]["id"] == message.id
        await bob.expect_silence()
        await visitor.expect_silence()
        assert note.id


async def test_hidden_fields_are_never_sent(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        await client.ok_subscribe("test_secretive")
        record = Secretive.create(label="x")
        record.token = "tok-HIDDEN-456"
        record.save()
        record.label = "y"
        record.save()
        raw = [await asyncio.wait_for(client.ws.recv(), TIMEOUT) for _ in range(2)]
        assert all("HIDDEN" not in frame and "token" not in frame for frame in raw)
        await client.expect_silence()  # the token-only update was not sent at all


async def test_filters(server: LiveServer, users: dict[str, User]) -> None:
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages", filter={"author": users["bob"].id})
        Message.create(text="alice's", author=users["alice"])
        Message.create(text="bob's", author=users["bob"])
        assert (await client.recv_type("event"))["record"]["text"] == "bob's"
        await client.expect_silence()


async def test_commit_order_and_rollbacks(server: LiveServer, users: dict[str, User]) -> None:
    alice = users["alice"]
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")
        with pytest.raises(RuntimeError), database.atomic():
            Message.create(text="rolled back", author=alice)
            raise RuntimeError
        with database.atomic():
            for i in range(50):
                Message.create(text=f"m{i}", author=alice)
                with pytest.raises(RuntimeError), database.atomic():
                    Message.create(text=f"savepoint {i}", author=alice)
                    raise RuntimeError
        events = await client.events(50)
        assert [e["record"]["text"] for e in events] == [f"m{i}" for i in range(50)]
        seqs = [int(e["id"].rsplit("-", 1)[1]) for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == 50
        await client.expect_silence()


async def test_custom_events(server: LiveServer, users: dict[str, User]) -> None:
    broadcast = server.app.realtime_broadcast  # type: ignore[attr-defined]
    async with (
        await Client.connect(server, user="alice") as alice,
        await Client.connect(server, user="bob") as bob,
        await Client.connect(server) as visitor,
    ):
        await alice.ok_subscribe("messages")
        await visitor.ok_subscribe("messages")
        await bob.ok_subscribe("notes")
        first = broadcast("typing", {"who": "alice"}, collection="messages")
        for client in (alice, visitor):
            assert await client.recv_type("event") == {
                "type": "event",
                "id": first,
                "collection": "messages",
                "topic": "messages",
                "action": "custom",
                "name": "typing",
                "data": {"who": "alice"},
            }
        await bob.expect_silence()
        broadcast("note-hint", {}, collection="notes")  # bob may read notes; visitor not
        assert (await bob.recv_type("event"))["name"] == "note-hint"
        broadcast("for-bob", {"n": 1}, user_ids=[users["bob"].id])
        broadcast("for-visitor", None, client_ids=[visitor.connected["connection_id"]])
        broadcast("everyone", [1, 2])
        assert [(await bob.recv_type("event"))["name"] for _ in range(2)] == [
            "for-bob",
            "everyone",
        ]
        assert [(await visitor.recv_type("event"))["name"] for _ in range(2)] == [
            "for-visitor",
            "everyone",
        ]
        assert (await alice.recv_type("event"))["name"] == "everyone"
        for client in (alice, bob, visitor):
            await client.expect_silence()


async def test_broadcast_from_another_thread_returns_ordered_ids(server: LiveServer) -> None:
    broadcast = server.app.realtime_broadcast  # type: ignore[attr-defined]
    ids: list[str] = []
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")

        def publish() -> None:
            ids.extend(broadcast("tick", {"i": i}, collection="messages") for i in range(20))

        thread = threading.Thread(target=publish)
        thread.start()
        events = await client.events(20)
        thread.join(TIMEOUT)
        assert [e["id"] for e in events] == ids
        assert [e["data"]["i"] for e in events] == list(range(20))


def test_broadcast_rejects_bad_arguments(app: Any) -> None:
    with pytest.raises(ValueError, match="name"):
        app.realtime_broadcast("", {})
    with pytest.raises(ValueError, match="collection"):
        app.realtime_broadcast("x", {}, collection="nope")


async def test_unsubscribe_and_cleanup(server: LiveServer, users: dict[str, User]) -> None:
    alice = users["alice"]
    polite = await Client.connect(server)
    abrupt = await Client.connect(server)
    await polite.ok_subscribe("messages")
    await abrupt.ok_subscribe("messages")
    await abrupt.ok_subscribe("*")
    await polite.send({"type": "unsubscribe", "id": "u", "pattern": "messages"})
    assert (await polite.recv())["type"] == "unsubscribed"
    Message.create(text="after unsubscribe", author=alice)
    await polite.expect_silence()
    assert (await abrupt.recv_type("event"))["record"]["text"] == "after unsubscribe"
    await polite.ws.close()
    abrupt.ws.transport.abort()  # no close frame: the TCP connection just goes
    assert await server.run(server.broker.connections.wait_idle(TIMEOUT))
    assert server.broker.registry.is_empty() and len(server.broker.registry) == 0
    connections = server.broker.connections
    assert len(connections) == 0 and connections.by_id == {}
    assert connections.by_user == {} and connections.by_session == {}
    assert connections.by_address == {}
