"""The `scaleout` section: the Redis backend (docs/scaling.md) against the memory one.

- Fan-out throughput of one server process on Redis, as a ratio of the same server on
  the memory broker, in the same scenario as the `fanout` section (plain WebSocket):
  only `realtime.broker` differs.
- Write → delivery latency to subscribers spread over two server processes on one
  Redis, at a steady write rate through the records API of one of them.
- The transactional outbox's cost: records-API writes per second with it and without
  it (`realtime.outbox = false`), on the memory broker, alternated run by run so that
  the machine's noise falls on both alike.

The redis-server is the tests' own (tests/redis_server.py: no persistence, a free
port, a folder of its own); started by the harness, it shares the load client's CPU.
The fan-out's one server is pinned to the server CPU as in `fanout`; the two processes
of the latency run are not pinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.redis_server import RedisServer, find_redis_server

from .harness import Cpus, Log, connector, run_load, trouble
from .targets import OURS, running, running_cluster

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["scaleout"]


def scaleout(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> dict[str, Any]:
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    redis = RedisServer(binary)
    try:
        redis.start()
        runs = [
            _fanout(plan, workdir, cpus, log, "memory", "memory"),
            _fanout(plan, workdir, cpus, log, "redis", redis.database()),
        ]
        latency = _spread(plan, workdir, cpus, log, redis.database())
        # And at a rate a machine of two shared cores keeps up with (see performance.md).
        sustained = _spread(
            plan, workdir, cpus, log, redis.database(), plan.scaleout_sustained_per_second
        )
    finally:
        redis.close()
    outbox = [
        _writes(plan, workdir, cpus, log, on) for _ in range(plan.repeats) for on in (True, False)
    ]
    return {"fanout": runs, "latency": latency, "sustained": sustained, "outbox": outbox}


def _writes(plan: Plan, workdir: Path, cpus: Cpus, log: Log, outbox: bool) -> dict[str, Any]:
    settings = {"RUNTIME_REALTIME_OUTBOX": "true" if outbox else "false"}
    with running(OURS, workdir, cpus.server, settings) as (live, process):
        spec = {
            "scenario": "write_rate",
            "cpu": cpus.load,
            "server_pid": live.pid,
            "connector": connector(live, "ws"),
            "publish": live.publish_target(),
            "events": plan.outbox_writes,
            "repeats": 3,
        }
        result = run_load(spec, 600)
        result.update(outbox=outbox, server_trouble=trouble(process))
    rates = ", ".join(f"{run['writes_per_second']:,.0f}" for run in result["runs"])
    log(f"  outbox {'on ' if outbox else 'off'}: {rates} writes/s")
    return result


def _fanout(
    plan: Plan, workdir: Path, cpus: Cpus, log: Log, name: str, broker: str
) -> dict[str, Any]:
    settings = {"RUNTIME_REALTIME_BROKER": broker}
    with running(OURS, workdir, cpus.server, settings) as (live, process):
        spec = {
            "scenario": "fanout",
            "cpu": cpus.load,
            "server_pid": live.pid,
            "connector": connector(live, "ws"),
            "publish": live.publish_target(),
            "levels": [
                {"subscribers": n, "events": max(10, plan.deliveries_per_level // n)}
                for n in plan.scaleout_levels
            ],
            "repeats": plan.repeats,
        }
        result = run_load(spec, 600)
        result.update(broker=name, server_trouble=trouble(process))
    for level in result["levels"]:
        bursts = ", ".join(f"{r or 0:,.0f}" for r in level["all_deliveries_per_second"])
        log(
            f"  {name:6} broker N={level['subscribers']:>5}: {bursts} deliveries/s "
            f"({level['deliveries']}/{level['expected']})"
        )
    return result


def _spread(
    plan: Plan,
    workdir: Path,
    cpus: Cpus,
    log: Log,
    broker: str,
    per_second: float | None = None,
) -> dict[str, Any]:
    settings = {"RUNTIME_REALTIME_BROKER": broker}
    per_second = per_second or plan.scaleout_writes_per_second
    # Not pinned: two processes stand for two cores, and this machine has no more than
    # the two they share with the load client (pinned to its CPU) and Redis.
    with running_cluster(2, workdir, None, settings) as cluster:
        spec = {
            "scenario": "spread",
            "cpu": cpus.load,
            "server_pids": [live.pid for live, _ in cluster],
            "connectors": [connector(live, "ws") for live, _ in cluster],
            "publish": cluster[0][0].publish_target(),
            "subscribers": plan.scaleout_subscribers,
            "writes_per_second": per_second,
            "writes": int(per_second * plan.scaleout_seconds),
        }
        result = run_load(spec, plan.scaleout_seconds + 300)
        result["server_trouble"] = [line for _, process in cluster for line in trouble(process)]
    log(
        f"  {result['subscribers']} subscribers on {result['processes']} processes, "
        f"{result['writes_per_second']:g} writes/s: p50 {result['p50_ms'] or 0:.1f} ms, "
        f"p99 {result['p99_ms'] or 0:.1f} ms ({result['deliveries']}/{result['expected']})"
    )
    return result
