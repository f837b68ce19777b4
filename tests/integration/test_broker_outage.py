"""The broker's backend down and back, over a real server: record changes wait and go
out in commit order, broadcasts raise, the outage is logged once and shown in metrics
(docs/events.md). The backend here fails on demand; the Redis backend's own outage
tests stop a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence

import httpx
import pytest
from quart import Quart

from runtime.config import Config
from runtime.db import database
from runtime.demo import Message, create_demo_app
from runtime.realtime import BrokerUnavailable
from runtime.realtime.events import Event
from runtime.realtime.publishing.backends import BackendUnavailable
from runtime.realtime.publishing.backends.memory import MemoryBackend
from runtime.users import User
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer, metrics_until


class SwitchableBackend(MemoryBackend):
    """The in-memory backend, unreachable while `down`."""

    down = False

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        if self.down:
            raise BackendUnavailable("connection refused (the test's outage)")
        return await super().publish(events)


@pytest.fixture
def backend() -> SwitchableBackend:
    return SwitchableBackend(history_size=100)


@pytest.fixture
def app(
    config: Config, backend: SwitchableBackend, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Quart]:
    monkeypatch.setattr("runtime.realtime.extension.backend_from_url", lambda url, **_: backend)
    app = create_demo_app(config)
    yield app
    database.close()


async def test_changes_wait_out_an_outage_and_broadcasts_raise(
    server: LiveServer,
    app: Quart,
    backend: SwitchableBackend,
    users: dict[str, User],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "runtime.realtime")
    async with (
        await Client.connect(server) as watcher,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await watcher.ok_subscribe("messages")
        backend.down = True
        for text in ("during 1", "during 2", "during 3"):
            Message.create(text=text, author=users["alice"])
        await metrics_until(http, "runtime_realtime_broker_up 0\n")
        with pytest.raises(BrokerUnavailable, match="the test's outage"):
            await asyncio.to_thread(app.realtime_broadcast, "during", {})
        backend.down = False
        events = await asyncio.wait_for(watcher.events(3), 3 * TIMEOUT)
        assert [e["record"]["text"] for e in events] == ["during 1", "during 2", "during 3"]
        metrics = await metrics_until(http, "runtime_realtime_broker_up 1\n")
        assert "runtime_realtime_broker_outages_total 1\n" in metrics
        assert "runtime_realtime_publish_queue 0\n" in metrics
        await asyncio.to_thread(app.realtime_broadcast, "after", {"n": 1})
        custom = await watcher.recv_type("event")
        assert (custom["name"], custom["data"]) == ("after", {"n": 1})
    failed = [r for r in caplog.records if "backend failed" in r.getMessage()]
    assert len(failed) == 1 and "the test's outage" in failed[0].getMessage()
    assert any("is back" in r.getMessage() for r in caplog.records)
