"""SSE streams of HTML fragments (`format=html`, for htmx's SSE extension) over a real
server with a real streaming client: names, ids, escaping, visibility and failures."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from quart import Blueprint, Quart

from runtime import Realtime, create_app
from runtime.config import Config
from runtime.db import database
from runtime.demo import Message, Note
from runtime.users import User
from tests.realtime_client import api_session, login_cookie
from tests.sse_client import SSEMessage, SSEStream
from tests.sse_client import stream as json_stream
from tests.support import TIMEOUT, LiveServer

TEMPLATES = {
    "message.html": '<li id="message-{{ record_id }}">{{ record.expand.author.username }}: '
    "{{ record.text }} ({{ action }} {{ topic }})</li>",
    "note.html": "<p>{{ record.title }}</p>",
    "broken.html": "{{ record.nothing.deeper }}",
}


@pytest.fixture
def app(config: Config, tmp_path: Path) -> Iterator[Quart]:
    folder = tmp_path / "fragment-templates"
    folder.mkdir()
    for name, text in TEMPLATES.items():
        (folder / name).write_text(text)
    app = create_app(config, root_path=tmp_path)
    app.register_blueprint(Blueprint("fragments", __name__, template_folder=str(folder)))
    realtime = Realtime.of(app)
    realtime.fragment("messages", "message.html")
    realtime.fragment("notes", "note.html")
    yield app
    database.close()


@contextlib.asynccontextmanager
async def stream(
    server: LiveServer, query: str, cookie: str | None = None
) -> AsyncIterator[SSEStream]:
    headers = {"Accept": "text/event-stream", **({"Cookie": cookie} if cookie else {})}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        http.stream("GET", f"/realtime/subscribe{query}", headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        sse = SSEStream(response)
        assert (await sse.next()).retry == 2000
        assert (await sse.frame())["type"] == "connected"
        yield sse


async def next_named(sse: SSEStream, prefix: str) -> SSEMessage:
    """The next message named `prefix...`: the JSON frames between are skipped."""
    while True:
        message = await sse.next()
        if message.event.startswith(prefix):
            return message


async def test_record_events_arrive_as_named_fragments(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    first = Message.create(text="already <here>", author=alice)
    async with stream(server, "?pattern=messages&snapshot=1&expand=author&format=html") as sse:
        subscribed = await sse.frame()  # the JSON reply comes as well, then its HTML
        assert subscribed["type"] == "subscribed" and subscribed["snapshot"]["records"]
        snapshot = await sse.next()
        assert snapshot.event == "messages:snapshot" and snapshot.id is None
        assert snapshot.data == (
            f'<li id="message-{first.id}">alice: already &lt;here&gt; '
            f"(snapshot messages/{first.id})</li>"
        )

        second = Message.create(text='<script>alert("x")</script> & co', author=alice)
        created = await sse.next()
        assert created.event == "messages:create"
        assert created.id is not None and created.id.count("-") == 1  # an event id
        assert created.data == (
            f'<li id="message-{second.id}">alice: '
            "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co "
            f"(create messages/{second.id})</li>"
        )

        second.text = "line one\nline two"
        second.save()
        updated = await sse.next()
        assert updated.event == f"messages:update:{second.id}"
        assert "line one\nline two" in updated.data  # one data: line per line, joined back
        assert int(updated.id.split("-")[1]) > int(created.id.split("-")[1])  # type: ignore[union-attr]

        second.delete_instance()
        deleted = await sse.next()
        assert deleted.event == f"messages:delete:{second.id}"
        assert deleted.data == f"<!-- messages/{second.id} deleted -->"  # swaps it away

        # Custom events and collections without a template stay JSON frames.
        server.app.realtime_broadcast("hello", {"n": 1}, collection="messages")  # type: ignore[attr-defined]
        custom = await sse.frame()
        assert (custom["action"], custom["name"], custom["data"]) == ("custom", "hello", {"n": 1})


async def test_each_subscriber_sees_the_fields_and_records_it_may(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    alices, bobs = await login_cookie(server, "alice"), await login_cookie(server, "bob")
    async with (
        stream(server, "?pattern=notes&format=html", alices) as mine,
        stream(server, "?pattern=notes&format=html", bobs) as theirs,
    ):
        assert (await mine.frame())["type"] == "subscribed"
        assert (await theirs.frame())["type"] == "subscribed"
        Note.create(title="alice's <secret>", owner=alice)
        Note.create(title="bob's", owner=bob)
        assert (await next_named(mine, "notes:")).data == "<p>alice&#39;s &lt;secret&gt;</p>"
        # Bob's first fragment is his own note: alice's never reached his stream.
        assert (await next_named(theirs, "notes:")).data == "<p>bob&#39;s</p>"


# A record's text as an attacker posts it (issue 15, item 2): framed by LF alone, a bare
# CR ended each line for the reader, which read a second message, `messages:snapshot`
# with the id "forged-1", and the htmx page swapped it in as everyone's whole list. Line
# separators that SSE does not break at (U+2028, U+0085, form feed) ride along.
FORGERY = "hi\r\rid: forged-1\revent: messages:snapshot\rdata: LIST WIPED BY ALICE"
TEXT = f"{FORGERY}\r\n\u2028\x85\x0c\rend"


async def test_a_line_break_in_a_record_cannot_forge_a_message(
    server: LiveServer, users: dict[str, User]
) -> None:
    Message.create(text="already here", author=users["bob"])
    bobs = await login_cookie(server, "bob")
    async with (
        stream(server, "?pattern=messages&snapshot=1&expand=author&format=html", bobs) as html,
        json_stream(server, "?pattern=messages") as plain,
        api_session(server, "alice") as alice,
    ):
        assert (await html.frame())["type"] == "subscribed"
        assert (await html.next()).event == "messages:snapshot"
        await plain.frame()  # connected
        assert (await plain.frame())["type"] == "subscribed"

        posted = await alice.post("/api/collections/messages/records", json={"text": TEXT})
        assert posted.status_code == 201, posted.text
        record_id = posted.json()["id"]
        server.app.realtime_broadcast("after", {}, collection="messages")  # type: ignore[attr-defined]

        # The JSON stream: the text exactly, then the next event.
        created = await plain.frame()
        assert created["record"]["text"] == TEXT
        assert (await plain.frame())["name"] == "after"

        # The HTML stream: one message, the fragment with each line break an LF, its
        # own id; then the next event, and nothing between.
        fragment = await html.next()
        assert fragment.event == "messages:create"
        assert fragment.id == fragment.last_event_id == created["id"]
        shown = TEXT.replace("\r\n", "\n").replace("\r", "\n")
        assert fragment.data == (
            f'<li id="message-{record_id}">alice: {shown} (create messages/{record_id})</li>'
        )
        after = await html.next()
        assert after.json["name"] == "after" and after.event == "event"


async def test_a_failing_template_sends_the_json_frame_instead(
    server: LiveServer, users: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    Realtime.of(server.app).fragment("messages", "broken.html")
    async with stream(server, "?pattern=messages&expand=author&format=html") as sse:
        await sse.frame()
        message = Message.create(text="still delivered", author=users["alice"])
        event = await sse.frame()  # named "event", with its id: the JSON as on any stream
        assert event["record"]["id"] == message.id
        assert "rendering a fragment failed" in caplog.text
        # The stream lives on, and renders again once the template does.
        Realtime.of(server.app).fragment("messages", "message.html")
        Message.create(text="rendered", author=users["alice"])
        assert (await sse.next()).event == "messages:create"


async def test_an_unknown_format_is_refused(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        response = await http.get(
            "/realtime/subscribe?pattern=messages&format=xml",
            headers={"Accept": "text/event-stream"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "format is json (the default) or html."


def test_fragment_needs_a_template_name() -> None:
    with pytest.raises(ValueError, match="template must be a template name"):
        Realtime().fragment("messages", "")
