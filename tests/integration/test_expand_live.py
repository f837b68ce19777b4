"""`expand` on live subscriptions, over a real server: snapshots carry it as the records
API does, live events carry it read once per event (not per subscriber), resume replays
it alike, SSE (query and POST) takes it, and a name the user may not expand is an error
frame with `reason: "expand"`."""

from __future__ import annotations

import datetime
import json
from typing import Any
from urllib.parse import urlencode

import httpx

from runtime.demo import Message
from runtime.users import User
from tests.databases import both_databases
from tests.docs_apps import blocks
from tests.expand_models import TASKS, Project, Task, logged_queries
from tests.realtime_client import Client
from tests.sse_client import ids_of, stream
from tests.support import TIMEOUT, LiveServer

PATTERN = "test_expand_tasks"


def _public(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "is_admin": user.is_admin}


@both_databases
async def test_snapshot_events_and_resume_carry_expand(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    mine, theirs = Project.create(name="mine", owner=alice), Project.create(name="t", owner=bob)
    for i in range(3):
        Task.create(title=f"old {i}", author=(alice, bob)[i % 2], project=(mine, theirs)[i % 2])
    expand = ["author", "project"]
    async with (
        await Client.connect(server, user="alice") as ws,
        await Client.connect(server, user="bob") as other,
        await Client.connect(server) as visitor,
        await Client.connect(server, user="alice") as plain,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        reply = await ws.ok_subscribe(PATTERN, expand=expand, snapshot=True)
        await other.ok_subscribe(PATTERN, expand=expand)
        await visitor.ok_subscribe(PATTERN, expand=["author"])
        await plain.ok_subscribe(PATTERN)
        cookie = {"Cookie": await _cookie(server, "alice")}
        listed = await http.get(
            TASKS, params={"expand": "author,project", "sort": "-id"}, headers=cookie
        )
        assert reply["snapshot"]["records"] == listed.json()["items"]
        assert reply["snapshot"]["records"][0]["expand"]["project"]["name"] == "mine"

        with logged_queries() as queries:
            task = Task.create(title="new", author=bob, project=mine)
            seen = [await c.recv_type("event") for c in (ws, other, visitor, plain)]
        related = [sql for sql in queries.sql if "IN (" in sql.upper()]
        assert len(related) == 2, related  # users and projects, once each for 3 readers
        mine_shown = {"id": mine.id, "name": "mine", "owner": alice.id}
        assert seen[0]["record"]["expand"] == {"author": _public(bob), "project": mine_shown}
        assert seen[1]["record"]["expand"] == {"author": _public(bob)}  # not bob's project
        assert seen[2]["record"]["expand"] == {"author": _public(bob)}
        assert "expand" not in seen[3]["record"]
        # A renamed user shows renamed in the next event (their rename is an event of
        # users, which these subscribers do not hear).
        User.update(username="robert").where(User.id == bob.id).execute()
        task.title = "edited"
        task.save()
        event = await ws.recv_type("event")
        assert (event["action"], event["changed"]) == ("update", ["title"])
        assert event["record"]["expand"]["author"]["username"] == "robert"
        since = event["id"]

    Task.create(title="missed", author=alice, project=None)
    async with await Client.connect(server, user="alice") as ws:
        reply = await ws.ok_subscribe(PATTERN, expand=expand, since=since)
        assert reply["recovered"]
        event = await ws.recv_type("event")
        assert event["record"]["title"] == "missed"
        assert event["record"]["expand"] == {"author": _public(alice)}  # no project


async def _cookie(server: LiveServer, user: str) -> str:
    from tests.realtime_client import login_cookie

    return await login_cookie(server, user)


async def test_refused_names_are_error_frames(server: LiveServer, users: dict[str, User]) -> None:
    async with await Client.connect(server) as visitor:
        for pattern, names, field in [
            (PATTERN, ["nope"], "nope"),
            (PATTERN, ["reviewer"], "reviewer"),  # hidden
            (PATTERN, ["author", "parent"], "parent"),  # hidden from visitors
            (PATTERN, ["title"], "title"),  # not a foreign key
            ("*", ["author"], "author"),  # no one model
        ]:
            reply = await visitor.subscribe(pattern, expand=names)
            assert (reply["type"], reply["code"], reply["reason"], reply["field"]) == (
                "error",
                "bad_request",
                "expand",
                field,
            ), reply
        reply = await visitor.subscribe(PATTERN, expand="author")  # a list, not text
        assert (reply["type"], reply["code"]) == ("error", "bad_request")
        assert "reason" not in reply


async def test_two_subscriptions_get_one_frame_with_both_expands(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    project = Project.create(name="p", owner=alice)
    task = Task.create(title="t", author=alice, project=project)
    async with await Client.connect(server, user="alice") as ws:
        await ws.ok_subscribe(PATTERN, expand=["author"])
        await ws.ok_subscribe(f"{PATTERN}/{task.id}", expand=["project"])
        task.title = "t2"
        task.save()
        event = await ws.recv_type("event")
        assert set(event["record"]["expand"]) == {"author", "project"}
        await ws.expect_silence()  # one frame, not one per subscription


async def test_sse_query_and_post_take_expand(server: LiveServer, users: dict[str, User]) -> None:
    alice = users["alice"]
    Task.create(title="before", author=alice)
    query = urlencode({"pattern": PATTERN, "expand": "author", "snapshot": "1"})
    async with (
        stream(server, f"?{query}") as by_query,
        stream(server) as by_post,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        assert (await by_query.frame())["type"] == "connected"
        subscribed = await by_query.frame()
        (record,) = subscribed["snapshot"]["records"]
        assert record["expand"] == {"author": _public(alice)}
        item: dict[str, Any] = {"pattern": PATTERN, "expand": ["author"]}
        post: dict[str, Any] = {**ids_of(await by_post.frame()), "subscribe": [item]}
        reply = await http.post("/realtime/subscribe", json=post)
        assert reply.json()["results"][0]["type"] == "subscribed", reply.text
        item["expand"] = ["reviewer"]
        (refused,) = (await http.post("/realtime/subscribe", json=post)).json()["results"]
        assert (refused["reason"], refused["field"]) == ("expand", "reviewer")
        Task.create(title="after", author=alice)
        for sse in (by_query, by_post):
            event = await sse.frame()
            assert event["record"]["expand"] == {"author": _public(alice)}, event


async def test_the_docs_expand_examples(server: LiveServer, users: dict[str, User]) -> None:
    """docs/api.md's record with its author and docs/protocol.md's frames, as served."""
    alice = users["alice"]
    at = datetime.datetime(2024, 6, 1, 12)
    async with await Client.connect(server) as ws:
        requests, replies = blocks("docs/protocol.md", "json", section="Expand")
        expected = [json.loads(line) for line in replies.splitlines()]
        for line, reply in zip(requests.splitlines(), expected, strict=False):
            await ws.send(json.loads(line))
            assert await ws.recv() == reply
        message = Message.create(text="hi", author=alice, created_at=at)
        event = await ws.recv_type("event")
        shown = expected[2]
        assert event == {
            **shown,
            "id": event["id"],
            "topic": f"messages/{message.id}",
            "record": {**shown["record"], "id": message.id},
        }
    first = Message.create(text="hello", author=alice, created_at=at)
    (record,) = blocks("docs/api.md", "json", section="Expand")
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        got = await http.get(f"/api/collections/messages/records/{first.id}?expand=author")
        assert got.json() == {**json.loads(record), "id": first.id}


async def test_a_related_record_gone_by_delivery_is_absent(
    server: LiveServer, users: dict[str, User]
) -> None:
    """A resume reads the related records when it replays: one deleted since the event
    was written is absent from its `expand`, as a dangling key is in the API."""
    alice = users["alice"]
    parent = Task.create(title="parent", author=alice)
    async with await Client.connect(server, user="alice") as ws:
        await ws.ok_subscribe(PATTERN, expand=["parent"])
        child = Task.create(title="child", author=alice, parent=parent)
        live = await ws.recv_type("event")
        assert live["record"]["expand"]["parent"]["title"] == "parent"  # there, while it is
        since = live["id"]
    again = Task.create(title="again", author=alice, parent=parent)
    Task.update(parent=None).where(Task.parent == parent.id).execute()
    parent.delete_instance()
    async with await Client.connect(server, user="alice") as ws:
        reply = await ws.ok_subscribe(PATTERN, expand=["parent"], since=since)
        assert reply["recovered"]
        created = await ws.recv_type("event")
        assert (created["action"], created["record"]["id"]) == ("create", again.id)
        assert created["record"]["parent"] == parent.id and created["record"]["expand"] == {}
        ids = {(e["action"], e["record"]["id"]) for e in await ws.events(3)}
        assert ids == {("update", child.id), ("update", again.id), ("delete", parent.id)}
