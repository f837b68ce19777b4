"""The issue's goals, each measured against this run's results: PASS, FAIL, or not
measured (a quick run does not reach every goal's size)."""

from __future__ import annotations

from typing import Any

from .expand_cost import EXPAND_GOAL, expand_figures
from .figures import Goal, fanout_run, number, throughput, times
from .stats import percentile, ratio
from .writes_report import writes_goals

__all__ = ["Goal", "goals"]


def _ratio_goal(
    results: dict[str, Any], text: str, ours: str, peer: str, peer_transport: str, n: int
) -> Goal:
    value = ratio(
        throughput(results, "ours", ours, n), throughput(results, peer, peer_transport, n)
    )
    return Goal(text, times(value), None if value is None else value >= 1.0)


def goals(results: dict[str, Any]) -> list[Goal]:
    found: list[Goal] = []
    for n in (1000, 5000):
        found.append(
            _ratio_goal(
                results,
                f"?batch=1 ≥ 1.0x Starlette + broadcaster, N={n:,}",
                "ws_batch",
                "starlette",
                "ws",
                n,
            )
        )
    for n in (1000, 5000):
        found.append(
            _ratio_goal(results, f"plain ≥ 1.0x bare Quart loop, N={n:,}", "ws", "quart", "ws", n)
        )
    for n in (1000, 5000):
        found.append(
            _ratio_goal(
                results,
                f"SSE ≥ 1.0x Starlette + broadcaster WebSocket, N={n:,}",
                "sse",
                "starlette",
                "ws",
                n,
            )
        )
    found.append(_latency_goal(results))
    found.append(_socketio_latency_goal(results))
    found += _memory_goals(results)
    cost = results.get("publish_cost")
    value = cost.get("ratio") if isinstance(cost, dict) else None
    subs = cost.get("other_subscriptions", 0) if isinstance(cost, dict) else 0
    found.append(
        Goal(
            "publish cost within 1.2x from 0 to 100,000 unrelated subscriptions",
            f"{times(value)} at {subs:,}",
            None if value is None or subs < 100_000 else value <= 1.2,
        )
    )
    found.append(_expand_goal(results))
    found += _soak_goals(results)
    found += _scaleout_goals(results)
    found += _hook_goals(results)
    found += writes_goals(results)
    return found


CREATE_GOAL, HOOK_GOAL = 1.5, 1.1  # BaseModel.create() against plain Peewee; the hook


def _hook_goals(results: dict[str, Any]) -> list[Goal]:
    """`BaseModel.create()` (outbox included) against a plain Peewee insert, and what the
    realtime hook adds to it (benchmarks/hook_cost.py)."""
    hook = results.get("hook")
    variants = hook.get("variants", {}) if isinstance(hook, dict) else {}

    def cost(name: str) -> float | None:
        found = variants.get(name)
        return found.get("us_per_insert") if isinstance(found, dict) else None

    create = ratio(cost("BaseModel, no receiver"), cost("plain Peewee"))
    hooked = ratio(cost("BaseModel + realtime hook"), cost("BaseModel, no receiver"))
    return [
        Goal(
            f"BaseModel.create() ≤ {CREATE_GOAL}x a plain Peewee insert (outbox included)",
            times(create),
            None if create is None else create <= CREATE_GOAL,
        ),
        Goal(
            f"the realtime hook adds ≤ {HOOK_GOAL}x to BaseModel.create()",
            times(hooked),
            None if hooked is None else hooked <= HOOK_GOAL,
        ),
    ]


def _expand_goal(results: dict[str, Any]) -> Goal:
    figures = expand_figures(results)
    value = figures["ratio"] if figures else None
    n = figures["subscribers"] if figures else 1000
    return Goal(
        f"fan-out with expand=author ≥ {EXPAND_GOAL}x without, N={n:,}",
        times(value),
        None if value is None or n < 1000 else value >= EXPAND_GOAL,
    )


def _latency_goal(results: dict[str, Any]) -> Goal:
    run = fanout_run(results, "ours", "ws")
    lat = run.get("latency") if run else None
    p99 = lat.get("one_event_p99_ms") if lat else None
    measured = number(p99, 1, " ms") + (f" (N={lat['subscribers']:,})" if lat else "")
    at_1000 = lat is not None and lat["subscribers"] >= 1000
    return Goal(
        "one-event p99 at N=1,000 under 50 ms (plain WebSocket)",
        measured,
        None if p99 is None or not at_1000 else p99 < 50,
    )


def _socketio_latency_goal(results: dict[str, Any]) -> Goal:
    """Ours (plain WebSocket) against Node.js Socket.IO v4, one event at N = 1,000."""
    ours, peer = fanout_run(results, "ours", "ws"), fanout_run(results, "socketio", "socketio")
    lat, peer_lat = (ours or {}).get("latency"), (peer or {}).get("latency")
    text = "one-event p50 at N=1,000 no worse than Node.js Socket.IO v4's"
    if not lat or not peer_lat:
        return Goal(text, "-", None)
    p50, peer_p50 = lat["one_event_p50_ms"], peer_lat["one_event_p50_ms"]
    measured = f"{number(p50, 1, ' ms')} vs {number(peer_p50, 1, ' ms')}"
    at_1000 = min(lat["subscribers"], peer_lat["subscribers"]) >= 1000
    passed = None if p50 is None or peer_p50 is None or not at_1000 else p50 <= peer_p50
    return Goal(text, measured, passed)


def _memory_goals(results: dict[str, Any]) -> list[Goal]:
    idle = results.get("idle")
    ours = (
        next((r for r in idle if r["server"] == "ours"), None) if isinstance(idle, list) else None
    )
    if ours is None:
        return [
            Goal("at most 30 KB per idle connection", "-", None),
            Goal("10,000 idle connections per worker", "-", None),
        ]
    largest = max(ours["levels"], key=lambda level: level["connections"])
    per = largest["bytes_per_connection"]
    found = [
        Goal(
            "at most 30 KB per idle connection",
            f"{per / 1000:.1f} KB at {largest['connected']:,}",
            per <= 30_000,
        )
    ]
    held = ours.get("held")
    if held:
        ok = (
            held["connections"] >= 10_000
            and held["still_connected"] == held["connections"]
            and held["got_an_event_after"] >= held["connections"]
        )
        measured = (
            f"{held['still_connected']:,}/{held['connections']:,} "
            f"held {held['hold_seconds']:.0f} s, "
            f"{held['got_an_event_after']:,} got the next event"
        )
        found.append(
            Goal(
                "10,000 idle connections per worker",
                measured,
                ok if held["connections"] >= 10_000 else None,
            )
        )
    else:
        found.append(Goal("10,000 idle connections per worker", "-", None))
    return found


def _soak_goals(results: dict[str, Any]) -> list[Goal]:
    soak = results.get("soak")
    if not isinstance(soak, dict) or "delivery" not in soak:
        return [Goal("soak: cost per event flat (last third ≤ 1.2x first)", "-", None)]
    flat = soak["thirds"].get("ratio")
    delivery = soak["delivery"]
    return [
        Goal(
            "soak: cost per event flat (last third ≤ 1.2x first)",
            times(flat),
            None if flat is None else flat <= 1.2,
        ),
        Goal(
            "soak: every subscriber got every event exactly once, in order",
            f"{delivery['exact']:,}/{delivery['clients']:,}",
            delivery["exact"] == delivery["clients"],
        ),
    ]


def scaleout_throughput(results: dict[str, Any], broker: str, n: int) -> float | None:
    """Deliveries per second of the scale-out section's run on `broker` at N = `n`."""
    section = results.get("scaleout")
    runs = section.get("fanout", []) if isinstance(section, dict) else []
    for run in runs:
        for level in run["levels"] if run["broker"] == broker else []:
            if level["subscribers"] == n:
                value: float | None = level["deliveries_per_second"]
                return value
    return None


def outbox_write_rate(
    results: dict[str, Any], outbox: bool, key: str = "writes_per_second"
) -> float | None:
    """The median over the scale-out section's bursts with the outbox on (or off) of
    `key` (writes per second, or server CPU µs per write); None if any was incomplete."""
    section = results.get("scaleout")
    runs = section.get("outbox", []) if isinstance(section, dict) else []
    bursts = [burst for run in runs if run["outbox"] is outbox for burst in run["runs"]]
    if not bursts or not all(burst["complete"] for burst in bursts):
        return None
    return percentile([burst[key] for burst in bursts], 0.5)


def _outbox_goal(results: dict[str, Any]) -> Goal:
    value = ratio(outbox_write_rate(results, True), outbox_write_rate(results, False))
    return Goal(
        "outbox: records-API writes per second ≥ 0.85x without it",
        times(value),
        None if value is None else value >= 0.85,
    )


def _scaleout_goals(results: dict[str, Any]) -> list[Goal]:
    found = [_outbox_goal(results)]
    for n in (1000, 5000):
        value = ratio(
            scaleout_throughput(results, "redis", n), scaleout_throughput(results, "memory", n)
        )
        found.append(
            Goal(
                f"Redis fan-out ≥ 0.8x the memory broker, N={n:,}",
                times(value),
                None if value is None else value >= 0.8,
            )
        )
    section = results.get("scaleout")
    spread = section.get("latency") if isinstance(section, dict) else None
    text = "Redis: write → delivery p99 under 50 ms (1,000 subscribers, 2 processes, 100 writes/s)"
    if not spread:
        return [*found, Goal(text, "-", None)]
    p99 = spread["p99_ms"]
    measured = (
        f"{number(p99, 1, ' ms')} (p50 {number(spread['p50_ms'], 1, ' ms')}; "
        f"{spread['subscribers']:,} on {spread['processes']}, {spread['writes_per_second']:g}/s"
        + ("" if spread["complete"] else ", incomplete")
        + ")"
    )
    at_size = spread["subscribers"] >= 1000 and spread["writes_per_second"] >= 100
    passed = None if p99 is None or not at_size else p99 < 50 and spread["complete"]
    return [*found, Goal(text, measured, passed)]
