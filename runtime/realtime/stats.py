"""The counters of realtime delivery, for `/realtime/metrics`, and the failures met while
delivering: of app code, and of getting frames to one connection."""

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
    """Failures met while delivering, each counted and logged with a traceback the first
    time, then at most once a minute per kind: app code's (a rule, a filter), per
    collection and stage; and a connection's own, per stage (see `connection_failed`)."""

    LOG_INTERVAL = 60.0

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.connection_counts: dict[str, int] = {}  # by stage: "queue", "write"
        self._logged_at: dict[tuple[str, ...], float] = {}

    def record(self, collection: str, stage: str, culprit: str, error: BaseException) -> None:
        key = (collection, stage)
        count = self.counts[key] = self.counts.get(key, 0) + 1
        self._log(
            (collection, stage, culprit),
            error,
            "realtime: %s of collection %r raised %s (%d so far); that reader does not "
            "get that event",
            culprit,
            collection,
            type(error).__name__,
            count,
        )

    def connection_failed(self, stage: str, connection_id: str, error: BaseException) -> None:
        """Getting frames to one connection raised: putting one on its queue (`stage`
        "queue") or writing them to its sink ("write": encoding, the socket, a fragment).
        The connection is closed (1011); every other goes on."""
        count = self.connection_counts[stage] = self.connection_counts.get(stage, 0) + 1
        self._log(
            ("connection", stage),
            error,
            "realtime: connection %s failed at %s with %s (%d so far): closed with 1011; "
            "every other connection goes on",
            connection_id,
            stage,
            type(error).__name__,
            count,
        )

    def _log(self, kind: tuple[str, ...], error: BaseException, *message: object) -> None:
        """At ERROR, with a traceback the first time, then at most once an interval."""
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is None or now - last >= self.LOG_INTERVAL:
            self._logged_at[kind] = now
            log.error(*message, exc_info=error if last is None else None)
