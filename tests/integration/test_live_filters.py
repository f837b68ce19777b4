"""Live subscriptions with a filter expression, over a real server, on SQLite and
PostgreSQL: WebSocket, SSE query and SSE POST subscribers hear exactly the events of the
records `GET …/records?filter=` lists for the same expression; a snapshot with a filter
is the API's filtered list; a bad filter is an error frame with its position, and a
hidden field is refused as an unknown one."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any
from urllib.parse import urlencode

import httpx

from runtime.demo import Message
from runtime.users import User
from tests.databases import both_databases
from tests.docs_apps import ROOT, blocks
from tests.realtime_client import Client
from tests.sse_client import SSEStream, ids_of, stream
from tests.support import TIMEOUT, LiveServer, assert_error

RECORDS = "/api/collections/messages/records"
DOCS = ROOT / "docs/protocol.md"
# `~` folds case; the date is compared as a date, its offset applied (not as text: as
# text, '2024-06-15T00:00:00' < '2024-06-01T02:00:00+02:00' is false but so is the time).
EXPRESSION = "text ~ 'tea' && created_at >= '2024-06-01T02:00:00+02:00'"


def _at(day: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(day)


async def _api_ids(http: httpx.AsyncClient, expression: str) -> set[int]:
    reply = await http.get(RECORDS, params={"filter": expression, "per_page": 100})
    assert reply.status_code == 200, reply.text
    return {item["id"] for item in reply.json()["items"]}


async def _ws_until(client: Client, last: int) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    while not seen or seen[-1] != ("create", last):
        event = await client.recv_type("event")
        seen.append((event["action"], event["record"]["id"]))
    return seen


async def _sse_until(sse: SSEStream, last: int) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    while not seen or seen[-1] != ("create", last):
        event = await sse.frame()
        assert event["type"] == "event", event
        seen.append((event["action"], event["record"]["id"]))
    return seen


@both_databases
async def test_subscribers_hear_what_the_api_lists(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, query = users["alice"], urlencode({"pattern": "messages", "filter": EXPRESSION})
    async with (
        await Client.connect(server, user="bob") as ws,
        stream(server, f"?{query}") as by_query,
        stream(server) as by_post,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        await ws.ok_subscribe("messages", filter=EXPRESSION)
        assert (await by_query.frame())["type"] == "connected"
        assert (await by_query.frame())["type"] == "subscribed"
        post = {
            **ids_of(await by_post.frame()),
            "subscribe": [{"pattern": "messages", "filter": EXPRESSION}],
        }
        reply = await http.post("/realtime/subscribe", json=post)
        assert reply.json()["results"][0]["type"] == "subscribed", reply.text
        bad = {**post, "subscribe": [{"pattern": "messages/1", "filter": "text ~ 'a' ||"}]}
        (refused,) = (await http.post("/realtime/subscribe", json=bad)).json()["results"]
        assert (refused["code"], refused["reason"], refused["position"]) == (
            "bad_request",
            "filter",
            13,
        )

        def write(text: str, day: str) -> Message:
            message: Message = Message.create(text=text, author=alice, created_at=_at(day))
            return message

        created = [
            write("Tea at five", "2024-07-01T00:00:00"),  # in
            write("tea notes", "2024-01-01T00:00:00"),  # too early
            write("Coffee", "2024-08-01T00:00:00"),  # no tea
            write("TEA time", "2024-06-01T00:00:00"),  # at the bound, once offset: in
            write("tea, early", "2024-05-31T23:59:59"),  # a second before: out
        ]
        updated = created[:2]
        for message in updated:
            message.text += "!"
            message.save()
        matching = await _api_ids(http, EXPRESSION)
        ids = [m.id for m in created]
        assert matching == {ids[0], ids[3]}  # the test means something
        deleted = [created[3], created[2]]
        for message in deleted:
            message.delete_instance()
        last = write("tea at last", "2025-01-01T00:00:00").id
        assert await _api_ids(http, EXPRESSION) == (matching - {ids[3]}) | {last}

        expected = (
            [("create", i) for i in ids if i in matching]
            + [("update", m.id) for m in updated if m.id in matching]
            + [("delete", m.id) for m in deleted if m.id in matching]
            + [("create", last)]
        )
        assert await _ws_until(ws, last) == expected
        assert await _sse_until(by_query, last) == expected
        assert await _sse_until(by_post, last) == expected


@both_databases
async def test_a_snapshot_with_a_filter_is_the_apis_filtered_list(
    server: LiveServer, users: dict[str, User]
) -> None:
    for i in range(12):
        text = ("Tea " if i % 3 else "coffee ") + str(i)
        Message.create(text=text, author=users["alice"], created_at=_at(f"2024-06-{i + 1:02}"))
    expression = "text ~ 'TEA' && created_at < '2024-06-10' || text = 'coffee 9'"
    async with (
        await Client.connect(server) as ws,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        reply = await ws.ok_subscribe(
            "messages", filter=expression, snapshot={"sort": "created_at"}
        )
        listed = await http.get(RECORDS, params={"filter": expression, "sort": "created_at"})
        items: list[dict[str, Any]] = listed.json()["items"]
        assert len(items) == 7
        assert reply["snapshot"]["records"] == items and reply["snapshot"]["complete"]


@both_databases
async def test_bad_and_hidden_filters_are_refused_and_the_connection_lives(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with await Client.connect(server, user="root") as ws:
        bad = await ws.subscribe("messages", filter="text ~ 'a' &&")
        assert (bad["type"], bad["code"], bad["reason"], bad["position"]) == (
            "error",
            "bad_request",
            "filter",
            13,
        )
        assert "position 13" in bad["message"]
        hidden = await ws.subscribe("users", filter="password_hash ~ 'a'")
        unknown = await ws.subscribe("users", filter="password_hasj ~ 'a'")
        assert (hidden["reason"], hidden["position"]) == ("filter", 0)
        assert hidden["message"].replace("hash", "hasj") == unknown["message"]
        wildcard = await ws.subscribe("mess*", filter="text = 'a'")
        assert wildcard["reason"] == "filter"
        # the connection lives on, and the refused subscriptions did not register
        await ws.ok_subscribe("messages", filter="text = 'seen'")
        Message.create(text="unseen", author=users["alice"])
        Message.create(text="seen", author=users["alice"])
        assert (await ws.recv_type("event"))["record"]["text"] == "seen"
        await ws.expect_silence()


async def test_a_resumed_subscription_replays_only_what_its_filter_passes(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, expression = users["alice"], "text ~ 'tea' && created_at > '2024-06-01'"
    async with await Client.connect(server) as ws:
        await ws.ok_subscribe("messages", filter=expression)
        Message.create(text="tea", author=alice, created_at=_at("2024-07-01T00:00:00"))
        since = (await ws.recv_type("event"))["id"]
    Message.create(text="Tea, missed", author=alice, created_at=_at("2024-07-02T00:00:00"))
    Message.create(text="tea, too old", author=alice, created_at=_at("2024-05-02T00:00:00"))
    Message.create(text="coffee", author=alice, created_at=_at("2024-07-03T00:00:00"))
    async with await Client.connect(server) as ws:
        reply = await ws.ok_subscribe("messages", filter=expression, since=since)
        assert reply["recovered"] is True
        assert (await ws.recv_type("event"))["record"]["text"] == "Tea, missed"
        await ws.expect_silence()


async def test_the_protocol_docs_examples(server: LiveServer, users: dict[str, User]) -> None:
    sent, replies = blocks("docs/protocol.md", "json", section="Filters")
    async with await Client.connect(server) as ws:
        for frame, reply in zip(sent.splitlines(), replies.splitlines(), strict=True):
            await ws.send(json.loads(frame))
            assert await ws.recv() == json.loads(reply)
        Message.create(text="Tea", author=users["alice"], created_at=_at("2024-06-02T00:00:00"))
        Message.create(text="Tea", author=users["alice"], created_at=_at("2024-05-02T00:00:00"))
        assert (await ws.recv_type("event"))["record"]["created_at"] == "2024-06-02T00:00:00"
        await ws.expect_silence()


async def test_the_docs_example_of_a_record_leaving_and_entering_a_view(
    server: LiveServer, users: dict[str, User]
) -> None:
    (frames,) = blocks("docs/protocol.md", "json", section="Records entering and leaving a view")
    left, entered = [json.loads(line) for line in frames.splitlines()]
    alice = users["alice"]
    message = Message.create(
        text="tea at five", author=alice, created_at=_at(left["record"]["created_at"])
    )
    async with await Client.connect(server) as ws:
        await ws.ok_subscribe("messages", filter="text ~ 'tea'")
        for text in ("coffee at five", "tea at six"):
            message.text = text
            message.save()
        for shown in (left, entered):
            event = await ws.recv_type("event")
            record = {**shown["record"], "id": message.id, "author": alice.id}
            assert event == {
                **shown,
                "id": event["id"],
                "topic": f"messages/{message.id}",
                "record": record,
            }
        await ws.expect_silence()


async def test_the_sse_query_example(server: LiveServer, users: dict[str, User]) -> None:
    (query,) = re.findall(r"`(\?pattern=messages&filter=[^`]*)`", DOCS.read_text())
    async with stream(server, query) as sse:
        await sse.frame()
        assert (await sse.frame())["type"] == "subscribed"
        Message.create(text="coffee", author=users["alice"])
        Message.create(text="TEA", author=users["alice"])
        assert (await sse.frame())["record"]["text"] == "TEA"
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        twice = await http.get(
            f"/realtime/subscribe{query}&filter=text%20%3D%20'a'",
            headers={"Accept": "text/event-stream"},
        )
        assert_error(twice, 400, "bad_request")


async def test_one_records_subscription_with_a_filter(
    server: LiveServer, users: dict[str, User]
) -> None:
    message = Message.create(text="Tea", author=users["alice"])
    async with await Client.connect(server) as ws:
        reply = await ws.ok_subscribe(
            f"messages/{message.id}", filter="text ~ 'tea'", snapshot=True
        )
        assert [r["text"] for r in reply["snapshot"]["records"]] == ["Tea"]
        for text in ("coffee", "more tea", "more tea!"):
            message.text = text
            message.save()
        # It leaves the filter (a delete of what was seen), comes back (a create), changes.
        left, back, changed = [await ws.recv_type("event") for _ in range(3)]
        assert (left["action"], left["reason"], left["record"]["text"]) == (
            "delete",
            "filter",
            "Tea",
        )
        assert (back["action"], back["reason"], back["record"]["text"]) == (
            "create",
            "filter",
            "more tea",
        )
        assert (changed["action"], changed["record"]["text"]) == ("update", "more tea!")
        assert "reason" not in changed
        await ws.expect_silence()
        other = await ws.ok_subscribe(f"messages/{message.id}", filter="text = 'x'", snapshot=True)
        assert other["snapshot"]["records"] == []  # a re-subscribe replaces the filter
