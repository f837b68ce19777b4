"""What browsers publish, under a hostile publisher: each publication within
`realtime.max_publish_size`, the history that keeps them within
`realtime.history_bytes` (a resume from before what it keeps is `recovered: false`), and
the server's memory with it, over real servers and real clients on both transports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart
from werkzeug.security import generate_password_hash

from runtime import Realtime, create_app
from runtime.config import Config, load_config
from runtime.db import database
from runtime.users import User
from tests.conftest import PASSWORD
from tests.realtime_client import Client, login_cookie
from tests.sse_client import stream
from tests.support import TIMEOUT, LiveServer, ServerProcess

realtime = Realtime()
realtime.channel("lobby", read_rule="authenticated", write_rule="authenticated")

LIMIT = 16384  # realtime.max_publish_size, by default
HISTORY_BYTES = 1024 * 1024


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    return {"history_bytes": HISTORY_BYTES, "message_rate_limit": "1000/10second"}


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    app = create_app(config, realtime=realtime)
    yield app
    database.close()


def text_of(size: int) -> str:
    """A string whose JSON takes `size` bytes (its quotes included)."""
    return "x" * (size - 2)


async def publish(client: Client, request_id: str, data: Any) -> dict[str, Any]:
    frame = {"type": "publish", "id": request_id, "channel": "lobby", "name": "big", "data": data}
    await client.send(frame)
    reply = await client.recv()
    assert reply.get("id") == request_id, reply
    return reply


async def test_publications_and_the_history_are_bounded_in_bytes(
    server: LiveServer, users: dict[str, User]
) -> None:
    assert Config().realtime.max_publish_size == LIMIT < Config().realtime.max_message_size
    async with (
        await Client.connect(server, user="alice") as mallory,
        await Client.connect(server, user="bob") as bystander,
    ):
        await bystander.ok_subscribe("lobby")
        # One byte over the limit, in a frame well within max_message_size: refused.
        refused = await publish(mallory, "over", text_of(LIMIT + 1))
        assert refused["type"] == "error" and refused["code"] == "message_too_big"
        # Counted in UTF-8 bytes, not characters: 6,000 "é" are 12,000 bytes.
        refused = await publish(mallory, "wide", {"t": "\u00e9" * 6000, "u": "\u00e9" * 3000})
        assert refused["code"] == "message_too_big"
        await bystander.expect_silence()  # nothing was published
        # The same over an SSE POST.
        cookie = await login_cookie(server, "alice")
        async with (
            stream(server, cookie=cookie) as sse,
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        ):
            connection_id = (await sse.frame())["connection_id"]
            items = [
                {"id": "p1", "channel": "lobby", "name": "big", "data": text_of(LIMIT + 1)},
                {"id": "p2", "channel": "lobby", "name": "big", "data": text_of(LIMIT)},
            ]
            reply = await http.post(
                "/realtime/subscribe",
                json={"connection_id": connection_id, "publish": items},
                headers={"Cookie": cookie},
            )
            over, at = reply.json()["results"]
            assert (over["id"], over["type"], over["code"]) == ("p1", "error", "message_too_big")
            assert (at["id"], at["type"]) == ("p2", "ack")
        first = await bystander.recv_type("event")
        assert first["id"] == at["data"]["event_id"] and len(first["data"]) == LIMIT - 2

        # At the limit, again and again: 150 publications of 16 KiB are 2.4 MiB, more
        # than the history may keep; the bystander gets every one meanwhile.
        ids = []
        for i in range(150):
            ack = await publish(mallory, f"p{i}", text_of(LIMIT))
            assert ack["type"] == "ack", ack
            ids.append(ack["data"]["event_id"])
        assert [e["id"] for e in await bystander.events(150)] == ids
        kept = server.broker.backend.kept_bytes
        assert HISTORY_BYTES - 2 * LIMIT < kept <= HISTORY_BYTES

    # A resume from the first is past what the history kept: the client must refetch.
    async with await Client.connect(server, user="bob") as late:
        gone = await late.ok_subscribe("lobby", since=first["id"])
        assert gone["recovered"] is False
        await late.expect_silence()
        # One from ten publications back is still there, and is replayed.
        recent = await late.ok_subscribe("lobby", since=ids[-11])
        assert recent["recovered"] is True
        assert [e["id"] for e in await late.events(10)] == ids[-10:]


# A module of an app of its own for `python -m runtime serve --app`: a channel anyone
# logged in may publish to.
LOBBY_APP = """
from runtime import Realtime, create_app

app = create_app()
Realtime.of(app).channel("lobby", read_rule="authenticated", write_rule="authenticated")
"""
# The most memory for the fewest bytes: within the limit, `[[],[],…]` parses to 5,400
# lists, some 350 KB in the server; 10 connections x 15 of them would hold 52 MB.
HOSTILE = [[]] * ((LIMIT - 2) // 3)
PUBLISHERS, EACH = 10, 15
SERVER_HISTORY_BYTES = 4 * 1024 * 1024


def _seed(folder: Path) -> None:
    config = load_config(None, environ={}).replace(
        app={"env": "test", "log_level": "warning"},
        database={"path": str(folder / "lobby.sqlite3")},
    )
    create_app(config)
    User.create(username="mallory", password_hash=generate_password_hash(PASSWORD))
    database.close()


async def test_a_hostile_publisher_cannot_grow_the_server(tmp_path: Path) -> None:
    """The probe of issue 15: one user on many connections, within the rate limit,
    publishing what takes the most memory for its size."""
    _seed(tmp_path)
    (tmp_path / "lobbyapp.py").write_text(LOBBY_APP)
    assert len(json.dumps(HOSTILE, separators=(",", ":"))) <= LIMIT
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "lobby.sqlite3"),
        "RUNTIME_APP_LOG_LEVEL": "error",
        "RUNTIME_REALTIME_HISTORY_BYTES": str(SERVER_HISTORY_BYTES),
    }
    with ServerProcess(tmp_path / "config.toml", settings, app="lobbyapp:app") as server:
        async with await Client.connect(server, user="mallory") as watcher:
            await watcher.ok_subscribe("lobby")
            publishers = [await Client.connect(server, user="mallory") for _ in range(PUBLISHERS)]
            await publish(publishers[0], "warm-up", HOSTILE)
            first = await watcher.recv_type("event")
            before, _ = server.memory()

            async def hostile(client: Client, n: int) -> None:
                for i in range(EACH):
                    ack = await publish(client, f"h{n}-{i}", HOSTILE)
                    assert ack["type"] == "ack", ack

            await asyncio.wait_for(
                asyncio.gather(*(hostile(c, n) for n, c in enumerate(publishers))), TIMEOUT * 6
            )
            received = [await watcher.recv_type("event") for _ in range(PUBLISHERS * EACH)]
            assert all(e["data"] == HOSTILE for e in received[:1])
            after, _ = server.memory()
            # What was published first has left the history.
            async with await Client.connect(server, user="mallory") as late:
                assert (await late.ok_subscribe("lobby", since=first["id"]))["recovered"] is False
            for client in publishers:
                await client.ws.close()
    growth = after - before
    print(f"\nRSS before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB")
    # The history's bound, and room for the allocator's leftovers; without the bound
    # (history_size alone) this grew by some 55 MiB and stayed.
    assert growth < SERVER_HISTORY_BYTES + 20 * 2**20, f"grew by {growth / 2**20:.1f} MiB"
