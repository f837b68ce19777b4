"""What `expand` costs fan-out: the same burst to N subscribers of `messages`, each
event with its author expanded (`"expand": ["author"]`) and without, as a ratio of
deliveries per second (the goal: at least 0.8x). The pure parts: the subscribe frame
and the figures from a run's results (the runs are suite.expand's)."""

from __future__ import annotations

import statistics
from typing import Any

from .stats import ratio

__all__ = ["EXPAND_GOAL", "expand_figures", "subscribe_frame"]

EXPAND_GOAL = 0.8


def subscribe_frame(request_id: str, pattern: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
    """Our subscribe frame, with `expand` when there is one."""
    frame: dict[str, Any] = {"type": "subscribe", "id": request_id, "pattern": pattern}
    if expand:
        frame["expand"] = list(expand)
    return frame


def expand_figures(results: dict[str, Any]) -> dict[str, Any] | None:
    """Deliveries per second without and with expand (each the median of its runs),
    their ratio and N; None if the section did not run (or failed). A burst that was
    incomplete measures nothing."""
    section = results.get("expand")
    if not isinstance(section, dict) or "runs" not in section:
        return None
    rates: dict[bool, list[float]] = {False: [], True: []}
    incomplete: dict[bool, bool] = {False: False, True: False}
    subscribers = 0
    for run in section["runs"]:
        level = run["levels"][0] if run.get("levels") else None
        expanding = bool(run["expand"])
        if level and level.get("complete"):
            rates[expanding].append(level["deliveries_per_second"])
        else:
            incomplete[expanding] = True
        subscribers = level["subscribers"] if level else subscribers
    without, with_expand = (
        None if incomplete[variant] or not rates[variant] else statistics.median(rates[variant])
        for variant in (False, True)
    )
    return {
        "subscribers": subscribers,
        "without": without,
        "with": with_expand,
        "runs": {"without": rates[False], "with": rates[True]},
        "ratio": ratio(with_expand, without),
    }
