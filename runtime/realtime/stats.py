"""The counters of realtime delivery, for `/realtime/metrics`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DeliveryStats"]


@dataclass
class DeliveryStats:
    published: int = 0  # events the broker received from the backend
    delivered: int = 0  # frames queued to connections
    dropped: int = 0  # frames not queued: the connection was closing or too slow
    lost: int = 0  # events dropped before publication (the publish queue was full)
    rate_limited: int = 0
    slow_disconnects: int = 0
    connections_total: dict[str, int] = field(default_factory=dict)  # by transport
    task_restarts: dict[str, int] = field(default_factory=dict)  # by task name
