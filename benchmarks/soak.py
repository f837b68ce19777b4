"""The soak: many subscribers, some reconnecting and resuming, a steady write rate for
minutes. The server's CPU per event must stay flat, and every subscriber must get
every event exactly once, in order, across its reconnects."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .delivery import verify
from .procstat import cpu_seconds, rss_bytes
from .publisher import Publisher, PublishTarget
from .subscribers import SseSubscriber, Subscriber, WsSubscriber, open_all

__all__ = ["soak"]

_EVENT = re.compile(
    rb'"type":"event","id":"([^"]+)","collection":"messages","topic":"messages/(\d+)"'
)


@dataclass
class Client:
    """One logical subscriber across its connections."""

    transport: str
    received: list[int] = field(default_factory=list)  # record ids, as they came
    last_event_id: str | None = None
    connection: Subscriber | None = None
    reconnects: int = 0

    def events(self, subscriber: Subscriber, data: bytes, count: int, now: float) -> None:
        for event_id, record_id in _EVENT.findall(data):
            self.received.append(int(record_id))
            self.last_event_id = event_id.decode()

    def connect_new(self, port: int) -> Subscriber:
        if self.transport == "sse":
            headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
            self.connection = SseSubscriber(
                self, port, "/realtime/subscribe?pattern=messages", headers
            )
        else:
            frame: dict[str, Any] = {"type": "subscribe", "id": "s", "pattern": "messages"}
            if self.last_event_id:
                frame["since"] = self.last_event_id
            self.connection = WsSubscriber(self, [json.dumps(frame).encode()])
        return self.connection


async def _connect(clients: list[Client], port: int) -> list[str]:
    failures: list[str] = []
    for transport in ("ws", "sse"):
        mine = [c for c in clients if c.transport == transport]
        if mine:
            subscribers = [c.connect_new(port) for c in mine]
            url = f"ws://127.0.0.1:{port}/realtime/subscribe"
            failures += await open_all(subscribers, url, port)
    return failures


async def soak(spec: dict[str, Any]) -> dict[str, Any]:
    port, server = spec["port"], spec["server_pid"]
    seconds, per_second = spec["seconds"], spec["events_per_second"]
    clients = [Client("ws") for _ in range(spec["websocket"])]
    clients += [Client("sse") for _ in range(spec["sse"])]
    failures = await _connect(clients, port)
    publisher = Publisher(PublishTarget(**spec["publish"]), 4)
    chooser = random.Random(7)
    samples: list[tuple[float, float, int, int]] = []  # time, server CPU, events, deliveries
    reconnect_failures: list[str] = []

    def sample() -> None:
        delivered = sum(len(c.received) for c in clients)
        samples.append(
            (time.perf_counter(), cpu_seconds(server), len(publisher.record_ids), delivered)
        )

    async def sampling() -> None:
        while True:
            sample()
            await asyncio.sleep(1.0)

    async def reconnecting() -> None:
        while True:
            await asyncio.sleep(spec["reconnect_every"])
            chosen = chooser.sample(clients, int(len(clients) * spec["reconnect_fraction"]))
            for client in chosen:
                if client.connection is not None:
                    client.connection.close()
                client.reconnects += 1
            reconnect_failures.extend(await _connect(chosen, port))

    rss_start = rss_bytes(server)
    background = [asyncio.create_task(sampling()), asyncio.create_task(reconnecting())]
    try:
        await publisher.paced(int(seconds * per_second), per_second, lambda _s, _t: None)
        sample()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    # The last events' fan-out, and replays of late reconnects, then check.
    published = list(publisher.record_ids)
    deadline = time.perf_counter() + 30.0
    while time.perf_counter() < deadline:
        if all(len(c.received) >= len(published) for c in clients):
            break
        await asyncio.sleep(0.5)
    rss_end = rss_bytes(server)
    for client in clients:
        if client.connection is not None:
            client.connection.close()
    publisher.close()
    await asyncio.sleep(0.5)
    return {
        "seconds": seconds,
        "events_per_second": per_second,
        "websocket": spec["websocket"],
        "sse": spec["sse"],
        "events": len(published),
        "publish_failures": publisher.failures,
        "connect_failures": len(failures),
        "reconnects": sum(c.reconnects for c in clients),
        "reconnect_failures": len(reconnect_failures),
        "reconnect_failure_sample": reconnect_failures[:3],
        "closed_by_server": sum(
            1 for c in clients if c.connection is not None and c.connection.close_code
        ),
        "thirds": _thirds(samples),
        "rss_start": rss_start,
        "rss_end": rss_end,
        "delivery": verify([c.received for c in clients], published),
    }


def _thirds(samples: list[tuple[float, float, int, int]]) -> dict[str, Any]:
    """Server CPU per published event in the first and last third of the run."""
    if len(samples) < 4:
        return {}
    start, end = samples[0][0], samples[-1][0]
    span = end - start

    def at(t: float) -> tuple[float, float, int, int]:
        return min(samples, key=lambda s: abs(s[0] - t))

    def per_event(a: tuple[float, float, int, int], b: tuple[float, float, int, int]) -> float:
        return 1e6 * (b[1] - a[1]) / max(b[2] - a[2], 1)

    first = per_event(at(start), at(start + span / 3))
    last = per_event(at(start + 2 * span / 3), at(end))
    return {
        "first_us_per_event": first,
        "last_us_per_event": last,
        "ratio": last / first if first else None,
    }
