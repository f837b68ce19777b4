"""Refusals that say "not now" (`rate_limited`, `unavailable`, with `retry_after`): the
JavaScript client asks again after that delay instead of failing the subscription.
The server is faked at the WebSocket (Playwright's route) to refuse the first time."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute

from tests.support import LiveServer

SUBSCRIBE_ONCE = """async () => {
  const { RealtimeClient } = await import("/realtime/client.js");
  const client = new RealtimeClient({ transport: "websocket" });
  const errors = [];
  client.on("error", (error) => errors.push(error.code));
  const reply = await client.subscribe("messages", () => {}, { snapshot: true }).ready;
  client.close();
  return { type: reply.type, records: reply.snapshot.records, errors };
}"""


@pytest.mark.parametrize("code", ["rate_limited", "unavailable"])
def test_a_refusal_for_now_is_asked_again_after_retry_after(
    server: LiveServer, new_page: Callable[..., Page], code: str
) -> None:
    received: list[dict[str, Any]] = []

    def fake_server(ws: WebSocketRoute) -> None:
        def on_message(message: str | bytes) -> None:
            frame = json.loads(message)
            received.append(frame)
            if frame["type"] != "subscribe":
                return
            if sum(f["type"] == "subscribe" for f in received) == 1:
                refusal = {"type": "error", "id": frame["id"], "code": code}
                ws.send(json.dumps({**refusal, "message": "not now", "retry_after": 0.2}))
                return
            snapshot = {"records": [], "position": "p-1", "complete": True, "sort": "-id"}
            subscribed = {"type": "subscribed", "id": frame["id"], "pattern": "messages"}
            ws.send(json.dumps({**subscribed, "recovered": False, "snapshot": snapshot}))

        ws.on_message(on_message)
        hello = {"type": "connected", "connection_id": "c-1", "user": None, "heartbeat": 25.0}
        ws.send(json.dumps(hello))

    page = new_page()
    page.route_web_socket(re.compile(r".*/realtime/subscribe.*"), fake_server)
    page.goto(f"{server.url}/login")  # a page of the server's origin
    result = page.evaluate(SUBSCRIBE_ONCE)
    assert result == {"type": "subscribed", "records": [], "errors": []}
    subscribes = [f for f in received if f["type"] == "subscribe"]
    assert len(subscribes) == 2 and all(f["snapshot"] is True for f in subscribes)
