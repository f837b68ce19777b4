"""`GET /realtime/metrics`: the broker's counters in Prometheus' text format."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..realtime_broker import Broker

__all__ = ["render_metrics"]


def render_metrics(broker: Broker) -> str:
    stats = broker.stats
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
        lines.append(f"# HELP runtime_realtime_{name} {help_text}")
        lines.append(f"# TYPE runtime_realtime_{name} {kind}")
        lines.extend(f"runtime_realtime_{name}{labels} {value}" for labels, value in samples)

    open_by_transport = broker.connections.counts_by_transport()
    transports = sorted({"websocket", "sse", *open_by_transport, *stats.connections_total})
    metric(
        "connections",
        "gauge",
        "Open realtime connections.",
        [(f'{{transport="{t}"}}', open_by_transport.get(t, 0)) for t in transports],
    )
    metric(
        "connections_opened_total",
        "counter",
        "Realtime connections opened.",
        [(f'{{transport="{t}"}}', stats.connections_total.get(t, 0)) for t in transports],
    )
    metric("subscriptions", "gauge", "Active subscriptions.", [("", len(broker.registry))])
    metric("events_published_total", "counter", "Events published.", [("", stats.published)])
    metric(
        "events_delivered_total", "counter", "Frames queued to clients.", [("", stats.delivered)]
    )
    metric(
        "events_dropped_total",
        "counter",
        "Frames not delivered because the connection was closing or too slow.",
        [("", stats.dropped)],
    )
    metric(
        "rate_limited_total",
        "counter",
        "Client messages refused by the rate limit.",
        [("", stats.rate_limited)],
    )
    metric(
        "slow_disconnects_total",
        "counter",
        "Connections closed as too slow a reader (4429).",
        [("", stats.slow_disconnects)],
    )
    metric(
        "events_lost_total",
        "counter",
        "Events dropped before publication because the publish queue was full.",
        [("", stats.lost)],
    )
    metric(
        "delivery_errors_total",
        "counter",
        "App code (a read rule, visible_fields, a filter) that raised while delivering: "
        "that reader did not get that event.",
        [
            (f'{{collection="{c}",stage="{stage}"}}', n)
            for (c, stage), n in sorted(broker.faults.counts.items())
        ],
    )
    metric(
        "task_restarts_total",
        "counter",
        "Background tasks restarted after failing.",
        [(f'{{task="{t}"}}', n) for t, n in sorted(stats.task_restarts.items())],
    )
    return "\n".join(lines) + "\n"
