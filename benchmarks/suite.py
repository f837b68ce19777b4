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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .harness import Cpus, Log, connector, run_load, trouble
from .plan import FULL, QUICK, Plan
from .scaleout import scaleout
from .targets import OURS, PEERS, REPO, SOCKETIO, running
from .writes import writes

__all__ = ["FULL", "QUICK", "Plan", "run_suite"]


# (server, transport, label) of each fan-out run.
FANOUT = (
    (OURS, "ws", "ours, WebSocket"),
    (OURS, "ws_batch", "ours, WebSocket ?batch=1"),
    (OURS, "sse", "ours, SSE"),
    (PEERS[0], "ws", "Quart + Hypercorn loop"),
    (PEERS[0], "sse", "Quart + Hypercorn SSE loop"),
    (PEERS[1], "ws", "Starlette + broadcaster (uvicorn)"),
    (PEERS[2], "ws", "websockets broadcast()"),
    (SOCKETIO, "socketio", "Node.js Socket.IO v4"),
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


def expand(plan: Plan, workdir: Path, cpus: Cpus, log: Log) -> dict[str, Any]:
    """Our WebSocket fan-out at N subscribers without `expand` and with
    `"expand": ["author"]` (benchmarks/expand_cost.py), each on a fresh server, in
    alternating rounds (each variant's figure is the median of its runs)."""
    n = plan.expand_subscribers
    runs = []
    rounds = [(False, True)] * plan.expand_rounds
    for expanding in (variant for round_ in rounds for variant in round_):
        with running(OURS, workdir, cpus.server) as (live, process):
            spec = {
                "scenario": "fanout",
                "cpu": cpus.load,
                "server_pid": live.pid,
                "connector": {**connector(live, "ws"), "expand": ["author"] if expanding else []},
                "publish": live.publish_target(),
                "levels": [{"subscribers": n, "events": max(10, plan.deliveries_per_level // n)}],
                "repeats": plan.repeats,
            }
            result = run_load(spec, 600)
            result.update(expand=expanding, server_trouble=trouble(process))
        (level,) = result["levels"]
        bursts = ", ".join(f"{r or 0:,.0f}" for r in level["all_deliveries_per_second"])
        label = "with expand=author" if expanding else "without expand"
        counts = f"{level['deliveries']}/{level['expected']}"
        log(f"  {label:34} N={n:>5}: {bursts} deliveries/s ({counts})")
        runs.append(result)
    return {"runs": runs}


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
    "expand": expand,
    "idle": idle,
    "publish_cost": publish_cost,
    "soak": soak,
    "scaleout": scaleout,
    "writes": writes,
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
