"""The transactional outbox, from outside: real server processes, a writer in another
process, a server killed with SIGKILL right after a commit (issue 14)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cluster import create_user, logged_in, server_cluster
from tests.databases import both_databases
from tests.docs_apps import blocks, my_app
from tests.realtime_client import Client
from tests.redis_server import RedisServer
from tests.support import TIMEOUT, ServerProcess

pytestmark = pytest.mark.cluster  # server processes of their own

RECORDS = "/api/collections/messages/records"

# A script or job worker of the app: it creates the app (which opens the database and
# its outbox) and writes through the models, with no server in its process.
WRITER = """
import sys
from runtime.demo import create_demo_app, Message
from runtime.users import User

app = create_demo_app()
alice = User.get(User.username == "alice")
for text in sys.argv[1:]:
    Message.create(text=text, author=alice)
"""

# The demo app, and a process that dies with SIGKILL right after a commit of "die now":
# after the COMMIT, before anything of it could be published.
DYING = """
import os
import signal

from runtime.db import on_commit
from runtime.demo import create_demo_app

app = create_demo_app()


def _die(changes):
    if any(change.data.get("text") == "die now" for change in changes):
        os.kill(os.getpid(), signal.SIGKILL)


on_commit.connect(_die)
"""


def _settings(tmp_path: Path, backend: str, database_settings: dict[str, str]) -> dict[str, str]:
    if backend == "postgresql":
        return {"RUNTIME_DATABASE_URL": database_settings["url"]}
    return {"RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3")}


def _run_script(folder: Path, name: str, source: str, settings: dict[str, str], *args: str) -> None:
    """`python NAME ARGS…` in `folder`, with `source` as the script and `settings`."""
    (folder / name).write_text(source)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ.update(settings)
    done = subprocess.run(
        [sys.executable, name, *args],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 6,
    )
    assert done.returncode == 0, done.stderr


@both_databases
async def test_a_write_from_another_process_is_announced(
    tmp_path: Path, backend: str, database_settings: dict[str, str]
) -> None:
    settings = _settings(tmp_path, backend, database_settings)
    if backend == "postgresql":  # NOTIFY wakes the relay: no poll would come in time
        settings["RUNTIME_REALTIME_OUTBOX_POLL"] = "3600"
    with ServerProcess(tmp_path / "config.toml", settings) as server:
        create_user(tmp_path, settings, "alice")
        async with await Client.connect(server) as watcher:
            await watcher.ok_subscribe("messages")
            _run_script(tmp_path, "writer.py", WRITER, settings, "from a script", "and another")
            heard = await watcher.events(2)
            assert [e["record"]["text"] for e in heard] == ["from a script", "and another"]
            assert heard[0]["action"] == "create" and heard[0]["record"]["author"]
            async with logged_in(server, "alice") as http:
                await http.post(RECORDS, json={"text": "through the server"})
            # Each once: the next event is the server's own write.
            assert (await watcher.recv_type("event"))["record"]["text"] == "through the server"


async def test_a_server_killed_right_after_a_commit_delivers_the_event_when_it_runs_again(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    (tmp_path / "dying.py").write_text(DYING)
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": redis_server.database(),  # the history outlives it
    }
    config = tmp_path / "config.toml"
    with ServerProcess(config, settings, app="dying:app") as server:
        create_user(tmp_path, settings, "alice")
        async with await Client.connect(server) as watcher, logged_in(server, "alice") as http:
            await watcher.ok_subscribe("messages")
            await http.post(RECORDS, json={"text": "before"})
            before = await watcher.recv_type("event")
            with pytest.raises(httpx.TransportError):  # it died before it could answer
                await http.post(RECORDS, json={"text": "die now"})
            assert server.process.wait(TIMEOUT) == -signal.SIGKILL
    with ServerProcess(config, settings, app="dying:app") as again:
        async with await Client.connect(again) as watcher:
            reply = await watcher.ok_subscribe("messages", since=before["id"])
            assert reply["recovered"] is True
            died = await watcher.recv_type("event")  # replayed, or live once relayed
            assert died["action"] == "create" and died["record"]["text"] == "die now"
            async with logged_in(again, "alice") as http:
                await http.post(RECORDS, json={"text": "after"})
            assert (await watcher.recv_type("event"))["record"]["text"] == "after"  # once


async def test_a_process_killed_after_a_commit_has_its_event_announced_by_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    (tmp_path / "dying.py").write_text(DYING)
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": redis_server.database(),
        "RUNTIME_APP_SECRET_KEY": "a-secret-key-both-processes-share-0123456789",
    }
    config = tmp_path / "config.toml"
    with ServerProcess(config, settings, app="dying:app") as dying:
        create_user(tmp_path, settings, "alice")
        with ServerProcess(config, settings, app="dying:app") as other:
            async with await Client.connect(other) as watcher:
                await watcher.ok_subscribe("messages")
                async with logged_in(dying, "alice") as http:
                    with pytest.raises(httpx.TransportError):
                        await http.post(RECORDS, json={"text": "die now"})
                assert dying.process.wait(TIMEOUT) == -signal.SIGKILL
                died = await watcher.recv_type("event")
                assert died["record"]["text"] == "die now"
                async with logged_in(other, "alice") as http:
                    await http.post(RECORDS, json={"text": "after"})
                assert (await watcher.recv_type("event"))["record"]["text"] == "after"


async def test_the_job_worker_of_the_docs_is_announced(tmp_path: Path) -> None:
    """docs/scaling.md's worker.py, beside README's app, run while the app is served."""
    config = my_app(tmp_path)
    (worker,) = blocks("docs/scaling.md", "python", section="The outbox")
    with ServerProcess(config, app="myapp:app") as server:
        async with await Client.connect(server) as watcher:
            await watcher.ok_subscribe("posts")
            _run_script(tmp_path, "worker.py", worker, {})
            event = await watcher.recv_type("event")
            assert event["action"] == "create"
            assert event["record"]["title"] == "from a job worker"


async def test_concurrent_writes_through_two_processes_are_heard_once_in_commit_order(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Two relays, one outbox: writes made at once through both processes reach clients
    of both once each, in one order, and that order is commit order (SQLite gives ids
    in commit order: a transaction holds the write lock from BEGIN to COMMIT)."""
    with server_cluster(tmp_path, redis_server) as (first, second):
        async with (
            await Client.connect(first) as on_first,
            await Client.connect(second) as on_second,
            logged_in(first, "alice") as via_first,
            logged_in(second, "alice") as via_second,
        ):
            await on_first.ok_subscribe("messages")
            await on_second.ok_subscribe("messages")

            async def write(http: httpx.AsyncClient, name: str) -> None:
                for i in range(20):
                    response = await http.post(RECORDS, json={"text": f"{name} {i}"})
                    assert response.status_code == 201, response.text

            await asyncio.gather(write(via_first, "first"), write(via_second, "second"))
            heard_first = await on_first.events(40)
            heard_second = await on_second.events(40)
            assert [e["id"] for e in heard_first] == [e["id"] for e in heard_second]
            record_ids = [e["record"]["id"] for e in heard_first]
            assert record_ids == sorted(record_ids) and len(set(record_ids)) == 40
            async with logged_in(first, "alice") as http:
                await http.post(RECORDS, json={"text": "last"})
            for client in (on_first, on_second):  # nothing twice: the next is the last
                assert (await client.recv_type("event"))["record"]["text"] == "last"
