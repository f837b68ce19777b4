"""Realtime served by uvicorn: the slow path, where every frame goes through the ASGI
send (the fast path of runtime/adapters/hypercorn.py is Hypercorn's), over WebSocket and
SSE."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from quart import Quart

from runtime.users import User
from tests.realtime_client import Client, api_session
from tests.sse_client import stream
from tests.support import UvicornServer

RECORDS = "/api/collections/{}/records"


@pytest.fixture
def uvicorn_server(app: Quart, users: dict[str, User]) -> Iterator[UvicornServer]:
    with UvicornServer(app) as live:
        yield live


def writes_directly(server: UvicornServer, connection_id: str) -> bool:
    """Whether the connection's sink writes straight to its socket (the fast path)."""
    return bool(server.call(lambda: server.broker.connections.get(connection_id).sink.direct))


async def test_websocket(uvicorn_server: UvicornServer) -> None:
    server = uvicorn_server
    async with (
        await Client.connect(server, user="alice") as client,
        api_session(server, "alice") as alice,
    ):
        assert client.connected["user"]["username"] == "alice"
        assert not writes_directly(server, client.connected["connection_id"])  # the slow path
        await client.ok_subscribe("messages")
        created = (await alice.post(RECORDS.format("messages"), json={"text": "hi"})).json()
        event = await client.recv_type("event")
        assert (event["action"], event["record"]) == ("create", created)
        custom = server.app.realtime_broadcast("typing", {"who": "alice"})  # type: ignore[attr-defined]
        assert (await client.recv_type("event"))["id"] == custom
        await client.send({"type": "unsubscribe", "id": "u", "pattern": "messages"})
        assert await client.recv() == {"type": "unsubscribed", "id": "u", "pattern": "messages"}
        unseen = await alice.post(RECORDS.format("messages"), json={"text": "unseen"})
        assert unseen.status_code == 201, unseen.text
        await client.expect_silence()


async def test_sse(uvicorn_server: UvicornServer) -> None:
    server = uvicorn_server
    async with api_session(server, "alice") as alice:
        cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())  # the same session
        async with stream(server, "?pattern=messages", cookie=cookie) as sse:
            connection_id = (await sse.frame())["connection_id"]
            assert not writes_directly(server, connection_id)  # the slow path
            assert (await sse.frame())["type"] == "subscribed"
            created = (await alice.post(RECORDS.format("messages"), json={"text": "hi"})).json()
            event = await sse.frame()
            assert (event["action"], event["record"]) == ("create", created)
            change = {"connection_id": connection_id, "subscribe": ["notes"]}
            reply = await alice.post(
                "/realtime/subscribe", json={**change, "unsubscribe": ["messages"]}
            )
            assert [r["type"] for r in reply.json()["results"]] == ["subscribed", "unsubscribed"]
            unseen = await alice.post(RECORDS.format("messages"), json={"text": "unseen"})
            assert unseen.status_code == 201, unseen.text
            note = (await alice.post(RECORDS.format("notes"), json={"title": "mine"})).json()
            assert (await sse.frame())["record"] == note


def test_the_log_says_at_start_up_that_the_fast_path_is_off_and_why(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    with UvicornServer(app):
        pass
    said = [r for r in caplog.records if r.getMessage().startswith("realtime: not served by")]
    assert [r.levelno for r in said] == [logging.WARNING], caplog.text
    assert "inbound WebSocket messages are bounded by the server's own limits" in said[0].message
