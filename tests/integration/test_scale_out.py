"""Several server processes on one Redis act as one server (issue 14): real
`python -m runtime serve` processes sharing a database and a redis-server, real
WebSocket and SSE clients on each."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from websockets.exceptions import ConnectionClosed

from tests.cluster import create_user, logged_in, server_cluster
from tests.realtime_client import Client
from tests.redis_server import RedisServer, start_redis
from tests.sse_client import stream
from tests.support import TIMEOUT, ServerProcess, metrics_until

pytestmark = pytest.mark.cluster  # server processes of their own

RECORDS = "/api/collections/messages/records"


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    """Two server processes: one database file, one Redis, configured as
    docs/scaling.md says (its Redis at the test's own)."""
    with server_cluster(tmp_path, redis_server) as servers:
        yield servers


async def test_writes_through_either_process_reach_clients_of_both_in_one_order(
    cluster: list[ServerProcess],
) -> None:
    first, second = cluster
    async with (
        await Client.connect(first) as on_first,
        await Client.connect(second) as on_second,
        stream(second, "?pattern=messages") as sse_on_second,
        logged_in(first, "alice") as via_first,
        logged_in(second, "alice") as via_second,
    ):
        await on_first.ok_subscribe("messages")
        await on_second.ok_subscribe("messages")
        assert (await sse_on_second.frame())["type"] == "connected"
        assert (await sse_on_second.frame())["type"] == "subscribed"
        texts = [f"message {i}" for i in range(10)]
        for i, text in enumerate(texts):
            http = via_first if i % 2 == 0 else via_second
            response = await http.post(RECORDS, json={"text": text})
            assert response.status_code == 201, response.text
        heard_first = await on_first.events(10)
        heard_second = await on_second.events(10)
        heard_sse = [await sse_on_second.frame() for _ in range(10)]
        assert [e["record"]["text"] for e in heard_first] == texts
        ids = [e["id"] for e in heard_first]
        assert [e["id"] for e in heard_second] == ids == [e["id"] for e in heard_sse]
        # Nothing twice: the next event each hears is a new write's.
        assert (await via_second.post(RECORDS, json={"text": "last"})).status_code == 201
        for client in (on_first, on_second):
            assert (await client.recv_type("event"))["record"]["text"] == "last"
        assert (await sse_on_second.frame())["record"]["text"] == "last"


async def test_a_client_resumes_on_the_other_process(cluster: list[ServerProcess]) -> None:
    first, second = cluster
    async with await Client.connect(first) as on_first, logged_in(first, "alice") as http:
        await on_first.ok_subscribe("messages")
        for i in range(3):
            await http.post(RECORDS, json={"text": f"before {i}"})
        seen = await on_first.events(3)
    async with logged_in(second, "alice") as http:
        for i in range(2):
            await http.post(RECORDS, json={"text": f"missed {i}"})
    async with await Client.connect(second) as on_second:
        reply = await on_second.ok_subscribe("messages", since=seen[0]["id"])
        assert reply["recovered"] is True
        replayed = await on_second.events(4)
        assert [e["record"]["text"] for e in replayed] == [
            "before 1",
            "before 2",
            "missed 0",
            "missed 1",
        ]
        async with logged_in(second, "alice") as http:
            await http.post(RECORDS, json={"text": "live"})
        assert (await on_second.recv_type("event"))["record"]["text"] == "live"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start (it keeps its data)."""
    server = start_redis(persistent=True)
    yield server
    server.close()


async def test_redis_down_and_back_loses_nothing(tmp_path: Path, own_redis: RedisServer) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": own_redis.url,
    }
    with ServerProcess(tmp_path / "config.toml", settings) as server:
        create_user(tmp_path, settings, "alice")
        async with (
            await Client.connect(server) as watcher,
            logged_in(server, "alice") as http,
        ):
            await watcher.ok_subscribe("messages")
            await http.post(RECORDS, json={"text": "before"})
            before = await watcher.recv_type("event")
            # Its subscribers have it, but its publisher may not have read Redis's reply
            # yet: one killed now would leave it waiting too (it would go again, under
            # its key), and the count below would be 4.
            await metrics_until(http, "runtime_realtime_outbox_rows 0\n", 4 * TIMEOUT)
            own_redis.stop()
            # The server keeps serving: pages, the API, its connections.
            assert (await http.get("/", follow_redirects=True)).status_code == 200
            for i in range(3):
                response = await http.post(RECORDS, json={"text": f"during {i}"})
                assert response.status_code == 201, response.text
            await metrics_until(http, "runtime_realtime_broker_up 0\n", 4 * TIMEOUT)
            # Committed, waiting in the outbox.
            await metrics_until(http, "runtime_realtime_outbox_rows 3\n", 4 * TIMEOUT)
            own_redis.start()
            during = await asyncio.wait_for(watcher.events(3), 4 * TIMEOUT)
            assert [e["record"]["text"] for e in during] == [f"during {i}" for i in range(3)]
            assert before["id"].rpartition("-")[0] == during[0]["id"].rpartition("-")[0]
            metrics = await metrics_until(http, "runtime_realtime_broker_up 1\n", 4 * TIMEOUT)
            assert "runtime_realtime_broker_outages_total 1\n" in metrics
            assert "runtime_realtime_event_interruptions_total 0\n" in metrics
            await metrics_until(http, "runtime_realtime_outbox_rows 0\n", 4 * TIMEOUT)
    log = "".join(server.output)
    assert log.count("the broker's backend failed") == 1, log


async def test_a_redis_that_lost_its_data_makes_clients_resume_knowingly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    broker = redis_server.database()
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": broker,
    }
    with ServerProcess(tmp_path / "config.toml", settings) as server:
        create_user(tmp_path, settings, "alice")
        async with logged_in(server, "alice") as http:
            async with await Client.connect(server) as watcher:
                await watcher.ok_subscribe("messages")
                await http.post(RECORDS, json={"text": "before"})
                before = await watcher.recv_type("event")
                with redis.Redis.from_url(broker) as client:
                    client.flushdb()  # as a restart without persistence would
                await http.post(RECORDS, json={"text": "after"})
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await watcher.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            async with await Client.connect(server) as again:
                reply = await again.ok_subscribe("messages", since=before["id"])
                assert reply["recovered"] is False  # never a silent gap
                await http.post(RECORDS, json={"text": "live again"})
                assert (await again.recv_type("event"))["record"]["text"] == "live again"
            metrics = (await http.get("/realtime/metrics")).text
            assert "runtime_realtime_event_interruptions_total 1\n" in metrics


async def test_a_logout_through_one_process_closes_the_sessions_sockets_on_the_other(
    cluster: list[ServerProcess],
) -> None:
    first, second = cluster
    async with logged_in(first, "alice") as http:
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        async with (
            await Client.connect(second, headers={"Cookie": cookie}) as alice_on_second,
            await Client.connect(second) as visitor_on_second,
        ):
            await visitor_on_second.ok_subscribe("messages")
            assert (await http.post("/auth/logout")).status_code == 200
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await alice_on_second.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
            # The visitor is untouched, and hears no event of it.
            async with logged_in(first, "alice") as again:
                await again.post(RECORDS, json={"text": "after the logout"})
            event = await visitor_on_second.recv_type("event")
            assert event["record"]["text"] == "after the logout"


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 4 * TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)  # processes come and go: nothing to wait on but /proc


async def test_workers_serve_as_one_and_one_that_dies_is_started_again(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": redis_server.database(),
    }
    server = ServerProcess(tmp_path / "config.toml", settings, args=["--workers", "2"])
    with server:
        assert "(2 workers)" in "".join(server.output)
        _until(lambda: len(_children(server.process.pid)) == 2)
        workers = _children(server.process.pid)
        create_user(tmp_path, settings, "alice")
        clients = [await Client.connect(server) for _ in range(6)]
        try:
            for client in clients:
                await client.ok_subscribe("messages")
            async with logged_in(server, "alice") as http:
                for i in range(3):
                    await http.post(RECORDS, json={"text": f"to all {i}"})
            heard = [[e["id"] for e in await client.events(3)] for client in clients]
            assert all(ids == heard[0] for ids in heard)
        finally:
            for client in clients:
                await client.ws.close()
        died = min(workers)
        os.kill(died, signal.SIGKILL)
        _until(lambda: len(_children(server.process.pid) - {died}) == 2)
        async with logged_in(server, "alice") as http:  # served still
            assert (await http.post(RECORDS, json={"text": "after"})).status_code == 201
        last = _children(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(4 * TIMEOUT) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in last)


def test_several_workers_on_the_memory_broker_are_refused(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ["RUNTIME_DATABASE_PATH"] = str(tmp_path / "db.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "serve", "--workers", "2", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 6,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "realtime.broker" in done.stderr, done.stderr
