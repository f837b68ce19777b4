"""Markdown tables of a suite's results, ours next to the peers, with ratios
(ours / peer), and the issue's goals with PASS or FAIL. Pure: results in, text out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .expand_cost import expand_figures
from .figures import fanout_runs, number, subscriber_levels, throughput, times
from .goals import goals, outbox_write_rate, scaleout_throughput
from .stats import ratio
from .writes_report import writes_section

__all__ = ["render", "table"]


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# (ours' transport, peer, peer's transport, what is compared)
COMPARISONS = (
    ("ws", "quart", "ws", "WebSocket vs Quart + Hypercorn loop"),
    ("ws_batch", "starlette", "ws", "?batch=1 vs Starlette + broadcaster"),
    ("sse", "starlette", "ws", "SSE vs Starlette + broadcaster (WebSocket)"),
    ("sse", "quart", "sse", "SSE vs Quart + Hypercorn SSE loop"),
    ("ws", "websockets", "ws", "WebSocket vs websockets broadcast()"),
    ("ws_batch", "websockets", "ws", "?batch=1 vs websockets broadcast()"),
    ("ws", "socketio", "socketio", "WebSocket vs Node.js Socket.IO v4"),
    ("ws_batch", "socketio", "socketio", "?batch=1 vs Node.js Socket.IO v4"),
)


def _throughput_section(results: dict[str, Any]) -> str:
    levels = subscriber_levels(results)
    rows = []
    for run in fanout_runs(results):
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
    for run in fanout_runs(results):
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
                number(lat.get("one_event_server_system_us_per_delivery"), 1),
                number((lat.get("half_rate_server_cpu_share") or 0) * 100, 0, "%")
                if lat.get("half_rate_server_cpu_share") is not None
                else "-",
            ]
        )
    if not rows:
        return ""
    n = next(run["latency"]["subscribers"] for run in fanout_runs(results) if run.get("latency"))
    header = ["server", "one event p50 ms", "one event p99 ms", "half saturation events/s"]
    header += ["p50 ms", "p99 ms", "server CPU µs/delivery, one at a time", "of it in the kernel"]
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


def _expand_section(results: dict[str, Any]) -> str:
    figures = expand_figures(results)
    if figures is None:
        return ""
    runs = figures.get("runs", {})

    def each(name: str) -> str:
        return ", ".join(number(rate) for rate in runs.get(name, []))

    rows = [
        ["without expand", number(figures["without"]), each("without")],
        ['`"expand": ["author"]`', number(figures["with"]), each("with")],
    ]
    return (
        f"### Fan-out with expand (ours, WebSocket, N={figures['subscribers']:,}, "
        "alternating runs on fresh servers)\n\n"
        + table(["subscribers ask", "deliveries/s (median)", "each run"], rows)
        + f"\n\nRatio with / without: {times(figures['ratio'])}"
    )


def _hook_section(results: dict[str, Any]) -> str:
    hook = results.get("hook")
    if not isinstance(hook, dict) or "variants" not in hook:
        return ""
    variants = hook["variants"]
    plain_write = {  # updates against a plain update, inserts against a plain insert
        name: variants.get("plain Peewee update" if "update" in name else "plain Peewee", {})
        for name in variants
    }
    rows = [
        [
            name,
            number(v["us_per_insert"], 1),
            times(ratio(v["us_per_insert"], plain_write[name].get("us_per_insert"))),
        ]
        for name, v in variants.items()
    ]
    hooked = variants.get("BaseModel + realtime hook", {}).get("us_per_insert")
    bare = variants.get("BaseModel, no receiver", {}).get("us_per_insert")
    unguarded = variants.get("BaseModel, no outbox", {}).get("us_per_insert")
    update = variants.get("BaseModel update + realtime hook", {}).get("us_per_insert")
    plain_update = variants.get("plain Peewee update", {}).get("us_per_insert")
    updates = (
        f" A BaseModel update (which reads the values it writes first) costs "
        f"{times(ratio(update, plain_update))} a plain Peewee update."
        if update is not None
        else ""
    )
    return (
        f"### The change hook on an ORM write (SQLite, {hook['inserts']:,} writes x "
        f"{hook['rounds']} rounds, median)\n\n"
        + table(["write", "µs per write", "vs plain Peewee's"], rows)
        + f"\n\nThe transactional outbox (each event's row written in the write's "
        f"transaction) makes a BaseModel insert {times(ratio(bare, unguarded))} what it "
        f"costs without; the realtime hook adds {times(ratio(hooked, bare))} on top." + updates
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


def _scaleout_section(results: dict[str, Any]) -> str:
    section = results.get("scaleout")
    if not isinstance(section, dict) or "fanout" not in section:
        return ""
    levels = sorted({lv["subscribers"] for run in section["fanout"] for lv in run["levels"]})
    rows = []
    for run in section["fanout"]:
        by_n = {level["subscribers"]: level for level in run["levels"]}
        cells = [f"{run['broker']} broker"]
        for n in levels:
            level = by_n.get(n)
            mark = "" if level is None or level["complete"] else " (incomplete)"
            cells.append(number(level["deliveries_per_second"] if level else None) + mark)
        rows.append(cells)
    rows.append(
        [
            "Redis / memory",
            *(
                times(
                    ratio(
                        scaleout_throughput(results, "redis", n),
                        scaleout_throughput(results, "memory", n),
                    )
                )
                for n in levels
            ),
        ]
    )
    text = (
        "### Scale-out on Redis\n\nFan-out, one process, plain WebSocket (deliveries per "
        "second):\n\n" + table(["broker", *(f"N={n:,}" for n in levels)], rows)
    )
    spreads = [run for run in (section.get("sustained"), section.get("latency")) if run]
    if spreads:
        rows = [_spread_row(spread) for spread in spreads]
        header = ["subscribers", "writes/s", "delivered", "p50 ms", "p99 ms", "max ms"]
        header.append("server CPU busy")
        text += (
            "\n\nWrite → delivery latency (subscribers spread evenly, writes through the "
            "records API of the first process):\n\n"
        )
        text += table(header, rows)
    if section.get("outbox"):
        rows = [
            [
                "on" if on else "off",
                number(outbox_write_rate(results, on)),
                number(outbox_write_rate(results, on, "server_cpu_us_per_write"), 0),
            ]
            for on in (True, False)
        ]
        rows.append(
            [
                "on / off",
                times(ratio(outbox_write_rate(results, True), outbox_write_rate(results, False))),
                times(
                    ratio(
                        outbox_write_rate(results, True, "server_cpu_us_per_write"),
                        outbox_write_rate(results, False, "server_cpu_us_per_write"),
                    )
                ),
            ]
        )
        text += (
            "\n\nThe outbox: records-API writes, one process on the memory broker, one "
            "subscriber (medians of the bursts):\n\n"
        )
        text += table(["outbox", "writes/s", "server CPU µs/write"], rows)
    return text


def _spread_row(spread: dict[str, Any]) -> list[str]:
    busy = ", ".join(number(share * 100, 0, "%") for share in spread["server_cpu_share"])
    return [
        f"{spread['subscribers']:,} on {spread['processes']} processes",
        f"{spread['writes_per_second']:g}",
        f"{spread['deliveries']:,}/{spread['expected']:,}",
        number(spread["p50_ms"], 1),
        number(spread["p99_ms"], 1),
        number(spread["max_ms"], 1),
        busy,
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
    for name in ("hook", "fanout", "expand", "idle", "publish_cost", "soak", "scaleout", "writes"):
        section = results.get(name)
        if isinstance(section, dict) and "error" in section:
            lines.append(f"{name} failed: {section['error'].splitlines()[0]}")
    writes = results.get("writes")
    for database, run in writes.items() if isinstance(writes, dict) else []:
        if isinstance(run, dict) and "error" in run:
            lines.append(f"writes on {database} failed: {run['error'].splitlines()[0]}")
        elif isinstance(run, dict) and run.get("server_trouble"):
            trouble_line = run["server_trouble"][0][:160]
            lines.append(f"Server said: writes on {database}: {trouble_line}")
    trouble = []
    for name in ("fanout", "idle"):
        for run in results.get(name) or []:
            if isinstance(run, dict) and run.get("server_trouble"):
                trouble.append(f"{run['label']}: {run['server_trouble'][0][:160]}")
    for run in (results.get("expand") or {}).get("runs", []):
        if run.get("server_trouble"):
            trouble.append(f"expand: {run['server_trouble'][0][:160]}")
    for name in ("publish_cost", "soak"):
        section = results.get(name)
        if isinstance(section, dict) and section.get("server_trouble"):
            trouble.append(f"{name}: {section['server_trouble'][0][:160]}")
    scaleout = results.get("scaleout")
    if isinstance(scaleout, dict) and "fanout" in scaleout:
        extra = [scaleout.get("latency") or {}, scaleout.get("sustained") or {}]
        for run in [*scaleout["fanout"], *extra, *scaleout.get("outbox", [])]:
            if run.get("server_trouble"):
                trouble.append(f"scaleout: {run['server_trouble'][0][:160]}")
    lines += [f"Server said: {t}" for t in trouble]
    return "\n".join(f"- {line}" for line in lines)


def render(results: dict[str, Any]) -> str:
    mode = "quick" if results.get("quick") else "full"
    title = (
        f"## Benchmark results ({mode} run, {results.get('started', '')}, "
        f"Python {results.get('python', '')})"
    )
    sections = [title]
    if fanout_runs(results):
        sections.append(_throughput_section(results))
    sections += [
        _latency_section(results),
        _memory_section(results),
        _publish_cost_section(results),
        _expand_section(results),
        _hook_section(results),
        _soak_section(results),
        _scaleout_section(results),
        writes_section(results, table),
        _goals_section(results),
        _notes(results),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"
