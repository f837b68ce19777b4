"""The JavaScript client's emit, publish and presence in Chromium, over WebSocket and
over SSE (WebSocket removed from the page)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from quart import Quart

from runtime import Realtime, create_app
from runtime.config import Config
from runtime.db import database
from runtime.realtime import Sender
from tests.browser.conftest import log_in
from tests.support import LiveServer

realtime = Realtime()
realtime.channel("room", read_rule="authenticated", write_rule="authenticated", presence=True)


@realtime.on("shout")
def shout(data: Any, sender: Sender) -> dict[str, Any]:
    return {"loud": str(data).upper(), "by": sender.user.username}


@pytest.fixture
def app(config: Config, tmp_path: Path) -> Iterator[Quart]:
    app = create_app(config, realtime=realtime, root_path=tmp_path)  # no pages of its own
    yield app
    database.close()


SCRIPT = """async (transport) => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient({ transport });
    const seen = [];
    let here = null;
    let bothSeen;
    const twoEvents = new Promise((resolve) => { bothSeen = resolve; });
    const unsubscribe = client.subscribe("room", (event) => {
        seen.push(event.action === "custom" ? `${event.name}:${event.user.username}`
                                            : `${event.action}:${event.user.username}`);
        if (seen.length === 2) bothSeen();
    }, { onPresence: (users) => { here = users.map((u) => u.username); } });
    await unsubscribe.ready;
    const answer = await client.emit("shout", "hi");
    let refused = null;
    try { await client.emit("nobody-handles-this"); } catch (err) { refused = err.code; }
    const published = await client.publish("room", "wave", { n: 1 });
    await twoEvents;  // its own join, then its wave
    client.close();
    return { transport: client.transport ?? transport, answer, refused,
             published: typeof published.event_id, here, seen };
}"""


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_emit_publish_and_presence(
    server: LiveServer, new_page: Callable[..., Page], transport: str
) -> None:
    page = new_page(without_websocket=transport == "sse")
    log_in(page, server.url, "alice", next_path="/")
    result = page.evaluate(SCRIPT, transport)
    assert result == {
        "transport": transport,
        "answer": {"loud": "HI", "by": "alice"},
        "refused": "bad_request",
        "published": "string",
        "here": [],
        "seen": ["join:alice", "wave:alice"],
    }
