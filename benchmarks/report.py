"""Markdown tables of a suite's results, ours next to the peers, with ratios
(ours / peer), and the issue's goals with PASS or FAIL. Pure: results in, text out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .stats import ratio

__all__ = ["Goal", "goals", "render"]

PEER_LABELS = {
    "quart": "Quart + Hypercorn loop",
    "starlette": "Starlette + broadcaster (uvicorn)",
    "websockets": "websockets broadcast()",
}


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    fanout = results.get("fanout")
    return fanout if isinstance(fanout, list) else []


def _run(results: dict[str, Any], server: str, transport: str) -> dict[str, Any] | None:
    for run in _runs(results):
        if run["server"] == server and run["transport"] == transport:
            return run
    return None


def throughput(results: dict[str, Any], server: str, transport: str, n: int) -> float | None:
    run = _run(results, server, transport)
    for level in run["levels"] if run else []:
        if level["subscribers"] == n:
            value: float | None = level["deliveries_per_second"]
            return value
    return None


def _levels(results: dict[str, Any]) -> list[int]:
    return sorted({level["subscribers"] for run in _runs(results) for level in run["levels"]})


# (ours' transport, peer, peer's transport, what is compared)
COMPARISONS = (
    ("ws", "quart", "ws", "WebSocket vs Quart + Hypercorn loop"),
    ("ws_batch", "starlette", "ws", "?batch=1 vs Starlette + broadcaster"),
    ("sse", "starlette", "ws", "SSE vs Starlette + broadcaster (WebSocket)"),
    ("sse", "quart", "sse", "SSE vs Quart + Hypercorn SSE loop"),
    ("ws", "websockets", "ws", "WebSocket vs websockets broadcast()"),
    ("ws_batch", "websockets", "ws", "?batch=1 vs websockets broadcast()"),
)


def _throughput_section(results: dict[str, Any]) -> str:
    levels = _levels(results)
    rows = []
    for run in _runs(results):
        by_n = {level["subscribers"]: level for level in run["levels"]}
        middle = by_n.get(1000) or (run["levels"][-1] if run["levels"] else {})
        cells = [run["label"]]
        for n in levels:
            level = by_n.get(n)
            value = level["deliveries_per_second"] if level else None
            mark = "" if level is None or level["complete"] else " (incomplete)"
            cells.append(number(value) + mark)
        busy = [
            level["server_cpu_seconds"] / level["seconds"]
            for level in run["levels"]
            if level.get("seconds")
        ]
        cells += [
            number(middle.get("server_cpu_us_per_delivery"), 1),
            number(min(busy) * 100, 0, "%") if busy else "-",
            number(middle.get("frame_bytes")),
            number(max((lv["load_cpu_share"] for lv in run["levels"]), default=None) * 100, 0, "%")
            if run["levels"]
            else "-",
        ]
        rows.append(cells)
    header = ["server", *(f"N={n:,}" for n in levels)]
    header += ["server CPU µs/delivery (N=1,000)", "server CPU busy (min)", "frame bytes"]
    header += ["load client CPU (max)"]
    ratios = []
    for ours, peer, peer_transport, what in COMPARISONS:
        cells = [what]
        for n in levels:
            cells.append(
                times(
                    ratio(
                        throughput(results, "ours", ours, n),
                        throughput(results, peer, peer_transport, n),
                    )
                )
            )
        ratios.append(cells)
    return (
        "### Fan-out throughput (deliveries per second)\n\n"
        + table(header, rows)
        + "\n\n### Ratios (ours / peer, deliveries per second)\n\n"
        + table(["comparison", *(f"N={n:,}" for n in levels)], ratios)
    )


def _latency_section(results: dict[str, Any]) -> str:
    rows = []
    for run in _runs(results):
        lat = run.get("latency")
        if not lat:
            continue
        rows.append(
            [
                run["label"],
                number(lat["one_event_p50_ms"], 1),
                number(lat["one_event_p99_ms"], 1),
                number(lat.get("half_rate_events_per_second"), 0),
                number(lat.get("half_rate_p50_ms"), 1),
                number(lat.get("half_rate_p99_ms"), 1),
                number(lat.get("one_event_server_cpu_us_per_delivery"), 1),
                number((lat.get("half_rate_server_cpu_share") or 0) * 100, 0, "%")
                if lat.get("half_rate_server_cpu_share") is not None
                else "-",
            ]
        )
    if not rows:
        return ""
    n = next(run["latency"]["subscribers"] for run in _runs(results) if run.get("latency"))
    header = ["server", "one event p50 ms", "one event p99 ms", "half saturation events/s"]
    header += ["p50 ms", "p99 ms", "server CPU µs/delivery, one at a time"]
    header += ["server CPU busy at half saturation"]
    return f"### Latency, N={n:,} subscribers\n\n" + table(header, rows)


def _memory_section(results: dict[str, Any]) -> str:
    idle = results.get("idle")
    if not isinstance(idle, list):
        return ""
    counts = sorted({level["connections"] for run in idle for level in run["levels"]})
    rows = []
    for run in idle:
        by_n = {level["connections"]: level for level in run["levels"]}
        cells = [run["label"]]
        for n in counts:
            level = by_n.get(n)
            if level is None:
                cells.append("-")
            else:
                kib = number(level["bytes_per_connection"] / 1024, 1, " KiB")
                lost = level["connections"] - level["connected"]
                cells.append(kib + (f" ({lost:,} not connected)" if lost else ""))
        held = run.get("held")
        if held:
            cells.append(
                f"{held['still_connected']:,}/{held['connections']:,} after "
                f"{held['hold_seconds']:.0f} s ({held['pings_per_connection']:.1f} pings each), "
                f"{held['got_an_event_after']:,} got the next event, "
                f"RSS {held['rss'] / 2**20:,.0f} MiB"
            )
        else:
            cells.append("-")
        rows.append(cells)
    header = ["server", *(f"RSS per idle connection, {n:,} open" for n in counts)]
    header.append("held with heartbeats")
    return "### Memory and scale (WebSocket, one worker)\n\n" + table(header, rows)


def _publish_cost_section(results: dict[str, Any]) -> str:
    cost = results.get("publish_cost")
    if not isinstance(cost, dict) or "crowded" not in cost:
        return ""
    rows = [
        ["none (before)", number(cost["empty_before"]["server_cpu_us_per_event"])],
        [f"{cost['other_subscriptions']:,}", number(cost["crowded"]["server_cpu_us_per_event"])],
        ["none (after)", number(cost["empty_after"]["server_cpu_us_per_event"])],
    ]
    return (
        f"### Publish cost with unrelated subscriptions (ours; {cost['real_subscribers']} real "
        "subscribers, record patterns of `notes`)\n\n"
        + table(["subscriptions elsewhere", "server CPU µs per published event"], rows)
        + f"\n\nRatio with / without: {times(cost['ratio'])}"
    )


def _hook_section(results: dict[str, Any]) -> str:
    hook = results.get("hook")
    if not isinstance(hook, dict) or "variants" not in hook:
        return ""
    variants = hook["variants"]
    plain = variants.get("plain Peewee", {}).get("us_per_insert")
    rows = [
        [name, number(v["us_per_insert"], 1), times(ratio(v["us_per_insert"], plain))]
        for name, v in variants.items()
    ]
    hooked = variants.get("BaseModel + realtime hook", {}).get("us_per_insert")
    bare = variants.get("BaseModel, no receiver", {}).get("us_per_insert")
    return (
        f"### The change hook on an ORM insert (SQLite, {hook['inserts']:,} inserts x "
        f"{hook['rounds']} rounds, median)\n\n"
        + table(["insert", "µs per insert", "vs plain Peewee"], rows)
        + f"\n\nThe realtime hook adds {times(ratio(hooked, bare))} to a BaseModel insert."
    )


def _soak_section(results: dict[str, Any]) -> str:
    soak = results.get("soak")
    if not isinstance(soak, dict) or "delivery" not in soak:
        return ""
    thirds, delivery = soak["thirds"], soak["delivery"]
    rows = [
        [
            f"{soak['seconds']:.0f} s, {soak['websocket']:,} WS + {soak['sse']:,} SSE, "
            f"{soak['events_per_second']:g} events/s",
            f"{soak['events']:,}",
            f"{soak['reconnects']:,}",
            number(thirds.get("first_us_per_event")),
            number(thirds.get("last_us_per_event")),
            times(thirds.get("ratio")),
            f"{delivery['exact']:,}/{delivery['clients']:,}",
            f"{delivery['missing']}/{delivery['duplicates']}/{delivery['out_of_order']}",
            f"{soak['rss_start'] / 2**20:,.0f} → {soak['rss_end'] / 2**20:,.0f} MiB",
        ]
    ]
    header = ["soak", "events", "reconnects", "CPU µs/event, first third", "last third"]
    header += ["last/first", "every event once, in order", "missing/dup/out of order", "RSS"]
    return "### Soak (ours)\n\n" + table(header, rows)


@dataclass(frozen=True)
class Goal:
    text: str
    measured: str
    passed: bool | None  # None: not measured in this run


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
    found += _soak_goals(results)
    return found


def _latency_goal(results: dict[str, Any]) -> Goal:
    run = _run(results, "ours", "ws")
    lat = run.get("latency") if run else None
    p99 = lat.get("one_event_p99_ms") if lat else None
    measured = number(p99, 1, " ms") + (f" (N={lat['subscribers']:,})" if lat else "")
    at_1000 = lat is not None and lat["subscribers"] >= 1000
    return Goal(
        "one-event p99 at N=1,000 under 50 ms (plain WebSocket)",
        measured,
        None if p99 is None or not at_1000 else p99 < 50,
    )


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


def _verdict(passed: bool | None) -> str:
    return "not measured" if passed is None else ("PASS" if passed else "FAIL")


def _goals_section(results: dict[str, Any]) -> str:
    rows = [[g.text, g.measured, _verdict(g.passed)] for g in goals(results)]
    return "### Goals\n\n" + table(["goal", "measured", "verdict"], rows)


def _notes(results: dict[str, Any]) -> str:
    lines = []
    cpus = results.get("cpus", {})
    if cpus.get("pinned"):
        lines.append(
            f"Servers pinned to CPU {cpus['server']}, the load client to CPU {cpus['load']}."
        )
    else:
        lines.append("Fewer than two CPUs: servers and load client were not pinned.")
    for name in ("hook", "fanout", "idle", "publish_cost", "soak"):
        section = results.get(name)
        if isinstance(section, dict) and "error" in section:
            lines.append(f"{name} failed: {section['error'].splitlines()[0]}")
    trouble = []
    for name in ("fanout", "idle"):
        for run in results.get(name) or []:
            if isinstance(run, dict) and run.get("server_trouble"):
                trouble.append(f"{run['label']}: {run['server_trouble'][0][:160]}")
    for name in ("publish_cost", "soak"):
        section = results.get(name)
        if isinstance(section, dict) and section.get("server_trouble"):
            trouble.append(f"{name}: {section['server_trouble'][0][:160]}")
    lines += [f"Server said: {t}" for t in trouble]
    return "\n".join(f"- {line}" for line in lines)


def render(results: dict[str, Any]) -> str:
    mode = "quick" if results.get("quick") else "full"
    title = (
        f"## Benchmark results ({mode} run, {results.get('started', '')}, "
        f"Python {results.get('python', '')})"
    )
    sections = [title]
    if _runs(results):
        sections.append(_throughput_section(results))
    sections += [
        _latency_section(results),
        _memory_section(results),
        _publish_cost_section(results),
        _hook_section(results),
        _soak_section(results),
        _goals_section(results),
        _notes(results),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"
