"""The harness: runs every measurement against every server that supports it, in one
invocation, and collects plain JSON results for `report`.

Servers are pinned to one CPU and the load client to another (when there are two);
each measurement gets a fresh server process and a load client process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .harness import Cpus, Log, connector, run_load, trouble
from .scaleout import scaleout
from .targets import OURS, PEERS, REPO, running

__all__ = ["FULL", "QUICK", "Plan", "run_suite"]


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]  # subscribers in the fan-out runs
    deliveries_per_level: int  # events per level = this / subscribers
    repeats: int  # bursts per level; the best counts
    latency_subscribers: int
    latency_events: int
    paced_seconds: float
    idle_levels: tuple[int, ...]  # connections whose memory is measured
    scale_connections: int  # held with heartbeats (ours)
    heartbeat: float  # seconds, for the scale test
    other_connections: int  # publish cost: connections of unrelated subscriptions
    patterns_per_connection: int
    cost_events: int
    soak_seconds: float
    soak_websocket: int
    soak_sse: int
    soak_reconnect_every: float
    soak_events_per_second: float
    hook_inserts: int
    hook_rounds: int
    scaleout_levels: tuple[int, ...]  # subscribers, Redis fan-out against memory
    scaleout_subscribers: int  # spread over two processes on Redis, for latency
    scaleout_writes_per_second: float
    scaleout_seconds: float
    outbox_writes: int  # records-API writes per burst, with the outbox and without


FULL = Plan(
    levels=(100, 1000, 5000),
    deliveries_per_level=100_000,
    repeats=2,
    latency_subscribers=1000,
    latency_events=50,
    paced_seconds=3.0,
    idle_levels=(1000,),
    scale_connections=10_000,
    heartbeat=5.0,
    other_connections=1000,
    patterns_per_connection=100,
    cost_events=1000,
    soak_seconds=180.0,
    soak_websocket=1000,
    soak_sse=100,
    soak_reconnect_every=30.0,
    soak_events_per_second=10.0,
    hook_inserts=2000,
    hook_rounds=5,
    scaleout_levels=(1000, 5000),
    scaleout_subscribers=1000,
    scaleout_writes_per_second=100.0,
    scaleout_seconds=10.0,
    outbox_writes=2000,
)

QUICK = Plan(
    levels=(100, 1000),
    deliveries_per_level=20_000,
    repeats=1,
    latency_subscribers=1000,
    latency_events=10,
    paced_seconds=1.5,
    idle_levels=(500,),
    scale_connections=2000,
    heartbeat=1.0,
    other_connections=100,
    patterns_per_connection=100,
    cost_events=300,
    soak_seconds=20.0,
    soak_websocket=200,
    soak_sse=20,
    soak_reconnect_every=6.0,
    soak_events_per_second=10.0,
    hook_inserts=300,
    hook_rounds=3,
    scaleout_levels=(1000,),
    scaleout_subscribers=1000,
    scaleout_writes_per_second=100.0,
    scaleout_seconds=2.0,
    outbox_writes=300,
)

# (server, transport, label) of each fan-out run.
FANOUT = (
    (OURS, "ws", "ours, WebSocket"),
    (OURS, "ws_batch", "ours, WebSocket ?batch=1"),
    (OURS, "sse", "ours, SSE"),
    (PEERS[0], "ws", "Quart + Hypercorn loop"),
    (PEERS[0], "sse", "Quart + Hypercorn SSE loop"),
    (PEERS[1], "ws", "Starlette + broadcaster (uvicorn)"),
    (PEERS[2], "ws", "websockets broadcast()"),
)


def fanout(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> list[dict[str, Any]]:
    results = []
    for server, transport, label in FANOUT:
        with running(server, workdir, cpus.server) as (live, process):
            spec = {
                "scenario": "fanout",
                "cpu": cpus.load,
                "server_pid": live.pid,
                "connector": connector(live, transport),
                "publish": live.publish_target(),
                "levels": [
                    {"subscribers": n, "events": max(10, plan.deliveries_per_level // n)}
                    for n in plan.levels
                ],
                "repeats": plan.repeats,
                "latency": {
                    "subscribers": plan.latency_subscribers,
                    "events": plan.latency_events,
                    "paced_seconds": plan.paced_seconds,
                },
            }
            result = run_load(spec, 600)
            result.update(server=server.key, transport=transport, label=label)
            result["server_trouble"] = trouble(process)
        for level in result["levels"]:
            bursts = ", ".join(f"{r or 0:,.0f}" for r in level["all_deliveries_per_second"])
            log(
                f"  {label:34} N={level['subscribers']:>5}: {bursts} deliveries/s "
                f"({level['deliveries']}/{level['expected']}, server CPU "
                f"{level['server_cpu_seconds'] / level['seconds']:.0%}, load CPU "
                f"{level['load_cpu_share']:.0%})"
            )
        results.append(result)
    return results


def idle(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> list[dict[str, Any]]:
    results = []
    for server in (OURS, *PEERS):
        levels = [*plan.idle_levels, plan.scale_connections]
        settings = None
        hold = 0.0
        if server.ours:  # the scale test: held through three heartbeats
            settings = {
                "RUNTIME_REALTIME_HEARTBEAT": str(plan.heartbeat),
                "RUNTIME_REALTIME_HEARTBEAT_TIMEOUT": str(plan.heartbeat * 2.5),
            }
            hold = plan.heartbeat * 3 + 1
        with running(server, workdir, cpus.server, settings) as (live, process):
            spec = {
                "scenario": "idle",
                "cpu": cpus.load,
                "server_pid": live.pid,
                "connector": connector(live, "ws"),
                "publish": live.publish_target(),
                "levels": levels,
                "hold_seconds": hold,
            }
            result = run_load(spec, 600)
            result.update(server=server.key, label=server.label)
            result["server_trouble"] = trouble(process)
        for level in result["levels"]:
            log(
                f"  {server.label:34} {level['connected']:>6} idle: "
                f"{level['bytes_per_connection'] / 1024:6.1f} KiB each"
            )
        if result["held"]:
            held = result["held"]
            log(
                f"  {server.label:34} held {held['hold_seconds']:.0f} s: "
                f"{held['still_connected']}/{held['connections']} connected, "
                f"{held['got_an_event_after']} got an event after"
            )
        results.append(result)
    return results


def publish_cost(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> dict[str, Any]:
    with running(OURS, workdir, cpus.server) as (live, process):
        spec = {
            "scenario": "publish_cost",
            "cpu": cpus.load,
            "server_pid": live.pid,
            "connector": connector(live, "ws"),
            "publish": live.publish_target(),
            "real_subscribers": 10,
            "events": plan.cost_events,
            "other_connections": plan.other_connections,
            "patterns_per_connection": plan.patterns_per_connection,
            # Record patterns of another collection: `notes` is owner-read, so these
            # subscribers log in (the load client sends the session cookie).
            "other_collection": "notes",
            "other_headers": {"Cookie": live.cookie} if live.cookie else None,
        }
        result = run_load(spec, 600)
        result["server_trouble"] = trouble(process)
    log(
        f"  {result['other_subscriptions']:,} other subscriptions: "
        f"{result['crowded']['server_cpu_us_per_event']:.0f} µs/event vs "
        f"{result['empty_before']['server_cpu_us_per_event']:.0f} / "
        f"{result['empty_after']['server_cpu_us_per_event']:.0f} µs without"
    )
    return result


def soak(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> dict[str, Any]:
    with running(OURS, workdir, cpus.server) as (live, process):
        spec = {
            "scenario": "soak",
            "cpu": cpus.load,
            "server_pid": live.pid,
            "port": live.port,
            "publish": live.publish_target(),
            "seconds": plan.soak_seconds,
            "events_per_second": plan.soak_events_per_second,
            "websocket": plan.soak_websocket,
            "sse": plan.soak_sse,
            "reconnect_every": plan.soak_reconnect_every,
            "reconnect_fraction": 0.1,
        }
        result = run_load(spec, plan.soak_seconds + 300)
        result["server_trouble"] = trouble(process)
    delivery = result["delivery"]
    log(
        f"  {result['events']} events, {result['reconnects']} reconnects: "
        f"{delivery['exact']}/{delivery['clients']} subscribers got every event once, in order; "
        f"CPU/event last/first third {result['thirds'].get('ratio') or 0:.2f}"
    )
    return result


def hook_cost(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> dict[str, Any]:
    from .processes import pinned

    spec = {
        "workdir": str(workdir / "hook"),
        "inserts": plan.hook_inserts,
        "rounds": plan.hook_rounds,
    }
    command = pinned([sys.executable, "-m", "benchmarks.hook_cost", json.dumps(spec)], cpus.server)
    completed = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            log(
                "  µs per insert: "
                + ", ".join(f"{k} {v['us_per_insert']:.0f}" for k, v in result["variants"].items())
            )
            return result
    raise RuntimeError(f"hook benchmark failed:\n{completed.stderr[-3000:]}")


SECTIONS: dict[str, Callable[[Plan, Path, Cpus, Log], Any]] = {
    "hook": hook_cost,
    "fanout": fanout,
    "idle": idle,
    "publish_cost": publish_cost,
    "soak": soak,
    "scaleout": scaleout,
}


def run_suite(
    plan: Plan, workdir: Path, sections: list[str], log: Log, quick: bool
) -> dict[str, Any]:
    cpus = Cpus()
    cpus.keep_off_the_server_cpu()
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "quick": quick,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": {"server": cpus.server, "load": cpus.load, "pinned": cpus.pinned},
        "python": sys.version.split()[0],
    }
    started = time.perf_counter()
    for name in sections:
        log(f"{name} ...")
        section_started = time.perf_counter()
        try:
            results[name] = SECTIONS[name](plan, workdir, cpus, log)
        except (RuntimeError, subprocess.SubprocessError, OSError) as error:
            # One failed measurement is reported, and the others still run.
            log(f"  {name} failed: {error}")
            results[name] = {"error": str(error)[:2000]}
        log(f"  ({time.perf_counter() - section_started:.0f} s)")
    results["seconds"] = time.perf_counter() - started
    return results
