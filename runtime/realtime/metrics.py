"""`GET /realtime/metrics`: the broker's counters in Prometheus' text format."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..realtime_broker import Broker
    from .stats import DeliveryStats

__all__ = ["render_metrics"]

log = logging.getLogger("runtime.realtime")

# The counters without labels: name, help, the DeliveryStats field.
COUNTERS = [
    ("events_published_total", "Events published.", "published"),
    ("events_delivered_total", "Frames queued to clients.", "delivered"),
    (
        "events_dropped_total",
        "Frames not delivered because the connection was closing or too slow.",
        "dropped",
    ),
    ("rate_limited_total", "Client messages refused by the rate limit.", "rate_limited"),
    (
        "slow_disconnects_total",
        "Connections closed as too slow a reader (4429).",
        "slow_disconnects",
    ),
    (
        "events_lost_total",
        "Events dropped before publication because the publish queue was full.",
        "lost",
    ),
    (
        "broker_outages_total",
        "Times the broker's backend started failing to publish (each outage once).",
        "broker_outages",
    ),
    (
        "event_interruptions_total",
        "Times events were missed (the broker lost or trimmed them before this process "
        "read them) and every connection was told to reconnect and resume.",
        "interruptions",
    ),
]

Samples = list[tuple[str, int]] | list[tuple[str, float]]


def render_metrics(broker: Broker) -> str:
    stats = broker.stats
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: Samples) -> None:
        lines.append(f"# HELP runtime_realtime_{name} {help_text}")
        lines.append(f"# TYPE runtime_realtime_{name} {kind}")
        lines.extend(f"runtime_realtime_{name}{labels} {value}" for labels, value in samples)

    opened, open_now = _by_transport(broker, stats)
    metric("connections", "gauge", "Open realtime connections.", open_now)
    metric("connections_opened_total", "counter", "Realtime connections opened.", opened)
    metric("subscriptions", "gauge", "Active subscriptions.", [("", len(broker.registry))])
    publisher = broker.publisher
    metric(
        "publish_queue",
        "gauge",
        "Events waiting to be published (they pile up while the broker's backend is down).",
        [("", publisher.pending)],
    )
    up = 0 if publisher.outage is not None else 1
    metric(
        "broker_up", "gauge", "1 while the broker's backend publishes, 0 in an outage.", [("", up)]
    )
    rows, lag = _outbox(broker)
    metric(
        "outbox_rows",
        "gauge",
        "Committed changes in the outbox not yet published (they wait there in an outage).",
        [("", rows)],
    )
    metric(
        "outbox_lag_seconds",
        "gauge",
        "How long the oldest change not yet published has waited in the outbox.",
        [("", round(lag, 3))],
    )
    for name, help_text, field in COUNTERS:
        metric(name, "counter", help_text, [("", getattr(stats, field))])
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
        "connection_errors_total",
        "counter",
        "Connections closed with 1011 because putting a frame on their queue or writing to "
        "them raised: that connection only, every other went on.",
        [(f'{{stage="{s}"}}', n) for s, n in sorted(broker.faults.connection_counts.items())],
    )
    metric(
        "task_restarts_total",
        "counter",
        "Background tasks restarted after failing.",
        [(f'{{task="{t}"}}', n) for t, n in sorted(stats.task_restarts.items())],
    )
    return "\n".join(lines) + "\n"


def _outbox(broker: Broker) -> tuple[int, float]:
    """Rows waiting in the relays' outboxes, and the oldest one's age in seconds."""
    rows, lag = 0, 0.0
    for relay in broker.relays:
        try:
            count, age = relay.waiting()
        except Exception:  # metrics answer even when the database does not
            log.warning("realtime: cannot read the outbox for metrics", exc_info=True)
            continue
        rows += count
        lag = max(lag, age or 0.0)
    return rows, lag


def _by_transport(broker: Broker, stats: DeliveryStats) -> tuple[Samples, Samples]:
    """Connections opened ever, and open now, by transport (both always listed)."""
    open_now = broker.connections.counts_by_transport()
    transports = sorted({"websocket", "sse", *open_now, *stats.connections_total})
    opened = [(_transport(t), stats.connections_total.get(t, 0)) for t in transports]
    return opened, [(_transport(t), open_now.get(t, 0)) for t in transports]


def _transport(name: str) -> str:
    return f'{{transport="{name}"}}'
