"""Live views that stay true (issue 16) over SSE, with a real streaming client: JSON
streams (a filter in the query, or subscribed by POST) hear a record leave their filter
as a delete and come back as a create, with the reason; an HTML stream (`format=html`)
swaps it out (`messages:delete:<id>`) and back in (`messages:create`, rendered whole, its
author expanded)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from quart import Blueprint, Quart

from runtime import Realtime, create_app
from runtime.config import Config
from runtime.db import database
from runtime.demo import Message
from runtime.users import User
from tests.realtime_client import login_cookie
from tests.sse_client import SSEMessage, SSEStream, ids_of, stream
from tests.support import TIMEOUT, LiveServer

VIEW = "text ~ 'tea'"
FRAGMENT = (
    '<li id="message-{{ record_id }}">{{ record.expand.author.username }}: {{ record.text }}</li>'
)


@pytest.fixture
def app(config: Config, tmp_path: Path) -> Iterator[Quart]:
    """The runtime's app with a fragment for messages (as test_sse_html.py's)."""
    folder = tmp_path / "fragment-templates"
    folder.mkdir()
    (folder / "message.html").write_text(FRAGMENT)
    app = create_app(config, root_path=tmp_path)
    app.register_blueprint(Blueprint("fragments", __name__, template_folder=str(folder)))
    Realtime.of(app).fragment("messages", "message.html")
    yield app
    database.close()


def _edit(message: Message, text: str) -> None:
    message.text = text
    message.save()


def _after(server: LiveServer) -> None:
    """A custom event after the writes: the next frame after theirs, if nothing else."""
    server.app.realtime_broadcast("after", {}, collection="messages")  # type: ignore[attr-defined]


def _heard(frame: dict[str, Any]) -> tuple[str, str | None, str]:
    assert frame["type"] == "event", frame
    return frame["action"], frame.get("reason"), frame["record"]["text"]


async def test_json_streams_hear_records_leave_and_enter_their_filter(
    server: LiveServer, users: dict[str, User]
) -> None:
    query = urlencode({"pattern": "messages", "filter": VIEW})
    async with (
        stream(server, f"?{query}") as by_query,
        stream(server) as by_post,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        assert (await by_query.frame())["type"] == "connected"
        assert (await by_query.frame())["type"] == "subscribed"
        post = {
            **ids_of(await by_post.frame()),
            "subscribe": [{"pattern": "messages", "filter": VIEW}],
        }
        reply = await http.post("/realtime/subscribe", json=post)
        assert reply.json()["results"][0]["type"] == "subscribed", reply.text

        message = Message.create(text="tea", author=users["alice"])
        outside = Message.create(text="coffee", author=users["alice"])
        _edit(message, "cocoa")
        _edit(outside, "decaf")
        _edit(message, "tea again")
        _edit(message, "tea again!")
        _after(server)
        for sse in (by_query, by_post):
            created, left, back, updated = [await sse.frame() for _ in range(4)]
            assert _heard(created) == ("create", None, "tea")
            assert _heard(left) == ("delete", "filter", "tea")
            assert left["record"] == created["record"]
            assert _heard(back) == ("create", "filter", "tea again")
            assert _heard(updated) == ("update", None, "tea again!")
            assert {f["record"]["id"] for f in (created, left, back, updated)} == {message.id}
            assert (await sse.frame())["name"] == "after"  # and nothing between


@contextlib.asynccontextmanager
async def _html_stream(server: LiveServer, query: str, cookie: str) -> AsyncIterator[SSEStream]:
    async with stream(server, f"?{query}", cookie=cookie) as sse:
        assert (await sse.frame())["type"] == "connected"
        assert (await sse.frame())["type"] == "subscribed"
        yield sse


async def test_an_html_stream_swaps_records_out_and_in(
    server: LiveServer, users: dict[str, User]
) -> None:
    query = urlencode({"pattern": "messages", "filter": VIEW, "expand": "author", "format": "html"})
    async with _html_stream(server, query, await login_cookie(server, "bob")) as sse:
        message = Message.create(text="tea", author=users["alice"])
        Message.create(text="coffee", author=users["alice"])
        _edit(message, "coffee")
        _edit(message, "tea <again>")
        _edit(message, "tea!")
        _after(server)
        created, left, back, updated = [await sse.next() for _ in range(4)]
        assert (await sse.frame())["name"] == "after"  # and nothing between

    def fragment(event: SSEMessage, text: str) -> str:
        assert event.id is not None  # an event id, to resume from
        return event.data.replace(text, "…")

    item = f'<li id="message-{message.id}">alice: …</li>'
    assert (created.event, fragment(created, "tea")) == ("messages:create", item)
    assert (left.event, left.data) == (
        f"messages:delete:{message.id}",
        f"<!-- messages/{message.id} deleted -->",
    )
    assert (back.event, fragment(back, "tea &lt;again&gt;")) == ("messages:create", item)
    assert (updated.event, fragment(updated, "tea!")) == (f"messages:update:{message.id}", item)
