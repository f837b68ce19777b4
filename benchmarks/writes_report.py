"""The `writes` section's tables and goals, from its results (benchmarks/writes.py).
Pure: results in, text and verdicts out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .figures import Goal, number, times
from .stats import percentile, ratio

__all__ = ["CPU_GOAL", "STEADY_GOAL", "writes_figure", "writes_goals", "writes_section"]

CPU_GOAL = 1.5  # records-API create: at most this many times the bare create's CPU
STEADY_GOAL = 0.5  # steady rate under the p99 limit: at least this share of saturation
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

Table = Callable[[Sequence[str], Iterable[Sequence[str]]], str]


def _database(results: dict[str, Any], database: str) -> dict[str, Any] | None:
    section = results.get("writes")
    run = section.get(database) if isinstance(section, dict) else None
    return run if isinstance(run, dict) and "bare" in run else None


def writes_figure(
    results: dict[str, Any], database: str, bursts: str, key: str = "server_cpu_us_per_write"
) -> float | None:
    """The median of `key` over the bursts `bursts` ("bare", "ours", "subscribed") on
    `database`; None if the section did not run or any burst was incomplete."""
    run = _database(results, database)
    measured = run[bursts] if run else []
    if not measured or not all(burst["complete"] for burst in measured):
        return None
    values = [burst.get(key) for burst in measured]
    if None in values:  # a figure this run did not take
        return None
    return percentile(values, 0.5)


def writes_goals(results: dict[str, Any]) -> list[Goal]:
    found: list[Goal] = []
    for database, label in LABELS.items():
        value = ratio(
            writes_figure(results, database, "ours"), writes_figure(results, database, "bare")
        )
        found.append(
            Goal(
                f"records-API create ≤ {CPU_GOAL}x the bare endpoint's server CPU per write "
                f"({label})",
                times(value),
                None if value is None else value <= CPU_GOAL,
            )
        )
    for database, label in LABELS.items():
        text = (
            f"steady write rate with p99 < 50 ms ≥ {STEADY_GOAL}x the burst saturation "
            f"(1,000 subscribers, {label})"
        )
        run = _database(results, database)
        latency = run.get("latency") if run else None
        if not latency:
            found.append(Goal(text, "-", None))
            continue
        steady = latency["steady"]
        rate = steady["writes_per_second"] if steady else 0.0
        saturation = latency["saturation_writes_per_second"]
        share = rate / saturation
        measured = f"{times(share)} ({number(rate, 1)} of {number(saturation, 1)} writes/s)"
        at_size = latency["subscribers"] >= 1000
        found.append(Goal(text, measured, share >= STEADY_GOAL if at_size else None))
    return found


def writes_section(results: dict[str, Any], table: Table) -> str:
    section = results.get("writes")
    if not isinstance(section, dict) or "error" in section:
        return ""
    rows = []
    latency_rows = []
    for database, label in LABELS.items():
        run = _database(results, database)
        if run is None:
            continue
        subscribers = f"{run['subscribers']:,}"
        bare_cpu = writes_figure(results, database, "bare")
        for bursts, server, count in (
            ("bare", "bare Quart + Hypercorn create", "0"),
            ("ours", "records API", "0"),
            ("subscribed", "records API", subscribers),
        ):
            cpu = writes_figure(results, database, bursts)
            rows.append(
                [
                    label,
                    server,
                    count,
                    number(writes_figure(results, database, bursts, "writes_per_second")),
                    number(cpu),
                    number(writes_figure(results, database, bursts, "server_system_us_per_write")),
                    times(ratio(cpu, bare_cpu)),
                ]
            )
        latency: dict[str, Any] = run.get("latency") or {}
        for step in latency.get("fixed", []) + latency.get("search", []):
            saturation = latency["saturation_writes_per_second"]
            kind = f"{step['fraction']:.0%}" if "fraction" in step else "search"
            latency_rows.append(
                [
                    label,
                    kind,
                    number(step["writes_per_second"], 1),
                    times(step["writes_per_second"] / saturation),
                    f"{step['deliveries']:,}/{step['expected']:,}",
                    number(step["p50_ms"], 1),
                    number(step["p99_ms"], 1),
                    number(step["server_cpu_share"] * 100, 0, "%"),
                    number((step.get("server_system_share") or 0) * 100, 0, "%"),
                    number((step.get("load_cpu_share") or 0) * 100, 0, "%"),
                ]
            )
    if not rows:
        return ""
    text = (
        "### Writes: records API against a bare Quart + Hypercorn create\n\n"
        "Medians of the bursts; server CPU is the server process's (a PostgreSQL "
        "backend's is not counted):\n\n"
        + table(
            [
                "database",
                "server",
                "subscribers",
                "writes/s",
                "server CPU µs/write",
                "of it in the kernel",
                "vs bare",
            ],
            rows,
        )
    )
    if latency_rows:
        header = ["database", "rate", "writes/s", "of saturation", "delivered", "p50 ms"]
        header += ["p99 ms", "server CPU busy", "of it in the kernel", "load client CPU busy"]
        text += (
            "\n\nWrite → delivery latency with the subscribers above, at steady rates "
            "(fractions of the saturation with them, then the search for the highest rate "
            "with p99 under 50 ms):\n\n" + table(header, latency_rows)
        )
    return text
