"""Clients that try to make the server hold memory for them, against a real server
process whose memory is measured: sockets that never read while asking again and again
for snapshots and for replays of old history. Each is closed once its queue budget is
spent; the server's memory stays bounded, and a well-behaved client receives every
event meanwhile."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from werkzeug.security import generate_password_hash

from runtime import create_app
from runtime.config import load_config
from runtime.db import database
from runtime.demo import Message
from runtime.users import User
from tests.conftest import PASSWORD
from tests.realtime_client import Client
from tests.support import TIMEOUT, ServerProcess

QUEUE_BYTES = 1024 * 1024  # each connection's budget in this test
HOGS = 4  # of each kind


def _seed(path: Path) -> None:
    config = load_config(None, environ={}).replace(
        app={"env": "test", "log_level": "warning"}, database={"path": str(path)}
    )
    create_app(config)
    alice = User.create(username="alice", password_hash=generate_password_hash(PASSWORD))
    with database.atomic():
        for i in range(500):  # a snapshot of these is about 300 KB
            Message.create(text=f"{i} " + "x" * 480, author=alice)
    database.close()


async def _hog(url: str, frame: dict[str, object], times: int) -> ClientConnection:
    """A client that asks and asks and never reads an answer."""
    ws = await websockets.connect(url, open_timeout=TIMEOUT, max_size=None)
    ws.transport.pause_reading()
    for i in range(times):
        await ws.send(json.dumps({**frame, "id": i}))
    return ws


async def test_hostile_clients_cannot_grow_the_server(tmp_path: Path) -> None:
    db = tmp_path / "hostile.sqlite3"
    _seed(db)
    settings = {
        "RUNTIME_DATABASE_PATH": str(db),
        "RUNTIME_APP_LOG_LEVEL": "error",
        "RUNTIME_REALTIME_SEND_QUEUE_BYTES": str(QUEUE_BYTES),
        # The history it replays is written by one user as fast as the server answers.
        "RUNTIME_API_RATE_LIMIT": "1000000/second",
    }
    with ServerProcess(tmp_path / "config.toml", settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            login = {"username": "alice", "password": PASSWORD}
            assert (await http.post("/auth/login", json=login)).status_code == 200
            records = "/api/collections/messages/records"

            async def post(text: str) -> None:
                response = await http.post(records, json={"text": text + " " + "y" * 400})
                assert response.status_code == 201, response.text

            # History to replay: 300 events of about 700 bytes, from `since` on.
            watcher = await Client.connect(server)
            await watcher.ok_subscribe("messages")
            for i in range(300):
                await post(f"history {i}")
            since = (await watcher.events(300))[0]["id"]
            server.reset_peak()
            before, _ = server.memory()

            url = f"{server.ws_url}/realtime/subscribe"
            snapshots = {"type": "subscribe", "pattern": "messages", "snapshot": True}
            replays = {"type": "subscribe", "pattern": "messages", "since": since}
            hogs = await asyncio.gather(
                *(_hog(url, snapshots, 100) for _ in range(HOGS)),
                *(_hog(url, replays, 100) for _ in range(HOGS)),
            )
            # Meanwhile the well-behaved client gets every event, in order.
            for i in range(100):
                await post(f"live {i}")
            live = await watcher.events(100)
            assert [e["record"]["text"].split(" ")[1] for e in live] == [str(i) for i in range(100)]

            # Each hog was closed as too slow: reading again, it sees its connection end
            # (with 4429 if the close frame got out before the server gave up on it).
            for ws in hogs:
                ws.transport.resume_reading()
            for ws in hogs:
                await asyncio.wait_for(ws.wait_closed(), TIMEOUT * 2)
                code = ws.close_code
                assert code in (4429, 1006), code
            metrics = (await http.get("/realtime/metrics")).text
            assert f"runtime_realtime_slow_disconnects_total {2 * HOGS}" in metrics
            assert 'runtime_realtime_connections{transport="websocket"} 1\n' in metrics
            _, peak = server.memory()
            await watcher.ws.close()
    growth = peak - before
    # Eight connections with a 1 MiB budget each, and the work of building their
    # replies: without the bounds this grew by hundreds of MB.
    print(f"\nRSS before {before / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB")
    assert growth < 64 * 2**20, f"the server grew by {growth / 2**20:.1f} MiB"
