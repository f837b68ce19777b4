"""Write → delivery latency across several server processes on one Redis: subscribers
spread evenly over the processes, writes at a steady rate through the records API of
the first. Run by the load client (`scenario: "spread"`).

The writes go through one process: two processes writing one SQLite file at once
wait on each other's locks (up to `busy_timeout`), which would measure SQLite."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .procstat import cpu_seconds
from .publisher import Publisher, PublishTarget
from .scenarios import Connector, Tally, close_codes, connected, settle
from .stats import percentile
from .subscribers import Subscriber

__all__ = ["spread"]


async def spread(spec: dict[str, Any]) -> dict[str, Any]:
    connectors = [Connector(**c) for c in spec["connectors"]]
    publisher = Publisher(PublishTarget(**spec["publish"]), 4)
    servers: list[int] = spec["server_pids"]
    tally = Tally()
    subscribers: list[Subscriber] = []
    failures: list[str] = []
    try:
        share = spec["subscribers"] // len(connectors)
        for each in connectors:
            added, failed = await each.open(share, tally)
            subscribers += added
            failures += failed
        alive = connected(subscribers)
        settled = await settle(tally, publisher, alive)
        per_second, count = spec["writes_per_second"], spec["writes"]
        latencies: list[float] = []
        scheduled: dict[int, float] = {}
        tally.latencies, tally.scheduled = latencies, scheduled
        tally.reset(alive * count)
        cpu_before = [cpu_seconds(pid) for pid in servers]
        started = time.perf_counter()
        # Latency counts from each write's scheduled time: a late write is not hidden.
        await publisher.paced(count, per_second, scheduled.__setitem__)
        complete = await tally.wait(30.0)
        seconds = time.perf_counter() - started
        used = [cpu_seconds(pid) - before for pid, before in zip(servers, cpu_before, strict=True)]
        busy = [cpu / seconds for cpu in used]
    finally:
        for s in subscribers:
            s.close()
        publisher.close()
        await asyncio.sleep(0.5)  # let the closes go out
    return {
        "processes": len(connectors),
        "subscribers": alive,
        "connect_failures": len(failures),
        "connect_failure_sample": failures[:3],
        "settled": settled,
        "writes_per_second": per_second,
        "writes": count,
        "expected": alive * count,
        "deliveries": tally.count,
        "complete": complete,
        "p50_ms": _ms(percentile(latencies, 0.5)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(max(latencies, default=None)),
        "server_cpu_share": busy,
        "publish_failures": publisher.failures,
        "close_codes": close_codes(subscribers),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
