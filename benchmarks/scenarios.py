"""The measurements, as the load client runs them against one server.

Each takes a spec (plain JSON from the harness) and returns plain JSON. Every wait is
bounded; whatever did not arrive in time is reported, not waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .expand_cost import subscribe_frame
from .procstat import cpu_seconds, cpu_since, cpu_times, rss_bytes
from .publisher import Publisher, PublishTarget, sequence_numbers
from .socketio_client import SocketIoSubscriber
from .stats import percentile, rate
from .subscribers import SseSubscriber, Subscriber, WsSubscriber, open_all

__all__ = [
    "Connector",
    "Tally",
    "close_codes",
    "connected",
    "fanout",
    "idle",
    "publish_cost",
    "settle",
]

STALL_SECONDS = 10.0  # no delivery for this long ends a wait
WARMUP_EVENTS = 3


@dataclass
class Tally:
    """Counts deliveries towards a target; optionally times each one."""

    target: int = 0
    count: int = 0
    payload_bytes: int = 0
    messages: int = 0
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Latency: from `started` (one event at a time), or from each sequence's scheduled
    # time in `scheduled` (a steady rate, several in flight).
    latencies: list[float] | None = None
    started: float = 0.0
    scheduled: dict[int, float] | None = None

    def reset(self, target: int) -> None:
        self.target, self.count, self.payload_bytes, self.messages = target, 0, 0, 0
        self.done.clear()

    def events(self, subscriber: Subscriber, data: bytes, count: int, now: float) -> None:
        self.count += count
        self.messages += 1
        self.payload_bytes += len(data)
        self.last = now
        if self.latencies is not None:
            if self.scheduled is not None:
                for sequence in sequence_numbers(data):
                    due = self.scheduled.get(sequence)
                    if due is not None:
                        self.latencies.append(now - due)
            else:
                self.latencies.extend([now - self.started] * count)
        if self.count >= self.target:
            self.done.set()

    async def wait(self, limit: float) -> bool:
        """Until the target is reached (True), no progress for STALL_SECONDS or `limit`."""
        deadline = time.perf_counter() + limit
        seen, seen_at = -1, time.perf_counter()
        while not self.done.is_set():
            now = time.perf_counter()
            if self.count != seen:
                seen, seen_at = self.count, now
            if now - seen_at > STALL_SECONDS or now > deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), 0.5)
        return True


@dataclass(frozen=True)
class Connector:
    """How to open subscribers to one server."""

    port: int
    transport: str  # "ws" | "sse" | "socketio" (Engine.IO v4 over a WebSocket)
    path: str
    ours: bool
    pattern: str = "messages"
    headers: dict[str, str] | None = None
    expand: tuple[str, ...] = ()  # foreign keys our subscribe frames ask to expand

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    def make(self, sink: Any, patterns: Sequence[str] | None = None) -> Subscriber:
        if self.transport == "sse":
            return SseSubscriber(sink, self.port, self.path, self.headers)
        if self.transport == "socketio":
            return SocketIoSubscriber(sink)
        frames = [
            json.dumps(subscribe_frame(f"s{i}", p, self.expand)).encode()
            for i, p in enumerate(patterns or [self.pattern])
        ]
        return WsSubscriber(sink, frames if self.ours else ())

    async def open(
        self, count: int, sink: Any, patterns: Sequence[str] | None = None
    ) -> tuple[list[Subscriber], list[str]]:
        subscribers = [self.make(sink, patterns) for _ in range(count)]
        failures = await open_all(subscribers, self.url, self.port, headers=self.headers)
        return subscribers, failures


def connected(subscribers: Sequence[Subscriber]) -> int:
    return sum(1 for s in subscribers if s.connected)


def close_codes(subscribers: Sequence[Subscriber]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for s in subscribers:
        if not s.connected and not s.closing:
            key = str(s.close_code)
            codes[key] = codes.get(key, 0) + 1
    return codes


async def settle(tally: Tally, publisher: Publisher, subscribers: int) -> bool:
    """A few events that everyone must get before a measurement starts."""
    tally.reset(subscribers * WARMUP_EVENTS)
    await publisher.burst(WARMUP_EVENTS)
    settled = await tally.wait(30.0)
    # The load client's collector set up as the servers' is
    # (runtime.server.collect_garbage_for_serving): the subscribers, made now, out of
    # every later collection, and young collections every 10,000 allocations. A full
    # collection of its own (30-45 ms, seen in runs) would count as the server's latency.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    return settled


async def fanout(spec: dict[str, Any]) -> dict[str, Any]:
    """Deliveries per second at each level of subscribers, then latency at one."""
    connector = Connector(**spec["connector"])
    publisher = Publisher(PublishTarget(**spec["publish"]), spec.get("publish_concurrency", 4))
    server = spec["server_pid"]
    tally = Tally()
    subscribers: list[Subscriber] = []
    results: list[dict[str, Any]] = []
    latency: dict[str, Any] | None = None
    try:
        for level in spec["levels"]:
            n, events = level["subscribers"], level["events"]
            added, failures = await connector.open(n - len(subscribers), tally)
            subscribers += added
            alive = connected(subscribers)
            settled = await settle(tally, publisher, alive)
            # The machine is shared: the best of a few bursts is the server's capacity,
            # the others were disturbed by something else.
            bursts = []
            for _ in range(spec.get("repeats", 1)):
                bursts.append(await _burst(tally, publisher, alive, events, server, spec))
            best = max(bursts, key=lambda b: b["deliveries_per_second"] or 0)
            best["all_deliveries_per_second"] = [b["deliveries_per_second"] for b in bursts]
            best.update(
                {
                    "subscribers": n,
                    "connected": alive,
                    "connect_failures": len(failures),
                    "connect_failure_sample": failures[:3],
                    "settled": settled,
                    "complete": all(b["complete"] for b in bursts),
                    "disconnected": len(subscribers) - connected(subscribers),
                    "close_codes": close_codes(subscribers),
                    "server_rss": rss_bytes(server),
                }
            )
            results.append(best)
            if spec.get("latency") and n == spec["latency"]["subscribers"]:
                saturation = results[-1]["events_per_second"]
                latency = await _latency(tally, publisher, connected(subscribers), spec, saturation)
    finally:
        for s in subscribers:
            s.close()
        publisher.close()
        await asyncio.sleep(0.5)  # let the closes go out
    return {"levels": results, "latency": latency, "publish_failures": publisher.failures}


async def _burst(
    tally: Tally, publisher: Publisher, alive: int, events: int, server: int, spec: dict[str, Any]
) -> dict[str, Any]:
    """`events` published as fast as the server takes them, until all `alive` got each."""
    tally.reset(alive * events)
    load_before, server_before = time.process_time(), cpu_seconds(server)
    started = time.perf_counter()
    sending = asyncio.create_task(publisher.burst(events))
    complete = await tally.wait(spec.get("timeout", 120.0))
    server_cpu = cpu_seconds(server) - server_before
    await asyncio.wait_for(sending, 30.0)
    published_in = time.perf_counter() - started
    seconds = max(tally.last - started, 1e-9)
    return {
        "events": events,
        "expected": alive * events,
        "deliveries": tally.count,
        "complete": complete,
        "seconds": seconds,
        "deliveries_per_second": rate(tally.count, seconds),
        "events_per_second": rate(tally.count / max(alive, 1), seconds),
        "publish_seconds": published_in,
        "server_cpu_seconds": server_cpu,
        "server_cpu_us_per_delivery": 1e6 * server_cpu / max(tally.count, 1),
        "load_cpu_share": (time.process_time() - load_before) / seconds,
        "frame_bytes": tally.payload_bytes / max(tally.count, 1),
        "messages": tally.messages,
    }


async def _latency(
    tally: Tally, publisher: Publisher, alive: int, spec: dict[str, Any], saturation: float | None
) -> dict[str, Any]:
    """One event at a time (each waited for by all), then a steady half-saturation rate."""
    options = spec["latency"]
    one: list[float] = []
    tally.latencies, tally.scheduled = one, None
    incomplete = 0
    server = spec["server_pid"]
    before = cpu_times(server)
    for _ in range(options["events"]):
        tally.reset(alive)
        tally.started = time.perf_counter()
        await publisher.publish(publisher.take_sequence())
        if not await tally.wait(10.0):
            incomplete += 1
    used, kernel = cpu_since(server, before)
    result: dict[str, Any] = {
        "subscribers": alive,
        "one_event_count": len(one),
        "one_event_incomplete": incomplete,
        "one_event_p50_ms": _ms(percentile(one, 0.5)),
        "one_event_p99_ms": _ms(percentile(one, 0.99)),
        # Each event alone: what one delivery costs without bursts to amortise it, and
        # the kernel's part of it (mostly the send() to each subscriber's socket).
        "one_event_server_cpu_us_per_delivery": 1e6 * used / max(len(one), 1),
        "one_event_server_system_us_per_delivery": 1e6 * kernel / max(len(one), 1),
    }
    if saturation:
        per_second = saturation / 2
        count = max(5, int(per_second * options["paced_seconds"]))
        paced: list[float] = []
        scheduled: dict[int, float] = {}
        tally.latencies, tally.scheduled = paced, scheduled
        tally.reset(alive * count)
        cpu_before, started = cpu_seconds(server), time.perf_counter()
        await publisher.paced(count, per_second, scheduled.__setitem__)
        complete = await tally.wait(30.0)
        busy = (cpu_seconds(server) - cpu_before) / (time.perf_counter() - started)
        result.update(
            {
                "half_rate_events_per_second": per_second,
                "half_rate_events": count,
                "half_rate_complete": complete,
                "half_rate_server_cpu_share": busy,
                "half_rate_p50_ms": _ms(percentile(paced, 0.5)),
                "half_rate_p99_ms": _ms(percentile(paced, 0.99)),
            }
        )
    tally.latencies = tally.scheduled = None
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def idle(spec: dict[str, Any]) -> dict[str, Any]:
    """Resident memory per idle connection at each level; then, held for a while with
    heartbeats, how many stay, and whether they still get an event."""
    connector = Connector(**spec["connector"])
    server = spec["server_pid"]
    tally = Tally()
    subscribers: list[Subscriber] = []
    levels = []
    before = rss_bytes(server)
    try:
        for n in spec["levels"]:
            added, failures = await connector.open(n - len(subscribers), tally)
            subscribers += added
            await asyncio.sleep(spec.get("settle_seconds", 2.0))
            rss = rss_bytes(server)
            alive = connected(subscribers)
            levels.append(
                {
                    "connections": n,
                    "connected": alive,
                    "connect_failures": len(failures),
                    "connect_failure_sample": failures[:3],
                    "rss_before": before,
                    "rss": rss,
                    "bytes_per_connection": (rss - before) / max(alive, 1),
                }
            )
        held: dict[str, Any] | None = None
        if spec.get("hold_seconds"):
            pings_before = sum(s.pings for s in subscribers)
            await asyncio.sleep(spec["hold_seconds"])
            alive = connected(subscribers)
            publisher = Publisher(PublishTarget(**spec["publish"]), 1)
            tally.reset(alive)
            await publisher.publish(publisher.take_sequence())
            await tally.wait(30.0)
            publisher.close()
            held = {
                "connections": len(subscribers),
                "hold_seconds": spec["hold_seconds"],
                "still_connected": alive,
                "pings_per_connection": (sum(s.pings for s in subscribers) - pings_before)
                / max(len(subscribers), 1),
                "got_an_event_after": tally.count,
                "close_codes": close_codes(subscribers),
                "rss": rss_bytes(server),
                "server_cpu_seconds": cpu_seconds(server),
            }
    finally:
        for s in subscribers:
            s.close()
        await asyncio.sleep(1.0)
    return {"levels": levels, "held": held}


async def publish_cost(spec: dict[str, Any]) -> dict[str, Any]:
    """Server CPU per published event with a few real subscribers, before, with and
    after many subscriptions elsewhere (patterns that never match what is published)."""
    connector = Connector(**spec["connector"])
    publisher = Publisher(PublishTarget(**spec["publish"]), 4)
    server = spec["server_pid"]
    tally = Tally()
    real, _ = await connector.open(spec["real_subscribers"], tally)
    others: list[Subscriber] = []
    events = spec["events"]

    async def cost() -> dict[str, Any]:
        alive = connected(real)
        await settle(tally, publisher, alive)
        tally.reset(alive * events)
        before, started = cpu_seconds(server), time.perf_counter()
        await publisher.burst(events)
        complete = await tally.wait(60.0)
        used = cpu_seconds(server) - before
        return {
            "server_cpu_us_per_event": 1e6 * used / events,
            "seconds": time.perf_counter() - started,
            "complete": complete,
        }

    try:
        empty_before = await cost()
        per = spec["patterns_per_connection"]
        other = Connector(**{**spec["connector"], "headers": spec.get("other_headers")})
        failures: list[str] = []
        for start in range(0, spec["other_connections"], 500):  # a few at a time
            batch = min(500, spec["other_connections"] - start)
            patterns_of = [
                [
                    f"{spec['other_collection']}/{1_000_000 + (start + c) * per + j}"
                    for j in range(per)
                ]
                for c in range(batch)
            ]
            made = [other.make(tally, patterns) for patterns in patterns_of]
            failures += await open_all(made, other.url, other.port, headers=other.headers)
            others += made
        subscriptions = sum(s.subscribed for s in others)
        refused = sum(len(s.errors) for s in others)
        crowded = await cost()
        for s in others:
            s.close()
        await asyncio.sleep(2.0)
        empty_after = await cost()
    finally:
        for s in real + others:
            s.close()
        publisher.close()
        await asyncio.sleep(0.5)
    baseline = (
        empty_before["server_cpu_us_per_event"] + empty_after["server_cpu_us_per_event"]
    ) / 2
    return {
        "real_subscribers": len(real),
        "other_subscriptions": subscriptions,
        "other_refused": refused,
        "other_error_sample": [e.decode(errors="replace") for s in others for e in s.errors][:3],
        "other_connect_failures": len(failures),
        "empty_before": empty_before,
        "crowded": crowded,
        "empty_after": empty_after,
        "ratio": crowded["server_cpu_us_per_event"] / baseline if baseline else None,
    }


async def write_rate(spec: dict[str, Any]) -> dict[str, Any]:
    """Records-API writes per second and server CPU per write, bursts of `events` writes
    (`concurrency` in flight), each burst timed until one subscriber has every event."""
    connector = Connector(**spec["connector"])
    publisher = Publisher(PublishTarget(**spec["publish"]), spec.get("concurrency", 4))
    server = spec["server_pid"]
    tally = Tally()
    watchers, _ = await connector.open(1, tally)
    events = spec["events"]
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(spec["repeats"]):
            alive = connected(watchers)
            await settle(tally, publisher, alive)
            tally.reset(alive * events)
            before, started = cpu_seconds(server), time.perf_counter()
            await publisher.burst(events)
            complete = await tally.wait(60.0)
            seconds = time.perf_counter() - started
            used = cpu_seconds(server) - before
            runs.append(
                {
                    "writes_per_second": events / seconds,
                    "server_cpu_us_per_write": 1e6 * used / events,
                    "complete": complete and publisher.failures == 0,
                }
            )
    finally:
        for watcher in watchers:
            watcher.close()
        publisher.close()
    return {"runs": runs}
