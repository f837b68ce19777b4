"""The SSE fallback over a real server with a real streaming HTTP client."""

from __future__ import annotations

import httpx
import pytest

from runtime.demo import Message, Note
from runtime.users import User
from tests.realtime_client import Client, login_cookie
from tests.sse_client import ids_of, stream
from tests.support import TIMEOUT, LiveServer, assert_error


async def test_stream_opening_and_events(server: LiveServer, users: dict[str, User]) -> None:
    async with stream(server, "?pattern=messages&pattern=notes&pattern=a/b/c") as sse:
        headers = sse.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"
        connected = await sse.frame()
        assert connected["type"] == "connected" and connected["user"] is None
        replies = [await sse.frame() for _ in range(3)]  # one per pattern, in order
        assert replies[0] == {
            "type": "subscribed",
            "id": 0,
            "pattern": "messages",
            "recovered": False,
        }
        assert (replies[1]["code"], replies[2]["code"]) == ("forbidden", "invalid_pattern")
        message = Message.create(text="over sse", author=users["alice"])
        event = await sse.frame()
        assert event["action"] == "create" and event["record"]["id"] == message.id


@pytest.mark.parametrize("realtime_settings", [{"heartbeat": 0.2}])
async def test_heartbeat_comments_and_no_response_timeout(server: LiveServer) -> None:
    server.app.config["RESPONSE_TIMEOUT"] = 0.5  # the stream must outlive it
    async with stream(server, "?pattern=messages") as sse:
        await sse.frame()
        await sse.frame()
        for _ in range(5):  # 1 s of pings: twice the response timeout
            ping = await sse.next(keep_comments=True)
            assert ping.comments == ["ping"] and ping.data == ""


@pytest.mark.parametrize("how", ["header", "query"])
async def test_resume_by_last_event_id(
    server: LiveServer, users: dict[str, User], how: str
) -> None:
    alice = users["alice"]
    first = Message.create(text="seen", author=alice)
    last_id = server.app.realtime_broadcast("mark", collection="messages")  # type: ignore[attr-defined]
    Message.create(text="missed 1", author=alice)
    Note.create(title="not for visitors", owner=alice)
    Message.create(text="missed 2", author=alice)
    query = "?pattern=messages&pattern=*"
    headers = {}
    if how == "header":
        headers["Last-Event-ID"] = last_id
    else:
        query += f"&last_event_id={last_id}"
    async with stream(server, query, headers=headers) as sse:
        await sse.frame()
        replies = [await sse.frame() for _ in range(2)]
        assert all(r["type"] == "subscribed" and r["recovered"] for r in replies)
        missed = [await sse.frame() for _ in range(2)]  # once each, in order
        assert [e["record"]["text"] for e in missed] == ["missed 1", "missed 2"]
        Message.create(text="live", author=alice)
        assert (await sse.frame())["record"]["text"] == "live"
    assert first.id


async def test_snapshot_on_the_stream(server: LiveServer, users: dict[str, User]) -> None:
    Message.create(text="there already", author=users["alice"])
    async with stream(server, "?pattern=messages&snapshot=1") as sse:
        await sse.frame()
        reply = await sse.frame()
        assert [r["text"] for r in reply["snapshot"]["records"]] == ["there already"]


async def test_changing_subscriptions_by_post(server: LiveServer, users: dict[str, User]) -> None:
    cookie = await login_cookie(server, "alice")
    async with (
        stream(server, cookie=cookie) as sse,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        connection_id = (await sse.frame())["connection_id"]
        reply = await http.post(
            "/realtime/subscribe",
            json={
                "connection_id": connection_id,
                "subscribe": ["notes", {"pattern": "messages", "id": "m"}, "x/y/z"],
            },
            headers={"Cookie": cookie},
        )
        assert reply.status_code == 200
        results = reply.json()["results"]
        assert [r["type"] for r in results] == ["subscribed", "subscribed", "error"]
        assert results[1]["id"] == "m" and results[2]["code"] == "invalid_pattern"
        Note.create(title="mine", owner=users["alice"])
        assert (await sse.frame())["record"]["title"] == "mine"
        reply = await http.post(
            "/realtime/subscribe",
            json={"connection_id": connection_id, "unsubscribe": ["notes"]},
            headers={"Cookie": cookie},
        )
        assert reply.json()["results"] == [{"type": "unsubscribed", "id": 0, "pattern": "notes"}]
        Note.create(title="unseen", owner=users["alice"])
        Message.create(text="seen", author=users["alice"])
        assert (await sse.frame())["record"]["text"] == "seen"


async def test_only_the_opening_session_may_change_a_stream(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, bob = await login_cookie(server, "alice"), await login_cookie(server, "bob")
    async with (
        stream(server, cookie=alice) as mine,
        stream(server) as anonymous,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        mine_id = (await mine.frame())["connection_id"]
        anonymous_stream = await anonymous.frame()
        anonymous_id = anonymous_stream["connection_id"]

        async def change(connection_id: str, cookie: str | None) -> httpx.Response:
            http.cookies.clear()  # only the Cookie header given here counts
            return await http.post(
                "/realtime/subscribe",
                json={"connection_id": connection_id, "subscribe": ["messages"]},
                headers={"Cookie": cookie} if cookie else {},
            )

        assert (await change(mine_id, bob)).status_code == 403
        assert (await change(mine_id, None)).status_code == 403
        # An anonymous stream never becomes a logged-in one.
        assert (await change(anonymous_id, alice)).status_code == 403
        http.cookies.clear()
        denied = await http.post(
            "/realtime/subscribe",
            json={
                "connection_id": anonymous_id,
                "stream_key": anonymous_stream["stream_key"],
                "subscribe": ["notes"],
            },
        )
        assert denied.json()["results"][0]["code"] == "forbidden"
        assert (await change("no-such-id", alice)).status_code == 404
        form = await http.post(
            "/realtime/subscribe",
            data={"connection_id": mine_id, "subscribe": "messages"},
            headers={"Cookie": alice},
        )
        assert form.status_code == 400 and form.json()["error"]["code"] == "bad_request"
        assert (await change(mine_id, alice)).status_code == 200


async def test_a_visitors_stream_is_changed_only_by_its_own_client(
    server: LiveServer, users: dict[str, User]
) -> None:
    """Issue 15, item 6: visitors have no session, so "the same session" passed for any
    visitor who knew another's connection id (app code gets it: `sender.connection_id`),
    and could subscribe, unsubscribe, emit and publish on that stream. The stream's key,
    which only its own client reads, is what binds its POSTs now."""
    cookie = await login_cookie(server, "alice")
    async with (
        stream(server) as victim,
        stream(server) as other,
        stream(server, cookie=cookie) as alices,
        await Client.connect(server) as websocket,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        victim_ids, other_ids = ids_of(await victim.frame()), ids_of(await other.frame())
        alice_ids = ids_of(await alices.frame())
        keys = {victim_ids["stream_key"], other_ids["stream_key"], alice_ids["stream_key"]}
        assert len(keys) == 3 and all(len(key) >= 24 for key in keys)  # 18 random bytes each
        assert victim_ids["connection_id"] not in keys
        assert "stream_key" not in websocket.connected  # a WebSocket needs none

        async def change(ids: dict[str, str], cookie: str | None = None) -> httpx.Response:
            http.cookies.clear()  # only the Cookie header given here counts
            return await http.post(
                "/realtime/subscribe",
                json={**ids, "subscribe": ["messages"]},
                headers={"Cookie": cookie} if cookie else {},
            )

        victim_id = victim_ids["connection_id"]
        for forged in (
            {"connection_id": victim_id},  # what was enough before
            {"connection_id": victim_id, "stream_key": other_ids["stream_key"]},
            {"connection_id": victim_id, "stream_key": ""},
            {"connection_id": victim_id, "stream_key": 12},
        ):
            error = assert_error(await change(forged), 403, "forbidden")
            assert "stream_key" in error["message"]
        Message.create(text="unseen", author=users["alice"])  # no forged POST subscribed
        assert (await change(victim_ids)).json()["results"][0]["type"] == "subscribed"
        Message.create(text="seen", author=users["alice"])
        assert (await victim.frame())["record"]["text"] == "seen"  # "unseen" never came

        # A session's stream: its session is enough, as it always was; a key it carries
        # must be its own.
        alice_id = alice_ids["connection_id"]
        assert (await change({"connection_id": alice_id}, cookie)).status_code == 200
        assert (await change(alice_ids, cookie)).status_code == 200
        wrong = {"connection_id": alice_id, "stream_key": victim_ids["stream_key"]}
        assert_error(await change(wrong, cookie), 403, "forbidden")
        assert_error(await change(alice_ids), 403, "forbidden")  # the key without the session


async def test_stream_needs_the_event_stream_accept_header(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        response = await http.get("/realtime/subscribe", headers={"Accept": "text/html"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
        response = await http.get(
            "/realtime/subscribe",
            headers={"Accept": "text/event-stream", "Origin": "https://evil.example"},
        )
        assert response.status_code == 403


async def test_logout_ends_the_stream_and_cleanup(server: LiveServer) -> None:
    cookie = await login_cookie(server, "alice")
    async with (
        stream(server, "?pattern=messages", cookie=cookie) as sse,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        await sse.frame()
        await sse.frame()
        await http.post("/auth/logout", headers={"Cookie": cookie})
        closing = await sse.frame()
        assert closing == {"type": "close", "code": 4401, "reason": "session ended"}
        with pytest.raises(EOFError):
            await sse.next()
    assert await server.run(server.broker.connections.wait_idle(TIMEOUT))
    assert server.broker.registry.is_empty()


async def test_client_disconnect_cleans_up(server: LiveServer) -> None:
    async with stream(server, "?pattern=messages&pattern=*") as sse:
        await sse.frame()
        assert len(server.broker.connections) == 1
    assert await server.run(server.broker.connections.wait_idle(TIMEOUT))
    assert server.broker.registry.is_empty()


async def test_post_items_are_subscriptions_whatever_else_they_carry(server: LiveServer) -> None:
    """An item with its own "type" used to become an AssertionError and a 500."""
    async with (
        stream(server) as sse,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        stream_id = ids_of(await sse.frame())
        reply = await http.post(
            "/realtime/subscribe",
            json={
                **stream_id,
                "subscribe": [
                    {"type": "ping"},
                    {"type": "unsubscribe", "pattern": "messages", "id": "u"},
                    ["not", "an", "object"],
                    {"pattern": "messages", "snapshot": {"sort": "-nope"}},
                ],
            },
        )
        assert reply.status_code == 200, reply.text
        results = reply.json()["results"]
        assert [(r["type"], r.get("code")) for r in results] == [
            ("error", "bad_request"),
            ("subscribed", None),  # "type" is not the item's business: a subscription
            ("error", "bad_request"),
            ("error", "bad_request"),
        ]
        assert results[1]["id"] == "u"
        too_many = await http.post(
            "/realtime/subscribe",
            json={**stream_id, "subscribe": ["messages"] * 101},
        )
        assert too_many.status_code == 400


async def test_the_same_pattern_twice_is_answered_once(
    server: LiveServer, users: dict[str, User]
) -> None:
    Message.create(text="there", author=users["alice"])
    query = "?snapshot=1" + "&pattern=messages" * 3 + "&pattern=messages/*"
    async with stream(server, query) as sse:
        await sse.frame()
        replies = [await sse.frame() for _ in range(4)]
        assert replies[0]["type"] == "subscribed" and len(replies[0]["snapshot"]["records"]) == 1
        assert all(r["type"] == "error" and r["code"] == "bad_request" for r in replies[1:])
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        response = await http.get(
            "/realtime/subscribe?" + "&".join(["pattern=messages"] * 101),
            headers={"Accept": "text/event-stream"},
        )
        assert response.status_code == 400


async def test_each_item_of_a_post_counts_against_the_rate_limit(server: LiveServer) -> None:
    """One POST of many snapshot items used to count as one message."""
    async with (
        stream(server, "?" + "&".join(f"pattern=messages/{i}" for i in range(30))) as sse,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        stream_id = ids_of(await sse.frame())
        items = [{"pattern": f"messages/{i}", "snapshot": True} for i in range(30, 90)]
        first = await http.post("/realtime/subscribe", json={**stream_id, "subscribe": items})
        assert first.status_code == 200  # 30 in the query and 60 here: 90 of 100
        second = await http.post(
            "/realtime/subscribe",
            json={**stream_id, "subscribe": items[:20]},
        )
        assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
