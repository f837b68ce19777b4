"""The JavaScript client over SSE as a visitor, in Chromium: what it changes by POST (a
filtered subscription, a snapshot, an unsubscribe) carries its stream's key, which a
visitor's stream needs (issue 15, item 6), and works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, Request

from runtime.demo import Message
from runtime.users import User
from tests.support import LiveServer

SCRIPT = """async (id) => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient({ transport: "sse" });
    client.on("connected", (frame) => { window.keys.push(frame.stream_key); });
    window.seen = [];
    const filtered = client.subscribe("messages", (event) => {
        window.seen.push(event.record.text);
    }, { filter: { text: "for visitors" } });
    await filtered.ready;
    const snapshot = client.subscribe(`messages/${id}`, () => {}, { snapshot: true });
    const loaded = await snapshot.ready;
    window.dropSnapshot = snapshot;
    return { transport: client.transport, user: client.user,
             snapshot: loaded.snapshot.records.map((record) => record.text) };
}"""


def test_a_visitors_client_carries_its_streams_key(
    server: LiveServer, new_page: Callable[..., Page], users: dict[str, User]
) -> None:
    first = Message.create(text="first", author=users["alice"])
    page = new_page(without_websocket=True)
    posts: list[Any] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/realtime/subscribe"):
            posts.append(request.post_data_json)

    page.on("request", on_request)
    page.goto(f"{server.url}/login")
    page.evaluate("window.keys = []")
    result = page.evaluate(SCRIPT, first.id)
    assert result == {"transport": "sse", "user": None, "snapshot": ["first"]}
    Message.create(text="not this one", author=users["alice"])
    Message.create(text="for visitors", author=users["alice"])
    page.wait_for_function("window.seen.length >= 1")
    assert page.evaluate("window.seen") == ["for visitors"]  # the POSTed filter holds

    with page.expect_response(lambda r: r.request.method == "POST") as unsubscribed:
        page.evaluate("window.dropSnapshot()")  # an unsubscribe: a POST as well
    assert unsubscribed.value.status == 200

    (key,) = page.evaluate("window.keys")
    assert isinstance(key, str) and key
    kinds = [[kind for kind in ("subscribe", "unsubscribe") if post.get(kind)] for post in posts]
    assert kinds == [["subscribe"], ["subscribe"], ["unsubscribe"]], posts
    assert all(post["stream_key"] == key for post in posts), posts
