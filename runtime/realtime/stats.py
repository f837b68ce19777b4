"""The counters of realtime delivery, for `/realtime/metrics`, and the failures of app
code met while delivering."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

__all__ = ["DeliveryStats", "Faults"]

log = logging.getLogger("runtime.realtime")


@dataclass
class DeliveryStats:
    published: int = 0  # events the broker received from the backend
    delivered: int = 0  # frames queued to connections
    dropped: int = 0  # frames not queued: the connection was closing or too slow
    lost: int = 0  # events dropped before publication (the publish queue was full)
    broker_outages: int = 0  # times the backend started failing to publish
    interruptions: int = 0  # times events were missed, and every connection told to resume
    rate_limited: int = 0
    slow_disconnects: int = 0
    connections_total: dict[str, int] = field(default_factory=dict)  # by transport
    task_restarts: dict[str, int] = field(default_factory=dict)  # by task name


class Faults:
    """Failures of app code met while delivering: counted per collection and stage, and
    logged with a traceback the first time, then at most once a minute per kind."""

    LOG_INTERVAL = 60.0

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self._logged_at: dict[tuple[str, str, str], float] = {}

    def record(self, collection: str, stage: str, culprit: str, error: BaseException) -> None:
        key = (collection, stage)
        self.counts[key] = self.counts.get(key, 0) + 1
        kind = (collection, stage, culprit)
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is None or now - last >= self.LOG_INTERVAL:
            self._logged_at[kind] = now
            log.error(
                "realtime: %s of collection %r raised %s (%d so far); that reader does not "
                "get that event",
                culprit,
                collection,
                type(error).__name__,
                self.counts[key],
                exc_info=error if last is None else None,
            )
