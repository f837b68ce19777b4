"""The fast path (frames written straight to sockets) is on or off as configured, so
that the run of this suite with RUNTIME_TESTS_FAST_PATH=off really takes the slow path
(every frame through the ASGI send) that other servers than Hypercorn use."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from quart import Quart

from runtime.demo import Message
from runtime.users import User
from tests.realtime_client import Client
from tests.sse_client import SSEStream
from tests.support import FAST_PATH, TIMEOUT, LiveServer


async def test_connections_are_served_as_the_suite_is_configured(
    server: LiveServer, users: dict[str, User]
) -> None:
    assert server.app.extensions["realtime"].config.fast_path is FAST_PATH
    headers = {"Accept": "text/event-stream"}
    async with (
        await Client.connect(server) as client,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        http.stream("GET", "/realtime/subscribe?pattern=messages", headers=headers) as response,
    ):
        stream = SSEStream(response)
        await stream.next()  # retry
        await stream.frame()  # connected
        await stream.frame()  # subscribed
        await client.ok_subscribe("messages")
        sinks = server.call(lambda: [c.sink for c in server.broker.connections])
        assert [(type(s).__name__, s.direct) for s in sinks] == [
            ("WebSocketSink", FAST_PATH),
            ("SSESink", FAST_PATH),
        ]
        Message.create(text="either way", author=users["alice"])
        assert (await client.recv_type("event"))["record"]["text"] == "either way"
        assert (await stream.frame())["record"]["text"] == "either way"


def test_the_log_says_at_start_up_when_the_fast_path_is_off(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="runtime.realtime"), LiveServer(app):
        pass
    said = [r.getMessage() for r in caplog.records if "fast path" in r.getMessage()]
    off = "realtime: the fast path is off (realtime.fast_path = false): every frame goes "
    assert said == ([] if FAST_PATH else [off + "through the ASGI send"])


async def test_an_http_1_0_stream_is_served_through_the_asgi_send(
    server: LiveServer, users: dict[str, User]
) -> None:
    """HTTP/1.0 has no chunked bodies, so an SSE stream's messages go through the ASGI
    send (the server frames the body), fast path or not."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        request = (
            "GET /realtime/subscribe?pattern=messages HTTP/1.0\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nAccept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())

        async def frame() -> dict[str, Any]:
            """The next SSE message's data, as JSON (this body is the messages alone)."""
            while True:
                block = await asyncio.wait_for(reader.readuntil(b"\n\n"), TIMEOUT)
                data = [
                    line[6:] for line in block.decode().split("\n") if line.startswith("data: ")
                ]
                if data:
                    return json.loads("\n".join(data))

        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        status, _, fields = head.decode().lower().partition("\r\n")
        assert status.split()[1] == "200", head  # h11 answers in HTTP/1.1's words
        assert "connection: close" in fields and "transfer-encoding" not in fields, head
        connected = await frame()
        assert (await frame())["type"] == "subscribed"
        sink = server.call(lambda: server.broker.connections.get(connected["connection_id"]).sink)
        assert not sink.direct
        Message.create(text="over HTTP/1.0", author=users["alice"])
        event = await frame()
        assert (event["action"], event["record"]["text"]) == ("create", "over HTTP/1.0")
    finally:
        writer.close()
        await writer.wait_closed()
