"""The WebSocket endpoint's handshake, commands and error frames, over a real server."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.realtime_client import Client, login_cookie
from tests.support import TIMEOUT, LiveServer


async def test_connected_frame_for_a_visitor_and_a_user(server: LiveServer) -> None:
    async with await Client.connect(server) as visitor:
        assert visitor.connected["user"] is None
        assert visitor.connected["heartbeat"] == 25.0
        assert visitor.connected["connection_id"]
    async with await Client.connect(server, user="alice") as alice:
        assert alice.connected["user"] == {"id": 1, "username": "alice", "is_admin": False}
        assert alice.connected["connection_id"] != visitor.connected["connection_id"]


@pytest.mark.parametrize(
    "origin, allowed",
    [
        (None, True),
        ("http://127.0.0.1:{port}", True),
        ("https://app.example", True),
        ("https://evil.example", False),
        ("http://127.0.0.1:1", False),
        ("null", False),
    ],
)
async def test_origin_is_checked_at_the_handshake(
    server: LiveServer, origin: str | None, allowed: bool
) -> None:
    headers = {} if origin is None else {"Origin": origin.format(port=server.port)}
    if allowed:
        async with await Client.connect(server, headers=headers):
            pass
    else:
        with pytest.raises(InvalidStatus) as info:
            await Client.connect(server, headers=headers)
        assert info.value.response.status_code == 403


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    return {"allowed_origins": ["https://app.example"]}


async def test_permessage_deflate_is_off_though_offered(server: LiveServer) -> None:
    async with await Client.connect(server) as client:  # websockets offers it by default
        assert "sec-websocket-extensions" not in client.ws.response.headers


async def test_subscribe_unsubscribe_and_ping(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        reply = await client.subscribe("messages")
        assert reply == {
            "type": "subscribed",
            "id": reply["id"],
            "pattern": "messages",
            "recovered": False,
        }
        await client.send({"type": "unsubscribe", "id": 7, "pattern": "messages"})
        assert await client.recv() == {"type": "unsubscribed", "id": 7, "pattern": "messages"}
        await client.send({"type": "ping"})
        assert await client.recv() == {"type": "pong"}


@pytest.mark.parametrize(
    "raw, code",
    [
        ("not json", "bad_request"),
        ("[1,2]", "bad_request"),
        ('{"type": "dance"}', "bad_request"),
        ('{"type": "subscribe", "id": "x"}', "bad_request"),
        ('{"type": "subscribe", "id": "x", "pattern": "no spaces"}', "invalid_pattern"),
        ('{"type": "subscribe", "id": "x", "pattern": "a/b/c"}', "invalid_pattern"),
        ('{"type": "subscribe", "id": "x", "pattern": "messages", "since": 5}', "bad_request"),
        ("[" * 60_000, "bad_request"),
        ('{"type": "ping", "n": NaN}', "bad_request"),
        ('{"type": "subscribe", "id": "x", "pattern": "' + "a" * 70_000 + '"}', "message_too_big"),
    ],
)
async def test_error_frames_leave_the_connection_open(
    server: LiveServer, raw: str, code: str
) -> None:
    async with await Client.connect(server) as client:
        await client.ws.send(raw)
        error = await client.recv_type("error")
        assert error["code"] == code and error["message"]
        assert "Traceback" not in error["message"]
        await client.ok_subscribe("messages")  # still alive and working


async def test_binary_frames_are_parsed_as_utf8(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        await client.ws.send(b'{"type": "ping"}')
        assert await client.recv() == {"type": "pong"}
        await client.ws.send(b"\xff\xfe")
        assert (await client.recv_type("error"))["code"] == "bad_request"


async def test_forbidden_exact_subscriptions(server: LiveServer) -> None:
    async with await Client.connect(server) as visitor:
        for pattern in ("notes", "notes/1", "users", "no_such_collection"):
            reply = await visitor.subscribe(pattern)
            assert reply["type"] == "error" and reply["code"] == "forbidden", reply
        await visitor.ok_subscribe("*")  # wildcards filter instead
        await visitor.ok_subscribe("no*")


@pytest.mark.parametrize("realtime_settings", [{"max_subscriptions": 2}])
async def test_too_many_subscriptions(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")
        await client.ok_subscribe("messages/1")
        await client.ok_subscribe("messages")  # the same again replaces, no new slot
        reply = await client.subscribe("messages/2")
        assert reply["type"] == "error" and reply["code"] == "too_many_subscriptions"


@pytest.mark.parametrize("realtime_settings", [{"message_rate_limit": "5/minute"}])
async def test_message_rate_limit(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        for _ in range(5):
            await client.send({"type": "ping"})
            assert (await client.recv())["type"] == "pong"
        await client.send({"type": "subscribe", "id": "late", "pattern": "messages"})
        error = await client.recv_type("error")
        assert error["code"] == "rate_limited" and error["id"] == "late"
        assert error["retry_after"] >= 1
        for _ in range(30):  # keeps going regardless: closed as too many requests
            try:
                await client.send({"type": "ping"})
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4429, repr(info.value)


@pytest.mark.parametrize("realtime_settings", [{"allow_anonymous": False}])
async def test_anonymous_connections_can_be_refused(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        await Client.connect(server)
    assert info.value.response.status_code == 401
    async with await Client.connect(server, user="bob") as bob:
        assert bob.connected["user"]["username"] == "bob"


@pytest.mark.parametrize("realtime_settings", [{"max_connections": 1}])
async def test_at_capacity_closes_with_1013(server: LiveServer) -> None:
    async with await Client.connect(server):
        ws = await websockets.connect(f"{server.ws_url}/realtime/subscribe", open_timeout=TIMEOUT)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1013


async def test_logout_closes_the_sessions_connections_with_4401(server: LiveServer) -> None:
    import httpx

    cookie = await login_cookie(server, "alice")
    async with (
        await Client.connect(server, headers={"Cookie": cookie}) as alice,
        await Client.connect(server, user="bob") as bob,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            response = await http.post("/auth/logout", headers={"Cookie": cookie})
            assert response.status_code == 200
        with pytest.raises(ConnectionClosed) as info:
            await alice.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401
        await bob.expect_silence()  # another session is untouched


@pytest.mark.parametrize("realtime_settings", [{"heartbeat": 0.2, "heartbeat_timeout": 0.6}])
async def test_heartbeat_ping_and_timeout(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        assert client.connected["heartbeat"] == 0.2
        raw = await client.ws.recv()  # a raw recv: do not answer the ping
        assert json.loads(raw) == {"type": "ping"}
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await client.ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4408


@pytest.mark.parametrize("realtime_settings", [{"heartbeat": 0.2, "heartbeat_timeout": 0.6}])
async def test_answering_pings_keeps_the_connection(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        pings = 0
        while pings < 6:  # 1.2 s: twice the timeout
            raw = json.loads(await client.ws.recv())
            assert raw == {"type": "ping"}
            pings += 1
            await client.send({"type": "pong"})
        await client.ok_subscribe("messages")


async def test_metrics_for_loopback(server: LiveServer) -> None:
    import httpx

    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            text = (await http.get("/realtime/metrics")).text
    assert 'runtime_realtime_connections{transport="websocket"} 1' in text
    assert "runtime_realtime_subscriptions 1" in text
    assert "# TYPE runtime_realtime_events_published_total counter" in text


async def test_the_rate_limit_close_comes_after_its_explanation(server: LiveServer) -> None:
    """A burst of 500 subscribes: the refusals queued before the close reach the client
    before the close does (the close used to drop them)."""
    async with await Client.connect(server) as client:
        for i in range(500):
            await client.send({"type": "subscribe", "id": f"s{i}", "pattern": "messages"})
        frames: list[dict] = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                frames.append(await client.recv())
        assert info.value.rcvd is not None and info.value.rcvd.code == 4429
        assert info.value.rcvd.reason == "too many requests"
        kinds = [f.get("code", f["type"]) for f in frames]
        assert kinds.count("subscribed") == 100  # message_rate_limit: 100 per 10 s
        assert kinds.count("rate_limited") > 1
        assert kinds[-1] == "rate_limited"  # the explanation, right before the close
        refused = [f for f in frames if f.get("code") == "rate_limited"]
        assert all(f["retry_after"] >= 1 and f["id"].startswith("s") for f in refused)


@pytest.mark.parametrize(
    "realtime_settings", [{"max_connections_per_user": 2, "max_connections_per_address": 3}]
)
async def test_caps_per_user_and_per_address(server: LiveServer) -> None:
    import httpx

    cookie = await login_cookie(server, "alice")
    alice = [await Client.connect(server, headers={"Cookie": cookie}) for _ in range(2)]
    with pytest.raises(ConnectionClosed) as info:
        extra = await Client.connect(server, headers={"Cookie": cookie})
        await extra.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4429
    assert info.value.rcvd.reason == "too many connections for this user"
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        refused = await http.get(
            "/realtime/subscribe",
            headers={"Accept": "text/event-stream", "Cookie": cookie},
        )
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        assert refused.json()["error"]["code"] == "rate_limited"
    visitor = await Client.connect(server)  # the address's third
    with pytest.raises(ConnectionClosed) as info:
        extra = await Client.connect(server)
        await extra.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.reason == "too many connections from this address"
    await visitor.ws.close()

    async def admitted_again() -> Client:
        # The server forgets the visitor once its handler has seen the close: until
        # then a new connection is still one too many, and is told so.
        while True:
            try:
                again = await Client.connect(server)
                await again.ok_subscribe("messages")
                return again
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 4429

    again = await asyncio.wait_for(admitted_again(), TIMEOUT)
    await again.ws.close()
    for client in alice:
        await client.ws.close()
