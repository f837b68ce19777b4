"""The per-connection message rate limit (`realtime.message_rate_limit`).

A connection lives in one process, so its budget is kept on the connection itself: a
moving window per limit ("100/10second;1000/hour"), the timestamps of the messages in
it and nothing else, dropped with the connection. (A shared `limits` storage would keep
a key per connection id in a global table and, in memory, start a thread every 10 ms to
expire them, scanning every key: its cost grows with the connections.)
"""

from __future__ import annotations

import bisect
import math
import time

from limits import parse_many

__all__ = ["MessageLimit", "MessageWindow"]


class MessageLimit:
    """The parsed limits: (how many, in how many seconds) each."""

    def __init__(self, spec: str) -> None:
        self.items = [(item.amount, float(item.get_expiry())) for item in parse_many(spec)]

    def window(self) -> MessageWindow:
        return MessageWindow(self)


class MessageWindow:
    """One connection's recent messages, per limit."""

    __slots__ = ("_hits", "_limit")

    def __init__(self, limit: MessageLimit) -> None:
        self._limit = limit
        self._hits: list[list[float]] | None = None  # made at the first message

    def retry_after(self, cost: int = 1, now: float | None = None) -> int:
        """0 if `cost` more messages may go now, else the seconds to wait (at least 1).
        A cost above a limit's amount counts as that amount."""
        now = time.monotonic() if now is None else now
        if self._hits is None:
            return 0
        wait = 0.0
        for (amount, period), hits in zip(self._limit.items, self._hits, strict=True):
            _expire(hits, now - period)
            cost_here = min(cost, amount)
            if len(hits) + cost_here > amount:
                # Room comes when the hits that leave the window are enough for `cost`.
                freed_at = hits[len(hits) + cost_here - amount - 1] + period
                wait = max(wait, freed_at - now, 1.0)
        return math.ceil(wait)

    def hit(self, cost: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._hits is None:
            self._hits = [[] for _ in self._limit.items]
        for (amount, period), hits in zip(self._limit.items, self._hits, strict=True):
            _expire(hits, now - period)
            hits.extend([now] * min(cost, amount))
            del hits[:-amount]  # never more than the limit's amount: bounded


def _expire(hits: list[float], before: float) -> None:
    gone = bisect.bisect_right(hits, before)
    if gone:
        del hits[:gone]
