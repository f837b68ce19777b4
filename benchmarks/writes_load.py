"""The `writes` section's measurement, as the load client runs it (`scenario: "writes"`)
against two servers on one database: the bare create peer and ours.

1. Bursts of creates (`concurrency` in flight), bare and ours alternated burst by burst
   so that the machine's noise falls on both alike: writes per second (until the last
   reply) and the server process's CPU per write. No subscriber.
2. Ours with `subscribers` WebSocket subscribers on `messages`: the same bursts, each
   timed until every subscriber has every event.
3. Write → delivery latency with those subscribers at steady rates, fractions of the
   best burst just measured; then a short bisection for the highest rate whose p99
   stays under the limit (every event delivered, too).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .procstat import cpu_since, cpu_times
from .publisher import Publisher, PublishTarget
from .scenarios import Connector, Tally, close_codes, connected, settle
from .stats import percentile
from .subscribers import Subscriber

__all__ = ["steady_search", "writes"]

WARMUP_WRITES = 20


async def writes(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = spec.get("concurrency", 4)
    bare = Publisher(PublishTarget(**spec["bare"]["publish"]), concurrency)
    ours = Publisher(PublishTarget(**spec["ours"]["publish"]), concurrency)
    bare_pid, our_pid = spec["bare"]["server_pid"], spec["ours"]["server_pid"]
    tally = Tally()
    subscribers: list[Subscriber] = []
    try:
        await bare.burst(WARMUP_WRITES)
        await ours.burst(WARMUP_WRITES)
        alone: dict[str, list[dict[str, Any]]] = {"bare": [], "ours": []}
        for _ in range(spec["repeats"]):
            alone["bare"].append(await _burst(bare, bare_pid, spec["burst"]))
            alone["ours"].append(await _burst(ours, our_pid, spec["burst"]))
        connector = Connector(**spec["ours"]["connector"])
        subscribers, failures = await connector.open(spec["subscribers"], tally)
        alive = connected(subscribers)
        settled = await settle(tally, ours, alive)
        subscribed = []
        for _ in range(spec["repeats"]):
            subscribed.append(await _burst(ours, our_pid, spec["subscribed_burst"], tally, alive))
        complete = [b for b in subscribed if b["complete"]]
        saturation = max((b["writes_per_second"] for b in complete), default=None)
        latency = (
            await _latency(ours, our_pid, tally, alive, saturation, spec["latency"])
            if saturation
            else None
        )
        result: dict[str, Any] = {
            "bare": alone["bare"],
            "ours": alone["ours"],
            "subscribers": alive,
            "connect_failures": len(failures),
            "connect_failure_sample": failures[:3],
            "settled": settled,
            "subscribed": subscribed,
            "saturation_writes_per_second": saturation,
            "latency": latency,
            "close_codes": close_codes(subscribers),
        }
    finally:
        for s in subscribers:
            s.close()
        bare.close()
        ours.close()
        await asyncio.sleep(0.5)  # let the closes go out
    return result


async def _burst(
    publisher: Publisher,
    server: int,
    count: int,
    tally: Tally | None = None,
    alive: int = 0,
) -> dict[str, Any]:
    """`count` creates as fast as the server answers them; with a tally, until every
    one of `alive` subscribers has each."""
    failures = publisher.failures
    if tally is not None:
        tally.reset(alive * count)
    before, started = cpu_times(server), time.perf_counter()
    await publisher.burst(count)
    delivered = await tally.wait(60.0) if tally is not None else True
    seconds = time.perf_counter() - started
    used, kernel = cpu_since(server, before)
    return {
        "writes": count,
        "seconds": seconds,
        "writes_per_second": count / seconds,
        "server_cpu_us_per_write": 1e6 * used / count,
        "server_system_us_per_write": 1e6 * kernel / count,
        "server_cpu_share": used / seconds,
        "deliveries": tally.count if tally is not None else None,
        "complete": delivered and publisher.failures == failures,
    }


async def _latency(
    publisher: Publisher,
    server: int,
    tally: Tally,
    alive: int,
    saturation: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    async def paced(per_second: float) -> dict[str, Any]:
        return await _paced(publisher, server, tally, alive, per_second, options)

    fixed = []
    for fraction in options["fractions"]:
        run = await paced(saturation * fraction)
        fixed.append({"fraction": fraction, **run})
    limit = options["limit_ms"]
    steady, steps = await steady_search(
        [(run["writes_per_second"], run) for run in fixed],
        saturation,
        options["search_steps"],
        lambda run: run["complete"] and run["p99_ms"] is not None and run["p99_ms"] < limit,
        paced,
    )
    return {
        "subscribers": alive,
        "saturation_writes_per_second": saturation,
        "limit_ms": limit,
        "fixed": fixed,
        "search": steps,
        "steady": steady,
    }


async def steady_search(
    tried: list[tuple[float, dict[str, Any]]],
    ceiling: float,
    steps: int,
    good: Any,
    run_at: Any,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The highest rate found good: between the best good rate tried and the lowest
    bad one above it (or `ceiling`), halved `steps` times. Returns that rate's run (None
    if none was good) and the runs of the search itself."""
    good_runs = [(rate, run) for rate, run in tried if good(run)]
    best = max(good_runs, key=lambda pair: pair[0], default=(0.0, None))
    low, found = best
    bad = [rate for rate, run in tried if not good(run) and rate > low]
    high = min(bad, default=ceiling)
    searched = []
    for _ in range(steps):
        middle = (low + high) / 2
        run = await run_at(middle)
        searched.append(run)
        if good(run):
            low, found = middle, run
        else:
            high = middle
    return found, searched


async def _paced(
    publisher: Publisher,
    server: int,
    tally: Tally,
    alive: int,
    per_second: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    count = max(5, int(per_second * options["paced_seconds"]))
    latencies: list[float] = []
    scheduled: dict[int, float] = {}
    tally.latencies, tally.scheduled = latencies, scheduled
    tally.reset(alive * count)
    failures = publisher.failures
    before, started = cpu_times(server), time.perf_counter()
    load_before = time.process_time()
    # Latency counts from each write's scheduled time: a late write is not hidden.
    await publisher.paced(count, per_second, scheduled.__setitem__)
    complete = await tally.wait(30.0)
    seconds = time.perf_counter() - started
    used, kernel = cpu_since(server, before)
    # This process's own share: near 100%, it reads late what arrived, and that is in
    # the latency too.
    load_busy = (time.process_time() - load_before) / seconds
    tally.latencies = tally.scheduled = None
    return {
        "writes_per_second": per_second,
        "writes": count,
        "expected": alive * count,
        "deliveries": tally.count,
        "complete": complete and publisher.failures == failures,
        "p50_ms": _ms(percentile(latencies, 0.5)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "server_cpu_share": used / seconds,
        # ... of which the kernel's: with 1,000 subscribers, mostly their sockets' send().
        "server_system_share": kernel / seconds,
        "load_cpu_share": load_busy,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
