"""Live views that stay true (issue 16), over a real server with real WebSocket clients,
on SQLite and PostgreSQL: an update that moves a record out of a subscriber's filter or
read rule reaches them as a `delete` of what they last saw, one that moves it in as a
`create` of the whole record, each with its `reason`; an update inside stays an update,
one outside is silence. Single saves, `save(only=…)`, bulk updates moving several records
at once, transactions with savepoints, and a resumed reader of the read rule. (More:
test_live_views_replay.py for resume, snapshots, concurrent writers and two processes;
test_live_views_sse.py for SSE; test_live_views_union.py for several subscriptions,
expand and per-reader fields.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import peewee

from runtime import BaseModel
from runtime.db import database
from runtime.demo import Message
from runtime.users import User
from tests.databases import both_databases
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer

RECORDS = "/api/collections/messages/records"


def published_or_own(user: Any, record: Post) -> bool:
    return bool(record.published) or (
        user is not None and (user.is_admin or record.__data__.get("owner") == user.id)
    )


class Post(BaseModel):
    text = peewee.CharField()
    published = peewee.BooleanField(default=False)
    owner = peewee.ForeignKeyField(User)

    read_rule = published_or_own  # a rule on a value updates change
    write_rule = "owner"
    owner_field = "owner"

    class Meta:
        table_name = "test_live_views_posts"


def seen(event: dict[str, Any]) -> tuple[str, str | None, int, str]:
    """What a frame tells a live list: the action, why, which record, its text."""
    assert event["type"] == "event", event
    return event["action"], event.get("reason"), event["record"]["id"], event["record"]["text"]


async def _api_record(server: LiveServer, record_id: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        reply = await http.get(f"{RECORDS}/{record_id}")
        assert reply.status_code == 200, reply.text
        record: dict[str, Any] = reply.json()
        return record


def _edit(message: Message, text: str) -> None:
    message.text = text
    message.save()


async def _follows_edits(server: LiveServer, users: dict[str, User], view: Any) -> None:
    """A subscriber whose view is `view` ("tea" in the text, as a filter) hears a
    record leave it, come back and change inside it, and nothing of a record outside."""
    alice = users["alice"]
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages", filter=view)
        inside = Message.create(text="tea", author=alice)
        outside = Message.create(text="coffee", author=alice)
        created = await ws.recv_type("event")
        assert seen(created) == ("create", None, inside.id, "tea")

        _edit(inside, "cocoa")  # out: a delete of what was seen, the old values
        left = await ws.recv_type("event")
        assert seen(left) == ("delete", "filter", inside.id, "tea")
        assert left["record"] == created["record"]
        assert "cocoa" not in json.dumps(left)

        _edit(outside, "decaf")  # out, and stays out: nothing
        _edit(inside, "tea")  # back in: a create of the whole record as it is
        back = await ws.recv_type("event")
        assert seen(back) == ("create", "filter", inside.id, "tea")
        assert back["record"] == await _api_record(server, inside.id)
        assert "changed" not in back

        _edit(inside, "tea")  # written, unchanged: no move, an update
        _edit(inside, "tea!")  # in, and stays in: an update
        same, updated = await ws.events(2)
        assert seen(same) == ("update", None, inside.id, "tea")
        assert seen(updated) == ("update", None, inside.id, "tea!")
        assert updated["changed"] == ["text"]
        await ws.expect_silence()


@both_databases
async def test_a_filter_expression_view_follows_edits(
    server: LiveServer, users: dict[str, User]
) -> None:
    await _follows_edits(server, users, "text ~ 'TEA' && text !~ 'cocoa'")


@both_databases
async def test_an_equality_filter_view_follows_edits(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages", filter={"text": "tea"})
        message = Message.create(text="tea", author=users["alice"])
        other = Message.create(text="coffee", author=users["alice"])
        assert seen(await ws.recv_type("event")) == ("create", None, message.id, "tea")
        _edit(message, "tea?")
        assert seen(await ws.recv_type("event")) == ("delete", "filter", message.id, "tea")
        _edit(other, "decaf")
        _edit(message, "tea")
        back = await ws.recv_type("event")
        assert seen(back) == ("create", "filter", message.id, "tea")
        assert back["record"] == await _api_record(server, message.id)
        # An update of another field, still matching: an update.
        Message.update(author=users["bob"]).where(Message.id == message.id).execute()
        updated = await ws.recv_type("event")
        assert (updated["action"], updated["changed"]) == ("update", ["author"])
        assert "reason" not in updated
        await ws.expect_silence()


@both_databases
async def test_a_read_rule_view_follows_edits(server: LiveServer, users: dict[str, User]) -> None:
    alice = users["alice"]
    async with (
        await Client.connect(server, user="bob") as bob,
        await Client.connect(server, user="bob") as bob_hello,  # a filter on top of the rule
        await Client.connect(server, user="alice") as owner,
        await Client.connect(server, user="root") as admin,
    ):
        pattern = "test_live_views_posts"
        for client in (bob, owner, admin):
            await client.ok_subscribe(pattern)
        await bob_hello.ok_subscribe(pattern, filter="text ~ 'hello'")
        post = Post.create(text="draft", owner=alice)
        for client in (owner, admin):
            assert seen(await client.recv_type("event")) == ("create", None, post.id, "draft")

        post.published, post.text = True, "hello world"
        post.save()
        for client in (bob, bob_hello):  # readable now: the whole record
            entered = await client.recv_type("event")
            assert seen(entered) == ("create", "access", post.id, "hello world")
            assert entered["record"] == {
                "id": post.id,
                "text": "hello world",
                "published": True,
                "owner": alice.id,
            }
        for client in (owner, admin):  # always readable: a plain update
            updated = await client.recv_type("event")
            assert seen(updated) == ("update", None, post.id, "hello world")
            assert updated["changed"] == ["text", "published"]

        Post.update(text="goodbye world").where(Post.id == post.id).execute()
        left = await bob_hello.recv_type("event")  # readable still: its filter left
        assert seen(left) == ("delete", "filter", post.id, "hello world")
        for client in (bob, owner, admin):
            assert seen(await client.recv_type("event"))[:2] == ("update", None)

        post.published, post.text = False, "SECRET-NEW"
        post.save()
        for client in (bob,):  # unreadable now: what they saw, never the new text
            gone = await client.recv_type("event")
            assert seen(gone) == ("delete", "access", post.id, "goodbye world")
            assert gone["record"]["published"] is True
            assert "SECRET-NEW" not in json.dumps(gone)
        for client in (owner, admin):
            assert seen(await client.recv_type("event")) == ("update", None, post.id, "SECRET-NEW")

        post.text = "still secret"
        post.save()
        for client in (owner, admin):
            assert seen(await client.recv_type("event"))[:2] == ("update", None)
        for client in (bob, bob_hello, owner, admin):
            await client.expect_silence()


def _case(**texts: str) -> peewee.Case:
    """One statement's new text per record id (`m<id>="text"`)."""
    return peewee.Case(Message.id, [(int(k[1:]), v) for k, v in texts.items()])


class _Rollback(Exception):
    pass


@both_databases
async def test_bulk_updates_move_several_records_at_once(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    async with (
        await Client.connect(server, user="bob") as ws,
        await Client.connect(server, user="bob") as everything,
    ):
        await ws.ok_subscribe("messages", filter="text ~ 'tea'")
        await everything.ok_subscribe("messages")
        a, b, c, d = (Message.create(text=t, author=alice) for t in ("tea a", "tea b", "c", "d"))
        assert [seen(e)[2] for e in await ws.events(2)] == [a.id, b.id]
        await everything.events(4)

        # One statement: a leaves, c enters, d changes outside, b changes inside.
        ids = (a.id, b.id, c.id, d.id)
        texts = {f"m{a.id}": "a", f"m{b.id}": "tea b!", f"m{c.id}": "tea c", f"m{d.id}": "d!"}
        Message.update(text=_case(**texts)).where(Message.id.in_(ids)).execute()
        frames = sorted(seen(e) for e in await ws.events(3))
        assert frames == sorted(
            [
                ("delete", "filter", a.id, "tea a"),
                ("update", None, b.id, "tea b!"),
                ("create", "filter", c.id, "tea c"),
            ]
        )
        assert sorted(seen(e)[:3] for e in await everything.events(4)) == sorted(
            ("update", None, i) for i in ids
        )

        # In a transaction with savepoints: what a rolled-back savepoint wrote is never
        # heard, and each statement is judged on the values it found.
        with database.atomic():
            Message.update(text="tea b2").where(Message.id == b.id).execute()
            try:
                with database.atomic():
                    Message.update(text="x").where(Message.id.in_((b.id, c.id))).execute()
                    raise _Rollback
            except _Rollback:
                pass
            with database.atomic():
                texts = {f"m{b.id}": "b", f"m{d.id}": "tea d"}
                Message.update(text=_case(**texts)).where(Message.id.in_((b.id, d.id))).execute()
        first, *rest = [seen(e) for e in await ws.events(3)]
        assert first == ("update", None, b.id, "tea b2")
        assert sorted(rest) == sorted(
            [("delete", "filter", b.id, "tea b2"), ("create", "filter", d.id, "tea d")]
        )
        assert len(await everything.events(3)) == 3
        await ws.expect_silence()
        await everything.expect_silence()


@both_databases
async def test_save_only_and_a_write_of_the_same_value(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages", filter="text ~ 'tea'")
        message = Message.create(text="tea", author=alice)
        outside = Message.create(text="coffee", author=alice)
        await ws.recv_type("event")

        message.text, message.author = "coffee", users["bob"]
        message.save(only=[Message.text])  # only the text is written, and judged
        left = await ws.recv_type("event")
        assert seen(left) == ("delete", "filter", message.id, "tea")
        assert left["record"]["author"] == alice.id
        message.text = "tea"
        message.save(only=[Message.text])
        back = await ws.recv_type("event")
        assert seen(back) == ("create", "filter", message.id, "tea")
        assert back["record"]["author"] == alice.id  # as stored: the author was not written

        # A write of the value the field has: no move, a plain update inside, silence outside.
        for record in (message, outside):
            Message.update(text=record.text).where(Message.id == record.id).execute()
        same = await ws.recv_type("event")
        assert seen(same) == ("update", None, message.id, "tea")
        assert same["changed"] == ["text"]
        await ws.expect_silence()


async def test_a_resumed_reader_hears_the_access_it_lost_and_gained(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, pattern = users["alice"], "test_live_views_posts"
    shown = Post.create(text="shown", published=True, owner=alice)
    hidden = Post.create(text="hidden", owner=alice)
    async with await Client.connect(server, user="bob") as live:
        await live.ok_subscribe(pattern)
        async with await Client.connect(server, user="bob") as away:
            await away.ok_subscribe(pattern)
            Post.update(text="shown!").where(Post.id == shown.id).execute()
            since = (await away.recv_type("event"))["id"]
        Post.update(published=False, text="SECRET-NEW").where(Post.id == shown.id).execute()
        Post.update(published=True).where(Post.id == hidden.id).execute()
        Post.update(text="hidden, still").where(Post.id == shown.id).execute()
        heard = await live.events(3)
        assert [seen(e) for e in heard] == [
            ("update", None, shown.id, "shown!"),
            ("delete", "access", shown.id, "shown!"),
            ("create", "access", hidden.id, "hidden"),
        ]
        async with await Client.connect(server, user="bob") as back:
            reply = await back.ok_subscribe(pattern, since=since)
            assert reply["recovered"] is True
            assert await back.events(2) == heard[1:]
            await back.expect_silence()
        await live.expect_silence()
