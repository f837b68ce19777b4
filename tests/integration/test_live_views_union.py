"""Live views that stay true (issue 16) for a connection with several subscriptions on a
record (its view is their union), with `expand` on the frames of a record entering or
leaving a view (a delete's expanded by the keys as they were), and with the fields each
reader sees (`visible_fields`, hidden fields)."""

from __future__ import annotations

from typing import Any

from runtime.demo import Message
from runtime.users import User
from tests.expand_models import Task
from tests.realtime_client import Client
from tests.support import LiveServer

TASKS = "test_expand_tasks"


def _edit(message: Message, **values: Any) -> None:
    for name, value in values.items():
        setattr(message, name, value)
    message.save()


def _heard(event: dict[str, Any]) -> tuple[str, str | None, str]:
    assert event["type"] == "event", event
    return event["action"], event.get("reason"), event["record"]["text"]


async def test_a_connections_view_is_the_union_of_its_subscriptions(
    server: LiveServer, users: dict[str, User]
) -> None:
    message = Message.create(text="tea", author=users["alice"])
    async with await Client.connect(server, user="bob") as ws:
        await ws.ok_subscribe("messages", filter="text ~ 'tea'")
        await ws.ok_subscribe(f"messages/{message.id}", filter="text ~ 'coffee'")
        _edit(message, text="coffee")  # out of one, into the other: still in view
        _edit(message, text="cocoa")  # out of both
        _edit(message, text="decaf")  # outside
        _edit(message, text="tea and coffee")  # into both: one create
        _edit(message, text="tea")  # out of one, still in the other
        heard = [_heard(e) for e in await ws.events(4)]
        assert heard == [
            ("update", None, "coffee"),
            ("delete", "filter", "coffee"),
            ("create", "filter", "tea and coffee"),
            ("update", None, "tea"),
        ]
        await ws.expect_silence()


async def test_expand_on_records_entering_and_leaving_a_view(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    message = Message.create(text="hi", author=alice)
    async with (
        await Client.connect(server) as alices_view,
        await Client.connect(server) as bobs_view,
    ):
        await alices_view.ok_subscribe("messages", filter=f"author = {alice.id}", expand=["author"])
        await bobs_view.ok_subscribe("messages", filter=f"author = {bob.id}", expand=["author"])
        _edit(message, author=bob)
        left = await alices_view.recv_type("event")
        assert (left["action"], left["reason"], left["record"]["author"]) == (
            "delete",
            "filter",
            alice.id,
        )
        assert left["record"]["expand"]["author"]["username"] == "alice"  # as it was
        entered = await bobs_view.recv_type("event")
        assert (entered["action"], entered["reason"]) == ("create", "filter")
        assert entered["record"]["expand"]["author"]["username"] == "bob"
        await alices_view.expect_silence()
        await bobs_view.expect_silence()


async def test_frames_of_records_moving_show_only_the_fields_a_reader_sees(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    parent = Task.create(title="parent", author=alice)
    task = Task.create(title="tea", author=alice, parent=parent, reviewer=alice)
    async with (
        await Client.connect(server) as visitor,
        await Client.connect(server, user="bob") as bob,
    ):
        for client in (visitor, bob):
            await client.ok_subscribe(TASKS, filter="title ~ 'tea'")
        task.title = "coffee"
        task.save()
        task.title = "tea again"
        task.save()
        everything = {"id", "title", "author", "project", "parent"}  # never the reviewer
        for client, fields in ((visitor, everything - {"parent"}), (bob, everything)):
            left, back = await client.events(2)
            assert (left["action"], left["record"]["title"]) == ("delete", "tea")
            assert (back["action"], back["record"]["title"]) == ("create", "tea again")
            assert set(left["record"]) == set(back["record"]) == fields


async def test_an_upsert_is_a_create_it_brings_records_in_never_out(
    server: LiveServer, users: dict[str, User]
) -> None:
    """As docs/protocol.md says: an upsert is announced as a create (docs/events.md),
    judged on the record as it is, with no values from before."""
    alice = users["alice"]
    inside, outside = (Message.create(text=t, author=alice) for t in ("tea", "coffee"))
    async with await Client.connect(server) as ws:
        await ws.ok_subscribe("messages", filter="text ~ 'tea'")
        for message, text in ((inside, "cocoa"), (outside, "tea now")):
            upsert = Message.insert(id=message.id, text=text, author=alice)
            upsert.on_conflict(conflict_target=[Message.id], update={Message.text: text}).execute()
        entered = await ws.recv_type("event")
        assert _heard(entered) == ("create", None, "tea now")
        await ws.expect_silence()  # the record upserted out of the view: nothing
