"""Delivery guarantees: resume without gaps or duplicates, slow readers, many clients,
batching, snapshots, shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from runtime.db import database
from runtime.demo import Message
from runtime.users import User
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer, ServerProcess


def texts(events: list[dict]) -> list[str]:
    return [e["record"]["text"] for e in events]


async def test_resume_with_since_replays_then_goes_live(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    async with await Client.connect(server) as first:
        await first.ok_subscribe("messages")
        Message.create(text="seen", author=alice)
        last_seen = (await first.recv_type("event"))["id"]
    for i in range(3):
        Message.create(text=f"missed {i}", author=alice)
    async with await Client.connect(server) as second:
        reply = await second.ok_subscribe("messages", since=last_seen)
        assert reply["recovered"] is True
        assert texts(await second.events(3)) == ["missed 0", "missed 1", "missed 2"]
        Message.create(text="live", author=alice)
        assert texts(await second.events(1)) == ["live"]
        await second.expect_silence()


async def test_replay_skips_what_another_subscription_delivered(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    start = server.app.realtime_broadcast("marker")  # type: ignore[attr-defined]
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")
        message = Message.create(text="once", author=alice)
        assert texts(await client.events(1)) == ["once"]
        # A second pattern covering the same record, resumed from before it.
        reply = await client.ok_subscribe(f"messages/{message.id}", since=start)
        assert reply["recovered"] is True
        await client.expect_silence()  # not delivered twice
        message.text = "changed"
        message.save()
        assert texts(await client.events(1)) == ["changed"]  # once, for two patterns
        await client.expect_silence()


@pytest.mark.parametrize("realtime_settings", [{"history_size": 5}])
async def test_recovered_false_when_history_cannot_cover_it(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    first = server.app.realtime_broadcast("start")  # type: ignore[attr-defined]
    for i in range(10):
        Message.create(text=f"m{i}", author=alice)
    async with await Client.connect(server) as client:
        for since in (first, "earlier-run-7", "garbage"):
            reply = await client.ok_subscribe("messages", since=since)
            assert reply["recovered"] is False
        await client.expect_silence()  # nothing replayed
        Message.create(text="live", author=alice)
        assert texts(await client.events(1)) == ["live"]


async def test_snapshot_then_live_with_no_gap(server: LiveServer, users: dict[str, User]) -> None:
    alice = users["alice"]
    for i in range(3):
        Message.create(text=f"old {i}", author=alice)
    async with await Client.connect(server) as client:
        reply = await client.ok_subscribe("messages", snapshot=True)
        snapshot = reply["snapshot"]
        assert [r["text"] for r in snapshot["records"]] == ["old 2", "old 1", "old 0"]
        assert snapshot["complete"] is True and snapshot["position"]
        assert snapshot["sort"] == "-id"  # newest first unless the subscriber says
        assert snapshot["key"] == "id"  # the field with each record's topic id
        Message.create(text="new", author=alice)
        event = await client.recv_type("event")
        assert event["record"]["text"] == "new"
        assert int(event["id"].rsplit("-", 1)[1]) == int(snapshot["position"].rsplit("-", 1)[1]) + 1
        one = await client.ok_subscribe(f"messages/{event['record']['id']}", snapshot=True)
        assert [r["text"] for r in one["snapshot"]["records"]] == ["new"]


@pytest.mark.parametrize("realtime_settings", [{"snapshot_limit": 2}])
async def test_snapshot_is_capped(server: LiveServer, users: dict[str, User]) -> None:
    for i in range(3):
        Message.create(text=f"m{i}", author=users["alice"])
    async with await Client.connect(server) as client:
        snapshot = (await client.ok_subscribe("messages", snapshot=True))["snapshot"]
        assert len(snapshot["records"]) == 2 and snapshot["complete"] is False
        reply = await client.subscribe("*", snapshot=True)
        assert reply["type"] == "error" and reply["code"] == "bad_request"


@pytest.mark.parametrize("realtime_settings", [{"send_queue_size": 20}])
async def test_a_slow_reader_is_closed_and_others_go_on(
    server: LiveServer, users: dict[str, User]
) -> None:
    alice = users["alice"]
    # The slow client stops reading: its socket buffers fill, then its send queue.
    slow = await Client.connect(server, max_size=None)
    await slow.ok_subscribe("messages")
    slow.ws.transport.pause_reading()
    async with await Client.connect(server) as fast:
        await fast.ok_subscribe("messages")
        big = "x" * 20_000
        total, burst = 400, 10  # 8 MB: well past loopback socket buffers
        for start in range(0, total, burst):
            with database.atomic():
                for i in range(start, start + burst):
                    Message.create(text=f"{i}:{big}", author=alice)
            # The fast reader keeps up: it receives every event as it comes.
            got = await fast.events(burst)
            assert [t.split(":")[0] for t in texts(got)] == [
                str(i) for i in range(start, start + burst)
            ]
        slow.ws.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(slow.ws.recv(), TIMEOUT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4429
    assert server.broker.stats.slow_disconnects == 1


async def test_200_clients_each_receive_every_event(
    server: LiveServer, users: dict[str, User]
) -> None:
    clients = await asyncio.gather(*(Client.connect(server) for _ in range(200)))
    try:
        await asyncio.gather(*(c.ok_subscribe("messages") for c in clients))
        with database.atomic():
            for i in range(20):
                Message.create(text=f"m{i}", author=users["alice"])
        results = await asyncio.gather(*(c.events(20) for c in clients))
        expected = [f"m{i}" for i in range(20)]
        assert all(texts(events) == expected for events in results)
        ids = {tuple(e["id"] for e in events) for events in results}
        assert len(ids) == 1  # the same ids, in the same order, for everyone
    finally:
        await asyncio.gather(*(c.ws.close() for c in clients))
    assert await server.run(server.broker.connections.wait_idle(TIMEOUT))


async def test_batch_clients_get_arrays_under_load(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with (
        await Client.connect(server, query="?batch=1") as batched,
        await Client.connect(server) as plain,
    ):
        await batched.ok_subscribe("messages")
        await plain.ok_subscribe("messages")
        with database.atomic():  # 100 events reach the queues in one go
            for i in range(100):
                Message.create(text=f"m{i}", author=users["alice"])
        arrays, events = 0, []
        while len(events) < 100:
            data = json.loads(await asyncio.wait_for(batched.ws.recv(), TIMEOUT))
            if isinstance(data, list):
                arrays += 1
                events.extend(data)
            else:
                events.append(data)
        assert arrays >= 1 and texts(events) == [f"m{i}" for i in range(100)]
        for i in range(100):
            frame = json.loads(await asyncio.wait_for(plain.ws.recv(), TIMEOUT))
            assert isinstance(frame, dict) and frame["record"]["text"] == f"m{i}"


def test_sigterm_closes_every_client_with_1001_within_a_second(tmp_path: Path) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_APP_DEMO": "false",
    }
    with ServerProcess(tmp_path / "config.toml", settings) as server:

        async def scenario() -> list[float]:
            clients = [
                await websockets.connect(
                    f"{server.ws_url}/realtime/subscribe", open_timeout=TIMEOUT
                )
                for _ in range(5)
            ]
            for ws in clients:
                await ws.recv()  # connected
            loop = asyncio.get_running_loop()
            started = loop.time()
            server.process.send_signal(signal.SIGTERM)

            async def closed(ws: websockets.ClientConnection) -> float:
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1001
                return loop.time() - started

            return await asyncio.gather(*(closed(ws) for ws in clients))

        delays = asyncio.run(scenario())
        assert max(delays) < 1.0, delays
        assert server.process.wait(TIMEOUT * 2) == 0


async def test_broadcasts_to_everyone_are_replayed_once(
    server: LiveServer, users: dict[str, User]
) -> None:
    broadcast = server.app.realtime_broadcast  # type: ignore[attr-defined]
    start = broadcast("start")
    missed = broadcast("while away")
    Message.create(text="missed", author=users["alice"])
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages", since=start)
        replayed = await client.events(2)
        assert replayed[0]["id"] == missed
        assert replayed[0]["name"] == "while away" and replayed[1]["record"]["text"] == "missed"
        await client.ok_subscribe("*", since=start)  # a second resume: nothing twice
        await client.expect_silence()
