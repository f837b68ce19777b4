"""Oversized and hostile inbound messages, over a real server, with real and raw clients.

The contract: a frame over `realtime.max_message_size` gets `message_too_big` and the
connection lives; past four times that size the client gets close 1009 and the TCP
connection is closed. Here also: promptly, whatever the client does next, in bounded
server memory (measured on a server process of its own), while other clients go on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.raw_websocket import (
    CONTINUATION,
    TEXT,
    RawWebSocket,
    client_frame,
    client_header,
    deflate_bomb,
    mask,
    repeat,
)
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer, ServerProcess

MiB = 2**20
HARD_LIMIT = 4 * 65536  # 4 * the default realtime.max_message_size
# Unbounded, each attack below costs the server 200 MiB or more (4 GiB for the last
# bomb); bounded, well under 1 MiB. Tens of MiB leave room for the allocator.
MEMORY_BOUND = 24 * MiB


# A real client (python-websockets) against the in-process server.


@pytest.mark.parametrize("size", [HARD_LIMIT + 1, MiB, 4 * MiB])
async def test_a_message_past_four_times_the_limit_closes_with_1009(
    server: LiveServer, size: int
) -> None:
    async with await Client.connect(server) as other:
        await other.ok_subscribe("messages")
        async with await Client.connect(server) as client:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(client.ws.send("a" * size), TIMEOUT)
                await client.recv()
            assert info.value.rcvd is not None, repr(info.value)
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (1009, "message too big")
            # The server closed the TCP connection; it did not wait for the client.
            await asyncio.wait_for(client.ws.wait_closed(), TIMEOUT)
        await assert_goes_on(server, other)


@pytest.mark.parametrize("realtime_settings", [{"websocket_compression": True}])
async def test_with_compression_the_limits_hold_once_inflated(server: LiveServer) -> None:
    async with await Client.connect(server) as client:  # websockets offers permessage-deflate
        assert client.ws.response.headers["sec-websocket-extensions"].startswith(
            "permessage-deflate"
        )
        await client.ok_subscribe("messages")
        big = json.dumps({"type": "ping", "pad": "a" * 100_000})  # compresses to < 1 KiB
        await client.ws.send(big)
        assert (await client.recv_type("error"))["code"] == "message_too_big"
        await client.ok_subscribe("messages/1")  # alive
        with pytest.raises(ConnectionClosed) as info:
            await client.ws.send("a" * (4 * MiB))  # about 4 KiB on the wire
            await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009, repr(info.value)


async def assert_goes_on(server: LiveServer, other: Client) -> None:
    """`other`, connected before, still receives events and answers pings."""
    server.app.realtime_broadcast("still-here", {}, collection="messages")  # type: ignore[attr-defined]
    assert (await other.recv_type("event"))["name"] == "still-here"
    await other.expect_silence()


# Raw clients against a server process of its own, whose memory is measured.


@dataclass
class DemoServer:
    server: ServerProcess
    password: str  # the demo user's


@pytest.fixture(scope="module")
def process_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    tmp = tmp_path_factory.mktemp("limits")
    config = tmp / "config.toml"
    config.write_text(
        f'[app]\nlog_level = "warning"\n[database]\npath = {json.dumps(str(tmp / "db.sqlite3"))}\n'
        "[realtime]\nwebsocket_compression = true\n"  # the worst case; raw clients choose
    )
    with ServerProcess(config) as server:
        password = (tmp / "demo-credentials.txt").read_text().split("password: ")[1].strip()
        yield DemoServer(server, password)
        assert server.process.poll() is None, f"server died: {server.output}"


def huge_frame() -> Iterator[bytes]:
    """One text frame declaring 200 MiB, streamed 1 MiB at a time."""
    yield client_header(TEXT, 200 * MiB)
    yield from repeat(mask(b"a" * MiB), 200 * MiB)


def huge_fragmented_message() -> Iterator[bytes]:
    """200 MiB in 64 KiB fragments."""
    fragment = b"a" * 65536
    yield client_frame(TEXT, fragment, fin=False)
    yield from repeat(client_frame(CONTINUATION, fragment, fin=False), 200 * MiB)


def tiny_fragments() -> Iterator[bytes]:
    """200 MiB of fragments of one byte each (7 bytes on the wire)."""
    yield client_frame(TEXT, b"a", fin=False)
    yield from repeat(client_frame(CONTINUATION, b"a", fin=False) * 10_000, 200 * MiB)


def bomb() -> Iterator[bytes]:
    """One compressed frame of 203 KiB, under the limit on the wire, inflating to 200 MiB."""
    frame = client_frame(TEXT, deflate_bomb(200), rsv1=True)
    assert len(frame) < HARD_LIMIT
    yield frame


def gigabyte_bomb() -> Iterator[bytes]:
    """One compressed frame of 4 MiB inflating to 4 GiB."""
    payload = deflate_bomb(4096)
    yield client_header(TEXT, len(payload), rsv1=True)
    for start in range(0, len(payload), MiB):
        yield mask(payload[start : start + MiB])


@pytest.mark.parametrize(
    "attack, deflate",
    [
        (huge_frame, False),
        (huge_fragmented_message, False),
        (tiny_fragments, False),
        (bomb, True),
        (gigabyte_bomb, True),
    ],
)
async def test_hostile_messages_close_with_1009_in_bounded_memory(
    process_server: DemoServer, attack: Callable[[], Iterable[bytes]], deflate: bool
) -> None:
    server = process_server.server
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        login = {"username": "demo", "password": process_server.password}
        assert (await http.post("/auth/login", json=login)).status_code == 200
        async with await Client.connect(server) as watcher:
            await watcher.ok_subscribe("messages")

            async def post(text: str) -> None:
                response = await http.post("/api/collections/messages/records", json={"text": text})
                assert response.status_code == 201, response.text
                assert (await watcher.recv_type("event"))["record"]["text"] == text

            server.reset_peak()
            rss_before, _ = server.memory()
            # The attacker is a blocking client in a thread; others go on meanwhile.
            (sent, close, closed), _ = await asyncio.gather(
                asyncio.to_thread(run, server.port, attack(), deflate), post("during")
            )
            _, peak = server.memory()
            growth = peak - rss_before
            print(f"{attack.__name__}: sent {sent / MiB:.1f} MiB, grew {growth / MiB:.1f} MiB")
            assert growth < MEMORY_BOUND, f"the server grew by {growth / MiB:.0f} MiB"
            assert close == (1009, "message too big")
            assert closed, "the server did not close the TCP connection"
            await post("after")
            metrics = (await http.get("/realtime/metrics")).text
            assert 'runtime_realtime_connections{transport="websocket"} 1\n' in metrics


def run(port: int, chunks: Iterable[bytes], deflate: bool) -> tuple[int, tuple[int, str], bool]:
    """Connect, send `chunks` regardless of the server, then read what it said."""
    with RawWebSocket(port, deflate=deflate) as ws:
        assert (ws.extensions is not None) == deflate, ws.extensions
        assert json.loads(ws.recv_frame()[1])["type"] == "connected"
        sent = ws.stream(chunks)
        return sent, ws.close_frame(), ws.closed_by_server()
