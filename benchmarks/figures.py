"""Reading a suite's results (plain JSON) and writing its numbers, for the report and
the goals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Goal",
    "fanout_run",
    "fanout_runs",
    "number",
    "subscriber_levels",
    "throughput",
    "times",
]


@dataclass(frozen=True)
class Goal:
    """One goal of an issue, measured against a run's results."""

    text: str
    measured: str
    passed: bool | None  # None: not measured in this run


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def fanout_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    fanout = results.get("fanout")
    return fanout if isinstance(fanout, list) else []


def fanout_run(results: dict[str, Any], server: str, transport: str) -> dict[str, Any] | None:
    for run in fanout_runs(results):
        if run["server"] == server and run["transport"] == transport:
            return run
    return None


def throughput(results: dict[str, Any], server: str, transport: str, n: int) -> float | None:
    run = fanout_run(results, server, transport)
    for level in run["levels"] if run else []:
        if level["subscribers"] == n:
            value: float | None = level["deliveries_per_second"]
            return value
    return None


def subscriber_levels(results: dict[str, Any]) -> list[int]:
    return sorted({level["subscribers"] for run in fanout_runs(results) for level in run["levels"]})
